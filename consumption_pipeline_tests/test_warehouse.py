"""The warehouse on real SQLite and PostgreSQL: round trips, period replacement, atomicity."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from consumption_pipeline.storage import tables
from consumption_pipeline.storage.tables import TABLES
from consumption_pipeline.storage.warehouse import Warehouse, WarehouseError
from consumption_pipeline_tests.corpus.source import (
    EVENT_COLUMNS,
    read_and_ingest,
    write_csv,
    write_source,
)

SEP, OCT, NOV = "2026-09-01", "2026-10-01", "2026-11-01"

# Four rows per kind: edge values, a NULL (row 2) and, for text, quoting hazards and ''.
SAMPLES: dict[str, pd.Series] = {
    "text": pd.Series(["a-1", 'quote " comma , newline \n end', None, ""], dtype="str"),
    "quantity": pd.Series([0.000001, 123456789.123456, None, 0.1], dtype="float64"),
    "money": pd.Series([Decimal("0.01"), Decimal("1234567.89"), None, Decimal("-0.000001")]),
    "date": pd.Series(
        pd.to_datetime(["2026-10-01", "2026-10-31", None, "1999-12-31"]), dtype="datetime64[us]"
    ),
    "instant": pd.Series(
        pd.to_datetime(
            ["2026-10-01 00:00:00.000001", "2026-10-31 23:59:59.999999", None, "1970-01-01"],
            format="ISO8601",
            utc=True,
        ),
        dtype="datetime64[us, UTC]",
    ),
    "bool": pd.Series([True, False, None, True], dtype="boolean"),
    "int": pd.Series([0, 2**62, None, -(2**62)], dtype="Int64"),
}
WITHOUT_NULLS = {"bool": "bool", "int": "int64"}  # dtypes when no NULL is present


def kind(column: sa.Column) -> str:
    if column.type is tables.MONEY:
        return "money"
    for type_, name in [
        (sa.DateTime, "instant"),
        (sa.Date, "date"),
        (sa.Boolean, "bool"),
        (sa.Integer, "int"),
        (sa.Numeric, "quantity"),
    ]:
        if isinstance(column.type, type_):
            return name
    return "text"


def sample_frame(table: sa.Table, period: str, with_nulls: bool = True) -> pd.DataFrame:
    """Every column of `table` in boundary types: exactly what read_period must return."""
    rows = [0, 1, 2, 3] if with_nulls else [0, 1, 3]
    frame = pd.DataFrame({c.name: SAMPLES[kind(c)].iloc[rows] for c in table.columns})
    frame["period"] = pd.Timestamp(period).as_unit("us")
    frame = frame.reset_index(drop=True)
    if not with_nulls:
        frame = frame.astype(
            {c.name: WITHOUT_NULLS[kind(c)] for c in table.columns if kind(c) in WITHOUT_NULLS}
        )
    return frame


def in_order(frame: pd.DataFrame, table: sa.Table) -> pd.DataFrame:
    """Reads promise no order: sort by a column whose sample values are distinct."""
    key = next(c.name for c in table.columns if c.name != "period" and kind(c) in ("text", "int"))
    return frame.sort_values(key, ignore_index=True, na_position="last")


def events(period: str, accounts: list[str], quantity: float = 1.0) -> pd.DataFrame:
    """usage_events rows, one per account, without the period column (the warehouse fills it)."""
    n = len(accounts)
    return pd.DataFrame(
        {
            "event_id": [f"{period}-{i}" for i in range(n)],
            "account_id": accounts,
            "quantity": [quantity] * n,
            "occurred_at": pd.Series([pd.Timestamp(period, tz="UTC")] * n),
            "row_number": np.arange(n, dtype="int64"),
        }
    )


def bulk_events(period: str, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    start = pd.Timestamp(period, tz="UTC")
    occurred = start + pd.to_timedelta(rng.integers(0, 28 * 86_400_000_000, n), unit="us")
    return pd.DataFrame(
        {
            "event_id": pd.Series(np.arange(n).astype(str), dtype="str"),
            "account_id": pd.Series(np.array(["acme", "globex", "initech"])[rng.integers(0, 3, n)]),
            "asset_id": "A1",
            "usage_resource_id": "compute_hours",
            "quantity": np.round(rng.random(n) * 100, 6),
            "occurred_at": occurred,
            "usage_date": occurred.tz_localize(None).normalize(),
            "source_file": "usage.csv",
            "row_number": np.arange(n, dtype="int64"),
        }
    )


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_url")


def held(period: str, accounts: list[str]) -> pd.DataFrame:
    """quarantined_events rows (a table in SQL), one per account."""
    n = len(accounts)
    return pd.DataFrame(
        {
            "event_id": [f"{period}-{i}" for i in range(n)],
            "account_id": pd.Series(accounts, dtype="str"),
            "reason": "unknown_account",
            "row_number": np.arange(n, dtype="int64"),
        }
    )


def clear(warehouse: Warehouse) -> None:
    """The PostgreSQL database and its lake live for the whole session: start each test empty."""
    with warehouse.engine.begin() as conn:
        for table in tables.metadata.tables.values():
            conn.execute(table.delete())
    shutil.rmtree(warehouse.lake.root, ignore_errors=True)


@pytest.fixture
def warehouse(url: str) -> Iterator[Warehouse]:
    warehouse = Warehouse(url)
    clear(warehouse)
    yield warehouse
    warehouse.engine.dispose()


def count(warehouse: Warehouse, table: str, period: str) -> int:
    return len(warehouse.read_period(table, period))


# -- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("with_nulls", [True, False], ids=["with_nulls", "without_nulls"])
def test_every_table_round_trips_in_boundary_types(warehouse: Warehouse, with_nulls: bool):
    frames = {name: sample_frame(table, OCT, with_nulls) for name, table in TABLES.items()}
    # One row a period where the period is the whole key (with nulls: the row of NULLs).
    frames["ingest_reconciliation"] = frames["ingest_reconciliation"].iloc[[2 if with_nulls else 0]]
    warehouse.replace_period(OCT, frames)
    for name, table in TABLES.items():
        got = warehouse.read_period(name, OCT)
        pd.testing.assert_frame_equal(in_order(got, table), in_order(frames[name], table))


def test_money_comes_back_as_decimals_quantized_to_six_places(warehouse: Warehouse):
    warehouse.replace_period(OCT, {"liable_summaries": pd.DataFrame({"amount": [Decimal("0.01")]})})
    (amount,) = warehouse.read_period("liable_summaries", OCT)["amount"]
    assert isinstance(amount, Decimal) and str(amount) == "0.010000"


def test_quantities_are_stored_as_exact_decimals_on_postgres(postgres_url: str):
    warehouse = Warehouse(postgres_url)
    warehouse.replace_period(OCT, {"bucket_balances": pd.DataFrame({"opening": [0.1]})})
    sql = "SELECT opening::text AS q FROM bucket_balances WHERE period = :p"
    assert warehouse.query(sql, {"p": date(2026, 10, 1)})["q"].tolist() == ["0.100000"]
    warehouse.engine.dispose()


def test_a_vanished_postgres_writer_does_not_keep_its_locks(postgres_url: str):
    # The server checks for a dead client every second and ends a transaction idle for a minute.
    with Warehouse(postgres_url).engine.connect() as conn:
        check = conn.exec_driver_sql("SHOW client_connection_check_interval").scalar()
        idle = conn.exec_driver_sql("SHOW idle_in_transaction_session_timeout").scalar()
    assert (check, idle) == ("1s", "1min")


def test_looser_inputs_come_back_in_boundary_types(warehouse: Warehouse):
    # Python dates, floats for money, a Berlin instant (12:00 CEST = 10:00 UTC), naive = UTC.
    berlin = datetime(2026, 10, 1, 12, tzinfo=ZoneInfo("Europe/Berlin"))
    warehouse.replace_period(
        OCT,
        {
            "usage_events": pd.DataFrame(
                {
                    "event_id": pd.Series(["e1", None], dtype=object),
                    "quantity": [Decimal("1.5"), 2],
                    "occurred_at": pd.Series([berlin, datetime(2026, 10, 2, 8)], dtype=object),
                    "usage_date": [date(2026, 10, 1), None],
                    "row_number": [1, 2],
                }
            ),
            "ratable_summaries": pd.DataFrame({"account_id": ["acme"], "amount": [2.675]}),
        },
    )
    got = in_order(warehouse.read_period("usage_events", OCT), TABLES["usage_events"])
    assert got["quantity"].tolist() == [1.5, 2.0]
    assert got["occurred_at"].tolist() == [
        pd.Timestamp("2026-10-01 10:00", tz="UTC"),
        pd.Timestamp("2026-10-02 08:00", tz="UTC"),
    ]
    assert str(got["occurred_at"].dtype) == "datetime64[us, UTC]"
    assert got["usage_date"].iloc[0] == pd.Timestamp("2026-10-01")
    assert pd.isna(got["usage_date"].iloc[1]) and pd.isna(got["event_id"].iloc[1])
    assert got["row_number"].dtype == "int64"
    assert warehouse.read_period("ratable_summaries", OCT)["amount"].tolist() == [Decimal("2.675")]


@pytest.mark.parametrize(
    ("amounts", "stored"),
    [
        # Whole columns of exact amounts convert at once; one amount needing rounding sends the
        # column one by one, half-up (away from zero) to 6 places, as PostgreSQL rounds.
        ([Decimal("1E+2"), None, Decimal("-0.000001")], ["100.000000", None, "-0.000001"]),
        ([Decimal("0.0000005"), Decimal("-0.0000005"), Decimal("1.25"), None],
         ["0.000001", "-0.000001", "1.250000", None]),
    ],
    ids=["exact", "rounded"],
)  # fmt: skip
def test_money_is_stored_to_six_places_half_up(warehouse: Warehouse, amounts, stored):
    frame = pd.DataFrame({"account_id": [f"a{i}" for i in range(len(amounts))], "amount": amounts})
    warehouse.replace_period(OCT, {"ratable_summaries": frame})
    got = warehouse.read_period("ratable_summaries", OCT).sort_values("account_id")
    assert got["amount"].tolist() == [None if s is None else Decimal(s) for s in stored]


def test_an_absent_period_reads_as_an_empty_frame_with_boundary_types(warehouse: Warehouse):
    got = warehouse.read_period("liable_summaries", OCT)
    expected = sample_frame(TABLES["liable_summaries"], OCT).iloc[:0]
    pd.testing.assert_frame_equal(got, expected.reset_index(drop=True), check_index_type=False)


# -- replacing a period ----------------------------------------------------------------------


def test_replace_period_leaves_other_periods_untouched(warehouse: Warehouse):
    for period in (SEP, OCT, NOV):
        warehouse.replace_period(period, {"usage_events": events(period, ["acme", "globex"])})
    september = warehouse.read_period("usage_events", SEP)

    warehouse.replace_period(OCT, {"usage_events": events(OCT, ["initech"], quantity=7.0)})

    pd.testing.assert_frame_equal(warehouse.read_period("usage_events", SEP), september)
    assert count(warehouse, "usage_events", NOV) == 2
    october = warehouse.read_period("usage_events", OCT)
    assert october["account_id"].tolist() == ["initech"] and october["quantity"].tolist() == [7.0]


def test_rerunning_a_replace_gives_identical_rows_and_no_duplicates(warehouse: Warehouse):
    frame = events(OCT, ["acme", "globex", "initech"])
    warehouse.replace_period(OCT, {"usage_events": frame})
    first = in_order(warehouse.read_period("usage_events", OCT), TABLES["usage_events"])
    warehouse.replace_period(OCT, {"usage_events": frame})
    again = in_order(warehouse.read_period("usage_events", OCT), TABLES["usage_events"])
    pd.testing.assert_frame_equal(again, first)
    assert len(again) == 3


def test_an_empty_frame_clears_the_period(warehouse: Warehouse):
    warehouse.replace_period(OCT, {"usage_events": events(OCT, ["acme"])})
    warehouse.replace_period(OCT, {"usage_events": events(OCT, [])})
    assert count(warehouse, "usage_events", OCT) == 0


def test_where_limits_the_delete_to_matching_rows(warehouse: Warehouse):
    warehouse.replace_period(OCT, {"usage_events": events(OCT, ["acme", "acme", "globex"])})
    # The frame has no account_id: the warehouse fills it from `where`.
    replacement = events(OCT, ["x"], quantity=5.0).drop(columns="account_id")
    warehouse.replace_period(
        OCT, {"usage_events": replacement}, where={"usage_events": {"account_id": "acme"}}
    )

    got = warehouse.read_period("usage_events", OCT)
    assert sorted(zip(got["account_id"], got["quantity"], strict=True)) == [
        ("acme", 5.0),
        ("globex", 1.0),
    ]
    assert warehouse.read_period("usage_events", OCT, where={"account_id": "globex"}).shape[0] == 1


def test_rows_outside_where_are_refused(warehouse: Warehouse):
    with pytest.raises(ValueError, match=r"usage_events\.account_id"):
        warehouse.replace_period(
            OCT,
            {"usage_events": events(OCT, ["globex"])},
            where={"usage_events": {"account_id": "acme"}},
        )


def test_rows_of_another_period_are_refused(warehouse: Warehouse):
    frame = events(OCT, ["acme"]).assign(period=pd.Timestamp(SEP))
    with pytest.raises(ValueError, match=r"usage_events\.period"):
        warehouse.replace_period(OCT, {"usage_events": frame})


def test_read_periods_reads_only_the_given_periods(warehouse: Warehouse):
    for period in (SEP, OCT, NOV):
        warehouse.replace_period(period, {"usage_events": events(period, ["acme"])})
    got = warehouse.read_periods("usage_events", [SEP, NOV])
    assert sorted(got["period"].dt.strftime("%Y-%m-%d")) == [SEP, NOV]
    assert warehouse.read_periods("usage_events", []).empty


def test_periods_lists_the_distinct_periods_sorted(warehouse: Warehouse):
    for period in (NOV, SEP, OCT, OCT):
        warehouse.replace_period(period, {"usage_events": events(period, ["acme", "globex"])})
    assert warehouse.periods("usage_events") == [SEP, OCT, NOV]
    assert warehouse.periods("liable_summaries") == []


# -- errors and atomicity --------------------------------------------------------------------


def test_an_unknown_column_is_an_error_naming_table_and_column(warehouse: Warehouse):
    with pytest.raises(ValueError, match=r"usage_events.*colour"):
        warehouse.replace_period(OCT, {"usage_events": events(OCT, ["acme"]).assign(colour="red")})


@pytest.mark.parametrize("bad", ["2026-10-15", "2026-10", "October", "2026-10-01T00:00"])
def test_a_period_is_the_first_of_a_month(warehouse: Warehouse, bad: str):
    with pytest.raises(ValueError, match="YYYY-MM-01"):
        warehouse.read_period("usage_events", bad)


def test_an_unknown_table_is_an_error(warehouse: Warehouse):
    with pytest.raises(ValueError, match="invoices"):
        warehouse.replace_period(OCT, {"invoices": pd.DataFrame()})


def test_a_date_must_be_at_midnight(warehouse: Warehouse):
    frame = events(OCT, ["acme"]).assign(usage_date=pd.Timestamp("2026-10-01 13:00"))
    with pytest.raises(ValueError, match=r"usage_events\.usage_date.*midnight"):
        warehouse.replace_period(OCT, {"usage_events": frame})


@contextlib.contextmanager
def refusing(warehouse: Warehouse, table: str, bucket_id: str) -> Iterator[None]:
    """A trigger that makes the database itself reject one row: a failure mid-transaction."""
    postgres = warehouse.engine.dialect.name == "postgresql"
    create = (
        [
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.bucket_id = '{bucket_id}' THEN RAISE EXCEPTION 'refused'; END IF; "
            "RETURN NEW; END $$",
            f"CREATE TRIGGER refuse BEFORE INSERT ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION refuse()",
        ]
        if postgres
        else [
            f"CREATE TRIGGER refuse BEFORE INSERT ON {table} WHEN NEW.bucket_id = '{bucket_id}' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ]
    )
    drop = (
        [f"DROP TRIGGER refuse ON {table}", "DROP FUNCTION refuse()"]
        if postgres
        else ["DROP TRIGGER refuse"]
    )
    with warehouse.engine.begin() as conn:
        for sql in create:
            conn.exec_driver_sql(sql)
    try:
        yield
    finally:
        with warehouse.engine.begin() as conn:
            for sql in drop:
                conn.exec_driver_sql(sql)


BALANCES = pd.DataFrame({"bucket_id": ["b1", "b2"], "opening": [100.0, 50.0]})


@pytest.mark.parametrize(
    ("failure", "bad_balances", "error"),
    [
        ("unknown column", BALANCES.assign(colour="red"), ValueError),
        ("value of the wrong type", BALANCES.assign(opening=["lots", "1"]), ValueError),
        (
            "row refused by the database",
            BALANCES.assign(bucket_id=["b1", "boom"]),
            WarehouseError,
        ),
    ],
)
def test_a_failure_in_any_table_leaves_every_table_as_it_was(
    warehouse: Warehouse, failure: str, bad_balances: pd.DataFrame, error: type[Exception]
):
    warehouse.replace_period(
        OCT, {"quarantined_events": held(OCT, ["acme"]), "bucket_balances": BALANCES}
    )
    before = {t: warehouse.read_period(t, OCT) for t in ("quarantined_events", "bucket_balances")}

    # quarantined_events comes first: its delete and insert have run when bucket_balances fails.
    frames = {"quarantined_events": held(OCT, ["globex", "x"]), "bucket_balances": bad_balances}
    with refusing(warehouse, "bucket_balances", "boom"), pytest.raises(error):
        warehouse.replace_period(OCT, frames)

    for table, frame in before.items():
        pd.testing.assert_frame_equal(warehouse.read_period(table, OCT), frame)


# -- queries ---------------------------------------------------------------------------------


def test_query_binds_parameters_instead_of_splicing_them(warehouse: Warehouse):
    warehouse.replace_period(OCT, {"quarantined_events": held(OCT, ["o'brien", "acme"])})
    sql = "SELECT account_id FROM quarantined_events WHERE account_id = :account"
    assert warehouse.query(sql, {"account": "o'brien"})["account_id"].tolist() == ["o'brien"]
    assert warehouse.query(sql, {"account": "x' OR '1'='1"}).empty


# -- bulk and concurrent writes --------------------------------------------------------------


def test_a_large_period_is_written_in_bulk(warehouse: Warehouse):
    frame = bulk_events(OCT, 200_000)
    started = time.perf_counter()
    warehouse.replace_period(OCT, {"usage_events": frame})
    elapsed = time.perf_counter() - started
    assert count(warehouse, "usage_events", OCT) == 200_000
    # A guard against row-by-row inserts (minutes), not a benchmark: ~1 s on a laptop.
    assert elapsed < 30, f"200,000 rows took {elapsed:.1f} s"
    got = warehouse.read_period("usage_events", OCT).sort_values("row_number", ignore_index=True)
    expected = frame.assign(period=pd.Timestamp(OCT).as_unit("us"))[got.columns]
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def write_after(barrier: multiprocessing.synchronize.Barrier, url: str, period: str) -> None:
    barrier.wait(timeout=120)  # both processes create the schema and write at the same moment
    frame = held(period, ["acme"] * 100_000)
    Warehouse(url).replace_period(period, {"quarantined_events": frame})


def test_two_processes_can_write_different_periods_at_once(url: str):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    periods = ["2031-01-01", "2031-02-01"]
    writers = [context.Process(target=write_after, args=(barrier, url, p)) for p in periods]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=300)
    assert [w.exitcode for w in writers] == [0, 0]
    warehouse = Warehouse(url)
    assert [count(warehouse, "quarantined_events", p) for p in periods] == [100_000, 100_000]
    clear(warehouse)
    warehouse.engine.dispose()


def test_sqlite_creates_the_parent_folder(tmp_path):
    path = tmp_path / "a" / "b" / "warehouse.sqlite"
    Warehouse(f"sqlite:///{path}").engine.dispose()
    assert path.exists()


def test_a_read_may_name_the_columns_it_needs(warehouse: Warehouse):
    frames = {
        name: sample_frame(TABLES[name], OCT) for name in ("liable_summaries", "usage_events")
    }
    warehouse.replace_period(OCT, frames)
    for name, columns in [("liable_summaries", ["amount", "account_id"]),
                          ("usage_events", ["account_id"])]:  # fmt: skip
        got = warehouse.read_period(name, OCT, columns=columns)
        kept = [c for c in frames[name].columns if c in columns]  # the table's order
        assert list(got.columns) == kept

        def ordered(frame: pd.DataFrame) -> pd.DataFrame:
            return frame.sort_values("account_id", ignore_index=True, na_position="last")

        pd.testing.assert_frame_equal(ordered(got), ordered(frames[name][kept]))
    with pytest.raises(ValueError, match="liable_summaries.*colour"):
        warehouse.read_period("liable_summaries", OCT, columns=["colour"])
    with pytest.raises(ValueError, match="usage_events.*colour"):
        warehouse.read_period("usage_events", OCT, columns=["colour"])


def test_sqlite_reads_columns_whose_first_thousands_of_values_are_null_or_whole(tmp_path):
    # The staging read infers each column's type from the values it holds: NULLs and whole
    # numbers (which SQLite keeps as integers) must not fix the type before the rest is seen.
    warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    n = 5_000
    frame = pd.DataFrame({
        "summary_id": [f"s{i:05d}" for i in range(n)],
        "asset_id": pd.Series([None] * (n - 2) + ["A1", "A2"], dtype="str"),
        "consumption": [float(i) for i in range(n - 1)] + [0.5],
        "event_count": pd.Series([None] * (n - 1) + [7], dtype="Int64"),
    })  # fmt: skip
    warehouse.replace_period(OCT, {"usage_summaries": frame})
    got = warehouse.read_period("usage_summaries", OCT, columns=list(frame.columns))
    got = got.sort_values("summary_id", ignore_index=True)
    assert got["asset_id"].isna().sum() == n - 2
    assert got["asset_id"].iloc[-2:].tolist() == ["A1", "A2"]
    assert got["consumption"].tolist() == [float(i) for i in range(n - 1)] + [0.5]
    assert got["event_count"].isna().sum() == n - 1 and got["event_count"].iloc[-1] == 7


def test_sqlite_staging_files_are_removed(tmp_path, monkeypatch):
    # Also those a killed process left, once an hour old; not a running process's, nor a recent
    # one (a process of another container may have the same number).
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    dead = int(ended.stdout)
    left = {name: tmp / name for name in [f"warehouse-staging-{dead}-old",
            f"warehouse-staging-{dead}-recent", f"warehouse-staging-{os.getpid()}-mine"]}  # fmt: skip
    for name, folder in left.items():
        folder.mkdir()
        (folder / "staged.db").write_bytes(b"x")
        if not name.endswith("recent"):
            os.utime(folder, (time.time() - 7200, time.time() - 7200))
    tempfile.tempdir = None  # read TMPDIR again
    try:
        warehouse = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
        warehouse.replace_period(OCT, {"quarantined_events": held(OCT, ["acme", "globex"])})
        assert count(warehouse, "quarantined_events", OCT) == 2
        assert sorted(p.name for p in tmp.iterdir()) == sorted(
            [f"warehouse-staging-{dead}-recent", f"warehouse-staging-{os.getpid()}-mine"])  # fmt: skip
    finally:
        tempfile.tempdir = None


def test_a_quarantined_row_holding_a_nul_is_stored_and_read_back(warehouse: Warehouse, tmp_path):
    """PostgreSQL text cannot hold a NUL byte: a NUL in any field of an event file quarantines
    the row with the NUL shown as the four characters \\x00, which both warehouses store."""
    root = write_source(tmp_path)
    nul = ["n-\x001", "AC\x00ME", "", "api_calls", "1\x00", "2026-10-15T12:00:00Z"]
    write_csv(root / "usage" / "nul.csv", [EVENT_COLUMNS, nul])
    quarantined = read_and_ingest(root)[2].quarantined_events
    warehouse.replace_period(OCT, {"quarantined_events": quarantined})
    stored = warehouse.read_period("quarantined_events", OCT)
    assert stored[["event_id", "account_id", "quantity", "reason", "detail"]].values.tolist() == [
        ["n-\\x001", "AC\\x00ME", "1\\x00", "invalid_text",
         "'event_id' holds a NUL character (shown as \\x00)"]]  # fmt: skip
