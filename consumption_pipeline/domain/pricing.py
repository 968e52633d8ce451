"""Pricing models of docs/rules.md stage 5: per_unit, graduated, volume and package.

A tier covers the quantities above its `tier_lower` up to the next tier's `tier_lower`, so with
tiers at 0 and 1,000 the 1,000th unit is in the first tier. Amounts here are unrounded; rounding
to the currency's minor unit happens once per ratable line.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal


@dataclass(frozen=True)
class Tier:
    lower: Decimal
    unit_price: Decimal
    flat_fee: Decimal = Decimal(0)


def price(
    quantity: Decimal, model: str, tiers: list[Tier], package_size: Decimal | None = None
) -> Decimal:
    """The unrounded amount for `quantity` units under one rate (its tiers in any order)."""
    if quantity <= 0:
        return Decimal(0)
    tiers = sorted(tiers, key=lambda t: t.lower)
    if model == "per_unit":
        return quantity * tiers[0].unit_price
    if model == "package":
        packages = (quantity / package_size).to_integral_value(rounding=ROUND_CEILING)
        return packages * tiers[0].unit_price
    if model == "graduated":
        return sum((_graduated_part(quantity, t, u) for t, u in _with_upper(tiers)), Decimal(0))
    if model == "volume":
        tier = next(t for t, upper in _with_upper(tiers) if upper is None or quantity <= upper)
        return quantity * tier.unit_price + tier.flat_fee
    raise ValueError(f"unknown pricing model {model!r}")


def _with_upper(tiers: list[Tier]) -> list[tuple[Tier, Decimal | None]]:
    uppers = [t.lower for t in tiers[1:]] + [None]
    return list(zip(tiers, uppers, strict=True))


def _graduated_part(quantity: Decimal, tier: Tier, upper: Decimal | None) -> Decimal:
    if quantity <= tier.lower:
        return Decimal(0)
    in_tier = (quantity if upper is None else min(quantity, upper)) - tier.lower
    return in_tier * tier.unit_price + tier.flat_fee
