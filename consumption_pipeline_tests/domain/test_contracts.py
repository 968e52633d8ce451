"""Contracts that change, rule by rule, through stages 2-5: amendments (the L rule and its
proration), quantity decreases, cancellations, credit grants and commitments (draw order and
rate policy). Every expected number is worked out by hand in the comments; every period run is
checked against the conservation laws.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from consumption_pipeline.domain.buckets import create_buckets
from consumption_pipeline.domain.catalog import CatalogError
from consumption_pipeline.domain.contracts import change_problems
from consumption_pipeline.domain.drawdown import draw_down
from consumption_pipeline.domain.rating import rate_usage
from consumption_pipeline.domain.summaries import summarize
from consumption_pipeline_tests.builders import catalog
from consumption_pipeline_tests.domain.test_drawdown import assert_books_balance

ACME = {"account_id": "ACME", "account_name": "Acme", "currency": "USD"}
CREDITS = {"usage_resource_id": "credits", "name": "Credits", "unit_of_measure": "credit",
           "category": "token"}  # fmt: skip
CREDIT_PRICE = {"usage_resource_id": "credits", "currency": "USD", "pricing_model": "per_unit",
                "unit_price": "0.01", "effective_from": "2020-01-01"}  # fmt: skip


def seats(*changes: dict, renewal: str = "monthly", credits=(), **grant: str):
    """4,000 credits per unit (monthly unless told), asset A1 of quantity 1 from 1 October."""
    return catalog(
        accounts=[ACME], usage_resources=[CREDITS], price_book=[CREDIT_PRICE],
        products=[{"product_id": "PRO", "product_name": "Pro"}],
        product_grants=[{"grant_id": "G", "product_id": "PRO", "usage_resource_id": "credits",
                         "quantity": "4000", "renewal": renewal, **grant}],
        assets=[{"asset_id": "A1", "account_id": "ACME", "product_id": "PRO", "quantity": "1",
                 "start_date": "2026-10-01"}],
        asset_changes=list(changes), credit_grants=list(credits),
    )  # fmt: skip


def change(change_id: str, day: str, quantity: str = "", end_date: str = "") -> dict:
    return {"change_id": change_id, "asset_id": "A1", "effective_date": day,
            "quantity": quantity, "end_date": end_date}  # fmt: skip


def granted(cat, period: str) -> dict[str, tuple]:
    """bucket id -> (granted, valid_from, valid_to) of the period's stage-2 buckets."""
    b = create_buckets(cat, pd.Timestamp(period))
    return {r.bucket_id: (r.granted, f"{r.valid_from:%Y-%m-%d}",
                          None if pd.isna(r.valid_to) else f"{r.valid_to:%Y-%m-%d}")
            for r in b.itertuples()}  # fmt: skip


def events(rows: list[tuple], account: str = "ACME") -> pd.DataFrame:
    """Accepted events from (day, quantity, resource, asset) at noon UTC."""
    frame = pd.DataFrame({
        "event_id": [f"e{i}" for i in range(len(rows))], "account_id": account,
        "asset_id": pd.Series([r[3] for r in rows], dtype="str"),
        "usage_resource_id": [r[2] for r in rows],
        "quantity": pd.Series([r[1] for r in rows], dtype="float64"),
        "usage_date": pd.to_datetime([r[0] for r in rows]).astype("datetime64[s]"),
    })  # fmt: skip
    return frame


def run(cat, usage: list[tuple], first: str, last: str, later_cat=None) -> dict:
    """Periods first..last (YYYY-MM) from an empty warehouse, carrying open buckets as the
    Dagster layer does; `later_cat` (if given) is the catalog from the second period on, as when
    a change arrives after the first period was computed."""
    carried, out = pd.DataFrame(), {}
    for i, period in enumerate(pd.period_range(first, last, freq="M")):
        c = cat if i == 0 or later_cat is None else later_cat
        start = period.to_timestamp()
        mine = events(usage)
        mine = mine[mine["usage_date"].dt.to_period("M").eq(period)]
        buckets = create_buckets(c, start)
        d = draw_down(rate_usage(mine, c, start), buckets, carried, c, start)
        assert_books_balance(d)
        s = summarize(d.usage_summaries, c, start, pd.Timestamp("2030-01-01"))
        every = pd.concat([buckets, d.rollover_buckets], ignore_index=True)
        out[str(period)] = (every, d, s)
        still_open = d.bucket_balances[d.bucket_balances["is_open"]][["bucket_id", "closing"]]
        carried = every.merge(still_open, on="bucket_id")
    return out


def entries(d, *types: str) -> list[tuple]:
    led = d.entitlement_ledger.sort_values("sequence")
    led = led[led["entry_type"].isin(types)] if types else led
    return [(f"{r.entry_date:%Y-%m-%d}", r.bucket_id, r.entry_type, r.quantity)
            for r in led.itertuples()]  # fmt: skip


# --- asset changes -----------------------------------------------------------------------------

UPSELL = [change("c1", "2026-10-11", "3"), change("c2", "2026-10-20", "2"),
          change("c3", "2026-11-10", end_date="2026-11-20")]  # fmt: skip


def test_the_pages_amendment_example_to_the_unit():
    # Quantity 1 from 1 Oct: October's bucket 4,000. On 11 Oct 3 seats: L = 1, an amendment
    # bucket [11 Oct, 1 Nov) of floor(2 × 4000 × 21 / 31) = floor(5419.35) = 5,419. On 20 Oct
    # down to 2: nothing changes in October. November is granted 2 × 4000 = 8,000; the
    # cancellation agreed on 10 Nov (after the bucket began) keeps the 8,000 and ends it on 20 Nov.
    cat = seats(*UPSELL)
    assert granted(cat, "2026-10-01") == {
        "A1:G:2026-10-01": (4000.0, "2026-10-01", "2026-11-01"),
        "A1:G:2026-10-01:amend:c1": (5419.0, "2026-10-11", "2026-11-01"),
    }
    assert granted(cat, "2026-11-01")["A1:G:2026-11-01"] == (8000.0, "2026-11-01", "2026-11-20")
    assert granted(cat, "2026-12-01") == {}


def test_a_cancelled_buckets_balance_expires_on_the_new_end():
    # October's two buckets (4,000 and 5,419, unused) expire on 1 Nov. November: 8,000 granted,
    # 3,000 used on 15 Nov; the 5,000 left expire on 20 Nov, the cancellation's end; usage on
    # 25 Nov finds no bucket: overage 100.
    out = run(
        seats(*UPSELL),
        [("2026-11-15", 3000, "credits", "A1"), ("2026-11-25", 100, "credits", "A1")],
        "2026-10",
        "2026-12",
    )
    _, nov, _ = out["2026-11"]
    assert entries(nov, "expired") == [
        ("2026-11-01", "A1:G:2026-10-01", "expired", 4000.0),
        ("2026-11-01", "A1:G:2026-10-01:amend:c1", "expired", 5419.0),
        ("2026-11-20", "A1:G:2026-11-01", "expired", 5000.0),
    ]
    assert nov.usage_summaries.set_index("window_start")["overage"].tolist() == [0.0, 100.0]
    assert out["2026-12"][1].bucket_balances.empty


def test_the_largest_quantity_so_far_is_the_base_of_an_amendment():
    # 1 -> 3 (11 Oct) -> 2 (20 Oct) -> 4 (25 Oct): L = 3 when 4 arrives, so the amendment is
    # (4 - 3) × 4000 × 7 / 31 = 903.2 -> 903 for [25 Oct, 1 Nov). On 1 Nov the quantity becomes
    # 5: November's window starts that day, so it is simply granted on 5: 20,000.
    cat = seats(
        change("c1", "2026-10-11", "3"),
        change("c2", "2026-10-20", "2"),
        change("c4", "2026-10-25", "4"),
        change("c5", "2026-11-01", "5"),
    )
    oct_ = granted(cat, "2026-10-01")
    assert oct_["A1:G:2026-10-01:amend:c4"] == (903.0, "2026-10-25", "2026-11-01")
    assert "A1:G:2026-10-01:amend:c2" not in oct_
    nov = granted(cat, "2026-11-01")
    assert nov["A1:G:2026-11-01"] == (20000.0, "2026-11-01", "2026-12-01")
    assert not any(":amend:c5" in b for b in nov)


def test_a_change_on_the_start_date_is_the_starting_quantity():
    # 2 seats from the very first day: October is granted 8,000, no amendment.
    assert granted(seats(change("c0", "2026-10-01", "2")), "2026-10-01") == {
        "A1:G:2026-10-01": (8000.0, "2026-10-01", "2026-11-01")
    }


def test_an_amendment_without_proration_grants_the_whole_difference():
    # prorate false: (3 - 1) × 4000 = 8,000 for the rest of October.
    cat = seats(change("c1", "2026-10-11", "3"), prorate="false")
    assert granted(cat, "2026-10-01")["A1:G:2026-10-01:amend:c1"] == (
        8000.0, "2026-10-11", "2026-11-01")  # fmt: skip


def test_a_cancellation_agreed_before_an_amendment_prorates_it_to_the_new_end():
    # Cancelled on 5 Oct to end 25 Oct, then 3 seats on 11 Oct: the amendment starts after the
    # cancellation was agreed, so it covers [11 Oct, 25 Oct) = 14 days of 31:
    # floor(2 × 4000 × 14 / 31) = floor(3612.9) = 3,612. October's bucket began before the
    # cancellation: it keeps its 4,000 and ends on 25 Oct.
    cat = seats(change("x", "2026-10-05", end_date="2026-10-25"), change("c1", "2026-10-11", "3"))
    assert granted(cat, "2026-10-01") == {
        "A1:G:2026-10-01": (4000.0, "2026-10-01", "2026-10-25"),
        "A1:G:2026-10-01:amend:c1": (3612.0, "2026-10-11", "2026-10-25"),
    }


def test_buckets_starting_after_a_cancellation_follow_the_new_end():
    # Quarterly 4,000 from 1 Oct: window [1 Oct, 1 Jan) = 31 + 30 + 31 = 92 days. Cancelled on
    # 1 Oct (its first day) to end 15 Nov: the bucket starts on the day of the agreement, so it
    # follows the new end and is prorated: [1 Oct, 15 Nov) = 31 + 14 = 45 days:
    # floor(4000 × 45 / 92) = floor(1956.52) = 1,956.
    cat = seats(change("x", "2026-10-01", end_date="2026-11-15"), renewal="quarterly")
    assert granted(cat, "2026-10-01") == {"A1:G:2026-10-01": (1956.0, "2026-10-01", "2026-11-15")}


def test_a_cancellation_on_its_own_date_ends_the_asset_that_day():
    # Cancelled on 20 Oct with end 20 Oct: October's bucket ends on 20 Oct; on that day its
    # balance (4,000 - 1,000 used on 5 Oct = 3,000) expires; nothing rolls over (full rollover).
    cat = seats(change("x", "2026-10-20", end_date="2026-10-20"), rollover="full")
    out = run(cat, [("2026-10-05", 1000, "credits", "A1")], "2026-10", "2026-11")
    _, oct_, _ = out["2026-10"]
    assert entries(oct_, "expired", "rollover_out") == [
        ("2026-10-20", "A1:G:2026-10-01", "expired", 3000.0)
    ]
    assert oct_.rollover_buckets.empty and out["2026-11"][1].bucket_balances.empty


def test_a_cancellation_known_late_cuts_the_carried_buckets_and_stops_their_rollover():
    # One-time 4,000 valid 3 months from 1 Oct (to 1 Jan), full rollover. October is computed
    # before the cancellation is known; in November the catalog holds it: agreed 10 Nov, end
    # 20 Nov. The carried bucket (granted 4,000, 500 used) ends on 20 Nov, 3,500 expire then.
    before = seats(renewal="none", validity_months="3", rollover="full")
    after = seats(change("x", "2026-11-10", end_date="2026-11-20"), renewal="none",
                  validity_months="3", rollover="full")  # fmt: skip
    out = run(before, [("2026-10-05", 500, "credits", "A1")], "2026-10", "2026-11", after)
    _, nov, _ = out["2026-11"]
    assert entries(nov) == [("2026-11-20", "A1:G:2026-10-01", "expired", 3500.0)]


def test_one_time_amendments_add_the_raised_quantity_for_validity_months_unprorated():
    # One-time 4,000 valid 3 months. 1 -> 3 on 11 Oct: (3 - 1) × 4000 = 8,000 valid
    # [11 Oct, 11 Jan). Down to 2 on 20 Oct: nothing. Up to 4 on 25 Dec: L = 3, 4,000 more,
    # valid [25 Dec, 25 Mar).
    cat = seats(
        change("c1", "2026-10-11", "3"),
        change("c2", "2026-10-20", "2"),
        change("c4", "2026-12-25", "4"),
        renewal="none",
        validity_months="3",
    )
    assert granted(cat, "2026-12-01") == {
        "A1:G:2026-10-01": (4000.0, "2026-10-01", "2027-01-01"),
        "A1:G:amend:c1": (8000.0, "2026-10-11", "2027-01-11"),
        "A1:G:amend:c4": (4000.0, "2026-12-25", "2027-03-25"),
    }


def test_amendment_buckets_are_drawn_and_roll_over_like_their_grant():
    # Capped rollover of 300 per bucket. October: 4,000 + amendment 5,419 (see the example);
    # 9,000 used on 25 Oct: expiring first, both end 1 Nov: bucket id order, the grant's
    # bucket (4,000) then the amendment (5,000 of 5,419), 419 left. On 1 Nov the amendment
    # rolls 300 over (its own cap), 119 expire; the grant's bucket is empty.
    cat = seats(change("c1", "2026-10-11", "3"), rollover="capped", rollover_cap="300")
    out = run(cat, [("2026-10-25", 9000, "credits", "A1")], "2026-10", "2026-11")
    _, nov, _ = out["2026-11"]
    amend = "A1:G:2026-10-01:amend:c1"
    assert entries(nov, "rollover_out", "expired") == [
        ("2026-11-01", amend, "rollover_out", 300.0),
        ("2026-11-01", amend, "expired", 119.0),
    ]
    assert nov.rollover_buckets["bucket_id"].tolist() == [amend + ":rollover"]


# --- credit grants -----------------------------------------------------------------------------


def credit(credit_id: str, quantity: str, day: str, **extra: str) -> dict:
    return {"credit_id": credit_id, "account_id": "ACME", "usage_resource_id": "credits",
            "quantity": quantity, "effective_date": day, **extra}  # fmt: skip


def test_a_credit_is_a_bucket_of_its_own_with_its_reason():
    # An account-bound goodwill credit of 250 from 5 Oct to 1 Dec, priority 10 (drawn before the
    # grant's 100): usage of 300 on 6 Oct takes 250 from the credit, 50 from October's grant.
    cat = seats(credits=[credit("k1", "250", "2026-10-05", valid_to="2026-12-01", priority="10",
                                reason="Outage of 3 Oct")])  # fmt: skip
    out = run(cat, [("2026-10-06", 300, "credits", "A1")], "2026-10", "2026-10")
    buckets, oct_, _ = out["2026-10"]
    k = buckets.set_index("bucket_id").loc["credit:k1"]
    assert (k["origin"], k["binding"], k["granted"], k["priority"], k["reason"], k["credit_id"]) == (
        "credit", "account", 250.0, 10, "Outage of 3 Oct", "k1")  # fmt: skip
    assert (f"{k['valid_from']:%Y-%m-%d}", f"{k['valid_to']:%Y-%m-%d}") == (
        "2026-10-05",
        "2026-12-01",
    )
    assert entries(oct_, "debit") == [("2026-10-06", "credit:k1", "debit", 250.0),
                                      ("2026-10-06", "A1:G:2026-10-01", "debit", 50.0)]  # fmt: skip


def test_an_asset_bound_credit_opens_at_the_asset_start_and_ends_by_its_end():
    # Dated 1 Sep for asset A1 (from 1 Oct, cancelled to end 15 Oct): valid [1 Oct, 15 Oct),
    # full quantity 90 (a credit is never prorated); no valid_to of its own.
    cat = seats(change("x", "2026-10-01", end_date="2026-10-15"),
                credits=[credit("k2", "90", "2026-09-01", asset_id="A1")])  # fmt: skip
    assert granted(cat, "2026-10-01")["credit:k2"] == (90.0, "2026-10-01", "2026-10-15")
    b = create_buckets(cat, pd.Timestamp("2026-10-01")).set_index("bucket_id").loc["credit:k2"]
    assert (b["binding"], b["rollover"], b["change_id"]) == ("asset", "none", "x")


def test_a_credit_without_valid_to_never_expires():
    cat = seats(credits=[credit("k3", "10", "2026-10-02")])
    assert granted(cat, "2027-06-01")["credit:k3"] == (10.0, "2026-10-02", None)


# --- commitments -------------------------------------------------------------------------------


def token_commitment(policy: str, negotiated: bool = True):
    """The page's example: 1,000 credits a month committed, account-bound; API calls at 3
    credits per call, storage at 5 per GB; credits at $5.00 in the price book; the commitment
    asset negotiated at $3.00 a credit."""
    return catalog(
        accounts=[ACME],
        usage_resources=[CREDITS,
                         {"usage_resource_id": "api_calls", "name": "API", "unit_of_measure": "call",
                          "token_resource_id": "credits"},
                         {"usage_resource_id": "storage_gb", "name": "Storage",
                          "unit_of_measure": "GB", "token_resource_id": "credits"}],
        token_rates=[{"usage_resource_id": "api_calls", "tokens_per_unit": "3",
                      "effective_from": "2026-01-01"},
                     {"usage_resource_id": "storage_gb", "tokens_per_unit": "5",
                      "effective_from": "2026-01-01"}],
        products=[{"product_id": "COMMIT", "product_name": "Commit"}],
        product_grants=[{"grant_id": "GC", "product_id": "COMMIT", "usage_resource_id": "credits",
                         "quantity": "1000", "renewal": "monthly", "binding": "account",
                         "grant_type": "commit", "commitment_rate": policy}],
        assets=[{"asset_id": "C1", "account_id": "ACME", "product_id": "COMMIT", "quantity": "1",
                 "start_date": "2026-10-01"}],
        price_book=[{**CREDIT_PRICE, "unit_price": "5.00"}],
        negotiated_rates=[{"account_id": "ACME", "asset_id": "C1", **CREDIT_PRICE,
                           "unit_price": "3.00"}] if negotiated else [],
    )  # fmt: skip


COMMIT_USAGE = [("2026-10-10", 800, "api_calls", None), ("2026-10-20", 30, "storage_gb", None)]


def billed(cat, usage=COMMIT_USAGE, period="2026-10"):
    return run(cat, usage, period, period)[period]


@pytest.mark.parametrize(("policy", "amount", "source"), [
    ("bounded", Decimal("7750.00"), "price_book"), ("lowest", Decimal("4650.00"), "commitment")])  # fmt: skip
def test_the_pages_token_commitment_example_to_the_cent(policy, amount, source):
    # 800 calls × 3 = 2,400 credits on 10 Oct, 30 GB × 5 = 150 on 20 Oct: 2,550 credits. The
    # commitment's 1,000 cover the first 1,000 calls' credits; 1,400 + 150 = 1,550 overage.
    # bounded: at the usual rate, the price book's $5.00: $7,750.00. lowest: the commitment
    # asset's own $3.00: $4,650.00.
    _, d, s = billed(token_commitment(policy))
    assert d.usage_summaries["overage"].sum() == 1550.0
    assert s.liable_summaries["amount"].tolist() == [amount]
    assert s.ratable_summaries["rate_source"].tolist() == [source]
    assert set(d.usage_summaries["commitment_bucket_id"]) == {"C1:GC:2026-10-01"}


def test_lowest_without_a_rate_of_the_commitment_asset_prices_as_usual():
    _, _, s = billed(token_commitment("lowest", negotiated=False))
    assert s.liable_summaries["amount"].tolist() == [Decimal("7750.00")]


def test_an_empty_commitment_bucket_still_decides_the_rate():
    # The 1,000 committed credits are used up on 10 Oct (2,400 needed); on 20 Oct the bucket is
    # open but empty, and is still eligible: the 150 credits of storage are priced at $3.00 too.
    _, d, s = billed(token_commitment("lowest"))
    storage = d.usage_summaries.set_index("usage_resource_id").loc["storage_gb"]
    assert (storage["debited"], storage["rate_source"]) == (0.0, "commitment")


def test_commitment_buckets_are_drawn_first_within_a_priority_but_after_lower_priorities():
    # Three account-bound buckets of 100 credits each on 1 Oct: a plain grant at priority 100
    # ending first (expiring first would take it first), a commitment at 100, and a plain grant
    # at priority 50. Usage of 250: priority 50 first (100), then the commitment (100), then
    # the plain grant at 100 (50).
    cat = catalog(
        accounts=[ACME], usage_resources=[CREDITS], price_book=[CREDIT_PRICE],
        products=[{"product_id": p, "product_name": p} for p in ("P", "C", "H")],
        product_grants=[
            {"grant_id": "GP", "product_id": "P", "usage_resource_id": "credits", "quantity": "100",
             "renewal": "none", "validity_months": "1", "binding": "account"},
            {"grant_id": "GC", "product_id": "C", "usage_resource_id": "credits", "quantity": "100",
             "renewal": "none", "validity_months": "6", "binding": "account", "grant_type": "commit"},
            {"grant_id": "GH", "product_id": "H", "usage_resource_id": "credits", "quantity": "100",
             "renewal": "none", "validity_months": "9", "binding": "account", "priority": "50"}],
        assets=[{"asset_id": a, "account_id": "ACME", "product_id": p, "quantity": "1",
                 "start_date": "2026-10-01"} for a, p in (("AP", "P"), ("AC", "C"), ("AH", "H"))],
    )  # fmt: skip
    _, d, _ = billed(cat, [("2026-10-02", 250, "credits", None)])
    assert [(b, q) for _, b, _, q in entries(d, "debit")] == [
        ("AH:GH:2026-10-01", 100.0),
        ("AC:GC:2026-10-01", 100.0),
        ("AP:GP:2026-10-01", 50.0),
    ]


def test_commitment_rate_on_a_plain_grant_is_ignored():
    cat = seats(commitment_rate="lowest")
    _, d, _ = billed(cat, [("2026-10-02", 5000, "credits", "A1")])
    assert d.usage_summaries["commitment_bucket_id"].isna().all()
    assert d.usage_summaries["rate_source"].tolist() == ["price_book"]


# --- input errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(("rows", "column", "expected"), [
    ([change("c1", "2026-10-11")], "quantity", "a quantity or an end_date"),
    ([change("c1", "2026-10-11", "2"), change("c1", "2026-10-12", "3")], "change_id", "a unique"),
    ([{**change("c1", "2026-10-11", "2"), "asset_id": "NOPE"}], "asset_id", "a known asset_id"),
    ([change("c1", "2026-10-11", "2"), change("c2", "2026-10-11", "3")], "effective_date",
     "one change of asset A1 per date"),
    ([change("c1", "2026-10-11", "-2")], "quantity", "a non-negative number"),
    ([change("c1", "2026-10-11", end_date="2026-10-10")], "end_date", "not before effective_date"),
    ([change("c1", "2026-10-05", end_date="2026-10-20"),
      change("c2", "2026-10-10", end_date="2026-10-25")], "end_date", "an extension is a new asset"),
    ([change("c1", "2026-09-30", "2")], "effective_date", "a date within asset A1"),
    ([change("c1", "2026-10-05", end_date="2026-10-20"), change("c2", "2026-10-20", "2")],
     "effective_date", "before its end 2026-10-20"),
])  # fmt: skip
def test_bad_asset_changes_stop_naming_file_row_and_column(rows, column, expected):
    with pytest.raises(CatalogError) as raised:
        seats(*rows)
    error = raised.value
    assert (error.file, error.row, error.column) == ("asset_changes.csv", len(rows), column)
    assert expected in str(error)


@pytest.mark.parametrize(("extra", "column", "expected"), [
    ({"quantity": "0"}, "quantity", "a positive quantity"),
    ({"quantity": "1.0000001"}, "quantity", "at most 6 decimals"),
    ({"account_id": "NOPE"}, "account_id", "a known account_id"),
    ({"asset_id": "NOPE"}, "asset_id", "a known asset_id"),
    ({"usage_resource_id": "NOPE"}, "usage_resource_id", "a known usage_resource_id"),
    ({"priority": "high"}, "priority", "an integer"),
    ({"valid_to": "2026-10-05"}, "valid_to", "a date after effective_date"),
    ({"asset_id": "A1", "effective_date": "2027-02-01"}, "effective_date", "before the end of"),
])  # fmt: skip
def test_bad_credit_grants_stop_naming_file_row_and_column(extra, column, expected):
    changes = [change("x", "2026-10-01", end_date="2027-01-01")]
    with pytest.raises(CatalogError) as raised:
        seats(*changes, credits=[credit("k0", "5", "2026-10-02"),
                                 {**credit("k1", "5", "2026-10-05"), **extra}])  # fmt: skip
    error = raised.value
    assert (error.file, error.row, error.column) == ("credit_grants.csv", 2, column)
    assert expected in str(error)


def test_a_credit_of_a_converted_resource_or_another_accounts_asset_is_refused():
    api = {"usage_resource_id": "api", "name": "API", "unit_of_measure": "call",
           "token_resource_id": "credits"}  # fmt: skip
    base = dict(accounts=[ACME, {**ACME, "account_id": "OTHER"}], usage_resources=[CREDITS, api],
                products=[{"product_id": "PRO", "product_name": "Pro"}],
                assets=[{"asset_id": "A1", "account_id": "ACME", "product_id": "PRO",
                         "quantity": "1", "start_date": "2026-10-01"}])  # fmt: skip
    for row, column in [({**credit("k", "5", "2026-10-02"), "usage_resource_id": "api"},
                         "usage_resource_id"),
                        ({**credit("k", "5", "2026-10-02"), "account_id": "OTHER",
                          "asset_id": "A1"}, "asset_id")]:  # fmt: skip
        with pytest.raises(CatalogError) as raised:
            catalog(**base, credit_grants=[row])
        assert (raised.value.file, raised.value.column) == ("credit_grants.csv", column)


@pytest.mark.parametrize("column", ["grant_type", "commitment_rate"])
def test_a_grant_type_or_commitment_rate_outside_its_values_is_refused(column):
    with pytest.raises(CatalogError) as raised:
        seats(**{column: "sometimes"})
    assert (raised.value.file, raised.value.column) == ("product_grants.csv", column)


def test_a_commitments_rollover_bucket_is_a_commitment_bucket_too():
    # Committed 1,000 credits monthly from 1 Oct (full rollover, lowest; C1 negotiated at $3.00,
    # the price book at $5.00) and a plain pack of 500 from 1 Nov valid 6 months. October uses
    # 600: 400 roll over on 1 Nov. On 10 Nov 2,000 are drawn: the rollover 400 (a commitment
    # bucket, rollover before fresh), November's commitment 1,000, then the pack 500; 100 overage
    # at the commitment asset's rate, chosen by the rollover bucket: 100 × $3.00 = $300.00.
    cat = catalog(
        accounts=[ACME], usage_resources=[CREDITS],
        products=[{"product_id": "C", "product_name": "C"}, {"product_id": "P", "product_name": "P"}],
        product_grants=[
            {"grant_id": "GC", "product_id": "C", "usage_resource_id": "credits", "quantity": "1000",
             "renewal": "monthly", "rollover": "full", "binding": "account", "grant_type": "commit",
             "commitment_rate": "lowest"},
            {"grant_id": "GP", "product_id": "P", "usage_resource_id": "credits", "quantity": "500",
             "renewal": "none", "validity_months": "6", "binding": "account"}],
        assets=[{"asset_id": "C1", "account_id": "ACME", "product_id": "C", "quantity": "1",
                 "start_date": "2026-10-01"},
                {"asset_id": "P1", "account_id": "ACME", "product_id": "P", "quantity": "1",
                 "start_date": "2026-11-01"}],
        price_book=[{**CREDIT_PRICE, "unit_price": "5.00"}],
        negotiated_rates=[{"account_id": "ACME", "asset_id": "C1", **CREDIT_PRICE,
                           "unit_price": "3.00"}],
    )  # fmt: skip
    out = run(cat, [("2026-10-05", 600, "credits", None), ("2026-11-10", 2000, "credits", None)],
              "2026-10", "2026-11")  # fmt: skip
    _, nov, s = out["2026-11"]
    assert [(b, q) for _, b, _, q in entries(nov, "debit")] == [
        ("C1:GC:2026-10-01:rollover", 400.0), ("C1:GC:2026-11-01", 1000.0),
        ("P1:GP:2026-11-01", 500.0)]  # fmt: skip
    assert nov.usage_summaries["commitment_bucket_id"].tolist() == ["C1:GC:2026-10-01:rollover"]
    assert s.liable_summaries["amount"].tolist() == [Decimal("300.00")]
    assert nov.rollover_buckets.set_index("bucket_id").loc[
        "C1:GC:2026-10-01:rollover", "grant_type"] == "commit"  # fmt: skip


def test_each_asset_is_judged_on_its_own_timeline():
    # A1 (Oct 1 - Dec 31) is cut to end Oct 20, then changed on Oct 25: outside A1 (row 1).
    # A2 (same bounds) changes on Oct 20 (same date as A1's, another asset) and on Oct 25:
    # within A2, whose end was never cut. Rows are judged per asset, whatever the file order.
    day = pd.Timestamp
    assets = pd.DataFrame({"asset_id": ["A1", "A2"], "start_date": [day("2026-10-01")] * 2,
                           "end_date": [day("2027-01-01")] * 2})  # fmt: skip
    changes = pd.DataFrame({
        "asset_id": ["A2", "A1", "A1", "A2"],
        "effective_date": [day("2026-10-25"), day("2026-10-25"), day("2026-10-05"),
                           day("2026-10-20")],
        "end_date": [pd.NaT, pd.NaT, day("2026-10-20"), pd.NaT],
    })  # fmt: skip
    assert change_problems(changes, assets) == [
        (1, "effective_date", "a date within asset A1 (from 2026-10-01, before its end 2026-10-20)")
    ]
