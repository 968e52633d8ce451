"""The calendar of closes: the period of a day, when a period closes, which are open or due."""

from __future__ import annotations

import pandas as pd

from consumption_pipeline.domain.calendar import period_bounds


class PeriodOpenError(ValueError):
    """The period may not close yet; the message names it and says why."""


class PeriodClosedError(ValueError):
    """The period is closed (or its export differs from the warehouse): it is never exported
    again; the message names it."""


def period_key(day: pd.Timestamp | str) -> str:
    """The period (partition key 'YYYY-MM-01') that contains `day`."""
    return pd.Timestamp(day).strftime("%Y-%m-01")


def label(period: str) -> str:
    return str(period)[:7]


def closes_on(period: str, grace_days: int) -> pd.Timestamp:
    """The first day on which the period is closed: its end (exclusive) plus the grace days."""
    _, end = period_bounds(pd.Timestamp(period))
    return end + pd.Timedelta(days=grace_days)


def open_periods(today: pd.Timestamp, grace_days: int, first_period: str) -> list[str]:
    """The periods still open on `today`, oldest first: today's own and any earlier one whose
    grace period has not passed (the previous one during the first `grace_days` of a month)."""
    periods, period = [], pd.Timestamp(period_key(today))
    while period >= pd.Timestamp(first_period) and closes_on(str(period), grace_days) > today:
        periods.insert(0, period_key(period))
        period -= pd.offsets.MonthBegin(1)
    return periods


def due_periods(since: str, today: pd.Timestamp, grace_days: int) -> list[str]:
    """The periods from `since` on whose grace period has passed on `today`, oldest first."""
    months = pd.period_range(pd.Timestamp(since), today, freq="M")
    keys = [m.start_time.strftime("%Y-%m-01") for m in months]
    return [p for p in keys if closes_on(p, grace_days) <= today]
