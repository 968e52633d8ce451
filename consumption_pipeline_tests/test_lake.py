"""The lake: event-level tables as one Parquet file per table and period, beside the warehouse."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from consumption_pipeline.defs.resources import WarehouseResource
from consumption_pipeline.storage.lake import Lake
from consumption_pipeline.storage.settings import PROJECT_ROOT, Settings
from consumption_pipeline.storage.tables import LAKE_TABLES, TABLES
from consumption_pipeline.storage.warehouse import Warehouse, default_lake
from consumption_pipeline.storage.wire import period_day, to_wire

OCT = "2026-10-01"


def events(accounts: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"event_id": [f"e{i}" for i in range(len(accounts))],
                         "account_id": accounts, "quantity": 1.5})  # fmt: skip


def test_event_level_tables_are_files_not_sql_tables(tmp_path: Path):
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    warehouse.replace_period(OCT, {"usage_events": events(["acme"]), "rated_usage": pd.DataFrame(
        {"summary_id": ["s1"]}), "quarantined_events": pd.DataFrame({"event_id": ["q1"]})})  # fmt: skip
    lake = tmp_path / "warehouse.lake"
    assert sorted(p.relative_to(lake).as_posix() for p in lake.rglob("*") if p.is_file()) == [
        "rated_usage/period=2026-10-01/data.parquet",
        "usage_events/period=2026-10-01/data.parquet",
    ]
    sql_tables = set(sa.inspect(warehouse.engine).get_table_names())
    assert "quarantined_events" in sql_tables and not sql_tables & LAKE_TABLES
    assert warehouse.read_period("usage_events", OCT)["account_id"].tolist() == ["acme"]
    warehouse.engine.dispose()


def test_the_default_lake_is_beside_a_sqlite_file_or_named_after_the_database():
    assert default_lake("sqlite:///data/warehouse.db") == "data/warehouse.lake"
    assert default_lake("postgresql+psycopg2://postgres@db.example:5433/billing") == str(
        PROJECT_ROOT / "data" / "lake" / "postgresql-db.example-5433-billing"
    )
    with pytest.raises(ValueError, match="needs a lake location"):
        default_lake("sqlite://")


def test_the_lake_setting_reaches_the_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CONSUMPTION_LAKE_URL", str(tmp_path / "lake"))
    settings = Settings.from_env()
    resource = WarehouseResource(url=f"sqlite:///{tmp_path / 'w.db'}", lake=settings.lake_url)
    warehouse = resource.open()
    warehouse.replace_period(OCT, {"usage_events": events(["acme"])})
    assert (tmp_path / "lake" / "usage_events" / "period=2026-10-01" / "data.parquet").is_file()
    warehouse.engine.dispose()


def test_rows_are_read_that_match_every_condition(tmp_path: Path):
    lake = Lake(str(tmp_path))
    frame = events(["acme", "globex", "acme"])
    frame["usage_resource_id"] = ["credits", "credits", "storage"]
    lake.replace_period("usage_events", OCT, _wire(frame))
    where = {"account_id": "acme", "usage_resource_id": "credits"}
    assert len(lake.read_period("usage_events", OCT, where)) == 1
    assert len(lake.read_period("usage_events", OCT, {"account_id": "acme"})) == 2


def test_a_file_system_url_is_a_lake_root(tmp_path: Path):
    lake = Lake(f"file://{tmp_path}")
    wire = _wire(events(["acme", "globex"]))
    lake.replace_period("usage_events", OCT, wire)
    assert sorted(lake.read_period("usage_events", OCT)["account_id"]) == ["acme", "globex"]
    assert lake.periods("usage_events") == [OCT]


def test_a_replaced_period_leaves_no_partial_file_and_other_periods_alone(tmp_path: Path):
    lake = Lake(str(tmp_path))
    lake.replace_period("usage_events", "2026-09-01", _wire(events(["acme"]), "2026-09-01"))
    lake.replace_period("usage_events", OCT, _wire(events(["acme", "globex"])))
    lake.replace_period("usage_events", OCT, _wire(events(["initech"])))
    assert lake.read_period("usage_events", OCT)["account_id"].tolist() == ["initech"]
    assert lake.read_period("usage_events", "2026-09-01")["account_id"].tolist() == ["acme"]
    assert [p.name for p in (tmp_path / "usage_events").rglob("*") if p.is_file()] == [
        "data.parquet", "data.parquet"]  # fmt: skip


def test_an_absent_period_or_table_reads_empty(tmp_path: Path):
    lake = Lake(str(tmp_path))
    assert lake.read_period("billed_events", OCT).empty
    assert lake.read_period("billed_events", OCT, {"account_id": "acme"}).empty
    assert lake.periods("billed_events") == []
    with pytest.raises(ValueError, match="unknown lake table 'liable_summaries'"):
        lake.read_period("liable_summaries", OCT)


def _wire(frame: pd.DataFrame, period: str = OCT) -> pa.Table:
    return to_wire(TABLES["usage_events"], frame, period_day(period), {})


def test_a_period_is_copied_between_tables_of_the_same_columns(tmp_path: Path):
    lake = Lake(str(tmp_path))
    lake.replace_period("usage_events", OCT, _wire(events(["acme", "globex"])))
    lake.copy_period("usage_events", "billed_events", OCT)
    pd.testing.assert_frame_equal(
        lake.read_period("billed_events", OCT), lake.read_period("usage_events", OCT)
    )
    lake.copy_period("usage_events", "billed_events", "2026-11-01")  # nothing there: no rows
    assert lake.read_period("billed_events", "2026-11-01").empty
    assert lake.periods("billed_events") == [OCT, "2026-11-01"]
    with pytest.raises(ValueError, match="differ in columns"):
        lake.copy_period("usage_events", "rated_usage", OCT)


def test_a_period_written_in_parts_reads_back_whole_or_in_parts(tmp_path: Path):
    # Three parts of 2, 0 and 1 events make one file of 3 rows; parts come back in order.
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    parts = [events(["acme", "beta"]), events([]), events(["gamma"])]
    warehouse.write_batches(OCT, "usage_events", iter(parts))
    assert warehouse.read_period("usage_events", OCT)["account_id"].tolist() == [
        "acme", "beta", "gamma"]  # fmt: skip
    read = list(warehouse.read_batches("usage_events", OCT, ["account_id", "quantity"]))
    assert [list(f.columns) for f in read] == [["account_id", "quantity"]] * len(read)
    assert pd.concat(read)["account_id"].tolist() == ["acme", "beta", "gamma"]
    assert pd.concat(read)["quantity"].tolist() == [1.5, 1.5, 1.5]
    assert list(warehouse.read_batches("usage_events", "2026-11-01")) == []
    with pytest.raises(ValueError, match="unknown lake table 'quarantined_events'"):
        warehouse.write_batches(OCT, "quarantined_events", iter([]))
    warehouse.engine.dispose()


def texts(values: pd.Series) -> list[str | None]:
    return [None if pd.isna(v) else v for v in values]


def test_categorical_parts_are_written_as_dictionaries_and_read_back_as_text(tmp_path: Path):
    # The ingest hands its ids over as categoricals (unused categories, missing values); a part
    # of plain text may follow. Every reader gets the texts, and read_batches categoricals.
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    ids = pd.Categorical.from_codes([1, -1, 1, 0], categories=["acme", "beta", "unused"])
    parts = [events(["x"] * 4).assign(account_id=ids), events(["gamma"])]
    warehouse.write_batches(OCT, "usage_events", iter(parts))
    got = warehouse.read_period("usage_events", OCT)["account_id"]
    assert got.dtype == "str"
    assert texts(got) == ["beta", None, "beta", "acme", "gamma"]
    read = [f["account_id"] for f in warehouse.read_batches("usage_events", OCT, ["account_id"])]
    assert all(isinstance(part.dtype, pd.CategoricalDtype) for part in read)
    assert texts(pd.concat(read)) == ["beta", None, "beta", "acme", "gamma"]
    # Replacing some rows rewrites the file from the rows kept (e0 is the first of each part).
    warehouse.replace_period(OCT, {"usage_events": events(["delta"])},
                             {"usage_events": {"event_id": "e0"}})  # fmt: skip
    assert texts(warehouse.read_period("usage_events", OCT)["account_id"]) == [
        None, "beta", "acme", "delta"]  # fmt: skip
    warehouse.engine.dispose()


def test_a_written_period_keeps_the_date_range_of_each_row_group_not_the_ids(tmp_path: Path):
    # Other readers skip row groups by date; ids come in no order, so they get no min/max.
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    days = pd.to_datetime(["2026-10-07", "2026-10-03", "2026-10-05"])
    part = events(["beta", "acme", "gamma"]).assign(usage_date=days)
    warehouse.write_batches(OCT, "usage_events", iter([part]))
    file = tmp_path / "warehouse.lake" / "usage_events" / "period=2026-10-01" / "data.parquet"
    group = pq.ParquetFile(file).metadata.row_group(0)
    stats = {group.column(i).path_in_schema: group.column(i).statistics
             for i in range(group.num_columns)}  # fmt: skip
    assert (str(stats["usage_date"].min), str(stats["usage_date"].max)) == (
        "2026-10-03", "2026-10-07")  # fmt: skip
    assert stats["account_id"] is None
    warehouse.engine.dispose()


def test_a_failed_part_leaves_the_periods_file_as_it_was(tmp_path: Path):
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    warehouse.replace_period(OCT, {"usage_events": events(["acme"])})

    def parts():
        yield events(["beta"])
        raise RuntimeError("source went away")

    with pytest.raises(RuntimeError, match="source went away"):
        warehouse.write_batches(OCT, "usage_events", parts())
    assert warehouse.read_period("usage_events", OCT)["account_id"].tolist() == ["acme"]
    folder = tmp_path / "warehouse.lake" / "usage_events" / "period=2026-10-01"
    assert [p.name for p in folder.iterdir()] == ["data.parquet"]  # no partial file left behind
    warehouse.engine.dispose()
