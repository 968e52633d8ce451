"""Exact quantities (docs/rules.md stage 1) and the calendar arithmetic of "Time" and stage 2."""

from __future__ import annotations

import pandas as pd
import pytest

from consumption_pipeline.domain.calendar import add_months, month_index, period_bounds
from consumption_pipeline.domain.quantities import (
    from_micro,
    micro_to_decimal,
    parse_quantities,
    to_micro,
)


def parse(*texts: str) -> list[tuple[int, str | None]]:
    micro, reason = parse_quantities(pd.Series(texts, dtype="str"))
    return [(int(m), None if pd.isna(r) else r) for m, r in zip(micro, reason, strict=True)]


@pytest.mark.parametrize(
    "text, micro",
    [
        ("700", 700_000_000),
        ("700.0", 700_000_000),
        ("0.1", 100_000),
        ("0.000001", 1),
        ("1.000000", 1_000_000),
        ("0.1234560", 123_456),  # 7 digits written, but the value has 6 decimals
        ("+2", 2_000_000),
        (".5", 500_000),
        ("5.", 5_000_000),
        (" 3.25 ", 3_250_000),
        ("7e2", 700_000_000),
        ("2.5E-5", 25),  # 0.000025
        ("0", 0),
        ("-0", 0),  # zero written with a sign is still zero, not negative
        ("999999999999.999999", 999_999_999_999_999_999),
    ],
)
def test_quantities_keep_up_to_six_decimals_exactly(text, micro):
    assert parse(text) == [(micro, None)]


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "missing_quantity"),
        ("   ", "missing_quantity"),
        ("0.0000001", "too_many_decimals"),
        ("1.0000001", "too_many_decimals"),
        ("1e-7", "too_many_decimals"),
        ("-1", "negative_quantity"),
        ("-0.000001", "negative_quantity"),
        ("abc", "invalid_quantity"),
        ("1,5", "invalid_quantity"),
        ("1_000", "invalid_quantity"),
        ("0x10", "invalid_quantity"),
        ("١٢", "invalid_quantity"),  # Arabic-Indic digits: not what a meter writes
        (".", "invalid_quantity"),
        ("true", "invalid_quantity"),
        ("NaN", "non_finite_quantity"),
        ("inf", "non_finite_quantity"),
        ("-Infinity", "non_finite_quantity"),
        ("1000000000000", "quantity_too_large"),  # 10^12 units: beyond the exact range
        ("1e20", "quantity_too_large"),
    ],
)
def test_unbillable_quantities_get_a_reason_and_no_value(text, reason):
    assert parse(text) == [(0, reason)]


def test_more_than_six_decimals_is_quarantined_not_rounded():
    # 2.0000004 would round to 2.000000 and 2.0000006 to 2.000001: neither is rounded.
    assert parse("2.0000004", "2.0000006") == [(0, "too_many_decimals")] * 2


def test_numbers_compare_as_values_not_as_spelling():
    # 700, 700.0, 700.000000 and 7.0e2 are one value: 700,000,000 micro-units.
    assert {m for m, _ in parse("700", "700.0", "700.000000", "7.0e2")} == {700_000_000}


def test_float_inputs_are_read_as_the_decimal_they_stand_for():
    # Parquet floats: 0.1 is the float nearest 0.1, so it is 0.1 (100,000 micro-units);
    # 1e-7 and 0.1 + 0.2 (= 0.30000000000000004) stand for more than 6 decimals.
    micro, reason = parse_quantities(
        pd.Series([0.1, 700.0, 0.0, 1e-7, 0.1 + 0.2, float("nan"), float("inf"), -2.0])
    )
    assert micro.tolist() == [100_000, 700_000_000, 0, 0, 0, 0, 0, 0]
    assert reason.fillna("ok").tolist() == [
        "ok", "ok", "ok", "too_many_decimals", "too_many_decimals", "missing_quantity",
        "non_finite_quantity", "negative_quantity",
    ]  # fmt: skip


def test_integer_inputs_are_exact():
    micro, reason = parse_quantities(pd.Series([0, 3, 123_456_789], dtype="int64"))
    assert micro.tolist() == [0, 3_000_000, 123_456_789_000_000]
    assert reason.isna().all()


def test_micro_units_sum_without_float_drift():
    # 0.1 + 0.2 + 0.3 in floats is 0.6000000000000001; in micro-units 600,000 exactly.
    micro = to_micro(pd.Series([0.1, 0.2, 0.3]))
    assert micro.sum() == 600_000
    assert from_micro(pd.Series([micro.sum()])).iloc[0] == 0.6
    assert str(micro_to_decimal(micro.sum())) == "0.6"


@pytest.mark.parametrize(
    "units, micro",
    [
        (999_999_999_999.0, 999_999_999_999_000_000),
        (999_999_999_999.5, 999_999_999_999_500_000),
        (123_456_789_012.25, 123_456_789_012_250_000),
        (-999_999_999_999.0, -999_999_999_999_000_000),
        (9_007_199_254.740993, 2**53 + 1),
    ],
)
def test_large_quantities_cross_the_float_boundary_exactly(units, micro):
    # Past 2**53 micro-units (~9.0e9 units) a float64 times or over 10^6 is off: 999,999,999,999
    # units would become 999,999,999,999,000,064 micro-units and read back as 999999999999.0001.
    assert to_micro(pd.Series([units])).tolist() == [micro]
    assert from_micro(pd.Series([micro])).tolist() == [units]


def test_large_float_inputs_below_the_limit_are_valid():
    micro, reason = parse_quantities(pd.Series([999_999_999_999.0, 500_000_000_000.25]))
    assert micro.tolist() == [999_999_999_999_000_000, 500_000_000_000_250_000]
    assert reason.isna().all()


# --- calendar --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "date, months, expected",
    [
        ("2026-01-31", 1, "2026-02-28"),  # clamped to February's last day
        ("2028-01-31", 1, "2028-02-29"),  # leap year
        ("2026-01-31", 2, "2026-03-31"),  # the day is kept, not the clamped one
        ("2026-03-31", 1, "2026-04-30"),
        ("2026-10-15", 1, "2026-11-15"),
        ("2026-11-30", 3, "2027-02-28"),
        ("2026-10-10", 12, "2027-10-10"),
        ("2026-12-01", 1, "2027-01-01"),
    ],
)
def test_adding_months_keeps_the_day_clamped_to_the_last_day_of_the_month(date, months, expected):
    result = add_months(pd.Series(pd.to_datetime([date])), pd.Series([months]))
    assert result.tolist() == [pd.Timestamp(expected)]


def test_adding_no_months_gives_no_date():
    # A one-time grant without validity_months never expires: its end is "no date".
    result = add_months(
        pd.Series(pd.to_datetime(["2026-10-10"])), pd.Series([pd.NA], dtype="Int64")
    )
    assert result.isna().tolist() == [True]


def test_a_billing_period_is_a_half_open_calendar_month():
    assert period_bounds(pd.Timestamp("2026-02-01")) == (
        pd.Timestamp("2026-02-01"), pd.Timestamp("2026-03-01")
    )  # fmt: skip
    assert period_bounds(pd.Timestamp("2026-12-01"))[1] == pd.Timestamp("2027-01-01")


def test_month_index_counts_months_across_years():
    # December 2026 and January 2027 are consecutive months.
    index = month_index(pd.Series(pd.to_datetime(["2026-12-31", "2027-01-01"])))
    assert (index.iloc[1] - index.iloc[0]) == 1
