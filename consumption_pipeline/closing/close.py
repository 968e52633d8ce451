"""Closing one period: refused while it is open, closed, or after a period not closed; else
exported once and recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from consumption_pipeline.closing.dates import (
    PeriodClosedError,
    PeriodOpenError,
    closes_on,
    label,
    period_key,
)
from consumption_pipeline.closing.outbox import outbox_folder, write_outbox
from consumption_pipeline.closing.register import ClosureRegister, processed_periods
from consumption_pipeline.storage.warehouse import Warehouse


def close_period(
    store: Warehouse, outbox: Path, period: str, today: pd.Timestamp, grace_days: int, run_id: str
) -> dict[str, Any]:
    """Export the period's final liable summaries to the outbox and record it as closed."""
    ensure_closable(store, period, today, grace_days)
    lines = store.read_period("liable_summaries", period)
    provisional = int((lines["status"] != "final").sum())
    if provisional:
        raise PeriodOpenError(
            f"period {label(period)}: {provisional} liable summaries are provisional; "
            f"materialize the period as of {today:%Y-%m-%d} before closing it"
        )
    manifest = write_outbox(outbox, period, lines, today, grace_days)
    ClosureRegister(store).record(manifest, outbox_folder(outbox, period), run_id)
    return manifest


def ensure_closable(store: Warehouse, period: str, today: pd.Timestamp, grace_days: int) -> None:
    """Refuse, naming the period, to close it when it is closed already, still open on `today`,
    or preceded by a processed period that is not closed (its opening balances could change)."""
    register = ClosureRegister(store)
    closure = register.closure(period)
    if closure is not None:
        raise PeriodClosedError(
            f"period {label(period)} is closed: exported on {closure['closed_on']} to "
            f"{closure['outbox']} (checksum {closure['checksum']}); a closed period is never "
            "exported twice"
        )
    closing_day = closes_on(period, grace_days)
    if today < closing_day:
        raise PeriodOpenError(
            f"period {label(period)} is open until {closing_day:%Y-%m-%d} ({grace_days} grace "
            f"days after its end), judged on {today:%Y-%m-%d}"
        )
    previous = period_key(pd.Timestamp(period) - pd.offsets.MonthBegin(1))
    if previous in processed_periods(store) and register.closure(previous) is None:
        raise PeriodOpenError(
            f"period {label(period)} cannot close before period {label(previous)}: its opening "
            f"balances are the closing balances of {label(previous)}, which is not closed"
        )
