"""Readable numbers and the chart's axis, worked out by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from consumption_pipeline.dashboard import formatting, svg


@pytest.mark.parametrize(
    ("value", "text"),
    [(D("1000.000000"), "1,000"), (D("2528.400000"), "2,528.4"), (D("1234567.891"), "1,234,567.891"),
     (D("0.000001"), "0.000001"), (D("-5"), "−5"), (0, "0"), (None, "—")],
)  # fmt: skip
def test_numbers_keep_every_decimal_and_group_thousands(value, text):
    assert formatting.number(value) == text


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [(D(1800), "credit", "1,800 credits"), (D(1), "hour", "1 hour"), (D("1.5"), "hour", "1.5 hours"),
     (D("164.25"), "GB", "164.25 GB"), (D(0), "call", "0 calls"), (D(3), "units", "3 units")],
)  # fmt: skip
def test_quantities_carry_their_unit(value, unit, text):
    assert formatting.quantity(value, unit) == text


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [(D("2.000000"), "USD", "$2.00"), (D("11.27"), "EUR", "€11.27"), (D("51266"), "JPY", "¥51,266"),
     (D("1234.5"), "KWD", "1,234.500 KWD"), (D("0.005"), "USD", "$0.01"),  # half-up
     (D("-1234.5"), "USD", "−$1,234.50"), (D("0.5"), "JPY", "¥1")],
)  # fmt: skip
def test_money_is_rounded_to_the_currencys_minor_unit(amount, currency, text):
    assert formatting.money(amount, currency) == text


def test_unit_prices_keep_decimals_beyond_the_minor_unit():
    assert formatting.unit_price(D("0.015"), "EUR") == "€0.015"
    assert formatting.unit_price(D("0.02"), "USD") == "$0.02"
    assert formatting.unit_price(D("3"), "JPY") == "¥3"
    assert formatting.unit_price(D("0.00095"), "EUR") == "€0.00095"


def test_percent_of_a_whole():
    assert formatting.percent(D(800), D(1000)) == "80.0%"
    assert formatting.percent(D(1), D(3)) == "33.3%"
    assert formatting.percent(D(2), D(3)) == "66.7%"
    assert formatting.percent(D(0), D(0)) == "—"  # a bucket prorated to nothing


@pytest.mark.parametrize(
    ("top", "ticks"),
    [(D(130), [0, 50, 100, 150]),  # 130/4 = 32.5 → step 50
     (D(1000000), [0, 250000, 500000, 750000, 1000000]),  # 250,000 exactly
     (D("0.3"), [D("0"), D("0.1"), D("0.2"), D("0.3")]),  # 0.075 → 0.1
     (D(9), [0, D("2.5"), 5, D("7.5"), 10]),  # 2.25 → 2.5
     (D(0), [0, 1])],
)  # fmt: skip
def test_axis_ticks_are_round_and_reach_the_top(top, ticks):
    assert svg.nice_ticks(top) == ticks


def test_chart_labels_are_escaped_and_need_no_script():
    label = "<script>alert(1)</script>"
    chart = str(svg.consumption_chart([], date(2026, 9, 1), date(2026, 9, 30), "GB", label))
    assert "<script>" not in chart and "&lt;script&gt;" in chart
