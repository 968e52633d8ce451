"""Stage 2 of docs/rules.md, "Create entitlement buckets": every rule, numbers worked by hand."""

from __future__ import annotations

import json
from functools import cache

import pandas as pd

from consumption_pipeline.domain.buckets import create_buckets
from consumption_pipeline_tests.builders import acme_catalog, catalog

T = pd.Timestamp


def one_product(grants: list[dict], assets: list[dict]):
    """Account X with product P (its grants) on resource r; assets of P, quantity 1 unless given."""
    return _one_product(json.dumps([grants, assets], sort_keys=True))


@cache  # building a catalog costs more than the buckets: build each one once
def _one_product(key: str):
    grants, assets = json.loads(key)
    return catalog(
        accounts=[{"account_id": "X", "account_name": "X", "currency": "USD"}],
        usage_resources=[{"usage_resource_id": "r", "name": "r", "unit_of_measure": "u"}],
        products=[{"product_id": "P", "product_name": "P"}],
        product_grants=[{"grant_id": "G", "product_id": "P", "usage_resource_id": "r", **g}
                        for g in grants],
        assets=[{"asset_id": "A", "account_id": "X", "product_id": "P", "quantity": "1", **a}
                for a in assets],
    )  # fmt: skip


def buckets(grant: dict, period: str, **asset: str) -> pd.DataFrame:
    return create_buckets(one_product([grant], [asset]), T(period))


def windows(frame: pd.DataFrame) -> list[tuple]:
    """(valid_from, valid_to or None, granted) per bucket, in bucket order."""
    return [
        (str(f.date()), None if pd.isna(t) else str(t.date()), g)
        for f, t, g in zip(frame["valid_from"], frame["valid_to"], frame["granted"], strict=True)
    ]


MONTHLY_4000 = {"quantity": "4000", "renewal": "monthly"}


# --- granted -----------------------------------------------------------------------------------


def test_granted_is_grant_quantity_times_asset_quantity():
    # 1,000 a month × 3 seats = 3,000; 0.4 × 2.5 = 1.0 (exact, not 1.0000000000000002).
    b = buckets({"quantity": "1000", "renewal": "monthly"}, "2026-10-01",
                start_date="2026-10-01", quantity="3")  # fmt: skip
    assert b["granted"].tolist() == [3000.0]
    b = buckets({"quantity": "0.4", "renewal": "none"}, "2026-10-01",
                start_date="2026-10-01", quantity="2.5")  # fmt: skip
    assert b["granted"].tolist() == [1.0]


# --- one-time grants ---------------------------------------------------------------------------


def test_one_time_bucket_runs_validity_months_from_the_asset_start():
    # 500 once, valid 2 months, from 10 October: [10 Oct, 10 Dec), 500.
    b = buckets({"quantity": "500", "renewal": "none", "validity_months": "2"}, "2026-10-01",
                start_date="2026-10-10")  # fmt: skip
    assert windows(b) == [("2026-10-10", "2026-12-10", 500.0)]


def test_one_time_validity_keeps_the_day_clamped_to_the_month_end():
    # 31 January + 1 month = 28 February 2026 (not 3 March).
    b = buckets({"quantity": "10", "renewal": "none", "validity_months": "1"}, "2026-02-01",
                start_date="2026-01-31")  # fmt: skip
    assert windows(b) == [("2026-01-31", "2026-02-28", 10.0)]


def test_one_time_without_validity_or_end_date_never_expires():
    # No validity_months and no end date: valid_to is empty, still there four years later.
    grant = {"quantity": "10", "renewal": "none"}
    assert windows(buckets(grant, "2026-10-01", start_date="2026-10-10")) == [
        ("2026-10-10", None, 10.0)
    ]
    assert windows(buckets(grant, "2030-06-01", start_date="2026-10-10")) == [
        ("2026-10-10", None, 10.0)
    ]


def test_one_time_bucket_is_cut_at_the_asset_end():
    # Without validity: it ends with the asset (20 Nov). With 3 months from 1 September
    # (1 December) it is cut at 20 November too.
    no_validity = buckets({"quantity": "10", "renewal": "none"}, "2026-11-01",
                          start_date="2026-09-01", end_date="2026-11-20")  # fmt: skip
    assert windows(no_validity) == [("2026-09-01", "2026-11-20", 10.0)]
    three_months = {"quantity": "10", "renewal": "none", "validity_months": "3"}
    long_validity = buckets(three_months, "2026-11-01", start_date="2026-09-01",
                            end_date="2026-11-20")  # fmt: skip
    assert windows(long_validity) == [("2026-09-01", "2026-11-20", 10.0)]


def test_one_time_grants_are_never_prorated():
    # 500 once from 15 October, asset ending 20 October: still 500, though it covers 5 days.
    b = buckets({"quantity": "500", "renewal": "none", "validity_months": "1"}, "2026-10-01",
                start_date="2026-10-15", end_date="2026-10-20")  # fmt: skip
    assert windows(b) == [("2026-10-15", "2026-10-20", 500.0)]


# --- renewing grants ---------------------------------------------------------------------------


def test_monthly_buckets_are_aligned_to_month_starts():
    # From 15 October: [15 Oct, 1 Nov) then [1 Nov, 1 Dec), [1 Dec, 1 Jan).
    # November's period also holds October's bucket: it ends on November's first day.
    october = buckets(MONTHLY_4000, "2026-10-01", start_date="2026-10-15")
    assert windows(october) == [("2026-10-15", "2026-11-01", 2193.0)]
    november = buckets(MONTHLY_4000, "2026-11-01", start_date="2026-10-15")
    assert windows(november) == [
        ("2026-10-15", "2026-11-01", 2193.0),
        ("2026-11-01", "2026-12-01", 4000.0),
    ]
    december = buckets(MONTHLY_4000, "2026-12-01", start_date="2026-10-15")
    assert windows(december) == [
        ("2026-11-01", "2026-12-01", 4000.0),
        ("2026-12-01", "2027-01-01", 4000.0),
    ]


def test_quarterly_first_bucket_runs_to_the_first_of_the_month_three_months_after_the_start():
    # From 15 October 2026: the first window is [1 Oct, 1 Jan) = 31 + 30 + 31 = 92 days, the
    # bucket covers [15 Oct, 1 Jan) = 17 + 30 + 31 = 78 days: floor(900 × 78 / 92) =
    # floor(763.04) = 763. Then whole quarters: [1 Jan, 1 Apr) with 900.
    grant = {"quantity": "900", "renewal": "quarterly"}
    assert windows(buckets(grant, "2026-11-01", start_date="2026-10-15")) == [
        ("2026-10-15", "2027-01-01", 763.0)
    ]
    assert windows(buckets(grant, "2027-02-01", start_date="2026-10-15")) == [
        ("2027-01-01", "2027-04-01", 900.0)
    ]


def test_quarters_follow_the_start_month_not_the_calendar_quarters():
    # From 1 November: [1 Nov, 1 Feb), a whole window, not prorated; January is inside it.
    grant = {"quantity": "900", "renewal": "quarterly"}
    assert windows(buckets(grant, "2027-01-01", start_date="2026-11-01")) == [
        ("2026-11-01", "2027-02-01", 900.0)
    ]


def test_annual_buckets_run_twelve_months_from_the_start_month():
    # From 15 October 2026: [1 Oct 2026, 1 Oct 2027) is 365 days (February 2027 has 28), the
    # bucket covers 365 - 14 = 351: floor(1,200 × 351 / 365) = floor(1153.97) = 1153.
    grant = {"quantity": "1200", "renewal": "annual"}
    assert windows(buckets(grant, "2027-03-01", start_date="2026-10-15")) == [
        ("2026-10-15", "2027-10-01", 1153.0)
    ]
    assert windows(buckets(grant, "2027-10-01", start_date="2026-10-15")) == [
        ("2026-10-15", "2027-10-01", 1153.0),
        ("2027-10-01", "2028-10-01", 1200.0),
    ]


def test_proration_of_the_first_bucket_4000_monthly_from_15_october_is_2193():
    # floor(4000 × 17 / 31) = floor(2193.5) = 2193.
    b = buckets(MONTHLY_4000, "2026-10-01", start_date="2026-10-15")
    assert b["granted"].tolist() == [2193.0]


def test_proration_of_the_last_bucket_asset_ending_20_november_is_2533():
    # [1 Nov, 20 Nov) covers 19 of 30 days: floor(4000 × 19 / 30) = floor(2533.3) = 2533.
    b = buckets(MONTHLY_4000, "2026-11-01", start_date="2026-09-01", end_date="2026-11-20")
    assert windows(b) == [
        ("2026-10-01", "2026-11-01", 4000.0),
        ("2026-11-01", "2026-11-20", 2533.0),
    ]


def test_proration_when_the_asset_starts_and_ends_inside_one_window():
    # [15 Oct, 25 Oct) covers 10 of 31 days: floor(4000 × 10 / 31) = floor(1290.3) = 1290.
    b = buckets(MONTHLY_4000, "2026-10-01", start_date="2026-10-15", end_date="2026-10-25")
    assert windows(b) == [("2026-10-15", "2026-10-25", 1290.0)]


def test_proration_floors_to_whole_units():
    # 10 a month from 15 October: floor(10 × 17 / 31) = floor(5.48) = 5.
    b = buckets({"quantity": "10", "renewal": "monthly"}, "2026-10-01", start_date="2026-10-15")
    assert b["granted"].tolist() == [5.0]


def test_proration_uses_granted_after_the_asset_quantity():
    # 4,000 × 2 seats = 8,000 from 15 October: floor(8000 × 17 / 31) = floor(4387.1) = 4387
    # (not 2 × 2193 = 4386).
    b = buckets(MONTHLY_4000, "2026-10-01", start_date="2026-10-15", quantity="2")
    assert b["granted"].tolist() == [4387.0]


def test_an_asset_starting_on_the_first_of_the_month_is_not_prorated():
    b = buckets(MONTHLY_4000, "2026-10-01", start_date="2026-10-01")
    assert windows(b) == [("2026-10-01", "2026-11-01", 4000.0)]


def test_prorate_false_gives_the_full_granted_quantity():
    grant = {**MONTHLY_4000, "prorate": "false"}
    first = buckets(grant, "2026-10-01", start_date="2026-10-15")
    assert windows(first) == [("2026-10-15", "2026-11-01", 4000.0)]
    last = buckets(grant, "2026-11-01", start_date="2026-09-01", end_date="2026-11-20")
    assert windows(last)[-1] == ("2026-11-01", "2026-11-20", 4000.0)


def test_renewing_buckets_stop_at_the_asset_end():
    # The asset ends on 1 December: December gets November's bucket (it ends on its first
    # day) and no new one.
    b = buckets(MONTHLY_4000, "2026-12-01", start_date="2026-09-01", end_date="2026-12-01")
    assert windows(b) == [("2026-11-01", "2026-12-01", 4000.0)]


# --- binding, priority, ids, relevance -------------------------------------------------------


def test_binding_defaults_to_asset_and_priority_to_100():
    b = buckets(MONTHLY_4000, "2026-10-01", start_date="2026-10-01").iloc[0]
    assert (b["binding"], b["priority"]) == ("asset", 100)
    b = buckets({**MONTHLY_4000, "binding": "account", "priority": "5"}, "2026-10-01",
                start_date="2026-10-01").iloc[0]  # fmt: skip
    assert (b["binding"], b["priority"], b["account_id"], b["asset_id"]) == ("account", 5, "X", "A")


def test_grant_buckets_are_generation_zero_and_remember_their_rollover_terms():
    grant = {**MONTHLY_4000, "rollover": "capped", "rollover_cap": "200", "max_rollovers": "2"}
    b = buckets(grant, "2026-10-01", start_date="2026-10-01").iloc[0]
    assert (b["origin"], b["rollover_generation"], b["rollover"], b["rollover_cap"]) == (
        "grant",
        0,
        "capped",
        200.0,
    )
    assert (b["max_rollovers"], b["rollover_months"]) == (2, 1)
    assert pd.isna(b["parent_bucket_id"])
    one_time = buckets({"quantity": "5", "renewal": "none", "validity_months": "2"},
                       "2026-10-01", start_date="2026-10-01").iloc[0]  # fmt: skip
    assert one_time["rollover_months"] == 2  # a one-time grant rolls over for validity_months


def test_bucket_ids_are_asset_grant_valid_from_stable_and_unique():
    # ACME in October: A1's September bucket (ends 1 Oct), its October bucket, and A2's pack.
    first = create_buckets(acme_catalog(), T("2026-10-01"))
    again = create_buckets(acme_catalog(), T("2026-10-01"))
    assert first["bucket_id"].tolist() == [
        "A1:G-PRO:2026-09-01",
        "A1:G-PRO:2026-10-01",
        "A2:G-PACK:2026-10-10",
    ]
    pd.testing.assert_frame_equal(first, again)
    november = create_buckets(acme_catalog(), T("2026-11-01"))
    shared = november[november["bucket_id"] == "A1:G-PRO:2026-10-01"]
    assert shared["granted"].tolist() == [1000.0]  # the same bucket, seen from November
    assert november["bucket_id"].is_unique


def test_the_worked_example_buckets_for_october():
    # PRO: 1,000 credits monthly from 1 September, account-bound. PACK: 500 credits once,
    # 2 months from 10 October: [10 Oct, 10 Dec).
    b = create_buckets(acme_catalog(), T("2026-10-01"))
    assert windows(b) == [
        ("2026-09-01", "2026-10-01", 1000.0),
        ("2026-10-01", "2026-11-01", 1000.0),
        ("2026-10-10", "2026-12-10", 500.0),
    ]
    assert b["binding"].unique().tolist() == ["account"]
    assert b["usage_resource_id"].unique().tolist() == ["credits"]


def test_only_buckets_valid_in_the_period_or_ending_on_its_first_day_are_created():
    # November 2026, five assets of a product with a monthly grant and a one-time grant
    # (validity 1 month):
    #   OLD  from 1 Sep: monthly Oct (ends 1 Nov: kept), Nov (kept); one-time [1 Sep, 1 Oct): no
    #   EDGE from 1 Oct: monthly Oct and Nov; one-time [1 Oct, 1 Nov) ends on 1 Nov: kept
    #   GONE from 1 Sep, ended 31 Oct: nothing (its last buckets end on 31 October)
    #   LATE from 5 Dec: nothing yet
    #   LAST from 1 Nov: monthly Nov, one-time [1 Nov, 1 Dec)
    cat = catalog(
        accounts=[{"account_id": "X", "account_name": "X", "currency": "USD"}],
        usage_resources=[{"usage_resource_id": "r", "name": "r", "unit_of_measure": "u"}],
        products=[{"product_id": "P", "product_name": "P"}],
        product_grants=[
            {"grant_id": "M", "product_id": "P", "usage_resource_id": "r", **MONTHLY_4000},
            {"grant_id": "O", "product_id": "P", "usage_resource_id": "r", "quantity": "5",
             "renewal": "none", "validity_months": "1"},
        ],
        assets=[{"asset_id": a, "account_id": "X", "product_id": "P", "quantity": "1",
                 "start_date": s, "end_date": e}
                for a, s, e in [("OLD", "2026-09-01", ""), ("EDGE", "2026-10-01", ""),
                                ("GONE", "2026-09-01", "2026-10-31"),
                                ("LATE", "2026-12-05", ""), ("LAST", "2026-11-01", "")]],
    )  # fmt: skip
    ids = create_buckets(cat, T("2026-11-01"))["bucket_id"].tolist()
    assert ids == [
        "EDGE:M:2026-10-01", "EDGE:M:2026-11-01", "EDGE:O:2026-10-01",
        "LAST:M:2026-11-01", "LAST:O:2026-11-01",
        "OLD:M:2026-10-01", "OLD:M:2026-11-01",
    ]  # fmt: skip


def test_no_assets_no_buckets():
    b = create_buckets(one_product([MONTHLY_4000], []), T("2026-10-01"))
    assert b.empty
    assert "bucket_id" in b.columns
