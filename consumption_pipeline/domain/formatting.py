"""How numbers read, in every output (docs/rules.md stage 5, "Money"): one place for the
terminal, the Markdown reports (trace, ad hoc), the exported files and the dashboard.

- **Money** shows the currency's minor unit (domain/money.py), rounded half-up: "1,234,567.50
  USD", "80 JPY", "12.345 KWD". A price per unit keeps the decimals it has beyond the minor unit
  and at least the minor unit: "0.02 USD", "0.015 EUR", "3 JPY".
- **Quantities** (units, credits) show every decimal they have and none they do not: "1,800",
  "2,528.4"; a float from the warehouse is read to its 6 decimals first (quantities are exact to
  10⁻⁶), so 80.0 reads "80" and 0.1 + 0.2 reads "0.3".
- **For people** (`number`, `money`, ...): thousands separators, an absent value "—".
- **For programs** (`plain_*`, the exported CSV and JSON): no separators, the same decimals (money
  always at its minor unit, "1234567.50", "1234"), a '-' sign, an absent value None (an empty
  CSV cell).
"""

from __future__ import annotations

import math
import numbers
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from consumption_pipeline.domain.money import minor_unit, round_money

ABSENT = "—"  # an absent value, for people
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
_MICRO = Decimal("0.000001")

# Columns that hold money in the reports and exports (their row's `currency` says which), and
# the prices per unit among them. Other numeric columns are quantities (burn and demand rates
# are quantities per day).
PRICE_COLUMNS = frozenset({"unit_price", "net_unit_rate"})


def is_money_column(name: str) -> bool:
    """'amount', 'billed_amount', 'projected_period_amount', 'flat_fee', and the prices."""
    return (
        name == "amount" or name.endswith("_amount") or name == "flat_fee" or is_price_column(name)
    )


def is_price_column(name: str) -> bool:
    return name in PRICE_COLUMNS


def decimal(value: object) -> Decimal | None:
    """A number as an exact Decimal, None when absent (None, NaN, NA, NaT). A float is a
    quantity that travelled as float64: it is read to 6 decimals."""
    if value is None or isinstance(value, bool | str):
        return None if value is None else _not_a_number(value)
    if isinstance(value, Decimal):
        return None if value.is_nan() else value
    if isinstance(value, numbers.Integral):
        return Decimal(int(value))
    if isinstance(value, numbers.Real):
        as_float = float(value)
        if math.isnan(as_float):
            return None
        if math.isinf(as_float):
            raise ValueError(f"{value!r} is not a finite number")
        exact = Decimal(repr(as_float))
        try:
            return exact.quantize(_MICRO)
        except InvalidOperation:  # beyond 28 digits: whole units, as float64 keeps them
            return exact
    return None  # pd.NA, pd.NaT and the like


def _not_a_number(value: object) -> Decimal:
    raise ValueError(f"{value!r} is not a number")


def number(value: object) -> str:
    """For people: 1234567.5 -> '1,234,567.5', 1800.0 -> '1,800', absent -> '—'."""
    exact = decimal(value)
    return ABSENT if exact is None else _digits(_trimmed(exact), ",")


def plain_number(value: object) -> str | None:
    """For programs: 1234567.5 -> '1234567.5', 1800.0 -> '1800', absent -> None."""
    exact = decimal(value)
    return None if exact is None else _digits(_trimmed(exact), "")


def money(amount: object, currency: str, *, symbol: bool = False) -> str:
    """For people: '1,234,567.50 USD', '80 JPY', '-3.00 USD'; with `symbol`, '$1,234,567.50',
    '¥80' (codes without a symbol stay after the digits); absent -> '—'."""
    digits = money_digits(amount, currency)
    return ABSENT if digits == ABSENT else _with_currency(digits, currency, symbol)


def money_digits(amount: object, currency: str) -> str:
    """For people, the currency named elsewhere (a table's column): '1,234,567.50', '80'."""
    exact = decimal(amount)
    return ABSENT if exact is None else _money(exact, currency, ",")


def plain_money(amount: object, currency: str) -> str | None:
    """For programs: '1234567.50', '80' (JPY), '-3.00'; absent -> None."""
    exact = decimal(amount)
    return None if exact is None else _money(exact, currency, "")


def unit_price(price: object, currency: str, *, symbol: bool = False) -> str:
    """For people: a price per unit keeps its decimals beyond the minor unit: '0.015 EUR',
    '0.02 USD', '3 JPY' ('€0.015' with `symbol`); absent -> '—'."""
    digits = price_digits(price, currency)
    return ABSENT if digits == ABSENT else _with_currency(digits, currency, symbol)


def price_digits(price: object, currency: str) -> str:
    """For people, the currency named elsewhere: '0.02', '0.004287', '3'."""
    exact = decimal(price)
    return ABSENT if exact is None else _price(exact, currency, ",")


def plain_price(price: object, currency: str) -> str | None:
    """For programs: '0.02', '0.004287', '3' (JPY), '0.00' for nothing; absent -> None."""
    exact = decimal(price)
    return None if exact is None else _price(exact, currency, "")


def cell(value: object, column: str, currency: object = None) -> str | None:
    """A value of a report's `column` for people: money and prices in `currency` (the row's)
    when the column holds money, a quantity otherwise; None when it is not a number."""
    if not _is_number(value):
        return None
    text = _column_text(value, column, currency, ",")
    return ABSENT if text is None else text


def plain_cell(value: object, column: str, currency: object = None) -> object:
    """The same for programs; a value that is not a number is returned as it is."""
    return _column_text(value, column, currency, "") if _is_number(value) else value


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Number | Decimal)


def _column_text(value: object, column: str, currency: object, separator: str) -> str | None:
    exact = decimal(value)
    if exact is None:
        return None
    if isinstance(currency, str) and currency and is_money_column(column):
        return (_price if is_price_column(column) else _money)(exact, currency, separator)
    return _digits(_trimmed(exact), separator)


def unit_label(unit: str, value: object = None) -> str:
    """A unit of measure as written after a quantity: lower-case words take a plural 's'
    ('hour' -> 'hours'), abbreviations do not ('GB')."""
    if value is not None and decimal(value) == 1:
        return unit
    return f"{unit}s" if unit.isalpha() and unit.islower() and not unit.endswith("s") else unit


def quantity(value: object, unit: str) -> str:
    """1800 credits -> '1,800 credits', 1 hour -> '1 hour'."""
    exact = decimal(value)
    return ABSENT if exact is None else f"{number(exact)} {unit_label(unit, exact)}"


def percent(part: object, whole: object) -> str:
    """Share of a whole, one decimal, rounded half-up: 800 of 1,000 -> '80.0%'."""
    part, whole = decimal(part), decimal(whole)
    if part is None or not whole:
        return ABSENT
    share = (part * 100 / whole).quantize(Decimal("0.1"), ROUND_HALF_UP)
    return f"{format(share, ',f')}%"


def _trimmed(value: Decimal) -> Decimal:
    """Without trailing zeros, and never '-0'."""
    return Decimal(0) if value == 0 else value.normalize()


def _money(value: Decimal, currency: str, separator: str) -> str:
    rounded = round_money(value, currency)
    return _digits(Decimal(0).quantize(rounded) if rounded == 0 else rounded, separator,
                   places=minor_unit(currency))  # fmt: skip


def _price(value: Decimal, currency: str, separator: str) -> str:
    trimmed = _trimmed(value)
    places = max(minor_unit(currency), -min(trimmed.as_tuple().exponent, 0))
    return _digits(Decimal(0) if value == 0 else value, separator, places=places)


def _digits(value: Decimal, separator: str, places: int | None = None) -> str:
    spec = f"{separator}.{places}f" if places is not None else f"{separator}f"
    return format(value, spec)


def _with_currency(digits: str, currency: str, symbol: bool) -> str:
    mark = SYMBOLS.get(currency) if symbol else None
    if mark is None:
        return f"{digits} {currency}"
    return f"-{mark}{digits[1:]}" if digits.startswith("-") else f"{mark}{digits}"
