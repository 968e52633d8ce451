"""Stage 5 of DOMAIN.md: ratable summaries (overage priced) and liable summaries (invoice lines).

Overage is priced per (account, asset, drawdown resource) and per rate: when the rate changes
inside the period each part is priced on its own, its tiers counted from zero. Each ratable line
is rounded half-up to the currency's minor unit; a liable amount is the sum of its rounded parts.
Where DOMAIN.md is silent: a period ends on the first day of the next month (half-open), so with
3 grace days October is final from 4 November; a net unit rate is amount / overage to 6 decimals
(0 without overage); zero-quantity usage still gives its (asset, resource) a line owing zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd

from consumption_pipeline.domain.calendar import period_bounds
from consumption_pipeline.domain.catalog import Catalog
from consumption_pipeline.domain.money import round_money
from consumption_pipeline.domain.pricing import Tier, price
from consumption_pipeline.domain.quantities import from_micro, micro_to_decimal, to_micro

LINE = ["account_id", "asset_key", "drawdown_resource_id"]
RATE = ["rate_source", "rate_asset_id", "rate_effective_from"]
UNIT_RATE = Decimal("0.000001")


class PricingError(ValueError):
    """Chargeable overage with no price in the account's currency: the period must not be billed."""


@dataclass(frozen=True)
class Summaries:
    ratable_summaries: pd.DataFrame
    liable_summaries: pd.DataFrame


def summarize(usage: pd.DataFrame, catalog: Catalog, period: pd.Timestamp, as_of: pd.Timestamp,
              grace_days: int = 3) -> Summaries:  # fmt: skip
    """Price the overage of drawn-down usage summaries and build the period's invoice lines."""
    frame = usage.assign(
        asset_key=usage["asset_id"].fillna(""),
        overage_micro=to_micro(usage["overage"]).astype("int64"),
        drawdown_micro=to_micro(usage["drawdown_quantity"]).astype("int64"),
        debited_micro=to_micro(usage["debited"]).astype("int64"),
    )
    ratable = _ratable(frame, catalog)
    liable = _liable(frame, ratable, _status(period, as_of, grace_days))
    return Summaries(ratable, liable)


def _status(period: pd.Timestamp, as_of: pd.Timestamp, grace_days: int) -> str:
    _, end = period_bounds(period)
    return "final" if pd.Timestamp(as_of) >= end + pd.Timedelta(days=grace_days) else "provisional"


def _ratable(frame: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    charged = frame[frame["overage_micro"] > 0]
    keys = [*LINE, *RATE, "currency", "overage_chargeable"]
    parts = charged.groupby(keys, dropna=False)["overage_micro"].sum().reset_index()
    rows = [_price_part(part, catalog) for part in parts.itertuples(index=False)]
    columns = ["account_id", "asset_id", "usage_resource_id", *RATE, "pricing_model",
               "overage_quantity", "net_unit_rate", "amount", "currency"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _price_part(part, catalog: Catalog) -> dict:
    asset = part.asset_key or None
    quantity = micro_to_decimal(part.overage_micro)
    model, amount = None, round_money(Decimal(0), part.currency)
    if pd.isna(part.rate_source):
        if part.overage_chargeable:
            raise PricingError(
                f"no price for usage resource '{part.drawdown_resource_id}' in {part.currency} for "
                f"account '{part.account_id}'{f' asset {asset!r}' if asset else ''}: overage of "
                f"{quantity} cannot be billed (price_book.csv / negotiated_rates.csv)"
            )
    else:
        rows = _rate_rows(part, catalog)
        model = rows["pricing_model"].iloc[0]
        if part.overage_chargeable:
            tiers = [Tier(r.tier_lower, r.unit_price, r.flat_fee) for r in rows.itertuples()]
            size = rows["package_size"].iloc[0]
            size = None if pd.isna(size) else micro_to_decimal(size)
            amount = round_money(price(quantity, model, tiers, size), part.currency)
    return {
        "account_id": part.account_id, "asset_id": asset,
        "usage_resource_id": part.drawdown_resource_id,
        "rate_source": None if pd.isna(part.rate_source) else part.rate_source,
        "rate_asset_id": None if pd.isna(part.rate_asset_id) else part.rate_asset_id,
        "rate_effective_from": part.rate_effective_from, "pricing_model": model,
        "overage_quantity": float(from_micro(pd.Series([part.overage_micro])).iloc[0]),
        "net_unit_rate": _unit_rate(amount, part.overage_micro), "amount": amount,
        "currency": part.currency,
    }  # fmt: skip


def _rate_rows(part, catalog: Catalog) -> pd.DataFrame:
    rates = catalog.rates
    match = (
        rates["level"].eq(part.rate_source)
        & rates["usage_resource_id"].eq(part.drawdown_resource_id)
        & rates["currency"].eq(part.currency)
        & rates["effective_from"].eq(part.rate_effective_from)
    )  # fmt: skip
    if part.rate_source != "price_book":
        match &= rates["account_id"].eq(part.account_id)
    if part.rate_source == "asset":
        match &= rates["asset_id"].eq(part.rate_asset_id)
    return rates[match.fillna(False)]


def _unit_rate(amount: Decimal, overage_micro: int) -> Decimal:
    if overage_micro == 0:
        return Decimal(0)
    return (amount / micro_to_decimal(overage_micro)).quantize(UNIT_RATE, rounding=ROUND_HALF_UP)


def _liable(frame: pd.DataFrame, ratable: pd.DataFrame, status: str) -> pd.DataFrame:
    lines = frame.groupby(LINE, dropna=False).agg(
        consumption=("drawdown_micro", "sum"), debited=("debited_micro", "sum"),
        overage_quantity=("overage_micro", "sum"), currency=("currency", "first"),
    ).reset_index()  # fmt: skip
    ratable_key = ratable["asset_id"].fillna("")
    amounts = ratable.groupby([ratable["account_id"], ratable_key, ratable["usage_resource_id"]])[
        "amount"
    ].sum()
    keys = pd.MultiIndex.from_frame(lines[LINE])
    lines["amount"] = [amounts.get(k, Decimal(0)) for k in keys]
    lines["amount"] = [
        round_money(Decimal(a), c) for a, c in zip(lines["amount"], lines["currency"], strict=True)
    ]
    lines["net_unit_rate"] = [
        _unit_rate(a, int(o))
        for a, o in zip(lines["amount"], lines["overage_quantity"], strict=True)
    ]
    return pd.DataFrame({
        "account_id": lines["account_id"],
        "asset_id": lines["asset_key"].where(lines["asset_key"].ne(""), pd.NA),
        "usage_resource_id": lines["drawdown_resource_id"],
        "consumption": from_micro(lines["consumption"]), "debited": from_micro(lines["debited"]),
        "overage_quantity": from_micro(lines["overage_quantity"]),
        "net_unit_rate": lines["net_unit_rate"], "amount": lines["amount"],
        "currency": lines["currency"], "status": status,
    })  # fmt: skip
