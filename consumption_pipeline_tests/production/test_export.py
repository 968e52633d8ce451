"""Closing a period and its export to the billing outbox (consumption_pipeline/closing), on a
SQLite and a PostgreSQL warehouse: the calendar of closes, the files and their manifest, and the
refusals, each naming the period."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from consumption_pipeline.cli.close import closed_line
from consumption_pipeline.closing import register
from consumption_pipeline.closing.close import close_period
from consumption_pipeline.closing.dates import (
    PeriodClosedError,
    PeriodOpenError,
    closes_on,
    due_periods,
    open_periods,
)
from consumption_pipeline.closing.outbox import write_outbox
from consumption_pipeline.closing.register import ClosureRegister
from consumption_pipeline.storage.warehouse import Warehouse
from consumption_pipeline_tests.postgres import postgres_database

SEP, OCT, NOV = "2026-09-01", "2026-10-01", "2026-11-01"
CLOSING_DAY = pd.Timestamp("2026-11-04")  # October's end (exclusive) 11-01 + 3 grace days


def line(account, asset, resource, consumption, debited, overage, rate, amount, currency,
         status="final", line_type="usage", restatement_id=None) -> dict:  # fmt: skip
    return {
        "account_id": account, "asset_id": asset, "usage_resource_id": resource,
        "consumption": consumption, "debited": debited, "overage_quantity": overage,
        "net_unit_rate": None if rate is None else Decimal(rate), "amount": Decimal(amount),
        "currency": currency, "status": status, "line_type": line_type,
        "restatement_id": restatement_id,
    }  # fmt: skip


# Written in an order the export must not keep: it sorts by account, asset and resource.
OCTOBER = [
    line("INITECH", "I1", "api_calls", 412000, 400000, 12000, "0.1", "1200", "JPY"),
    line("ACME", "A1", "credits", 1800, 1700, 100, "0.02", "2.00", "USD"),
    line("GLOBEX", None, "egress_gb", 250.5, 0, 250.5, "0.045", "11.27", "EUR"),
    line("ACME", "A2", "credits", 0, 0, 0, "0", "0.00", "USD"),
    line("GLOBEX", "G1", "credits", 2529.6, 2529.6, 0, "0", "0.00", "EUR"),
    line("ACME", "A1", "credits", 50, 0, 50, None, "1.00", "USD", line_type="adjustment",
         restatement_id="2026-09-R1"),
]  # fmt: skip


@pytest.fixture(scope="module")
def postgres_warehouse() -> Iterator[str]:
    with postgres_database("cp_export") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    """A warehouse that processed September and October; nothing is closed."""
    if request.param == "sqlite":
        store = Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}")
    else:
        store = Warehouse(request.getfixturevalue("postgres_warehouse"))
        ClosureRegister(store)  # creates the register, emptied below with the rest
        with store.engine.begin() as conn:
            for table in ("period_closures", "ingest_reconciliation", "liable_summaries"):
                conn.exec_driver_sql(f"DELETE FROM {table}")
    for period in (SEP, OCT):
        store.replace_period(period, {"ingest_reconciliation": pd.DataFrame([{
            "events_read": 0, "accepted": 0, "duplicates": 0, "quarantined": 0,
            "other_periods": 0}])})  # fmt: skip
    store.replace_period(OCT, {"liable_summaries": pd.DataFrame(OCTOBER)})
    store.replace_period(SEP, {"liable_summaries": pd.DataFrame(OCTOBER[:1])})
    yield store
    store.engine.dispose()


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


def close(store: Warehouse, outbox: Path, period: str, today=CLOSING_DAY) -> dict:
    return close_period(store, outbox, period, pd.Timestamp(today), 3, "run-1")


def test_a_period_closes_its_grace_days_after_its_end():
    assert closes_on(OCT, 3) == pd.Timestamp("2026-11-04")
    assert closes_on("2028-02-01", 0) == pd.Timestamp("2028-03-01")  # leap February: 29 days
    # During November's first 3 days October is still open; from the 4th only November is.
    assert open_periods(pd.Timestamp("2026-11-03"), 3, "2024-01-01") == [OCT, NOV]
    assert open_periods(CLOSING_DAY, 3, "2024-01-01") == [NOV]
    assert open_periods(pd.Timestamp("2026-11-03"), 3, NOV) == [NOV]  # nothing before the first
    assert due_periods(SEP, pd.Timestamp("2026-11-03"), 3) == [SEP]
    assert due_periods(SEP, CLOSING_DAY, 3) == [SEP, OCT]


def test_the_export_holds_the_lines_sorted_with_totals_per_currency(store, outbox: Path):
    close(store, outbox, SEP)
    manifest = close(store, outbox, OCT)
    folder = outbox / "2026-10"
    data = (folder / "liable_summaries.csv").read_bytes()
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert [(r["account_id"], r["asset_id"], r["line_type"]) for r in rows] == [
        ("ACME", "A1", "adjustment"), ("ACME", "A1", "usage"), ("ACME", "A2", "usage"),
        ("GLOBEX", "", "usage"), ("GLOBEX", "G1", "usage"), ("INITECH", "I1", "usage"),
    ]  # fmt: skip
    assert rows[1] == {
        "period": "2026-10-01", "account_id": "ACME", "asset_id": "A1",
        "usage_resource_id": "credits", "consumption": "1800", "debited": "1700",
        "overage_quantity": "100", "net_unit_rate": "0.02", "amount": "2.00",
        "currency": "USD", "status": "final", "line_type": "usage", "restatement_id": "",
    }  # fmt: skip
    assert (rows[3]["consumption"], rows[3]["amount"]) == ("250.5", "11.27")
    assert (rows[0]["net_unit_rate"], rows[0]["restatement_id"]) == ("", "2026-09-R1")
    assert rows[5]["amount"] == "1200"  # yen have no minor unit
    # USD 2.00 + 0.00 + 1.00 = 3.00; EUR 11.27 + 0.00; JPY 1200.
    assert manifest["totals"] == {"EUR": "11.27", "JPY": "1200", "USD": "3.00"}
    assert manifest["rows"] == 6 and manifest["period"] == "2026-10"
    assert manifest["closed_on"] == "2026-11-04" and manifest["grace_days"] == 3
    assert manifest["checksum"] == hashlib.sha256(data).hexdigest()
    as_json = (folder / "liable_summaries.json").read_bytes()
    files = manifest["files"]
    assert files["liable_summaries.json"]["sha256"] == hashlib.sha256(as_json).hexdigest()
    assert files["liable_summaries.csv"] == {
        "rows": 6,
        "bytes": len(data),
        "sha256": manifest["checksum"],
    }
    # The JSON holds the same lines, a missing value as null instead of an empty cell.
    assert [{k: v or "" for k, v in r.items()} for r in json.loads(as_json)] == rows
    assert json.loads((folder / "manifest.json").read_text()) == manifest
    assert {oct(p.stat().st_mode & 0o777) for p in folder.iterdir()} == {"0o444"}
    closure = ClosureRegister(store).closure(OCT)
    assert (closure["checksum"], closure["lines"], closure["outbox"]) == (
        manifest["checksum"],
        6,
        str(folder),
    )
    assert ClosureRegister(store).closed_periods() == [SEP, OCT]


def test_both_warehouses_export_the_same_bytes(tmp_path: Path, postgres_warehouse: str):
    checksums = set()
    for name, url in (("sqlite", f"sqlite:///{tmp_path / 'w.db'}"), ("pg", postgres_warehouse)):
        store = Warehouse(url)
        store.replace_period(NOV, {"liable_summaries": pd.DataFrame(OCTOBER)})
        lines = store.read_period("liable_summaries", NOV)
        checksums.add(write_outbox(tmp_path / name, NOV, lines, CLOSING_DAY, 3)["checksum"])
        store.engine.dispose()
    assert len(checksums) == 1


def test_a_closed_period_is_never_exported_twice(store, outbox: Path):
    close(store, outbox, SEP)
    close(store, outbox, OCT)
    files = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (outbox / "2026-10").iterdir()}
    with pytest.raises(
        PeriodClosedError, match=r"period 2026-10 is closed: exported on 2026-11-04"
    ):
        close(store, outbox, OCT, today="2026-12-01")
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns)
            for p in (outbox / "2026-10").iterdir()} == files  # fmt: skip


def test_an_open_period_does_not_close(store, outbox: Path):
    close(store, outbox, SEP)
    with pytest.raises(PeriodOpenError, match="period 2026-10 is open until 2026-11-04"):
        close(store, outbox, OCT, today="2026-11-03")
    assert not (outbox / "2026-10").exists() and ClosureRegister(store).closure(OCT) is None


def test_a_period_does_not_close_before_the_processed_period_before_it(store, outbox: Path):
    with pytest.raises(PeriodOpenError, match="period 2026-10 cannot close before period 2026-09"):
        close(store, outbox, OCT)
    # September is the first period processed: nothing before it holds it back.
    close(store, outbox, SEP)


def test_provisional_lines_do_not_close(store, outbox: Path):
    close(store, outbox, SEP)
    store.replace_period(OCT, {"liable_summaries": pd.DataFrame(
        [{**line_, "status": "provisional"} for line_ in OCTOBER])})  # fmt: skip
    with pytest.raises(PeriodOpenError, match="period 2026-10: 6 liable summaries are provisional"):
        close(store, outbox, OCT)


def test_a_close_interrupted_after_its_export_completes_without_rewriting_it(store, outbox: Path):
    close(store, outbox, SEP)
    lines = store.read_period("liable_summaries", OCT)
    written = write_outbox(outbox, OCT, lines, CLOSING_DAY, 3)  # then the process died
    manifest_file = outbox / "2026-10" / "manifest.json"
    stamp = manifest_file.stat().st_mtime_ns
    assert close(store, outbox, OCT) == written
    assert manifest_file.stat().st_mtime_ns == stamp
    assert ClosureRegister(store).closure(OCT)["checksum"] == written["checksum"]


def test_an_export_in_place_with_other_lines_is_an_error_and_is_kept(store, outbox: Path):
    close(store, outbox, SEP)
    lines = store.read_period("liable_summaries", OCT)
    write_outbox(outbox, OCT, lines.iloc[:2], CLOSING_DAY, 3)
    before = (outbox / "2026-10" / "liable_summaries.csv").read_bytes()
    with pytest.raises(PeriodClosedError, match="period 2026-10 was already exported to"):
        close(store, outbox, OCT)
    assert (outbox / "2026-10" / "liable_summaries.csv").read_bytes() == before
    assert ClosureRegister(store).closure(OCT) is None


def test_the_export_writes_money_at_the_minor_unit_and_quantities_without_trailing_zeros(
    store, outbox: Path
):
    close(store, outbox, SEP)
    close(store, outbox, OCT)
    data = (outbox / "2026-10" / "liable_summaries.csv").read_text()
    rows = {(r["account_id"], r["asset_id"], r["line_type"]): r
            for r in csv.DictReader(io.StringIO(data))}  # fmt: skip
    # Money at the minor unit without separators: 1200 JPY, 0.00 EUR; a rate keeps its decimals
    # down to the minor unit: 0.1 JPY, 0.045 EUR, 0.00 USD for nothing; quantities as written:
    # 412000, 2529.6.
    assert [rows["INITECH", "I1", "usage"][c] for c in ("consumption", "net_unit_rate", "amount")
            ] == ["412000", "0.1", "1200"]  # fmt: skip
    assert [rows["GLOBEX", "", "usage"][c] for c in ("consumption", "net_unit_rate", "amount")
            ] == ["250.5", "0.045", "11.27"]  # fmt: skip
    assert [rows["GLOBEX", "G1", "usage"][c] for c in ("debited", "net_unit_rate", "amount")
            ] == ["2529.6", "0.00", "0.00"]  # fmt: skip
    assert rows["ACME", "A2", "usage"]["net_unit_rate"] == "0.00"
    assert not re.search(r"\.0\b|\.000000|_none_|nan|None", data)
    numbers = [r[c] for r in rows.values() for c in ("consumption", "debited", "overage_quantity",
                                                     "net_unit_rate", "amount") if r[c]]  # fmt: skip
    assert all(re.fullmatch(r"-?\d+(\.\d+)?", n) for n in numbers)  # no separator, no exponent


def test_the_close_prints_its_totals_for_people(store, outbox: Path):
    close(store, outbox, SEP)
    manifest = close(store, outbox, OCT)
    printed = closed_line(manifest, outbox / "2026-10", OCT)
    # USD 2.00 + 0.00 + 1.00 = 3.00; EUR 11.27; JPY 1,200 (no minor unit, thousands separated).
    assert printed == (
        f"period 2026-10 closed on 2026-11-04: 6 lines (11.27 EUR, 1,200 JPY, 3.00 USD) exported "
        f"to {outbox / '2026-10'}, checksum {manifest['checksum']}"
    )
    assert not re.search(r"(?<![\d.])\d[\d,]*\.0\b|\.000000|_none_", printed)
    one = {**manifest, "rows": 1, "totals": {"JPY": "1234567"}}
    assert closed_line(one, outbox / "2026-10", OCT).startswith(
        "period 2026-10 closed on 2026-11-04: 1 line (1,234,567 JPY) exported"
    )
    nothing = {**manifest, "totals": {}}
    assert "6 lines (nothing owed)" in closed_line(nothing, outbox / "2026-10", OCT)


def test_an_export_of_an_earlier_version_with_the_same_lines_completes_the_close(
    store, outbox: Path
):
    # A close that crashed after its export, under a version that wrote rates as 0.020000: the
    # lines are the same numbers, so the next close records the folder as it is.
    close(store, outbox, SEP)
    lines = store.read_period("liable_summaries", OCT)
    written = write_outbox(outbox, OCT, lines, CLOSING_DAY, 3)
    csv_file = outbox / "2026-10" / "liable_summaries.csv"
    csv_file.chmod(0o644)
    csv_file.write_text(csv_file.read_text().replace(",0.02,", ",0.020000,"))
    assert ",0.020000," in csv_file.read_text()
    assert close(store, outbox, OCT) == written
    assert ",0.020000," in csv_file.read_text()


def test_a_staging_folder_left_by_a_crash_is_replaced(store, outbox: Path):
    close(store, outbox, SEP)
    stale = outbox / ".2026-10.crashed"
    stale.mkdir()
    (stale / "liable_summaries.csv").write_text("period,acc")  # cut short
    manifest = close(store, outbox, OCT)
    assert not stale.exists()
    assert sorted(p.name for p in outbox.iterdir()) == ["2026-09", "2026-10"]
    assert manifest["rows"] == 6


def test_periods_to_close_start_at_the_first_period_processed(store, outbox: Path):
    # 2024-01 .. 2026-08 were never processed: they are not closed with empty exports.
    assert register.periods_to_close(store, CLOSING_DAY, 3) == [SEP, OCT]
    close(store, outbox, SEP)
    assert register.periods_to_close(store, CLOSING_DAY, 3) == [OCT]
    assert register.periods_to_close(store, pd.Timestamp("2026-11-03"), 3) == []
