"""Calendar arithmetic of DOMAIN.md "Time": month indices and month addition with clamping."""

from __future__ import annotations

import numpy as np
import pandas as pd


def month_index(dates: pd.Series) -> pd.Series:
    return dates.dt.year * 12 + dates.dt.month - 1


def month_start(index: pd.Series) -> pd.Series:
    """First day of the month with the given index (year * 12 + month - 1)."""
    years, months = np.divmod(index.to_numpy(dtype="int64"), 12)
    text = (
        pd.Series(years, index=index.index).astype(str).str.zfill(4)
        + "-"
        + (pd.Series(months + 1, index=index.index).astype(str).str.zfill(2))
        + "-01"
    )
    return pd.to_datetime(text, format="%Y-%m-%d").astype("datetime64[s]")


def add_months(dates: pd.Series, months: pd.Series) -> pd.Series:
    """Keep the day of the month, clamped to the target month's last day (31 Jan + 1 = 28 Feb)."""
    valid = dates.notna() & months.notna()
    out = pd.Series(pd.NaT, index=dates.index, dtype="datetime64[s]")
    if not valid.any():
        return out
    d, n = dates[valid], months[valid].astype("int64")
    first = month_start(month_index(d) + n)
    last_day = (first + pd.offsets.MonthEnd(0)).dt.day
    out[valid] = first + pd.to_timedelta(np.minimum(d.dt.day, last_day) - 1, unit="D")
    return out


def period_bounds(period: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = pd.Timestamp(period).to_period("M").to_timestamp()
    return start, start + pd.offsets.MonthBegin(1)
