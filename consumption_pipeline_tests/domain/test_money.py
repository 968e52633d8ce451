"""Money of docs/rules.md stage 5: decimal, rounded half-up to the currency's minor unit."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from consumption_pipeline.domain.money import MINOR_UNITS, minor_unit, round_money


@pytest.mark.parametrize(
    ("currency", "digits"),
    [("USD", 2), ("EUR", 2), ("GBP", 2), ("JPY", 0), ("KWD", 3), ("ISK", 0), ("KRW", 0),
     ("TND", 3), ("OMR", 3), ("CLF", 4), ("UYW", 4), ("XCG", 2), ("ZWG", 2), ("IDR", 2)],
)  # fmt: skip
def test_minor_units(currency, digits):
    assert minor_unit(currency) == digits


@pytest.mark.parametrize("code", ["ZZZ", "usd", "XAU", "XDR", "XTS", "XXX", "US", ""])
def test_only_iso_4217_currencies_with_a_minor_unit_are_billable(code):
    # Made-up codes, lower case, gold, special drawing rights, the test and "no currency" codes.
    assert code not in MINOR_UNITS


def test_the_currencies_whose_minor_unit_is_not_two_are_iso_4217s():
    # ISO 4217's list of currencies with 0, 3 or 4 decimals.
    assert {c: d for c, d in MINOR_UNITS.items() if d != 2} == {
        **dict.fromkeys(["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
                         "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"], 0),
        **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
        "CLF": 4, "UYW": 4,
    }  # fmt: skip


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
