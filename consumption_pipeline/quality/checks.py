"""The asset checks that guard a billing period, as (asset, check) pairs: the code location
defines exactly these (a test holds the two equal), and the dashboard reads their results from
the Dagster instance without loading the code location."""

from __future__ import annotations

from consumption_pipeline.domain.catalog import REQUIRED
from consumption_pipeline.quality.inputs import check_name

CHECKS: list[tuple[str, str]] = sorted([
    *(("usage_events", check_name(file)) for file in REQUIRED),
    ("usage_events", "accepted_usage"),
    ("usage_events", "events_reconcile"),
    ("quarantined_events", "quarantine_explained"),
    ("rated_usage", "volume_anomalies"),
    ("usage_summaries", "drawdown_conserved"),
    ("bucket_balances", "bucket_balances_conserved"),
    ("liable_summaries", "liable_equals_ratable"),
])  # fmt: skip
