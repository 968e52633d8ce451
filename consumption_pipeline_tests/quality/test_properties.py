"""Properties over random catalogs and usage (hypothesis): whatever is sold and consumed, three
periods in a row from an empty warehouse keep docs/rules.md's conservation laws, and no balance
ever goes below zero.

The catalogs are valid (every billed resource priced in every currency, tiers from 0, no
overlapping rates), so every period bills; what varies is everything the rules branch on:
renewal, validity, rollover and caps, binding, priority, proration, drawdown order, asset dates,
token conversion, aggregation, pricing model, contracts that change (quantity changes,
cancellations, credit grants, commitments under either rate policy) and the events themselves.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumption_pipeline.domain.buckets import create_buckets
from consumption_pipeline.domain.catalog import REQUIRED
from consumption_pipeline.domain.drawdown import draw_down
from consumption_pipeline.domain.ingest import ingest
from consumption_pipeline.domain.quantities import to_micro
from consumption_pipeline.domain.rating import rate_usage
from consumption_pipeline.domain.summaries import summarize
from consumption_pipeline.quality.conservation import (
    bucket_balances_conserved,
    drawdown_conserved,
    events_reconcile,
    liable_equals_ratable,
)
from consumption_pipeline.quality.inputs import check_catalog
from consumption_pipeline.quality.outcome import Outcome
from consumption_pipeline_tests.builders import catalog, event_file, text_frame

PERIODS = [pd.Timestamp("2026-09-01"), pd.Timestamp("2026-10-01"), pd.Timestamp("2026-11-01")]
CURRENCIES = ["USD", "EUR", "JPY"]
BILLED = ["credits", "api_calls"]  # the drawdown resources: credits (token) and api_calls
ORDERS = ["", "expiring_first", "granted_first", "granted_last"]
DAYS = pd.date_range("2026-07-01", "2026-11-30").strftime("%Y-%m-%d").tolist()

quantities = st.one_of(
    st.integers(0, 3000).map(str),
    st.decimals(0, 500, places=6, allow_nan=False, allow_infinity=False).map(lambda d: f"{d:f}"),
)


@st.composite
def grants(draw, index: int) -> dict:
    renewal = draw(st.sampled_from(["none", "monthly", "quarterly", "annual"]))
    rollover = draw(st.sampled_from(["none", "full", "capped"]))
    return {
        "grant_id": f"G{index}", "product_id": f"P{draw(st.integers(0, 1))}",
        "usage_resource_id": draw(st.sampled_from(BILLED)), "quantity": draw(quantities),
        "renewal": renewal,
        "validity_months": str(draw(st.integers(1, 3))) if draw(st.booleans()) else "",
        "rollover": rollover, "rollover_cap": draw(quantities) if rollover == "capped" else "",
        "max_rollovers": str(draw(st.integers(0, 2))),
        "binding": draw(st.sampled_from(["asset", "account"])),
        "priority": str(draw(st.sampled_from([10, 100]))),
        "prorate": draw(st.sampled_from(["true", "false"])),
        "grant_type": draw(st.sampled_from(["", "grant", "commit"])),
        "commitment_rate": draw(st.sampled_from(["", "bounded", "lowest"])),
    }  # fmt: skip


@st.composite
def changes(draw, asset: dict) -> list[dict]:
    """Up to two changes of one asset that keep its timeline valid: dates inside the asset as it
    stands, ends never later than the end then in force."""
    end, rows = asset["end_date"], []
    days = [d for d in DAYS if d > asset["start_date"] and (not end or d < end)]
    for day in sorted(draw(st.sets(st.sampled_from(days), max_size=2)) if days else []):
        if end and day >= end:
            break
        kind = draw(st.sampled_from(["quantity", "end", "both"]))
        row = {"change_id": f"{asset['asset_id']}-{day}", "asset_id": asset["asset_id"],
               "effective_date": day, "quantity": "", "end_date": ""}  # fmt: skip
        if kind != "end":
            row["quantity"] = str(draw(st.integers(0, 5)))
        if kind != "quantity":
            ends = [d for d in DAYS if d >= day and (not end or d <= end)]
            end = row["end_date"] = draw(st.sampled_from(ends[::7] or [day]))
        rows.append(row)
    return rows


@st.composite
def credits(draw, accounts: list[dict], assets: list[dict], ends: dict) -> list[dict]:
    """Up to three credits, account-bound or within an asset's dates."""
    rows = []
    for i in range(draw(st.integers(0, 3))):
        account = draw(st.sampled_from(accounts))
        own = [a for a in assets if a["account_id"] == account["account_id"]]
        asset = draw(st.sampled_from([None, *own]))
        end = ends.get(asset["asset_id"]) if asset else ""
        days = [d for d in DAYS if not end or d < end]
        day = draw(st.sampled_from(days))
        after = max(day, asset["start_date"]) if asset else day
        valid_to = draw(st.sampled_from(["", *[d for d in DAYS if d > after][::11]]))
        rows.append({"credit_id": f"K{i}", "account_id": account["account_id"],
                     "asset_id": asset["asset_id"] if asset else "",
                     "usage_resource_id": draw(st.sampled_from(BILLED)), "quantity": draw(quantities.filter(lambda q: float(q) > 0)),
                     "effective_date": day, "valid_to": valid_to,
                     "priority": draw(st.sampled_from(["", "-5", "10", "100"])),
                     "reason": draw(st.sampled_from(["", "goodwill", "dispute, settled"]))})  # fmt: skip
    return rows


@st.composite
def rates(draw, resource: str, currency: str) -> list[dict]:
    """One rate of a random model; tiers (graduated, volume) start at 0 and increase."""
    model = draw(st.sampled_from(["per_unit", "graduated", "volume", "package"]))
    price = st.decimals(0, 5, places=4).map(lambda d: f"{d:f}")
    row = {"usage_resource_id": resource, "currency": currency, "pricing_model": model,
           "effective_from": "2026-01-01"}  # fmt: skip
    if model == "package":
        return [{**row, "unit_price": draw(price), "package_size": str(draw(st.integers(1, 500)))}]
    if model == "per_unit":
        return [{**row, "unit_price": draw(price)}]
    uppers = sorted(draw(st.sets(st.integers(1, 5000), max_size=2)))
    return [{**row, "tier_lower": str(lower), "unit_price": draw(price),
             "flat_fee": draw(st.sampled_from(["", "0", "1.5"]))} for lower in [0, *uppers]]  # fmt: skip


@st.composite
def sources(draw) -> tuple[dict, list[dict]]:
    """Catalog files (rows per file) and usage events over the three periods."""
    accounts = [{"account_id": f"AC{i}", "account_name": f"Account {i}",
                 "currency": draw(st.sampled_from(CURRENCIES)),
                 "drawdown_order": draw(st.sampled_from(ORDERS))}
                for i in range(draw(st.integers(1, 3)))]  # fmt: skip
    resources = [
        {"usage_resource_id": "credits", "name": "Credits", "unit_of_measure": "credit",
         "category": "token"},
        {"usage_resource_id": "compute_hours", "name": "Compute", "unit_of_measure": "hour",
         "token_resource_id": "credits"},
        {"usage_resource_id": "api_calls", "name": "API", "unit_of_measure": "call",
         "aggregation_method": draw(st.sampled_from(["sum", "peak"])),
         "aggregation_period": draw(st.sampled_from(["daily", "monthly"])),
         "overage_chargeable": draw(st.sampled_from(["true", "false"]))},
    ]  # fmt: skip
    assets = []
    for account in accounts:
        for _ in range(draw(st.integers(0, 3))):
            start = draw(st.sampled_from(DAYS[:-1]))
            later = [d for d in DAYS if d > start]
            assets.append({
                "asset_id": f"A{len(assets)}", "account_id": account["account_id"],
                "product_id": f"P{draw(st.integers(0, 1))}", "quantity": str(draw(st.integers(1, 3))),
                "start_date": start, "end_date": draw(st.sampled_from(["", *later[::9]])),
                "drawdown_order": draw(st.sampled_from(ORDERS)),
            })  # fmt: skip
    asset_changes = [row for a in assets for row in draw(changes(a))]
    ends = {a["asset_id"]: a["end_date"] for a in assets}
    ends.update({c["asset_id"]: c["end_date"] for c in asset_changes if c["end_date"]})
    currency = {a["account_id"]: a["currency"] for a in accounts}
    negotiated = [{"account_id": a["account_id"], "asset_id": a["asset_id"], **row}
                  for a in assets if draw(st.booleans())
                  for row in draw(rates(draw(st.sampled_from(BILLED)), currency[a["account_id"]]))]  # fmt: skip
    files = {
        "asset_changes": asset_changes, "credit_grants": draw(credits(accounts, assets, ends)),
        "negotiated_rates": negotiated,
        "accounts": accounts, "usage_resources": resources,
        "token_rates": [{"usage_resource_id": "compute_hours",
                         "tokens_per_unit": draw(st.sampled_from(["0.5", "1", "2.5", "10"])),
                         "effective_from": "2026-01-01"}],
        "products": [{"product_id": "P0", "product_name": "Zero"},
                     {"product_id": "P1", "product_name": "One"}],
        "product_grants": [draw(grants(i)) for i in range(draw(st.integers(0, 3)))],
        "assets": assets,
        "price_book": [row for r in BILLED for c in CURRENCIES for row in draw(rates(r, c))],
    }  # fmt: skip
    events = []
    for i in range(draw(st.integers(0, 25))):
        account = draw(st.sampled_from(accounts))
        own = [a["asset_id"] for a in assets if a["account_id"] == account["account_id"]]
        events.append({
            "event_id": f"e{i}", "account_id": account["account_id"],
            "asset_id": draw(st.sampled_from(["", *own])),
            "usage_resource_id": draw(st.sampled_from(["compute_hours", "api_calls"])),
            "quantity": draw(quantities),
            # From 06:30 to 17:30 at offsets within 5 hours: the UTC date is the written date.
            "occurred_at": f"{draw(st.sampled_from(DAYS[62:]))}T{draw(st.integers(6, 17)):02d}"
                           f":30:00{draw(st.sampled_from(['Z', '+02:00', '-05:00']))}",
        })  # fmt: skip
    return files, events


def assert_passed(*outcomes: Outcome) -> None:
    failed = [o.summary for o in outcomes if not o.passed]
    assert not failed, failed


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sources())
def test_three_periods_keep_every_conservation_law_and_no_balance_goes_negative(source):
    files, events = source
    cat, raw = catalog(**files), [event_file(events)]
    carried, accepted = pd.DataFrame(), 0
    for period in PERIODS:
        ingested = ingest(raw, cat, period, "UTC")
        buckets = create_buckets(cat, period)
        drawn = draw_down(rate_usage(ingested.usage_events, cat, period), buckets, carried, cat,
                          period)  # fmt: skip
        summaries = summarize(drawn.usage_summaries, cat, period, pd.Timestamp("2026-12-31"))
        previous = carried.reindex(columns=["bucket_id", "closing"])
        assert_passed(
            events_reconcile(len(events), len(ingested.usage_events), ingested.quarantined_events,
                             ingested.reconciliation),
            drawdown_conserved(drawn.usage_summaries, drawn.entitlement_ledger),
            bucket_balances_conserved(drawn.bucket_balances, drawn.entitlement_ledger, previous),
            liable_equals_ratable(summaries.liable_summaries, summaries.ratable_summaries),
        )  # fmt: skip
        # The same laws, stated once more without the checks' code.
        balances, ledger = drawn.bucket_balances, drawn.entitlement_ledger
        assert (to_micro(balances["closing"]) >= 0).all()
        assert (to_micro(ledger["closing_balance"]) >= 0).all()
        usage = drawn.usage_summaries
        assert (to_micro(usage["debited"]) + to_micro(usage["overage"])
                == to_micro(usage["drawdown_quantity"])).all()  # fmt: skip
        owed = sum(summaries.liable_summaries["amount"], Decimal(0))
        assert owed == sum(summaries.ratable_summaries["amount"], Decimal(0))
        accepted += len(ingested.usage_events)
        all_buckets = pd.concat([buckets, drawn.rollover_buckets], ignore_index=True)
        still_open = balances[balances["is_open"]]
        carried = all_buckets.merge(still_open[["bucket_id", "closing"]], on="bucket_id")
    # Every event is valid, unique and dated in one of the periods: each is accepted once.
    assert accepted == len(events)


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sources())
def test_the_input_checks_pass_every_valid_catalog(source):
    files, _ = source
    frames = {name: text_frame(files[name.removesuffix(".csv")]) for name in REQUIRED
              if files.get(name.removesuffix(".csv"))}  # fmt: skip
    frames = {**{n: pd.DataFrame(columns=c, dtype="str") for n, c in REQUIRED.items()}, **frames}
    assert_passed(*check_catalog(frames))
