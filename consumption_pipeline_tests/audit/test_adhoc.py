"""Ad hoc summaries: the analyst's asset, its cuts, amounts, outputs and refusals."""

from __future__ import annotations

import re
from decimal import Decimal

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from consumption_pipeline.audit import store as audit_store
from consumption_pipeline.audit.adhoc import Granularity, _largest_remainder, granules
from consumption_pipeline.defs.adhoc import adhoc_summary
from consumption_pipeline.defs.resources import SourceDirectory, WarehouseResource
from consumption_pipeline.storage.settings import DEFAULT_SOURCE
from consumption_pipeline.storage.warehouse import Warehouse
from consumption_pipeline_tests.audit.conftest import AS_OF


def materialize(sample_run, **config) -> dg.ExecuteInProcessResult:
    resources = {
        "source": SourceDirectory(path=str(DEFAULT_SOURCE), as_of=AS_OF),
        "warehouse": WarehouseResource(url=sample_run.url),
    }
    return dg.materialize(
        [adhoc_summary], resources=resources, raise_on_error=False,
        run_config={"ops": {"adhoc_summary": {"config": config}}},
        instance=dg.DagsterInstance.ephemeral(),
    )  # fmt: skip


def failure(result: dg.ExecuteInProcessResult) -> str:
    assert not result.success
    return next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.message


@pytest.fixture
def outbox(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSUMPTION_OUTBOX_DIR", str(tmp_path / "outbox"))
    return tmp_path / "outbox"


def test_weeks_start_on_monday_and_cuts_are_clipped_to_the_range():
    cuts = granules(pd.Timestamp("2026-10-08"), pd.Timestamp("2026-10-25"), Granularity.week)
    # 2026-10-08 is a Thursday: the first week is cut to Thu..Sun; then Mon 10-12..Sun 10-18;
    # then Mon 10-19..Sun 10-25.
    assert cuts.astype(str).values.tolist() == [
        ["2026-10-08", "2026-10-11"], ["2026-10-12", "2026-10-18"], ["2026-10-19", "2026-10-25"],
    ]  # fmt: skip
    months = granules(pd.Timestamp("2026-09-20"), pd.Timestamp("2026-11-03"), Granularity.month)
    assert months.astype(str).values.tolist() == [
        ["2026-09-20", "2026-09-30"], ["2026-10-01", "2026-10-31"], ["2026-11-01", "2026-11-03"],
    ]  # fmt: skip


def test_shares_of_an_amount_add_up_exactly_in_minor_units():
    # 0.10 in three equal parts: 3.33… cents each; the one cent left goes to the first (by id).
    assert _largest_remainder(Decimal("0.10"), np.array([1.0, 1.0, 1.0]), 2,
                              np.array(["a", "b", "c"])) == [Decimal("0.04"), Decimal("0.03"),
                                                             Decimal("0.03")]  # fmt: skip
    # 100 JPY by 1:2 → 33.3 and 66.7 → 33 and 67.
    assert _largest_remainder(Decimal("100"), np.array([1.0, 2.0]), 0, np.array(["a", "b"])) == [
        Decimal("33"), Decimal("67")
    ]  # fmt: skip


def test_acme_by_month_reports_usage_buckets_forecast_and_traces(sample_run, outbox):
    result = materialize(sample_run, account_id="ACME", start_date="2026-09-01",
                         end_date="2026-11-30", granularity="month", request_id="acme-q3")  # fmt: skip
    assert result.success
    metadata = result.asset_materializations_for_node("adhoc_summary")[0].metadata
    engine = Warehouse(sample_run.url).engine
    usage = audit_store.read_rows(engine, "adhoc_summaries", {"request_id": "acme-q3"})
    usage = usage.sort_values("granule_start").set_index(usage["granule_start"].dt.strftime("%m"))
    # The worked example: September 80 h = 800 credits, all drawn; October 180 h = 1,800 credits,
    # 1,700 drawn, 100 overage × $0.02 = $2.00. November: no usage, no row.
    assert usage[["consumption", "drawdown_quantity", "debited", "overage"]].values.tolist() == [
        [80, 800, 800, 0], [180, 1800, 1700, 100],
    ]  # fmt: skip
    assert usage["amount"].tolist() == [Decimal("0"), Decimal("2.00")]
    assert set(usage["pricing_model"]) == {"per_unit"}
    assert usage.loc["10", "net_unit_rate"] == Decimal("0.02")
    buckets = audit_store.read_rows(engine, "adhoc_bucket_balances", {"request_id": "acme-q3"})
    september = buckets[buckets["bucket_id"].eq("A1:PRO_CREDITS:2026-09-01")]
    september = september.sort_values("granule_start")
    flows = ["opening", "credited", "debited", "expired", "rolled_over", "closing"]
    # The September grant: 1,000 credited, 800 drawn, 200 left; rolled over on 10-01.
    assert september[flows].values.tolist() == [[0, 1000, 800, 0, 0, 200], [200, 0, 0, 0, 200, 0]]
    pack = buckets[buckets["bucket_id"].eq("A2:PACK_CREDITS:2026-10-10")
                   & buckets["granule_start"].eq(pd.Timestamp("2026-10-01"))].iloc[0]  # fmt: skip
    assert (pack["debited"], pack["debited_in_scope"], pack["closing"]) == (500, 500, 0)
    report = metadata["report"].value
    assert "## Forecast as of 2026-11-25" in report
    assert "### 2026-10 ACME asset A1 credits" in report and "Every total reconciles" in report
    csv = pd.read_csv(outbox.parent / "adhoc" / "acme-q3.csv")
    assert csv["drawdown_quantity"].tolist() == [800, 1800]
    assert metadata["request_id"].value == "acme-q3"


def test_weekly_amounts_are_the_priced_parts_of_each_week(sample_run, outbox):
    result = materialize(sample_run, account_id="SOYLENT", usage_resource_id="api_calls",
                         start_date="2026-10-08", end_date="2026-10-25", granularity="week",
                         request_id="soylent-weeks")  # fmt: skip
    assert result.success
    usage = audit_store.read_rows(Warehouse(sample_run.url).engine, "adhoc_summaries",
                                  {"request_id": "soylent-weeks"}).sort_values("granule_start")  # fmt: skip
    # 10-10 (week of 10-08): 41,250 calls at the old EUR rate: 41,250 × 0.0009 + 4.50 = 41.63;
    # 10-20 (week of 10-19): 38,900 at the new one: 38,900 × 0.00095 + 5.00 = 41.96.
    assert usage["granule_start"].dt.strftime("%m-%d").tolist() == ["10-08", "10-19"]
    assert usage["amount"].tolist() == [Decimal("41.63"), Decimal("41.96")]
    assert usage["rate_effective_from"].dt.strftime("%m-%d").tolist() == ["01-01", "10-16"]


def test_daily_amounts_of_a_whole_period_add_up_to_its_invoice_lines(sample_run, outbox):
    result = materialize(sample_run, account_id="UMBRELLA", start_date="2026-10-01",
                         end_date="2026-10-31", granularity="day", request_id="umbrella-days")  # fmt: skip
    assert result.success
    store = Warehouse(sample_run.url)
    days = audit_store.read_rows(store.engine, "adhoc_summaries", {"request_id": "umbrella-days"})
    days["asset_key"] = days["asset_id"].fillna("")
    by_line = days.groupby(["asset_key", "drawdown_resource_id"])["amount"].agg(
        lambda a: sum(a, Decimal(0))).to_dict()  # fmt: skip
    lines = store.read_period("liable_summaries", "2026-10-01", {"account_id": "UMBRELLA"})
    expected = {(a if isinstance(a, str) else "", r): amount
                for a, r, amount in lines[["asset_id", "usage_resource_id", "amount"]].values}  # fmt: skip
    assert by_line == expected
    assert days["granule_start"].nunique() > 1


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"account_id": "WAYNE"}, "account_id: unknown account 'WAYNE'"),
        ({"end_date": "2026-09-30", "start_date": "2026-10-01"},
         "end_date 2026-09-30 is before start_date 2026-10-01"),
        ({"start_date": "2025-01-01", "end_date": "2025-01-31"},
         "no data for account ACME, asset all, usage resource all, 2025-01-01 to 2025-01-31 by "
         "day: the warehouse holds 2026-09 to 2026-11"),
        ({"asset_id": "G1"}, "asset_id: asset 'G1' belongs to account 'GLOBEX', not 'ACME'"),
        ({"start_date": "2026-10-1x"}, "start_date: expected a date YYYY-MM-DD, got '2026-10-1x'"),
        ({"usage_resource_id": "quantum_minutes"}, "unknown usage resource 'quantum_minutes'"),
        ({"account_id": "ACME' OR '1'='1"}, "unknown account \"ACME' OR '1'='1\""),
    ],
)  # fmt: skip
def test_bad_config_gets_a_clear_message_not_an_empty_report(sample_run, outbox, config, message):
    base = {"account_id": "ACME", "start_date": "2026-10-01", "end_date": "2026-10-31"}
    assert message in failure(materialize(sample_run, **{**base, **config}))


def test_usage_outside_the_range_yields_no_report_when_nothing_else_happened(sample_run, outbox):
    # SOYLENT has no bucket; in November its api_calls are dated 11-02 (gw-00069, quantity 0) and
    # its gb_stored window (monthly) on 11-30: from 11-03 to 11-29 there is nothing to report.
    message = failure(materialize(sample_run, account_id="SOYLENT", start_date="2026-11-03",
                                  end_date="2026-11-29"))  # fmt: skip
    assert "no usage and no bucket activity for account SOYLENT" in message


def test_the_buckets_of_changed_contracts_say_where_they_come_from(sample_run, outbox):
    result = materialize(sample_run, account_id="HOOLI", start_date="2026-10-01",
                         end_date="2026-10-31", granularity="month", request_id="hooli-oct")  # fmt: skip
    assert result.success
    engine = Warehouse(sample_run.url).engine
    buckets = audit_store.read_rows(engine, "adhoc_bucket_balances", {"request_id": "hooli-oct"})
    rows = buckets.set_index("bucket_id")
    amendment = rows.loc["H1:PRO_CREDITS:2026-10-01:amend:ch-hooli-upsell"]
    # floor(3 × 1000 × 21 / 31) = 2,032 credited on 10-11, all drawn on 10-20.
    assert (amendment["origin"], amendment["change_id"], amendment["credited"],
            amendment["debited"]) == ("amendment", "ch-hooli-upsell", 2032, 2032)  # fmt: skip
    credit = rows.loc["credit:cr-hooli-outage"]
    assert (credit["origin"], credit["credit_id"], credit["reason"], credit["credited"]) == (
        "credit", "cr-hooli-outage", "Goodwill: API outage on 2026-10-07", 500)  # fmt: skip


# A number ending in ".0" (not a version such as 0.1.0+abc), six zero decimals, Markdown's
# "_none_", a NaN or a None.
BADLY_FORMATTED = re.compile(r"(?<![\d.])\d[\d,]*\.0\b(?![.+])|\.000000|_none_|\bnan\b|\bNone\b")


def test_the_report_and_its_files_write_money_at_the_minor_unit_and_no_bare_float(
    sample_run, outbox
):
    result = materialize(sample_run, account_id="INITECH", start_date="2026-10-01",
                         end_date="2026-10-31", granularity="month", request_id="initech-oct")  # fmt: skip
    assert result.success
    folder = outbox.parent / "adhoc"
    report = (folder / "initech-oct.md").read_text()
    assert report == result.asset_materializations_for_node("adhoc_summary")[0].metadata[
        "report"].value  # fmt: skip
    # October's api_calls line: 1,512,664 calls, 512,664 beyond the buckets, 51,266 JPY (no minor
    # unit, thousands separated); its credits line owes nothing: 0 JPY, not 0.000000.
    assert "### 2026-10 INITECH asset I1 api_calls: 51,266 JPY (final)" in report
    assert "### 2026-10 INITECH asset I1 credits: 0 JPY (final)" in report
    assert (
        "| 2026-10-01 | I1 | api_calls | 1,512,664 | 1,000,000 | 512,664 | 0.099999 | 51,266 | JPY |"
        in report
    )
    assert "No ratable part: nothing beyond the buckets was priced." in report
    assert not BADLY_FORMATTED.search(report), BADLY_FORMATTED.search(report)
    usage = (folder / "initech-oct.csv").read_text()
    buckets = (folder / "initech-oct-buckets.csv").read_text()
    # For programs: no separator, money at the minor unit (JPY: none), quantities as they are.
    assert ",JPY,1512664,1512664,1000000,512664,per_unit,0.099999,51266\n" in usage, usage
    for text in (usage, buckets):
        assert not BADLY_FORMATTED.search(text), BADLY_FORMATTED.search(text)
        assert '"' not in text  # no thousands separator forced a quoted cell


def test_the_report_of_a_usd_line_shows_cents(sample_run, outbox):
    result = materialize(sample_run, account_id="ACME", start_date="2026-09-01",
                         end_date="2026-10-31", granularity="week", request_id="acme-weeks")  # fmt: skip
    assert result.success
    report = (outbox.parent / "adhoc" / "acme-weeks.md").read_text()
    # 100 overage × 0.02 = 2.00 USD in the week of 10-19; nothing owed in September: 0.00.
    assert ("| 2026-10-19 | 2026-10-25 | A1 | compute_hours | credits | price_book |  | 2026-01-01 "
            "| USD | 130 | 1,300 | 1,200 | 100 | per_unit | 0.02 | 2.00 |") in report  # fmt: skip
    assert "### 2026-09 ACME asset A1 credits: 0.00 USD (final)" in report
    assert "### 2026-10 ACME asset A1 credits: 2.00 USD (final)" in report
    assert "1 usage summary from 1 event." in report
    assert not BADLY_FORMATTED.search(report), BADLY_FORMATTED.search(report)
    usage = (outbox.parent / "adhoc" / "acme-weeks.csv").read_text()
    assert ",USD,130,1300,1200,100,per_unit,0.02,2.00\n" in usage
    assert ",USD,80,800,800,0,per_unit,,0.00\n" in usage
