"""Exhaustion forecast: burn rates, exhaustion dates and the overage still to come."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from consumption_pipeline.audit.forecast import (
    _bucket_outlook,
    forecast,
    forecast_periods,
    read_state,
)
from consumption_pipeline.storage.warehouse import Warehouse

OCTOBER = pd.Timestamp("2026-10-01")


def october_forecast(sample_run, catalog, as_of: str, account: str | None = None):
    day = pd.Timestamp(as_of)
    state = read_state(Warehouse(sample_run.url), "2026-10-01", day, 30, account)
    return forecast(state, catalog, OCTOBER, day, 30)


def test_a_never_expiring_bucket_runs_out_at_its_trailing_burn_rate(sample_run, catalog):
    result = october_forecast(sample_run, catalog, "2026-10-15", "GLOBEX")
    pack = result.buckets.set_index("bucket_id").loc["G2:API_PACK_CALLS:2026-09-20"]
    # G2's API pack: 2 × 50,000 calls from 09-20, never expiring. G2's api_calls before 10-15
    # (gateway_export.csv): 9,325 (09-21) + 10,170 (09-29) + 8,845 (10-08) = 28,340, all within
    # the 30-day window [09-15, 10-15). Balance 100,000 − 28,340 = 71,660. At 28,340 / 30 a day
    # the last call is drawn after ⌈71,660 × 30 / 28,340⌉ = ⌈75.86⌉ = 76 days: 10-15 + 75 = 12-29.
    assert pack["balance"] == 71_660
    assert pack["window_debited"] == 28_340
    assert pack["burn_rate"] == pytest.approx(944.666667, abs=1e-6)
    assert pack["exhausted_on"] == pd.Timestamp("2026-12-29")
    assert pack["outlook"] == "runs_out"


def test_a_bucket_that_would_outlive_its_validity_is_not_exhausted_before_it_expires(
    sample_run, catalog
):
    result = october_forecast(sample_run, catalog, "2026-10-15", "ACME")
    buckets = result.buckets.set_index("bucket_id")
    # ACME's October grant: 1,000 − 300 drawn on 10-05 = 700 left; 300 in 30 days is 10 a day,
    # so 70 more days, past its end on 11-01.
    october = buckets.loc["A1:PRO_CREDITS:2026-10-01"]
    assert (october["balance"], october["burn_rate"]) == (700, 10)
    assert october["outlook"] == "expires_first" and pd.isna(october["exhausted_on"])
    # The rollover bucket was emptied on 10-05.
    rollover = buckets.loc["A1:PRO_CREDITS:2026-09-01:rollover"]
    assert (rollover["outlook"], rollover["exhausted_on"]) == ("empty", pd.Timestamp("2026-10-05"))


def test_a_bucket_lasting_more_than_a_century_at_its_burn_never_runs_out():
    # 10^11 units left, 1 unit burned in 30 days: 3 × 10^12 days to go, beyond any calendar.
    buckets = pd.DataFrame({
        "bucket_id": ["FOREVER", "ENDS"], "account_id": "A", "asset_id": None,
        "usage_resource_id": "r", "binding": "account",
        "valid_to": [pd.NaT, pd.Timestamp("2027-01-01")], "balance": [1e11, 1e11],
        "last_entry_on": pd.Timestamp("2026-10-10"),
    })  # fmt: skip
    debits = pd.DataFrame({"bucket_id": ["FOREVER", "ENDS"], "quantity": [1.0, 1.0]})
    out = _bucket_outlook(buckets, debits, pd.Timestamp("2026-10-15"), 30).set_index("bucket_id")
    assert out.loc["FOREVER", "outlook"] == "no_burn" and pd.isna(
        out.loc["FOREVER", "exhausted_on"]
    )
    assert out.loc["ENDS", "outlook"] == "expires_first"


def test_projected_overage_replays_the_drawdown_over_the_trailing_demand(sample_run, catalog):
    result = october_forecast(sample_run, catalog, "2026-10-21", "ACME")
    line = result.overage.set_index(["account_id", "asset_id", "usage_resource_id"]).loc[
        ("ACME", "A1", "credits")
    ]
    # Window [09-21, 10-21): 500 (10-05) + 1,300 (10-20) credits = 1,800 / 30 = 60 a day.
    # 11 days left (10-21 .. 10-31) → 660 credits; every ACME bucket is empty after 10-20
    # (October grant, rollover and PACK), so all 660 are overage. To date: 100 (10-20).
    # Period: 760 × $0.02 = $15.20.
    assert line["demand_rate"] == 60
    assert line["days_remaining"] == 11
    assert line["overage_to_date"] == 100
    assert line["projected_overage"] == 660
    assert line["projected_period_overage"] == 760
    assert line["projected_period_amount"] == Decimal("15.20")


def test_remaining_buckets_absorb_the_projected_demand(sample_run, catalog):
    result = october_forecast(sample_run, catalog, "2026-10-15", "ACME")
    line = result.overage.set_index("asset_id").loc["A1"]
    # Window [09-15, 10-15): 800 + 500 = 1,300 credits → 43.333333 a day; 17 days left →
    # 736.666661 credits, against 700 in the October grant and 500 in the PACK: no overage.
    assert line["demand_rate"] == pytest.approx(43.333333, abs=1e-6)
    assert line["projected_overage"] == 0
    assert line["projected_period_amount"] == Decimal("0.00")


def test_an_account_without_buckets_has_no_bucket_forecast_and_all_demand_is_overage(
    sample_run, catalog
):
    result = october_forecast(sample_run, catalog, "2026-10-15", "SOYLENT")
    assert result.buckets.empty
    api = result.overage.set_index("usage_resource_id").loc["api_calls"]
    # SOYLENT api_calls in [09-15, 10-15): 41,250 on 10-10 (gw-00039) → 1,375 a day; 17 days.
    assert api["demand_rate"] == 1_375
    assert api["projected_overage"] == 1_375 * 17


def test_the_forecast_is_stored_per_period_as_of_today_or_the_period_end(sample_run):
    store = Warehouse(sample_run.url)
    october = store.read_period("overage_forecasts", "2026-10-01")
    november = store.read_period("overage_forecasts", "2026-11-01")
    # The run judged on 2026-11-25: October is over (as of its end), November has 6 days left.
    assert set(october["as_of"]) == {pd.Timestamp("2026-11-01")}
    assert set(october["days_remaining"]) == {0} and (october["projected_overage"] == 0).all()
    assert set(november["as_of"]) == {pd.Timestamp("2026-11-25")}
    assert set(november["days_remaining"]) == {6}
    buckets = store.read_period("bucket_forecasts", "2026-11-01").set_index("bucket_id")
    assert buckets.loc["A1:PRO_CREDITS:2026-11-01", "balance"] == 1_000


def test_a_forecast_date_outside_the_period_or_an_empty_window_is_refused(sample_run, catalog):
    state = read_state(Warehouse(sample_run.url), "2026-10-01", pd.Timestamp("2026-10-15"), 30)
    with pytest.raises(ValueError, match="outside period 2026-10"):
        forecast(state, catalog, OCTOBER, pd.Timestamp("2026-11-02"), 30)
    with pytest.raises(ValueError, match="at least one day"):
        forecast(state, catalog, OCTOBER, pd.Timestamp("2026-10-15"), 0)


def test_the_window_reads_the_periods_it_spans():
    assert forecast_periods(pd.Timestamp("2026-10-15"), 30) == ["2026-09-01", "2026-10-01"]
    assert forecast_periods(pd.Timestamp("2026-11-01"), 7) == ["2026-10-01", "2026-11-01"]
