"""Readable numbers for the dashboard: the formats of domain/formatting.py (thousands
separators, money in the currency's minor unit, exact decimals: no float on the way to the
page), written as a page shows them: currency symbols where they exist ('$2.00', '¥51,266') and
a typographic minus sign."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from consumption_pipeline.domain import formatting
from consumption_pipeline.domain.formatting import percent, unit_label

__all__ = ["money", "number", "percent", "period", "quantity", "unit_label", "unit_price"]
_MINUS = "\N{MINUS SIGN}"


def number(value: Decimal | int | None) -> str:
    """1234567.5 -> '1,234,567.5': every decimal the warehouse keeps, none it does not."""
    return _typographic(formatting.number(value))


def quantity(value: Decimal | int | None, unit: str) -> str:
    """1800 credits -> '1,800 credits'."""
    return _typographic(formatting.quantity(value, unit))


def money(amount: Decimal | None, currency: str) -> str:
    """An amount rounded half-up to the currency's minor unit: '$2.00', '€11.27', '¥51,266',
    '12.345 KWD'."""
    return _typographic(formatting.money(amount, currency, symbol=True))


def unit_price(price: Decimal | None, currency: str) -> str:
    """A price per unit keeps its own decimals beyond the minor unit: '€0.015', '$0.02'."""
    return _typographic(formatting.unit_price(price, currency, symbol=True))


def _typographic(text: str) -> str:
    return _MINUS + text[1:] if text.startswith("-") else text


def period(value: date) -> str:
    """A billing period as 'YYYY-MM'."""
    return value.strftime("%Y-%m")
