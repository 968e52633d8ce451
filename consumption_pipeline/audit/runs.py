"""Which run wrote each period's rows: the `stage_runs` table (one row per period, step and table).

The stages record themselves through `consumption_pipeline.defs.lineage`; traces and restatements
read the records back to name the Dagster run and code version behind every row.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa

from consumption_pipeline.audit import store

# Which step wrote the rows of a table (entitlement_buckets: stage 2 wrote every origin but
# rollover, the drawdown the rollover buckets).
WRITERS = {
    "usage_events": "ingest", "quarantined_events": "ingest", "rated_usage": "rated_usage",
    "usage_summaries": "drawdown", "entitlement_ledger": "drawdown", "bucket_balances": "drawdown",
    "ratable_summaries": "summaries", "liable_summaries": "summaries",
}  # fmt: skip
BUCKET_WRITERS = {"grant": "entitlement_buckets", "rollover": "drawdown"}


def record(engine: sa.Engine, rows: pd.DataFrame) -> None:
    """Replace the records of one step and period (all tables it writes)."""
    period, step = rows["period"].iloc[0], rows["step"].iloc[0]
    store.replace_rows(engine, "stage_runs", {"period": period, "step": step}, rows)


def output_digest(engine: sa.Engine, period: str, step: str, table: str) -> str:
    """The digest of the rows `step` last wrote to `table` for `period`, or 'absent'."""
    found = store.read_rows(
        engine, "stage_runs", {"period": pd.Timestamp(period), "step": step, "table_name": table}
    )
    return str(found["output_digest"].iloc[0]) if len(found) else "absent"


def for_periods(engine: sa.Engine, periods: Sequence[str]) -> pd.DataFrame:
    """Every record of the given periods."""
    return store.read_rows(engine, "stage_runs", {"period": [pd.Timestamp(p) for p in periods]})
