"""The register of closed periods: the warehouse table `period_closures`, one row per closed
period, and the periods due to close."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from consumption_pipeline.closing.dates import due_periods, period_key
from consumption_pipeline.storage.tables import closure_metadata, period_closures
from consumption_pipeline.storage.warehouse import Warehouse, create_schema


class ClosureRegister:
    """The warehouse table `period_closures`: one row per closed period, inserted once."""

    def __init__(self, store: Warehouse) -> None:
        self.engine = store.engine
        create_schema(self.engine, closure_metadata)

    def closed_periods(self) -> list[str]:
        with self.engine.connect() as conn:
            days = conn.execute(sa.select(period_closures.c.period)).scalars().all()
        return sorted(period_key(d) for d in days)

    def closure(self, period: str) -> dict[str, Any] | None:
        day = dt.date.fromisoformat(period_key(period))
        with self.engine.connect() as conn:
            query = sa.select(period_closures).where(period_closures.c.period == day)
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def record(self, manifest: dict[str, Any], folder: Path, run_id: str) -> None:
        row = {
            "period": dt.date.fromisoformat(manifest["period"] + "-01"),
            "closed_on": dt.date.fromisoformat(manifest["closed_on"]),
            "grace_days": manifest["grace_days"], "lines": manifest["rows"],
            "totals": json.dumps(manifest["totals"], sort_keys=True),
            "checksum": manifest["checksum"], "outbox": str(folder), "run_id": run_id,
            "recorded_at": dt.datetime.now(dt.UTC),
        }  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(period_closures.insert().values(**row))


def processed_periods(store: Warehouse) -> list[str]:
    """The periods the pipeline has materialized: every ingest writes one reconciliation row."""
    return store.periods("ingest_reconciliation")


def periods_to_close(store: Warehouse, today: pd.Timestamp, grace_days: int) -> list[str]:
    """The periods due on `today` and not closed, oldest first, from the first period the
    warehouse holds: a deployment does not close the months before it started."""
    closed = ClosureRegister(store).closed_periods()
    known = processed_periods(store) + closed
    if not known:
        return []
    return [p for p in due_periods(min(known), today, grace_days) if p not in closed]
