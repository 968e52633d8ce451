"""Money (DOMAIN.md stage 5): decimal amounts rounded half-up to the currency's minor unit."""

from __future__ import annotations

import functools
from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 currencies whose minor unit is not 2; every other code has 2.
_MINOR_UNITS = {
    **dict.fromkeys(
        ["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
         "VND", "VUV", "XAF", "XOF", "XPF"], 0),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    "CLF": 4, "UYW": 4,
}  # fmt: skip


def minor_unit(currency: str) -> int:
    return _MINOR_UNITS.get(currency, 2)


def round_money(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(_minor(currency), rounding=ROUND_HALF_UP)


@functools.cache
def _minor(currency: str) -> Decimal:
    """The currency's minor unit as an exponent, e.g. Decimal('0.01')."""
    return Decimal(1).scaleb(-minor_unit(currency))
