"""Billing periods: one monthly partition per calendar month in the billing time zone."""

from __future__ import annotations

import dagster as dg


def billing_periods(first_period: str, timezone: str) -> dg.MonthlyPartitionsDefinition:
    # end_offset=1 adds the current, still open, month.
    return dg.MonthlyPartitionsDefinition(start_date=first_period, timezone=timezone, end_offset=1)


def previous_period() -> dg.TimeWindowPartitionMapping:
    """Opening balances are the previous period's closing balances."""
    return dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)
