"""Readable numbers for the dashboard: thousands separators, units, money in the currency's
minor unit (docs/rules.md stage 5, "Money"), exact decimals (no float on the way to the page)."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from consumption_pipeline.domain.money import minor_unit, round_money

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
_MINUS = "\N{MINUS SIGN}"


def number(value: Decimal | int | None) -> str:
    """1234567.5 -> '1,234,567.5': every decimal the warehouse keeps, none it does not."""
    if value is None:
        return "—"
    text = format(Decimal(value).normalize(), ",f")
    return text.replace("-", _MINUS) if text.startswith("-") else text


def unit_label(unit: str, value: Decimal | int | None = None) -> str:
    """A unit of measure as written after a quantity: lower-case words take a plural 's'
    ('hour' -> 'hours'), abbreviations do not ('GB')."""
    if value is not None and Decimal(value) == 1:
        return unit
    return f"{unit}s" if unit.isalpha() and unit.islower() and not unit.endswith("s") else unit


def quantity(value: Decimal | int | None, unit: str) -> str:
    """1800 credits -> '1,800 credits'."""
    if value is None:
        return "—"
    return f"{number(value)} {unit_label(unit, value)}"


def money(amount: Decimal | None, currency: str) -> str:
    """An amount rounded half-up to the currency's minor unit: '$2.00', '€11.27', '¥51,266',
    '12.345 KWD'."""
    if amount is None:
        return "—"
    rounded = round_money(Decimal(amount), currency)
    return _with_currency(format(abs(rounded), f",.{minor_unit(currency)}f"), rounded, currency)


def unit_price(price: Decimal | None, currency: str) -> str:
    """A price per unit keeps its own decimals beyond the minor unit: '€0.015', '$0.02'."""
    if price is None:
        return "—"
    places = max(minor_unit(currency), -Decimal(price).normalize().as_tuple().exponent)
    return _with_currency(format(abs(Decimal(price)), f",.{places}f"), Decimal(price), currency)


def _with_currency(digits: str, signed: Decimal, currency: str) -> str:
    sign = _MINUS if signed < 0 else ""
    symbol = _SYMBOLS.get(currency)
    return f"{sign}{symbol}{digits}" if symbol else f"{sign}{digits} {currency}"


def percent(part: Decimal | None, whole: Decimal | None) -> str:
    """Share of a whole, one decimal, rounded half-up: 800 of 1,000 -> '80.0%'."""
    if part is None or not whole:
        return "—"
    share = (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), ROUND_HALF_UP)
    return f"{format(share, ',f')}%"


def period(value: date) -> str:
    """A billing period as 'YYYY-MM'."""
    return value.strftime("%Y-%m")
