"""Stage 3 of docs/rules.md, rule by rule: usage summaries per window, token conversion, and the rate
resolved to price each summary's overage. Expected numbers are worked out by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from consumption_pipeline.domain import rating
from consumption_pipeline.domain.catalog import Catalog
from consumption_pipeline.domain.rating import RatingError, rate_usage
from consumption_pipeline_tests.builders import catalog
from consumption_pipeline_tests.domain.test_drawdown import (
    CREDITS,
    account,
    asset,
    price_row,
    resource,
    token_rate,
    token_resource,
    use,
)

OCTOBER = pd.Timestamp("2026-10-01")


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return catalog(
        accounts=[account("ACME"), account("EURO", "EUR"), account("YEN", "JPY")],
        usage_resources=[
            CREDITS,
            resource("api_calls"),
            resource("storage_gb", aggregation_method="peak"),
            resource("seats", aggregation_method="peak", aggregation_period="monthly"),
            resource("events", aggregation_period="monthly"),
            resource("priced"),
            token_resource("compute_hours", overage_chargeable="false"),
            token_resource("fine_hours"),
            token_resource("half_hours"),
            token_resource("monthly_hours", aggregation_period="monthly"),
            token_resource("retired_hours"),
            token_resource("future_hours"),
        ],
        token_rates=[
            token_rate("compute_hours", "10", "2026-01-01", effective_to="2026-10-15"),
            token_rate("compute_hours", "12", "2026-10-15"),
            token_rate("fine_hours", "1.5"),
            token_rate("half_hours", "0.5"),
            token_rate("monthly_hours", "1", "2026-01-01", effective_to="2026-10-31"),
            token_rate("monthly_hours", "2", "2026-10-31"),
            token_rate("retired_hours", "3", "2026-01-01", effective_to="2026-10-10"),
            token_rate("future_hours", "3", "2026-11-01"),
        ],
        products=[{"product_id": "P", "product_name": "P"}],
        assets=[asset("A1", "P", "2026-01-01"), asset("A2", "P", "2026-01-01"),
                asset("E1", "P", "2026-01-01", account="EURO")],
        price_book=[
            price_row("priced", "0.10"), price_row("priced", "0.09", "EUR"),
            price_row("credits", "0.02", effective_to="2026-10-31"),
            price_row("credits", "0.03", effective_from="2026-10-31"),
            price_row("api_calls", "0.01", effective_to="2026-10-15"),
            price_row("api_calls", "0.02", effective_from="2026-10-15"),
        ],
        negotiated_rates=[
            {"account_id": "ACME", **price_row("priced", "0.08", effective_to="2026-10-10")},
            {"account_id": "ACME", **price_row("priced", "0.01", "EUR")},
            {"account_id": "ACME", "asset_id": "A1",
             **price_row("priced", "0.07", effective_from="2026-10-15")},
        ],
    )  # fmt: skip


def rate(cat: Catalog, *rows: dict, period: pd.Timestamp = OCTOBER) -> pd.DataFrame:
    """Rate events given as `use(...)` rows (the accepted events of stage 1)."""
    return rate_usage(events_of(*rows), cat, period)


def events_of(*rows: dict) -> pd.DataFrame:
    events = pd.DataFrame(list(rows))
    events["asset_id"] = events["asset_id"].astype("str")
    events["quantity"] = events["quantity"].astype("float64")
    events["occurred_at"] = pd.to_datetime(events["occurred_at"], utc=True)
    events["usage_date"] = events["occurred_at"].dt.tz_localize(None).dt.normalize()
    return events


def one(rated: pd.DataFrame, **match) -> pd.Series:
    rows = rated
    for column, value in match.items():
        if value is None:
            rows = rows[rows[column].isna()]
        elif pd.api.types.is_datetime64_any_dtype(rows[column]):
            rows = rows[rows[column].eq(pd.Timestamp(value))]
        else:
            rows = rows[rows[column].eq(value)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


# --- usage summaries ---------------------------------------------------------------------------


def test_a_daily_summary_is_one_account_asset_resource_and_usage_date(cat):
    # A1: 10 + 5 on 5 Oct → 15; 3 on 6 Oct; A2: 7 on 5 Oct; untagged: 2 on 5 Oct;
    # EURO: 4 on 5 Oct. Five summaries.
    rated = rate(
        cat,
        use("2026-10-05", "10"), use("2026-10-05", "5"), use("2026-10-06", "3"),
        use("2026-10-05", "7", asset_id="A2"), use("2026-10-05", "2", asset_id=None),
        use("2026-10-05", "4", asset_id="E1", account_id="EURO"),
    )  # fmt: skip
    assert len(rated) == 5
    a1 = one(rated, asset_id="A1", window_date="2026-10-05")
    assert (a1["consumption"], a1["event_count"], a1["aggregation_period"]) == (15, 2, "daily")
    assert a1["window_start"] == pd.Timestamp("2026-10-05")
    assert a1["summary_id"] == "ACME|A1|api_calls|2026-10-05"
    assert one(rated, asset_id="A1", window_date="2026-10-06")["consumption"] == 3
    assert one(rated, asset_id="A2")["consumption"] == 7
    untagged = one(rated, account_id="ACME", asset_id=None)
    assert (untagged["consumption"], untagged["summary_id"]) == (2, "ACME|-|api_calls|2026-10-05")
    assert one(rated, account_id="EURO")["consumption"] == 4


def test_a_monthly_window_covers_the_period_and_is_dated_on_its_last_day(cat):
    # `events` (monthly sum): 4 on 3 Oct + 6 on 20 Oct + 1 on 31 Oct → one summary of 11,
    # window starting 1 Oct, dated 31 Oct.
    days = [("2026-10-03", "4"), ("2026-10-20", "6"), ("2026-10-31", "1")]
    rated = rate(cat, *(use(d, q, "events") for d, q in days))
    row = one(rated)
    assert (row["aggregation_period"], row["consumption"], row["event_count"]) == ("monthly", 11, 3)
    assert row["window_start"] == pd.Timestamp("2026-10-01")
    assert row["window_date"] == pd.Timestamp("2026-10-31")
    assert row["summary_id"] == "ACME|A1|events|2026-10-01"


def test_a_monthly_window_in_a_thirty_day_month_is_dated_on_the_thirtieth(cat):
    rated = rate(cat, use("2026-11-03", "4", "events"), period=pd.Timestamp("2026-11-01"))
    assert one(rated)["window_date"] == pd.Timestamp("2026-11-30")


def test_sum_adds_the_quantities_and_peak_takes_the_maximum_of_the_window(cat):
    # storage_gb (daily peak): 5 Oct: 3, 7.5, 5 → 7.5; 6 Oct: 2 → 2.
    # seats (monthly peak): 3 Oct 10, 15 Oct 12, 30 Oct 11 → 12.
    # api_calls (daily sum): 5 Oct: 3 + 7.5 + 5 = 15.5.
    rated = rate(
        cat,
        *(use("2026-10-05", q, "storage_gb") for q in ["3", "7.5", "5"]),
        use("2026-10-06", "2", "storage_gb"),
        *(use(d, q, "seats") for d, q in [("2026-10-03", "10"), ("2026-10-15", "12"),
                                           ("2026-10-30", "11")]),
        *(use("2026-10-05", q) for q in ["3", "7.5", "5"]),
    )  # fmt: skip
    assert (
        one(rated, usage_resource_id="storage_gb", window_date="2026-10-05")["consumption"] == 7.5
    )
    assert one(rated, usage_resource_id="storage_gb", window_date="2026-10-06")["consumption"] == 2
    assert one(rated, usage_resource_id="seats")["consumption"] == 12
    assert one(rated, usage_resource_id="api_calls")["consumption"] == 15.5


def test_sums_are_exact_to_six_decimals(cat):
    # 0.1 + 0.2 + 0.000001 = 0.300001 exactly (floats would give 0.30000100000000004).
    rated = rate(cat, *(use("2026-10-05", q) for q in ["0.1", "0.2", "0.000001"]))
    assert one(rated)["consumption"] == 0.300001
    assert one(rated)["drawdown_quantity"] == 0.300001


def test_events_rated_in_batches_sum_and_peak_across_the_batches(cat, monkeypatch):
    # The storage_gb peak (3 | 7.5 | 5 -> 7.5) and the api_calls sum (3 + 0.5 | 7.5 | 5 -> 16,
    # four events) each span three batches; folding every 2 events merges partial sums with
    # partial sums, as a period too large to hold does.
    monkeypatch.setattr(rating._Windows, "_FOLD_ROWS", 2)
    batches = [
        events_of(use("2026-10-05", q, "storage_gb"), use("2026-10-05", q))
        for q in ["3", "7.5", "5"]
    ]
    batches[0] = pd.concat([batches[0], events_of(use("2026-10-05", "0.5"))], ignore_index=True)
    rated = rate_usage(iter(batches), cat, OCTOBER)
    storage = one(rated, usage_resource_id="storage_gb")
    assert (storage["consumption"], storage["event_count"]) == (7.5, 3)
    calls = one(rated, usage_resource_id="api_calls")
    assert (calls["consumption"], calls["event_count"]) == (16, 4)
    # Each batch summed apart (as a cluster's task does), the sums combined: the same summaries.
    pd.testing.assert_frame_equal(rated_in_parts(batches, cat), rated)


def rated_in_parts(batches: list[pd.DataFrame], cat: Catalog) -> pd.DataFrame:
    sums = [rating.window_sums(batch, cat, OCTOBER) for batch in reversed(batches)]
    return rating.rate_sums(sums, cat, OCTOBER)


@pytest.mark.parametrize("fold_rows", [None, 3])
def test_a_window_summing_to_more_than_int64_holds_stops_the_rating(cat, monkeypatch, fold_rows):
    # 10 x 999,999,999,999 = 9,999,999,999,990 units = 9.99999999999e18 micro-units, past
    # int64's 9.22e18: summed in int64 it wraps to a negative. Folding every 3 events (batches of
    # 2) merges partial sums made before the usage was large enough to need checking.
    if fold_rows:
        monkeypatch.setattr(rating._Windows, "_FOLD_ROWS", fold_rows)
    big = [use("2026-10-05", "999999999999") for _ in range(10)]
    batches = [events_of(*big[i : i + 2]) for i in range(0, 10, 2)]
    batches.append(events_of(use("2026-10-06", "1")))
    with pytest.raises(RatingError) as error:
        rate_usage(iter(batches), cat, OCTOBER)
    expected = (
        "usage of account 'ACME' (A1), resource 'api_calls', window 2026-10-05: its consumption "
        "reaches 1,000,000,000,000 units, more than a window can hold exactly; 1 windows affected"
    )
    assert str(error.value) == expected
    # Summed part by part (no part's sum wraps; their total would): stopped the same way.
    with pytest.raises(RatingError) as apart:
        rated_in_parts(batches, cat)
    assert str(apart.value) == expected


def test_a_window_holds_sums_up_to_just_below_the_quantity_limit(cat):
    # 499,999,999,999.5 + 500,000,000,000 = 999,999,999,999.5 (< 10^12) is rated; 2 x 5 x 10^11
    # reaches 10^12 and stops the rating. A peak is never a sum: two events of 999,999,999,999
    # peak at that. Beside them five days of 999,999,999,999 each: more in all than int64 could
    # sum in one window, but each day its own window.
    rated = rate(cat, use("2026-10-05", "499999999999.5"), use("2026-10-05", "500000000000"),
                 *(use("2026-10-05", "999999999999", "storage_gb") for _ in range(2)),
                 *(use(f"2026-10-1{d}", "999999999999") for d in range(5)))  # fmt: skip
    assert one(rated, window_date="2026-10-05", usage_resource_id="api_calls")[
        "consumption"] == 999_999_999_999.5  # fmt: skip
    assert one(rated, usage_resource_id="storage_gb")["consumption"] == 999_999_999_999
    later = rated[rated["window_date"] >= pd.Timestamp("2026-10-10")]
    assert later["consumption"].tolist() == [999_999_999_999.0] * 5
    with pytest.raises(RatingError, match="reaches 1,000,000,000,000 units"):
        rate(cat, use("2026-10-05", "500000000000"), use("2026-10-05", "500000000000"))


def test_summaries_come_ordered_by_account_asset_resource_and_window(cat):
    # Untagged usage sorts before any asset of its account; ids compare as text.
    rated = rate(
        cat,
        use("2026-10-05", "4", asset_id="E1", account_id="EURO"), use("2026-10-06", "3"),
        use("2026-10-05", "7", asset_id="A2"), use("2026-10-05", "2", asset_id=None),
        use("2026-10-05", "1"), use("2026-10-05", "1", "storage_gb"),
    )  # fmt: skip
    assert rated["summary_id"].tolist() == [
        "ACME|-|api_calls|2026-10-05", "ACME|A1|api_calls|2026-10-05",
        "ACME|A1|api_calls|2026-10-06", "ACME|A1|storage_gb|2026-10-05",
        "ACME|A2|api_calls|2026-10-05", "EURO|E1|api_calls|2026-10-05",
    ]  # fmt: skip


def test_usage_of_an_id_the_catalog_does_not_know_is_a_rating_error(cat):
    with pytest.raises(RatingError, match="usage_events.account_id holds 'WAYNE'"):
        rate(cat, use("2026-10-05", "1", asset_id=None, account_id="WAYNE"))
    with pytest.raises(RatingError, match="usage_events.asset_id holds 'Z9'"):
        rate(cat, use("2026-10-05", "1", asset_id="Z9"))
    with pytest.raises(RatingError, match="asset is another account's"):
        rate(cat, use("2026-10-05", "1", asset_id="E1"))


# --- token conversion -------------------------------------------------------------------------


def test_a_resource_without_a_token_draws_from_itself_quantity_unchanged(cat):
    row = one(rate(cat, use("2026-10-05", "12.5")))
    assert (row["drawdown_resource_id"], row["drawdown_quantity"]) == ("api_calls", 12.5)


def test_token_conversion_multiplies_by_tokens_per_unit_and_draws_from_the_token(cat):
    # compute_hours at 10 credits an hour (until 15 Oct): 8 h on 5 Oct = 80 credits.
    row = one(rate(cat, use("2026-10-05", "8", "compute_hours")))
    assert (row["drawdown_resource_id"], row["tokens_per_unit"]) == ("credits", 10)
    assert (row["consumption"], row["drawdown_quantity"]) == (8, 80)


def test_token_conversion_rounds_half_up_to_six_decimals(cat):
    # fine_hours × 1.5: 1.234567 × 1.5 = 1.8518505 → 1.851851 (half-up; half-even says 1.851850);
    #                   1.234566 × 1.5 = 1.851849 exactly.
    # half_hours × 0.5: 0.000001 × 0.5 = 0.0000005 → 0.000001 (half-even: 0);
    #                   0.000003 × 0.5 = 0.0000015 → 0.000002; 0.000004 × 0.5 = 0.000002.
    rated = rate(
        cat,
        use("2026-10-05", "1.234567", "fine_hours"), use("2026-10-06", "1.234566", "fine_hours"),
        use("2026-10-05", "0.000001", "half_hours"), use("2026-10-06", "0.000003", "half_hours"),
        use("2026-10-07", "0.000004", "half_hours"),
    )  # fmt: skip
    got = rated.set_index(["usage_resource_id", rated["window_date"].dt.day])["drawdown_quantity"]
    assert got.to_dict() == {
        ("fine_hours", 5): 1.851851, ("fine_hours", 6): 1.851849,
        ("half_hours", 5): 0.000001, ("half_hours", 6): 0.000002, ("half_hours", 7): 0.000002,
    }  # fmt: skip


def test_the_token_rate_in_effect_on_the_window_date_applies_and_may_change_inside_the_period(cat):
    # compute_hours: 10 credits/h until 15 Oct (exclusive), 12 from 15 Oct.
    # 5 h on 14 Oct = 50 credits; 5 h on 15 Oct = 60 credits.
    rated = rate(
        cat, use("2026-10-14", "5", "compute_hours"), use("2026-10-15", "5", "compute_hours")
    )
    assert rated["tokens_per_unit"].tolist() == [10, 12]
    assert rated["drawdown_quantity"].tolist() == [50, 60]


def test_a_monthly_window_takes_the_token_rate_of_the_period_last_day(cat):
    # monthly_hours: 1 credit/h until 31 Oct, 2 from 31 Oct. 5 h used on 3 Oct: the window is
    # dated 31 Oct → 5 × 2 = 10.
    row = one(rate(cat, use("2026-10-03", "5", "monthly_hours")))
    assert (row["tokens_per_unit"], row["drawdown_quantity"]) == (2, 10)


def test_a_summary_without_a_token_rate_in_effect_is_a_rating_error(cat):
    # retired_hours: rate ends 10 Oct; usage on 12 Oct has none. future_hours: starts 1 Nov.
    with pytest.raises(RatingError, match=r"retired_hours.*2026-10-12"):
        rate(cat, use("2026-10-09", "1", "retired_hours"), use("2026-10-12", "1", "retired_hours"))
    with pytest.raises(RatingError, match=r"future_hours"):
        rate(cat, use("2026-10-30", "1", "future_hours"))
    # The rate still in effect on 9 October is used.
    assert one(rate(cat, use("2026-10-09", "2", "retired_hours")))["drawdown_quantity"] == 6


def test_overage_chargeable_is_that_of_the_drawdown_resource(cat):
    # compute_hours is not chargeable itself but bills as credits, which are.
    rated = rate(cat, use("2026-10-05", "1", "compute_hours"), use("2026-10-05", "1"))
    assert rated.set_index("usage_resource_id")["overage_chargeable"].to_dict() == {
        "api_calls": True, "compute_hours": True,
    }  # fmt: skip


# --- the rate that will price the overage ------------------------------------------------------


def test_asset_negotiated_rate_over_account_negotiated_over_price_book(cat):
    # `priced` for ACME: account rate until 10 Oct, A1's asset rate from 15 Oct, the price book
    # always (and an account rate in EUR, which does not count for a USD account).
    #   A1 on 5 Oct: account (asset rate not yet in effect);   A1 on 12 Oct: price book;
    #   A1 on 15 Oct: asset;   A2 on 15 Oct: price book (no asset rate for A2, account ended);
    #   untagged on 5 Oct: account.
    rated = rate(
        cat,
        use("2026-10-05", "1", "priced"), use("2026-10-12", "1", "priced"),
        use("2026-10-15", "1", "priced"), use("2026-10-15", "1", "priced", "A2"),
        use("2026-10-05", "1", "priced", asset_id=None),
    )  # fmt: skip
    got = {(r.asset_id if isinstance(r.asset_id, str) else None, r.window_date.day):
           (r.rate_source, r.rate_asset_id if isinstance(r.rate_asset_id, str) else None,
            r.rate_effective_from.strftime("%Y-%m-%d"))
           for r in rated.itertuples()}  # fmt: skip
    assert got == {
        ("A1", 5): ("account", None, "2020-01-01"),
        ("A1", 12): ("price_book", None, "2020-01-01"),
        ("A1", 15): ("asset", "A1", "2026-10-15"),
        ("A2", 15): ("price_book", None, "2020-01-01"),
        (None, 5): ("account", None, "2020-01-01"),
    }


def test_only_rate_rows_in_the_account_currency_count(cat):
    # EURO (EUR) finds the EUR price book row of `priced`; YEN (JPY) finds none: no rate, which
    # only matters if there is chargeable overage (stage 5).
    rated = rate(
        cat,
        use("2026-10-05", "1", "priced", "E1", "EURO"),
        use("2026-10-05", "1", "priced", None, "YEN"),
    )
    euro, yen = one(rated, account_id="EURO"), one(rated, account_id="YEN")
    assert (euro["currency"], euro["rate_source"]) == ("EUR", "price_book")
    assert (yen["currency"], pd.isna(yen["rate_source"])) == ("JPY", True)


def test_a_rate_is_in_effect_from_its_effective_from_until_before_its_effective_to(cat):
    # api_calls: one price book row to 15 Oct (exclusive), another from 15 Oct.
    rated = rate(cat, use("2026-10-14", "1"), use("2026-10-15", "1"))
    assert rated["rate_effective_from"].dt.strftime("%Y-%m-%d").tolist() == [
        "2020-01-01",
        "2026-10-15",
    ]


def test_a_monthly_window_is_priced_on_the_period_last_day(cat):
    # credits: 0.02 from 2020, 0.03 from 31 Oct. monthly_hours (monthly, bills as credits) used on
    # 3 Oct is dated 31 Oct: the 31 Oct rate. compute_hours (daily) on 30 Oct: the 2020 rate.
    rated = rate(
        cat, use("2026-10-03", "1", "monthly_hours"), use("2026-10-30", "1", "compute_hours")
    )
    got = rated.set_index("usage_resource_id")["rate_effective_from"].dt.strftime("%Y-%m-%d")
    assert got.to_dict() == {"monthly_hours": "2026-10-31", "compute_hours": "2020-01-01"}


def test_no_events_make_no_summaries(cat):
    events = pd.DataFrame({
        "event_id": pd.Series(dtype="str"), "account_id": pd.Series(dtype="str"),
        "asset_id": pd.Series(dtype="str"), "usage_resource_id": pd.Series(dtype="str"),
        "quantity": pd.Series(dtype="float64"),
        "occurred_at": pd.Series(dtype="datetime64[us, UTC]"),
        "usage_date": pd.Series(dtype="datetime64[us]"),
    })  # fmt: skip
    assert rate_usage(events, cat, OCTOBER).empty
