"""Trace of an invoice line: from the liable summary to buckets, rates, events and runs."""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal

import dagster as dg
import pandas as pd
import pytest

from consumption_pipeline.audit.trace import (
    LineKey,
    LineNotFound,
    assemble,
    read_period_rows,
    read_trace,
)
from consumption_pipeline.cli import main
from consumption_pipeline.definitions import defs
from consumption_pipeline.storage.warehouse import Warehouse

ACME_OCTOBER = LineKey("2026-10-01", "ACME", "A1", "credits")


def latest_run_id(home, asset: str, partition: str) -> str:
    """The run of the latest materialization of a partition, as the Dagster instance recorded it."""
    instance = dg.DagsterInstance.from_config(str(home))
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    return records[0].run_id


def test_acme_october_is_covered_by_the_buckets_of_the_worked_example(sample_run, catalog):
    trace = read_trace(Warehouse(sample_run.url), ACME_OCTOBER, catalog)
    # the worked example of docs/rules.md: 10-05 500 credits = rollover 200 + October grant 300;
    # 10-20 1,300 credits = October grant 700 + PACK 500, 100 overage.
    debits = trace.ledger.groupby(["entry_date", "bucket_id"])["quantity"].sum()
    assert debits.to_dict() == {
        (pd.Timestamp("2026-10-05"), "A1:PRO_CREDITS:2026-09-01:rollover"): 200,
        (pd.Timestamp("2026-10-05"), "A1:PRO_CREDITS:2026-10-01"): 300,
        (pd.Timestamp("2026-10-20"), "A1:PRO_CREDITS:2026-10-01"): 700,
        (pd.Timestamp("2026-10-20"), "A2:PACK_CREDITS:2026-10-10"): 500,
    }
    assert set(trace.buckets["bucket_id"]) == set(trace.ledger["bucket_id"])
    assert trace.buckets.set_index("bucket_id").loc["A2:PACK_CREDITS:2026-10-10", "granted"] == 500
    # The events, with the file and line they were read from (lines 2 and 3 of the JSONL file).
    events = trace.events.set_index("event_id")
    assert list(events.index) == ["cs-acme-002", "cs-acme-003"]
    assert list(events["quantity"]) == [50, 130]
    assert set(events["source_file"]) == {"usage/compute_stream.jsonl"}
    assert list(events["row_number"]) == [2, 3]
    # The rate: the USD price book's per-unit 0.02 credits from 2026-01-01; 100 × 0.02 = 2.00.
    assert trace.ratable["amount"].tolist() == [Decimal("2.00")]
    assert trace.rates[["level", "pricing_model", "unit_price"]].values.tolist() == [
        ["price_book", "per_unit", Decimal("0.02")]
    ]
    assert trace.checks["ok"].all()


def test_every_row_of_the_trace_names_the_run_and_code_version_that_wrote_it(sample_run, catalog):
    trace = read_trace(Warehouse(sample_run.url), ACME_OCTOBER, catalog)
    run_id = latest_run_id(sample_run.home, "liable_summaries", "2026-10-01")
    assert run_id == latest_run_id(sample_run.home, "usage_events", "2026-10-01")
    for section in (trace.line, trace.ratable, trace.usage_summaries, trace.ledger, trace.buckets,
                    trace.events):  # fmt: skip
        assert set(section["run_id"]) == {run_id}
    # each row names the code version of the asset that wrote it
    versions = {table: defs.resolve_assets_def(table).code_versions_by_key[dg.AssetKey(table)]
                for table in ("liable_summaries", "ratable_summaries", "usage_summaries",
                              "entitlement_ledger", "usage_events", "entitlement_buckets")}  # fmt: skip
    assert set(trace.line["code_version"]) == {versions["liable_summaries"]}
    assert set(trace.ratable["code_version"]) == {versions["ratable_summaries"]}
    assert set(trace.usage_summaries["code_version"]) == {versions["usage_summaries"]}
    assert set(trace.ledger["code_version"]) == {versions["entitlement_ledger"]}
    assert set(trace.events["code_version"]) == {versions["usage_events"]}
    assert set(trace.buckets["code_version"]) <= {
        versions["entitlement_buckets"],
        versions["usage_summaries"],
    }  # rollover buckets
    assert all(re.fullmatch(r"0\.1\.0\+[0-9a-f]{12}", v) for v in versions.values())


def test_a_rate_change_inside_the_period_shows_both_rates(sample_run, catalog):
    key = LineKey("2026-10-01", "SOYLENT", None, "api_calls")
    trace = read_trace(Warehouse(sample_run.url), key, catalog)
    parts = trace.ratable.set_index("rate_effective_from")
    # Graduated EUR, first tier with a flat fee. Before 10-16: 41,250 × 0.0009 + 4.50 = 41.625
    # → 41.63; from 10-16: 38,900 × 0.00095 + 5.00 = 41.955 → 41.96.
    assert parts.loc[pd.Timestamp("2026-01-01"), "amount"] == Decimal("41.63")
    assert parts.loc[pd.Timestamp("2026-10-16"), "amount"] == Decimal("41.96")
    assert trace.line["amount"].iloc[0] == Decimal("83.59")
    assert sorted(trace.rates["effective_from"].dt.strftime("%Y-%m-%d").unique()) == [
        "2026-01-01", "2026-10-16",
    ]  # fmt: skip
    assert set(trace.events["event_id"]) == {"gw-00039", "gw-00052"}
    assert trace.checks["ok"].all()


def test_the_trace_names_the_change_or_credit_behind_every_bucket(sample_run, catalog):
    key = LineKey("2026-10-01", "HOOLI", "H1", "credits")
    trace = read_trace(Warehouse(sample_run.url), key, catalog)
    behind = trace.buckets.set_index("bucket_id")[["origin", "change_id", "credit_id", "reason"]]
    # 6,000 credits on 10-20 drew the rollover, October's grant, the upsell's amendment and the
    # goodwill credit: 200 + 2,000 + 2,032 + 500 = 4,732; 1,268 overage × $0.02 = $25.36.
    assert behind.fillna("").reset_index().values.tolist() == [
        ["H1:PRO_CREDITS:2026-09-01:rollover", "rollover", "", "", ""],
        ["H1:PRO_CREDITS:2026-10-01", "grant", "", "", ""],
        ["H1:PRO_CREDITS:2026-10-01:amend:ch-hooli-upsell", "amendment", "ch-hooli-upsell", "", ""],
        ["credit:cr-hooli-outage", "credit", "", "cr-hooli-outage",
         "Goodwill: API outage on 2026-10-07"],
    ]  # fmt: skip
    assert trace.line["amount"].iloc[0] == Decimal("25.36")
    assert trace.checks["ok"].all()


def test_a_commitment_rate_traces_to_its_assets_rate_rows(sample_run, catalog):
    key = LineKey("2026-10-01", "STARK", None, "credits")
    trace = read_trace(Warehouse(sample_run.url), key, catalog)
    # 1,300 credits: 1,000 from the commitment, 300 × $0.012 (S1's own rate) = $3.60.
    assert trace.ratable[["rate_source", "rate_asset_id", "amount"]].values.tolist() == [
        ["commitment", "S1", Decimal("3.60")]]  # fmt: skip
    assert trace.rates[["level", "asset_id", "unit_price"]].values.tolist() == [
        ["asset", "S1", Decimal("0.012")]]  # fmt: skip


def test_a_tampered_ledger_entry_fails_the_reconciliation(sample_run):
    rows = read_period_rows(Warehouse(sample_run.url), "2026-10-01", "ACME")
    ledger = rows.ledger.copy()
    ledger.loc[ledger["bucket_id"].eq("A2:PACK_CREDITS:2026-10-10")
               & ledger["entry_type"].eq("debit"), "quantity"] = 499  # fmt: skip
    checks = assemble(ACME_OCTOBER, replace(rows, ledger=ledger)).checks.set_index("check")
    assert not checks.loc["debited = Σ ledger debits", "ok"]
    assert checks.loc["debited = Σ ledger debits", "found"] == 1699  # 200 + 300 + 700 + 499
    assert checks.drop("debited = Σ ledger debits")["ok"].all()


def test_an_unknown_line_lists_the_lines_of_the_account(sample_run):
    with pytest.raises(LineNotFound, match="lines of the account: A1/credits"):
        read_trace(Warehouse(sample_run.url), LineKey("2026-10-01", "ACME", None, "credits"))


def test_the_trace_command_prints_the_line_back_to_its_events(sample_run, capsys):
    args = ["trace", "--warehouse", sample_run.url, "--period", "2026-10", "--account", "ACME",
            "--asset", "A1", "--resource", "credits"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "## Trace of 2026-10 ACME asset A1 credits" in out
    assert "every total reconciles with its parts" in out
    assert "| cs-acme-003 |" in out and "A2:PACK_CREDITS:2026-10-10" in out
    assert main([*args[:-2], "--resource", "api_calls"]) == 2
    assert "no liable summary 2026-10 ACME asset A1 api_calls" in capsys.readouterr().err


# A number ending in ".0" (not a version such as 0.1.0+abc), six zero decimals, Markdown's
# "_none_", a NaN or a None.
BADLY_FORMATTED = re.compile(r"(?<![\d.])\d[\d,]*\.0\b(?![.+])|\.000000|_none_|\bnan\b|\bNone\b")


@pytest.mark.parametrize(
    ("line", "heading", "rows"),
    [
        # The worked example: 100 overage × 0.02 = 2.00 USD; the rate 0.02, not 0.020000.
        (["--account", "ACME", "--asset", "A1", "--resource", "credits"],
         "Amount **2.00 USD** (final) for 100 overage of 1,800 consumed",
         ["| amount = Σ amounts of the ratable parts | 2.00 USD | 2.00 USD | True |",
          "| A1 | credits | price_book |  | 2026-01-01 | per_unit | 100 | 0.02 | 2.00 | USD |",
          "| price_book |  |  | credits | USD | per_unit | 0 | 0.02 |  | 0.00 | 2026-01-01 |  |"]),
        # Yen have no minor unit: 51,266 JPY, thousands separated.
        (["--account", "INITECH", "--asset", "I1", "--resource", "api_calls"],
         "Amount **51,266 JPY** (final) for 512,664 overage of 1,512,664 consumed",
         ["| amount = Σ amounts of the ratable parts | 51,266 JPY | 51,266 JPY | True |"]),
        # A whole amount in dollars keeps its cents: 10.00 USD, not 10.
        (["--account", "UMBRELLA", "--resource", "egress_gb"],
         "Amount **10.00 USD** (final) for 131.55 overage of 131.55 consumed", []),
        # Nothing owed in yen: 0 JPY; a table without rows reads "none".
        (["--account", "INITECH", "--asset", "I1", "--resource", "credits"],
         "Amount **0 JPY** (final) for 0 overage of 10,037.135 consumed",
         ["### Rates that applied (ratable parts)\n\nnone\n"]),
    ],
)  # fmt: skip
def test_the_trace_command_prints_money_at_the_minor_unit_and_no_bare_float(
    sample_run, capsys, line, heading, rows
):
    args = ["trace", "--warehouse", sample_run.url, "--period", "2026-10", *line]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert heading in out
    for row in rows:
        assert row in out
    assert not BADLY_FORMATTED.search(out), BADLY_FORMATTED.search(out)


def test_account_ids_reach_sql_only_as_bound_parameters(sample_run):
    rows = read_period_rows(Warehouse(sample_run.url), "2026-10-01", "ACME' OR '1'='1")
    assert rows.liable.empty and rows.events.empty and rows.ledger.empty
