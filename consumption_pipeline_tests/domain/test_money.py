"""Money of DOMAIN.md stage 5: decimal, rounded half-up to the currency's minor unit."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from consumption_pipeline.domain.money import minor_unit, round_money


@pytest.mark.parametrize(
    ("currency", "digits"), [("USD", 2), ("EUR", 2), ("GBP", 2), ("JPY", 0), ("KWD", 3)]
)
def test_minor_units(currency, digits):
    assert minor_unit(currency) == digits


@pytest.mark.parametrize(
    ("amount", "currency", "rounded"),
    [
        ("2.345", "USD", "2.35"),  # half-up (half-even would give 2.34)
        ("2.355", "USD", "2.36"),
        ("2.3449999", "USD", "2.34"),
        ("0.005", "EUR", "0.01"),
        ("0.0049", "EUR", "0.00"),
        ("2", "USD", "2.00"),
        ("2.5", "JPY", "3"),  # half-even would give 2
        ("3.5", "JPY", "4"),
        ("7.49", "JPY", "7"),
        ("1.2345", "KWD", "1.235"),  # half-even would give 1.234
        ("1.23449", "KWD", "1.234"),
        ("0", "USD", "0.00"),
    ],
)
def test_amounts_round_half_up_to_the_currency_minor_unit(amount, currency, rounded):
    result = round_money(D(amount), currency)
    assert result == D(rounded)
    assert str(result) == rounded  # the minor unit shows, e.g. 2.00 and not 2
