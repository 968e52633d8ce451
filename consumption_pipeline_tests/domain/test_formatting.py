"""How numbers read in every output (domain/formatting.py), worked out by hand."""

from __future__ import annotations

from decimal import Decimal as D

import numpy as np
import pytest

from consumption_pipeline.domain import formatting


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [(D("1234567.5"), "USD", "1,234,567.50 USD"), (80, "JPY", "80 JPY"),
     (D("1234567"), "JPY", "1,234,567 JPY"), (D("2.000000"), "USD", "2.00 USD"),
     (D("11.27"), "EUR", "11.27 EUR"), (D("1234.5"), "KWD", "1,234.500 KWD"),
     (D("0.005"), "USD", "0.01 USD"),  # half-up
     (D("2.5"), "JPY", "3 JPY"), (D("-3"), "USD", "-3.00 USD"),
     (D("-0.001"), "USD", "0.00 USD"),  # rounds to nothing: no "-0.00"
     (0, "EUR", "0.00 EUR"), (None, "USD", "—")],
)  # fmt: skip
def test_money_for_people_has_the_minor_unit_and_thousands_separators(amount, currency, text):
    assert formatting.money(amount, currency) == text


def test_money_with_a_symbol_puts_it_first_and_a_code_without_one_last():
    assert formatting.money(D("1234567.5"), "USD", symbol=True) == "$1,234,567.50"
    assert formatting.money(D("-1234.5"), "USD", symbol=True) == "-$1,234.50"
    assert formatting.money(51266, "JPY", symbol=True) == "¥51,266"
    assert formatting.money(D("12.345"), "KWD", symbol=True) == "12.345 KWD"


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [(D("1234.5"), "USD", "1234.50"), (D("1234"), "JPY", "1234"), (D("1234567.5"), "EUR", "1234567.50"),
     (D("2.000000"), "USD", "2.00"), (D("-3"), "USD", "-3.00"), (D("1.2345"), "KWD", "1.235"),
     (None, "USD", None)],
)  # fmt: skip
def test_money_for_programs_has_the_minor_unit_and_no_separator(amount, currency, text):
    assert formatting.plain_money(amount, currency) == text


@pytest.mark.parametrize(
    ("price", "currency", "people", "programs"),
    [(D("0.020000"), "USD", "0.02", "0.02"), (D("0.015"), "EUR", "0.015", "0.015"),
     (D("0.004287"), "EUR", "0.004287", "0.004287"), (D("3"), "JPY", "3", "3"),
     (D("0.1"), "JPY", "0.1", "0.1"), (D("0.000000"), "USD", "0.00", "0.00"),
     (D("1234.5"), "USD", "1,234.50", "1234.50"), (None, "USD", "—", None)],
)  # fmt: skip
def test_a_price_per_unit_keeps_its_decimals_and_at_least_the_minor_unit(
    price, currency, people, programs
):
    assert formatting.price_digits(price, currency) == people
    assert formatting.plain_price(price, currency) == programs


@pytest.mark.parametrize(
    ("value", "people", "programs"),
    [(80.0, "80", "80"), (D("1000.000000"), "1,000", "1000"), (2528.4, "2,528.4", "2528.4"),
     (1234567.5, "1,234,567.5", "1234567.5"), (0.1 + 0.2, "0.3", "0.3"),  # to 6 decimals
     (0.000001, "0.000001", "0.000001"), (np.float64(10037.135), "10,037.135", "10037.135"),
     (np.int64(1800), "1,800", "1800"), (-0.0, "0", "0"), (D("-5"), "-5", "-5"),
     (float("nan"), "—", None), (None, "—", None)],
)  # fmt: skip
def test_quantities_keep_their_decimals_and_no_trailing_zero(value, people, programs):
    assert formatting.number(value) == people
    assert formatting.plain_number(value) == programs


def test_a_report_cell_is_money_in_a_money_column_and_a_quantity_elsewhere():
    assert formatting.cell(D("2.000000"), "amount", "USD") == "2.00"
    assert formatting.cell(D("1200"), "billed_amount", "JPY") == "1,200"
    assert formatting.cell(D("0.020000"), "net_unit_rate", "USD") == "0.02"
    assert formatting.cell(33.333333, "burn_rate", "USD") == "33.333333"  # credits per day
    assert formatting.cell(1800.0, "consumption", "USD") == "1,800"
    assert formatting.cell("ACME", "account_id", "USD") is None  # not a number
    assert formatting.plain_cell(D("2.000000"), "amount", "USD") == "2.00"
    assert formatting.plain_cell(1300.0, "debited", "USD") == "1300"
    assert formatting.plain_cell("A1", "asset_id", "USD") == "A1"
