"""What Dagster itself shows of each asset: code versions, data versions, kinds, the table name and
column schema of what it keeps, the lake file's URL, and the column lineage of an invoice line."""

from __future__ import annotations

import itertools
import shutil
import urllib.parse
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from consumption_pipeline.audit.fingerprints import code_files
from consumption_pipeline.definitions import build_defs, defs
from consumption_pipeline.storage.settings import DEFAULT_SOURCE, Settings
from consumption_pipeline.storage.tables import LAKE_TABLES
from consumption_pipeline_tests.audit.test_lineage import PARTITIONED, latest

PACKAGE = Path(__file__).parents[2] / "consumption_pipeline"
SQLITE = sa.dialects.sqlite.dialect()


def local_path(uri: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlparse(uri).path)


def spec(key: str, definitions: dg.Definitions = defs) -> dg.AssetSpec:
    return definitions.resolve_assets_def(key).get_asset_spec(dg.AssetKey(key))


def test_every_asset_declares_a_code_version_and_kinds():
    for asset in [*PARTITIONED, "adhoc_summary", "alerts", "alert_deliveries"]:
        assert spec(asset).code_version.startswith("0.1.0+"), asset
        assert "pandas" in spec(asset).kinds, asset
    assert spec("rated_usage").kinds == {"pandas", "parquet"}
    assert spec("liable_summaries").kinds == {"pandas", "sqlite"}
    on_server = build_defs(Settings(warehouse_url="postgresql+psycopg2://postgres@127.0.0.1/x"))
    assert spec("liable_summaries", on_server).kinds == {"pandas", "postgresql"}
    assert spec("usage_events", on_server).kinds == {"pandas", "parquet"}


def test_a_code_version_covers_the_rules_its_asset_runs_and_no_other():
    buckets = {
        p.relative_to(PACKAGE).as_posix() for p in code_files("consumption_pipeline.defs.buckets")
    }
    rating = {
        p.relative_to(PACKAGE).as_posix() for p in code_files("consumption_pipeline.defs.rating")
    }
    assert {
        "defs/buckets.py",
        "domain/buckets.py",
        "domain/contracts.py",
        "storage/wire.py",
    } <= buckets
    assert {"defs/rating.py", "domain/rating.py"} <= rating
    assert "domain/rating.py" not in buckets and "domain/buckets.py" not in rating
    # the lineage, the checks and the audit change no row: they are not in any code version
    assert not any(p.startswith(("audit/", "quality/", "defs/lineage")) for p in buckets | rating)
    assert spec("entitlement_buckets").code_version != spec("rated_usage").code_version
    assert spec("ratable_summaries").code_version == spec("liable_summaries").code_version


def test_the_column_schema_is_the_table_the_warehouse_holds(sample_run):
    inspector = sa.inspect(sa.create_engine(sample_run.url))
    for asset in PARTITIONED:
        metadata = spec(asset).metadata
        table = metadata["dagster/table_name"]
        declared = [(c.name, c.type) for c in metadata["dagster/column_schema"].columns]
        if table in LAKE_TABLES:
            record = latest(sample_run.home, asset, "2026-10-01").asset_materialization
            path = local_path(record.metadata["dagster/uri"].value)
            assert [n for n, _ in declared] == pq.read_schema(path).names, asset
        else:
            held = [
                (c["name"], c["type"].compile(dialect=SQLITE)) for c in inspector.get_columns(table)
            ]
            assert declared == held, asset
    assert spec("restatements").metadata["dagster/table_name"] == "restatement_lines"
    assert spec("adhoc_summary").metadata["dagster/table_name"] == "adhoc_summaries"


def test_the_lake_file_of_a_period_is_named_by_its_url(sample_run):
    record = latest(sample_run.home, "usage_events", "2026-10-01").asset_materialization
    uri = record.metadata["dagster/uri"].value
    assert uri.startswith("file:///") and uri.endswith(
        "/usage_events/period=2026-10-01/data.parquet"
    )
    assert pq.read_metadata(local_path(uri)).num_rows == 105  # October's accepted events


def test_an_invoice_amount_leads_back_to_the_event_quantities_column_by_column(sample_run):
    path = ["liable_summaries.amount", "ratable_summaries.amount", "usage_summaries.overage",
            "rated_usage.drawdown_quantity", "usage_events.quantity"]  # fmt: skip
    for column, source in itertools.pairwise(path):
        asset, name = column.split(".")
        metadata = latest(sample_run.home, asset, "2026-10-01").asset_materialization.metadata
        deps = metadata["dagster/column_lineage"].value.deps_by_column[name]
        assert source in {f"{d.asset_key.to_user_string()}.{d.column_name}" for d in deps}, column
    events = latest(sample_run.home, "usage_events", "2026-10-01").asset_materialization.metadata
    assert "dagster/column_lineage" not in events  # the path begins at the events


def test_every_column_in_the_lineage_is_a_column_of_its_table(sample_run):
    def columns(asset: str) -> set[str]:
        return {c.name for c in spec(asset).metadata["dagster/column_schema"].columns}

    for asset in ["rated_usage", "usage_summaries", "ratable_summaries", "liable_summaries"]:
        lineage = latest(sample_run.home, asset, "2026-10-01").asset_materialization.metadata[
            "dagster/column_lineage"].value  # fmt: skip
        assert set(lineage.deps_by_column) <= columns(asset), asset
        for deps in lineage.deps_by_column.values():
            for dep in deps:
                assert dep.column_name in columns(dep.asset_key.to_user_string()), dep


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DEFAULT_SOURCE, tmp_path / "source"))


def test_a_changed_input_is_a_new_data_version_and_the_same_inputs_the_same(tmp_path, source):
    settings = Settings(source_dir=str(source), warehouse_url=f"sqlite:///{tmp_path / 'w.db'}",
                        as_of="2026-11-25")  # fmt: skip
    definitions = build_defs(settings)
    instance = dg.DagsterInstance.ephemeral()

    def buckets_version() -> str:
        result = definitions.resolve_job_def("billing_job").execute_in_process(
            partition_key="2026-10-01",
            instance=instance,
            asset_selection=[dg.AssetKey("entitlement_buckets")],
        )
        (event,) = result.asset_materializations_for_node("entitlement_buckets")
        return event.tags["dagster/data_version"]

    first, again = buckets_version(), buckets_version()
    with (source / "credit_grants.csv").open("a") as grants:
        grants.write("cr-acme-late,ACME,,credits,50,2026-10-20,2026-12-01,,Late delivery\n")
    changed = buckets_version()
    assert first == again != changed
