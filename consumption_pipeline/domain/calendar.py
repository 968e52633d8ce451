"""Calendar arithmetic of docs/rules.md "Time": month indices and month addition with clamping."""

from __future__ import annotations

import numpy as np
import pandas as pd

_EPOCH_MONTH = 1970 * 12  # numpy's datetime64[M] counts months from January 1970


def month_index(dates: pd.Series) -> pd.Series:
    """Months since year 0 (year * 12 + month - 1); NA for a missing date."""
    months = dates.to_numpy(dtype="datetime64[s]").astype("datetime64[M]").astype("int64")
    return pd.Series(months + _EPOCH_MONTH, index=dates.index).where(dates.notna())


def month_start(index: pd.Series) -> pd.Series:
    """First day of the month with the given index (year * 12 + month - 1)."""
    months = (index.to_numpy(dtype="int64") - _EPOCH_MONTH).astype("datetime64[M]")
    return pd.Series(months.astype("datetime64[s]"), index=index.index)


def add_months(dates: pd.Series, months: pd.Series) -> pd.Series:
    """Keep the day of the month, clamped to the target month's last day (31 Jan + 1 = 28 Feb)."""
    valid = dates.notna() & months.notna()
    out = pd.Series(pd.NaT, index=dates.index, dtype="datetime64[s]")
    if not valid.any():
        return out
    d, target = dates[valid], month_index(dates[valid]) + months[valid].astype("int64")
    first = month_start(target)
    days_in_month = (month_start(target + 1) - first).dt.days
    out[valid] = first + pd.to_timedelta(np.minimum(d.dt.day, days_in_month) - 1, unit="D")
    return out


def period_bounds(period: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """A billing period is a calendar month: [its first day, the next month's first day)."""
    start = pd.Timestamp(period).to_period("M").to_timestamp()
    return start, start + pd.offsets.MonthBegin(1)
