"""the worked example of docs/rules.md, to the cent, through the whole pure pipeline (ingest, buckets,
rate, drawdown, summarize) for September and October 2026, from an empty warehouse.

ACME (USD). compute_hours → credits at 10 an hour. PRO: 1,000 credits monthly, rollover capped
at 200, account-bound; A1 = PRO from 1 September. PACK: 500 credits once, valid 2 months,
account-bound; A2 = PACK from 10 October. Credits cost $0.02 each.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from consumption_pipeline.domain.buckets import create_buckets
from consumption_pipeline.domain.drawdown import draw_down
from consumption_pipeline.domain.ingest import ingest
from consumption_pipeline.domain.rating import rate_usage
from consumption_pipeline.domain.summaries import summarize
from consumption_pipeline_tests.builders import acme_catalog, event_file
from consumption_pipeline_tests.domain.test_drawdown import assert_books_balance

EVENTS = [
    {"event_id": event_id, "account_id": "ACME", "asset_id": "A1",
     "usage_resource_id": "compute_hours", "quantity": hours, "occurred_at": at}
    for event_id, hours, at in [("sep-15", "80", "2026-09-15T09:30:00Z"),
                                ("oct-05", "50", "2026-10-05T14:00:00+02:00"),
                                ("oct-20", "130", "2026-10-20T23:59:59Z")]
]  # fmt: skip
SEP_GRANT, OCT_GRANT = "A1:G-PRO:2026-09-01", "A1:G-PRO:2026-10-01"
ROLLOVER, PACK = "A1:G-PRO:2026-09-01:rollover", "A2:G-PACK:2026-10-10"


@pytest.fixture(scope="module")
def periods() -> dict:
    """Both months, carrying the open buckets from September into October."""
    cat, files = acme_catalog(), [event_file(EVENTS)]
    out, carried = {}, pd.DataFrame()
    for key in ["2026-09", "2026-10"]:
        period = pd.Timestamp(f"{key}-01")
        ing = ingest(files, cat, period, "UTC")
        buckets = create_buckets(cat, period)
        d = draw_down(rate_usage(ing.usage_events, cat, period), buckets, carried, cat, period)
        s = summarize(d.usage_summaries, cat, period, pd.Timestamp("2026-11-10"), 3)
        assert_books_balance(d)
        out[key] = (d, s)
        all_buckets = pd.concat([buckets, d.rollover_buckets], ignore_index=True)
        still_open = d.bucket_balances[d.bucket_balances["is_open"]]
        carried = all_buckets.merge(still_open[["bucket_id", "closing"]], on="bucket_id")
    return out


def ledger(d) -> list[tuple]:
    led = d.entitlement_ledger.sort_values("sequence")
    return [
        (e.entry_date.strftime("%Y-%m-%d"), e.bucket_id, e.entry_type, e.quantity,
         e.opening_balance, e.closing_balance)
        for e in led.itertuples()
    ]  # fmt: skip


def test_september_draws_800_credits_from_the_september_grant(periods):
    # 15 Sep: 80 h × 10 = 800 credits from the September grant (1,000 → 200). No overage.
    d, s = periods["2026-09"]
    assert ledger(d) == [
        ("2026-09-01", SEP_GRANT, "credit", 1000.0, 0.0, 1000.0),
        ("2026-09-15", SEP_GRANT, "debit", 800.0, 1000.0, 200.0),
    ]
    usage = d.usage_summaries.iloc[0]
    assert usage[["consumption", "drawdown_quantity", "debited", "overage"]].tolist() == [
        80, 800, 800, 0,
    ]  # fmt: skip
    assert d.bucket_balances.set_index("bucket_id").loc[SEP_GRANT, "closing"] == 200
    assert s.ratable_summaries.empty
    assert s.liable_summaries[["overage_quantity", "amount", "status"]].values.tolist() == [
        [0.0, Decimal("0.00"), "final"]
    ]


def test_october_ledger_entry_by_entry(periods):
    # 1 Oct: the October grant opens (1,000); the September grant ends: min(200, cap 200) = 200
    #        roll over into a bucket [1 Oct, 1 Nov), nothing expires.
    # 5 Oct: 50 h = 500 credits: the rollover bucket first (200, tied with the October grant on
    #        priority and end), then 300 from the October grant (1,000 → 700).
    # 10 Oct: PACK opens (500, until 10 Dec).
    # 20 Oct: 130 h = 1,300 credits: the October grant (ends 1 Nov, sooner than PACK) gives 700,
    #        PACK 500; 100 overage.
    d, _ = periods["2026-10"]
    assert ledger(d) == [
        ("2026-10-01", OCT_GRANT, "credit", 1000.0, 0.0, 1000.0),
        ("2026-10-01", SEP_GRANT, "rollover_out", 200.0, 200.0, 0.0),
        ("2026-10-01", ROLLOVER, "credit", 200.0, 0.0, 200.0),
        ("2026-10-05", ROLLOVER, "debit", 200.0, 200.0, 0.0),
        ("2026-10-05", OCT_GRANT, "debit", 300.0, 1000.0, 700.0),
        ("2026-10-10", PACK, "credit", 500.0, 0.0, 500.0),
        ("2026-10-20", OCT_GRANT, "debit", 700.0, 700.0, 0.0),
        ("2026-10-20", PACK, "debit", 500.0, 500.0, 0.0),
    ]
    debits = d.entitlement_ledger[d.entitlement_ledger["entry_type"].eq("debit")]
    assert debits["summary_id"].tolist() == [
        "ACME|A1|compute_hours|2026-10-05", "ACME|A1|compute_hours|2026-10-05",
        "ACME|A1|compute_hours|2026-10-20", "ACME|A1|compute_hours|2026-10-20",
    ]  # fmt: skip


def test_october_rollover_bucket(periods):
    d, _ = periods["2026-10"]
    rolled = d.rollover_buckets.set_index("bucket_id").loc[ROLLOVER]
    assert (rolled["granted"], rolled["rollover_generation"], rolled["parent_bucket_id"]) == (
        200, 1, SEP_GRANT,
    )  # fmt: skip
    assert (rolled["valid_from"], rolled["valid_to"]) == (
        pd.Timestamp("2026-10-01"), pd.Timestamp("2026-11-01"),
    )  # fmt: skip


def test_october_bucket_balances(periods):
    # opening + credited − debited − expired − rolled over = closing
    d, _ = periods["2026-10"]
    flows = ["opening", "credited", "debited", "expired", "rolled_over", "closing", "is_open"]
    balances = d.bucket_balances.set_index("bucket_id")[flows]
    assert balances.loc[SEP_GRANT].tolist() == [200, 0, 0, 0, 200, 0, False]
    assert balances.loc[ROLLOVER].tolist() == [0, 200, 200, 0, 0, 0, True]
    assert balances.loc[OCT_GRANT].tolist() == [0, 1000, 1000, 0, 0, 0, True]
    assert balances.loc[PACK].tolist() == [0, 500, 500, 0, 0, 0, True]


def test_october_usage_summaries(periods):
    # 5 Oct: 500 needed, 500 debited. 20 Oct: 1,300 needed, 1,200 debited, 100 overage.
    d, _ = periods["2026-10"]
    usage = d.usage_summaries.set_index("window_date")
    columns = ["consumption", "drawdown_resource_id", "drawdown_quantity", "debited", "overage"]
    assert usage.loc[pd.Timestamp("2026-10-05"), columns].tolist() == [50, "credits", 500, 500, 0]
    assert usage.loc[pd.Timestamp("2026-10-20"), columns].tolist() == [
        130, "credits", 1300, 1200, 100,
    ]  # fmt: skip


def test_october_liable_summary_is_100_credits_at_two_cents_two_dollars(periods):
    # 100 credits × $0.02 = $2.00; consumption in credits 500 + 1,300 = 1,800; debited 1,700.
    _, s = periods["2026-10"]
    ratable = s.ratable_summaries
    assert ratable[["usage_resource_id", "rate_source", "pricing_model", "overage_quantity",
                    "amount", "currency"]].values.tolist() == [
        ["credits", "price_book", "per_unit", 100.0, Decimal("2.00"), "USD"]
    ]  # fmt: skip
    liable = s.liable_summaries
    assert liable[["account_id", "asset_id", "usage_resource_id", "consumption", "debited",
                   "overage_quantity", "net_unit_rate", "amount", "currency",
                   "status"]].values.tolist() == [
        ["ACME", "A1", "credits", 1800.0, 1700.0, 100.0, Decimal("0.02"), Decimal("2.00"), "USD",
         "final"]
    ]  # fmt: skip
    assert str(liable["amount"].iloc[0]) == "2.00"
