"""Config values that reach a path or a computation are refused with a sentence naming them."""

import pytest

from consumption_pipeline.audit.adhoc import RequestError, check_request_id, check_window_days


@pytest.mark.parametrize(
    "value", ["../sample/accounts", "/etc/passwd", "../../..", "..", ".", "", "a/b", "a\nb",
              "a\x00b", "-rf", "x" * 65, "~root", "ａｂ"],
)  # fmt: skip
def test_a_request_id_that_is_not_a_plain_file_name_is_refused(value: str):
    with pytest.raises(RequestError, match=r"^request_id .*: expected 1 to 64 letters"):
        check_request_id(value)


@pytest.mark.parametrize("value", ["dispute-2026-10", "a", "x" * 64, "_audit.v2"])
def test_a_plain_request_id_is_kept(value: str):
    assert check_request_id(value) == value


@pytest.mark.parametrize("days", [0, -1, 367, 10**30])
def test_window_days_outside_one_to_366_are_refused(days: int):
    with pytest.raises(RequestError, match=r"^forecast_window_days .*: expected a whole number"):
        check_window_days(days, "forecast_window_days")


def test_window_days_at_the_bounds_are_kept():
    assert (check_window_days(1, "w"), check_window_days(366, "w")) == (1, 366)
