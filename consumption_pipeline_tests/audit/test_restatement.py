"""Restatements end to end: a late event for a closed period, recomputed, restated and booked into
the next open period; the lineage of the runs shows which input changed."""

from __future__ import annotations

import hashlib
import json
import shutil
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from consumption_pipeline.audit import store as audit_store
from consumption_pipeline.audit.fingerprints import code_version, file_digest, frame_digest
from consumption_pipeline.audit.restatement import differences, reason, restate
from consumption_pipeline.definitions import defs
from consumption_pipeline.storage.settings import DEFAULT_SOURCE
from consumption_pipeline.storage.tables import TABLES
from consumption_pipeline.storage.warehouse import Warehouse
from consumption_pipeline_tests.audit.conftest import new_dagster_home, run_cli

LATE_EVENT = {"event_id": "cs-acme-late-001", "account_id": "ACME", "asset_id": "A1",
              "usage_resource_id": "compute_hours", "quantity": 30,
              "occurred_at": "2026-09-20T12:00:00Z"}  # fmt: skip


@pytest.fixture(scope="module")
def late_event(tmp_path_factory):
    """September run, closed and exported on 2026-10-10; then a late September event arrives and
    September and October are run again on 2026-10-12."""
    folder = tmp_path_factory.mktemp("restatement")
    source = Path(shutil.copytree(DEFAULT_SOURCE, folder / "source"))
    home, outbox = new_dagster_home(folder), folder / "outbox"
    url = f"sqlite:///{folder / 'warehouse.db'}"
    common = ["--source", str(source), "--warehouse", url]
    assert run_cli(home, "run", *common, "--from", "2026-09", "--to", "2026-09",
                   "--as-of", "2026-10-10") == 0  # fmt: skip
    assert run_cli(home, "close", *common, "--period", "2026-09", "--outbox", str(outbox),
                   "--as-of", "2026-10-10") == 0  # fmt: skip
    exported = {p.name: p.read_bytes() for p in (outbox / "2026-09").iterdir()}
    with (source / "usage" / "compute_stream.jsonl").open("a") as events:  # line 84
        events.write(json.dumps(LATE_EVENT) + "\n")
    assert run_cli(home, "run", *common, "--from", "2026-09", "--to", "2026-10",
                   "--as-of", "2026-10-12") == 0  # fmt: skip
    return {"url": url, "home": home, "outbox": outbox, "exported": exported, "source": source}


def acme(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["account_id"].eq("ACME")]


def test_the_late_event_is_restated_with_its_reason_and_event(late_event):
    engine = Warehouse(late_event["url"]).engine
    lines = audit_store.read_rows(
        engine, "restatement_lines", {"period": pd.Timestamp("2026-09-01")}
    )
    assert len(lines) == 1
    line = lines.iloc[0]
    # Billed at close: 800 credits, all drawn from the September grant (1,000), nothing owed.
    # The late 30 h on 09-20 = 300 credits: 200 left in the grant, 100 overage × $0.02 = $2.00.
    assert (line["restatement_id"], line["booked_in"]) == ("2026-09-R1", pd.Timestamp("2026-10-01"))
    assert (line["account_id"], line["asset_id"], line["usage_resource_id"]) == (
        "ACME",
        "A1",
        "credits",
    )
    assert (
        line["billed_consumption"],
        line["billed_debited"],
        line["billed_overage_quantity"],
    ) == (800, 800, 0)
    assert (line["consumption"], line["debited"], line["overage_quantity"]) == (300, 200, 100)
    assert (line["billed_amount"], line["amount"]) == (Decimal("0"), Decimal("2.00"))
    assert line["reason"] == "late usage: 1 added (cs-acme-late-001)"
    events = audit_store.read_rows(engine, "restatement_events", {"restatement_id": "2026-09-R1"})
    assert events[["change", "event_id", "quantity", "source_file", "row_number"]].values.tolist() == [
        ["added", "cs-acme-late-001", 30.0, "usage/compute_stream.jsonl", 84],
    ]  # fmt: skip
    # The run that booked it, as the Dagster instance recorded it, and the code that ran.
    instance = dg.DagsterInstance.from_config(str(late_event["home"]))
    booked = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("restatements"), asset_partitions=["2026-09-01"]),
        limit=1,
    ).records[0]  # fmt: skip
    assert booked.run_id == line["run_id"] and line["code_version"] == code_version()
    assert booked.asset_materialization.metadata["restatement"].value == "2026-09-R1"


def test_the_exported_lines_are_kept(late_event):
    folder = late_event["outbox"] / "2026-09"
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == late_event["exported"]
    exported = pd.read_csv(folder / "liable_summaries.csv", dtype=str)
    assert acme(exported)[["consumption", "amount"]].values.tolist() == [["800", "0.00"]]


def test_the_difference_is_booked_as_an_adjustment_line_of_the_next_open_period(late_event):
    store = Warehouse(late_event["url"])
    october = acme(store.read_period("liable_summaries", "2026-10-01")).set_index("line_type")
    adjustment = october.loc["adjustment"]
    assert (adjustment["restatement_id"], adjustment["amount"]) == ("2026-09-R1", Decimal("2.00"))
    assert (adjustment["overage_quantity"], adjustment["status"]) == (100, "final")
    # October's own line, recomputed after it: September's grant now ends empty, so nothing rolls
    # over; 10-05: 500 from the October grant; 10-20: 500 more and PACK 500, 300 overage = $6.00.
    # The adjustment survived the October summaries stage, which replaces only usage lines.
    assert october.loc["usage", "amount"] == Decimal("6.00")
    ratable = acme(store.read_period("ratable_summaries", "2026-10-01"))
    assert sum(ratable["amount"]) == Decimal("8.00")  # liable = ratable: 6.00 + 2.00


def test_recomputing_again_with_nothing_new_books_nothing(late_event):
    store = Warehouse(late_event["url"])
    assert restate(store, "2026-09-01", "another-run", code_version()) is None
    lines = audit_store.read_rows(
        store.engine, "restatement_lines", {"period": pd.Timestamp("2026-09-01")}
    )
    assert list(lines["restatement_id"]) == ["2026-09-R1"]
    october = store.read_period("liable_summaries", "2026-10-01")
    assert october["line_type"].eq("adjustment").sum() == 1


def test_the_asset_history_shows_the_same_computation_then_the_changed_input(late_event):
    instance = dg.DagsterInstance.from_config(str(late_event["home"]))
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("usage_events"), asset_partitions=["2026-09-01"]),
        limit=10, ascending=True,
    ).records  # fmt: skip
    history = [r.event_log_entry.asset_materialization.metadata for r in records]
    tags = [r.event_log_entry.asset_materialization.tags for r in records]
    assert len(history) == 3  # the first run, the close, the run after the late event
    fingerprints = [t["dagster/data_version"] for t in tags]
    events = [m["lineage/input/events"].value for m in history]
    # Run and close: same inputs, same code, so the same fingerprint and the same rows written.
    assert fingerprints[0] == fingerprints[1] != fingerprints[2]
    assert events[0] == events[1] != events[2]
    assert (
        history[0]["lineage/output/usage_events"].value
        == history[1]["lineage/output/usage_events"].value
    )
    # Only the event set changed: the catalog files are the same in all three.
    price_book = [m["lineage/input/catalog/price_book.csv"].value for m in history]
    assert price_book == [file_digest(DEFAULT_SOURCE / "price_book.csv")] * 3
    # The recorded event set is the digest of September's accepted events, recomputed here.
    store = Warehouse(late_event["url"])
    assert events[2] == frame_digest(store.read_period("usage_events", "2026-09-01"),
                                     TABLES["usage_events"])  # fmt: skip
    assert history[2]["dagster/row_count"].value == 80 + 1
    assert {t["dagster/code_version"] for t in tags} == {
        defs.resolve_assets_def("usage_events").code_versions_by_key[dg.AssetKey("usage_events")]
    }


def test_differences_are_measured_from_what_was_billed_and_restated_so_far():
    billed = pd.DataFrame({"account_id": ["ACME"], "asset_id": ["A1"], "usage_resource_id": ["credits"],
                           "currency": ["USD"], "consumption": [800.0], "debited": [800.0],
                           "overage_quantity": [0.0], "amount": [Decimal("0.00")]})  # fmt: skip
    restated = billed.assign(consumption=300.0, debited=200.0, overage_quantity=100.0,
                             amount=Decimal("2.00"))  # fmt: skip
    # Now 1,150 credits: 1,000 debited, 150 overage, $3.00. Billed so far 1,100 / 1,000 / 100 /
    # $2.00, so the next restatement is +50 consumption, +50 overage, +$1.00.
    now = billed.assign(consumption=1150.0, debited=1000.0, overage_quantity=150.0,
                        amount=Decimal("3.000000"))  # fmt: skip
    diff = differences(billed, restated, now).iloc[0]
    assert (diff["consumption"], diff["debited"], diff["overage_quantity"]) == (50, 0, 50)
    assert (diff["billed_consumption"], diff["amount"]) == (1100, Decimal("1.00"))
    assert differences(billed, restated, now.assign(consumption=1100.0, overage_quantity=100.0,
                                                    amount=Decimal("2.00"))).empty  # fmt: skip
    # A line that disappears is restated to zero.
    gone = differences(billed, restated.iloc[0:0], billed.iloc[0:0]).iloc[0]
    assert (gone["consumption"], gone["amount"]) == (-800, Decimal("0.00"))


def test_the_reason_names_the_inputs_that_changed():
    empty = pd.DataFrame(columns=["change", "event_id"])
    basis = {"code_version": "0.1.0+a", "inputs": {"catalog/price_book.csv": "x",
                                                   "catalog/accounts.csv": "y"}}  # fmt: skip
    current = {"code_version": "0.1.0+b", "inputs": {"catalog/price_book.csv": "z",
                                                     "catalog/accounts.csv": "y"}}  # fmt: skip
    assert reason(basis, current, empty) == (
        "catalog corrected: price_book.csv; code changed: 0.1.0+a → 0.1.0+b"
    )
    changes = pd.DataFrame({"change": ["added", "removed"], "event_id": ["e2", "e1"]})
    assert reason(basis, {**basis}, changes) == "usage changed: 1 added, 1 removed (e2, e1)"
    assert "no record" in reason(None, current, empty)


def test_a_tampered_export_is_refused(late_event, tmp_path):
    from consumption_pipeline.audit.restatement import RestatementError, read_exported

    copy = tmp_path / "liable_summaries.csv"
    copy.write_bytes(late_event["exported"]["liable_summaries.csv"].replace(b"0.00", b"0.01", 1))
    checksum = hashlib.sha256(late_event["exported"]["liable_summaries.csv"]).hexdigest()
    with pytest.raises(RestatementError, match="the export was changed"):
        read_exported(tmp_path, "liable_summaries.csv", checksum)


def test_the_trace_shows_the_adjustment_and_the_restatement_traces_to_its_event(late_event, capsys):
    from consumption_pipeline.audit.trace import LineKey, read_trace
    from consumption_pipeline.cli import main

    trace = read_trace(Warehouse(late_event["url"]), LineKey("2026-10-01", "ACME", "A1", "credits"))
    assert trace.line["amount"].tolist() == [Decimal("6.00")]  # the usage line alone
    assert trace.adjustments[["restatement_id", "amount"]].values.tolist() == [
        ["2026-09-R1", Decimal("2.00")]
    ]
    assert trace.checks["ok"].all()
    assert main(["trace", "--warehouse", late_event["url"], "--restatement", "2026-09-R1"]) == 0
    out = capsys.readouterr().out
    assert "## Restatement 2026-09-R1 of 2026-09, booked in 2026-10" in out
    assert "Reason: late usage: 1 added (cs-acme-late-001)" in out
    assert "| added | cs-acme-late-001 |" in out


@pytest.fixture(scope="module")
def late_credit(tmp_path_factory):
    """September run, closed and exported on 2026-10-10; then support grants SOYLENT a credit
    dated in September, and September and October are run again on 2026-10-12."""
    folder = tmp_path_factory.mktemp("late-credit")
    source = Path(shutil.copytree(DEFAULT_SOURCE, folder / "source"))
    home, outbox = new_dagster_home(folder), folder / "outbox"
    url = f"sqlite:///{folder / 'warehouse.db'}"
    common = ["--source", str(source), "--warehouse", url]
    assert run_cli(home, "run", *common, "--from", "2026-09", "--to", "2026-09",
                   "--as-of", "2026-10-10") == 0  # fmt: skip
    assert run_cli(home, "close", *common, "--period", "2026-09", "--outbox", str(outbox),
                   "--as-of", "2026-10-10") == 0  # fmt: skip
    with (source / "credit_grants.csv").open("a") as credits:
        credits.write("cr-soylent-sla,SOYLENT,,gb_stored,100,2026-09-01,,,SLA breach\n")
    assert run_cli(home, "run", *common, "--from", "2026-09", "--to", "2026-10",
                   "--as-of", "2026-10-12") == 0  # fmt: skip
    return {"url": url}


def test_a_credit_dated_in_a_closed_period_is_restated_naming_the_catalog_file(late_credit):
    engine = Warehouse(late_credit["url"]).engine
    lines = audit_store.read_rows(
        engine, "restatement_lines", {"period": pd.Timestamp("2026-09-01")}
    )
    assert lines["account_id"].tolist() == ["SOYLENT"]
    line = lines.iloc[0]
    # Billed at close: a September peak of 929.25 GB, no bucket, all overage at the EUR volume
    # price of 0.09: 83.6325 -> 83.63. The credit of 100 GB (account-bound, from 09-01) covers
    # 100 of them: 829.25 × 0.09 = 74.6325 -> 74.63. The restatement: +100 debited, -100 overage.
    assert (line["billed_debited"], line["billed_overage_quantity"], line["billed_amount"]) == (
        0, Decimal("929.25"), Decimal("83.63"))  # fmt: skip
    assert (line["consumption"], line["debited"], line["overage_quantity"], line["amount"]) == (
        0, 100, -100, Decimal("-9.00"))  # fmt: skip
    assert line["reason"] == "catalog corrected: credit_grants.csv"
