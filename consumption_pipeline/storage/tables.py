"""The warehouse tables of docs/rules.md "Outputs", with their column types.

Event-level tables (`lake_metadata`: accepted events and their per-window ratings) are Parquet
files in the lake, one per period; every other table is in the SQL warehouse (`metadata`).

Frames at the boundary carry: ids and text as strings (missing = NA), quantities as float64
(exact to 6 decimals; the domain converts them to integer micro-units inside), money as
``decimal.Decimal`` objects, dates as ``datetime64`` at midnight, instants as UTC ``datetime64``.
"""

from __future__ import annotations

import sqlalchemy as sa

TEXT, INT, DATE, BOOL = sa.Text, sa.BigInteger, sa.Date, sa.Boolean
QUANTITY = sa.Numeric(28, 6)
MONEY = sa.Numeric(28, 6)
INSTANT = sa.DateTime(timezone=True)

metadata = sa.MetaData()
lake_metadata = sa.MetaData()


def _table(
    name: str, *columns: tuple[str, sa.types.TypeEngine], schema: sa.MetaData = metadata
) -> sa.Table:
    return sa.Table(name, schema, *(sa.Column(n, t) for n, t in columns))


usage_events = _table(
    "usage_events",
    ("period", DATE), ("event_id", TEXT), ("account_id", TEXT), ("asset_id", TEXT),
    ("usage_resource_id", TEXT), ("quantity", QUANTITY), ("occurred_at", INSTANT),
    ("usage_date", DATE), ("source_file", TEXT), ("row_number", INT),
    schema=lake_metadata,
)  # fmt: skip

quarantined_events = _table(
    "quarantined_events",
    ("period", DATE), ("event_id", TEXT), ("account_id", TEXT), ("asset_id", TEXT),
    ("usage_resource_id", TEXT), ("quantity", TEXT), ("occurred_at", TEXT),
    ("reason", TEXT), ("detail", TEXT), ("source_file", TEXT), ("row_number", INT),
)  # fmt: skip

ingest_reconciliation = _table(
    "ingest_reconciliation",
    ("period", DATE), ("events_read", INT), ("accepted", INT), ("duplicates", INT),
    ("quarantined", INT), ("other_periods", INT),
)  # fmt: skip

entitlement_buckets = _table(
    "entitlement_buckets",
    ("period", DATE), ("bucket_id", TEXT), ("origin", TEXT), ("account_id", TEXT),
    ("asset_id", TEXT), ("grant_id", TEXT), ("usage_resource_id", TEXT), ("binding", TEXT),
    ("priority", INT), ("granted", QUANTITY), ("valid_from", DATE), ("valid_to", DATE),
    ("rollover_generation", INT), ("parent_bucket_id", TEXT), ("rollover", TEXT),
    ("rollover_cap", QUANTITY), ("max_rollovers", INT), ("rollover_months", INT),
    ("asset_end_date", DATE),
    # Contracts that change: a commitment's grant type and rate policy, the asset changes behind
    # the bucket (space-separated), the credit grant it is and that credit's reason.
    ("grant_type", TEXT), ("commitment_rate", TEXT), ("change_id", TEXT), ("credit_id", TEXT),
    ("reason", TEXT),
)  # fmt: skip

rated_usage = _table(
    "rated_usage",
    ("period", DATE), ("summary_id", TEXT), ("account_id", TEXT), ("asset_id", TEXT),
    ("usage_resource_id", TEXT), ("aggregation_period", TEXT), ("window_start", DATE),
    ("window_date", DATE), ("event_count", INT), ("consumption", QUANTITY),
    ("drawdown_resource_id", TEXT), ("tokens_per_unit", QUANTITY),
    ("drawdown_quantity", QUANTITY), ("currency", TEXT), ("rate_source", TEXT),
    ("rate_asset_id", TEXT), ("rate_effective_from", DATE), ("overage_chargeable", BOOL),
    schema=lake_metadata,
)  # fmt: skip

usage_summaries = _table(
    "usage_summaries",
    *[(c.name, c.type) for c in rated_usage.columns],
    ("debited", QUANTITY), ("overage", QUANTITY),
    # The first commitment bucket eligible for the summary: its grant's policy chose the rate.
    ("commitment_bucket_id", TEXT),
)  # fmt: skip

entitlement_ledger = _table(
    "entitlement_ledger",
    ("period", DATE), ("entry_id", TEXT), ("bucket_id", TEXT), ("account_id", TEXT),
    ("entry_date", DATE), ("sequence", INT), ("entry_type", TEXT), ("quantity", QUANTITY),
    ("opening_balance", QUANTITY), ("closing_balance", QUANTITY), ("summary_id", TEXT),
    ("related_bucket_id", TEXT),
)  # fmt: skip

bucket_balances = _table(
    "bucket_balances",
    ("period", DATE), ("bucket_id", TEXT), ("account_id", TEXT), ("opening", QUANTITY),
    ("credited", QUANTITY), ("debited", QUANTITY), ("expired", QUANTITY),
    ("rolled_over", QUANTITY), ("closing", QUANTITY), ("is_open", BOOL),
)  # fmt: skip

ratable_summaries = _table(
    "ratable_summaries",
    ("period", DATE), ("account_id", TEXT), ("asset_id", TEXT), ("usage_resource_id", TEXT),
    ("rate_source", TEXT), ("rate_asset_id", TEXT), ("rate_effective_from", DATE),
    ("pricing_model", TEXT), ("overage_quantity", QUANTITY), ("net_unit_rate", MONEY),
    ("amount", MONEY), ("currency", TEXT),
    # 'usage', or 'adjustment': a restatement of a closed period booked into this one
    ("line_type", TEXT), ("restatement_id", TEXT),
)  # fmt: skip

liable_summaries = _table(
    "liable_summaries",
    ("period", DATE), ("account_id", TEXT), ("asset_id", TEXT), ("usage_resource_id", TEXT),
    ("consumption", QUANTITY), ("debited", QUANTITY), ("overage_quantity", QUANTITY),
    ("net_unit_rate", MONEY), ("amount", MONEY), ("currency", TEXT), ("status", TEXT),
    # 'usage', or 'adjustment': a restatement of a closed period booked into this one
    ("line_type", TEXT), ("restatement_id", TEXT),
)  # fmt: skip

# Forecasts (consumption_pipeline/audit/forecast.py), per period as of one date: when each open
# bucket runs out at its trailing burn rate, and the overage projected for the rest of the period.
bucket_forecasts = _table(
    "bucket_forecasts",
    ("period", DATE), ("as_of", DATE), ("bucket_id", TEXT), ("account_id", TEXT),
    ("asset_id", TEXT), ("usage_resource_id", TEXT), ("binding", TEXT), ("valid_to", DATE),
    ("balance", QUANTITY), ("window_days", INT), ("window_debited", QUANTITY),
    ("burn_rate", QUANTITY), ("exhausted_on", DATE), ("outlook", TEXT),
)  # fmt: skip

overage_forecasts = _table(
    "overage_forecasts",
    ("period", DATE), ("as_of", DATE), ("account_id", TEXT), ("asset_id", TEXT),
    ("usage_resource_id", TEXT), ("currency", TEXT), ("window_days", INT),
    ("demand_rate", QUANTITY), ("days_remaining", INT), ("overage_to_date", QUANTITY),
    ("projected_overage", QUANTITY), ("projected_period_overage", QUANTITY),
    ("projected_period_amount", MONEY),
)  # fmt: skip

# The accepted events that a due or closed period's billed lines reflect (those of its close, then
# of its latest restatement): what a recomputation is compared with to name the events that changed.
billed_events = _table(
    "billed_events",
    *[(c.name, c.type) for c in usage_events.columns],
    schema=lake_metadata,
)  # fmt: skip

# Every per-period table, wherever it is kept.
TABLES: dict[str, sa.Table] = {**metadata.tables, **lake_metadata.tables}

# The natural key of each SQL table: a unique index, so that no writer (overlapping runs, a
# write outside the pipeline) can ever leave a row twice. A name ending in "?" may be NULL: the
# index compares it through COALESCE, since unique indexes take NULLs for distinct values.
# Lake tables are replaced whole, file by file, never appended to.
KEYS: dict[str, tuple[str, ...]] = {
    "quarantined_events": ("period", "source_file", "row_number"),
    "ingest_reconciliation": ("period",),
    "entitlement_buckets": ("period", "bucket_id"),
    "usage_summaries": ("period", "summary_id"),
    "entitlement_ledger": ("period", "entry_id"),
    "bucket_balances": ("period", "bucket_id"),
    "ratable_summaries": (
        "period", "account_id", "asset_id?", "usage_resource_id", "rate_source",
        "rate_asset_id?", "rate_effective_from?", "line_type?", "restatement_id?",
    ),
    "liable_summaries": (
        "period", "account_id", "asset_id?", "usage_resource_id", "line_type?", "restatement_id?",
    ),
    "bucket_forecasts": ("period", "bucket_id"),
    "overage_forecasts": ("period", "account_id", "asset_id?", "usage_resource_id"),
}  # fmt: skip
LAKE_TABLES: frozenset[str] = frozenset(lake_metadata.tables)
# Lake columns whose values all differ: Parquet stores them plainly, without first trying (and
# dropping) a dictionary of millions of values.
DISTINCT_COLUMNS: frozenset[str] = frozenset({"event_id", "summary_id"})

# The audit tables (consumption_pipeline/audit/): which run wrote what, ad hoc requests and
# restatements. Their rows carry run and request ids, so a re-run adds to them or replaces them by
# their own keys, never by period alone: they live apart from TABLES and the audit package writes
# them.
audit_metadata = sa.MetaData()


def _audit_table(name: str, *columns: tuple[str, sa.types.TypeEngine]) -> sa.Table:
    return sa.Table(name, audit_metadata, *(sa.Column(n, t) for n, t in columns))


stage_runs = _audit_table(
    "stage_runs",
    ("period", DATE), ("step", TEXT), ("table_name", TEXT), ("run_id", TEXT),
    ("code_version", TEXT), ("fingerprint", TEXT), ("inputs", TEXT), ("output_digest", TEXT),
    ("row_count", INT), ("recorded_at", INSTANT),
)  # fmt: skip

adhoc_requests = _audit_table(
    "adhoc_requests",
    ("request_id", TEXT), ("run_id", TEXT), ("requested_at", INSTANT), ("account_id", TEXT),
    ("asset_id", TEXT), ("usage_resource_id", TEXT), ("start_date", DATE), ("end_date", DATE),
    ("granularity", TEXT), ("as_of", DATE), ("code_version", TEXT), ("csv_path", TEXT),
)  # fmt: skip

adhoc_summaries = _audit_table(
    "adhoc_summaries",
    ("request_id", TEXT), ("granule_start", DATE), ("granule_end", DATE), ("period", DATE),
    ("account_id", TEXT), ("asset_id", TEXT), ("usage_resource_id", TEXT),
    ("drawdown_resource_id", TEXT), ("consumption", QUANTITY), ("drawdown_quantity", QUANTITY),
    ("debited", QUANTITY), ("overage", QUANTITY), ("rate_source", TEXT), ("rate_asset_id", TEXT),
    ("rate_effective_from", DATE), ("pricing_model", TEXT), ("net_unit_rate", MONEY),
    ("amount", MONEY), ("currency", TEXT),
)  # fmt: skip

adhoc_bucket_balances = _audit_table(
    "adhoc_bucket_balances",
    ("request_id", TEXT), ("granule_start", DATE), ("granule_end", DATE), ("bucket_id", TEXT),
    ("asset_id", TEXT), ("usage_resource_id", TEXT), ("valid_from", DATE), ("valid_to", DATE),
    ("opening", QUANTITY), ("credited", QUANTITY), ("debited", QUANTITY),
    ("debited_in_scope", QUANTITY), ("expired", QUANTITY), ("rolled_over", QUANTITY),
    ("closing", QUANTITY),
    # Where the bucket comes from: its origin, the asset changes and the credit (with its reason).
    ("origin", TEXT), ("change_id", TEXT), ("credit_id", TEXT), ("reason", TEXT),
)  # fmt: skip

# Restatements (consumption_pipeline/audit/restatement.py): the basis a period was billed on, and
# each difference between a closed period's billed lines and its recomputation.
billed_basis = _audit_table(
    "billed_basis",
    ("period", DATE), ("run_id", TEXT), ("code_version", TEXT), ("inputs", TEXT),
    ("events", INT), ("recorded_at", INSTANT),
)  # fmt: skip

restatement_lines = _audit_table(
    "restatement_lines",
    ("restatement_id", TEXT), ("period", DATE), ("booked_in", DATE), ("account_id", TEXT),
    ("asset_id", TEXT), ("usage_resource_id", TEXT), ("currency", TEXT),
    ("billed_consumption", QUANTITY), ("billed_debited", QUANTITY),
    ("billed_overage_quantity", QUANTITY), ("billed_amount", MONEY),
    ("consumption", QUANTITY), ("debited", QUANTITY), ("overage_quantity", QUANTITY),
    ("amount", MONEY), ("reason", TEXT), ("run_id", TEXT), ("code_version", TEXT),
    ("recorded_at", INSTANT),
)  # fmt: skip

restatement_events = _audit_table(
    "restatement_events",
    ("restatement_id", TEXT), ("change", TEXT), ("event_id", TEXT), ("account_id", TEXT),
    ("asset_id", TEXT), ("usage_resource_id", TEXT), ("quantity", QUANTITY),
    ("billed_quantity", QUANTITY), ("occurred_at", INSTANT), ("source_file", TEXT),
    ("row_number", INT),
)  # fmt: skip

# Input suites that passed, by a digest of what they read and of the code that checked it
# (audit/check_passes.py): the same inputs are not validated twice.
check_passes = _audit_table(
    "check_passes",
    ("pass_key", TEXT), ("check_name", TEXT), ("position", INT), ("summary", TEXT),
    ("facts", TEXT), ("run_id", TEXT), ("recorded_at", INSTANT),
)  # fmt: skip

AUDIT_TABLES: dict[str, sa.Table] = dict(audit_metadata.tables)
KEYS.update({
    "stage_runs": ("period", "step", "table_name"),
    "adhoc_requests": ("request_id",),
    "adhoc_bucket_balances": ("request_id", "granule_start", "bucket_id"),
    "billed_basis": ("period",),
    "check_passes": ("pass_key", "check_name"),
    "restatement_lines": ("restatement_id", "account_id", "asset_id?", "usage_resource_id"),
})  # fmt: skip

# The register of closed periods (consumption_pipeline/closing): one row per period, inserted
# once when its export is in the outbox and never replaced, so it lives apart from TABLES.
closure_metadata = sa.MetaData()
period_closures = sa.Table(
    "period_closures", closure_metadata,
    sa.Column("period", DATE, primary_key=True), sa.Column("closed_on", DATE),
    sa.Column("grace_days", INT), sa.Column("lines", INT), sa.Column("totals", TEXT),
    sa.Column("checksum", TEXT), sa.Column("outbox", TEXT), sa.Column("run_id", TEXT),
    sa.Column("recorded_at", INSTANT),
)  # fmt: skip

# Alerts (domain/alerts.py, closing/alerts.py): an alert is inserted once, the first time its
# rule's threshold is crossed in a period, and never replaced (it may have been delivered); each
# delivery attempt is a row of its own. They live apart from TABLES, keyed by their own ids.
alert_metadata = sa.MetaData()
alerts = sa.Table(
    "alerts", alert_metadata,
    sa.Column("alert_id", TEXT, primary_key=True), sa.Column("period", DATE),
    sa.Column("rule_id", TEXT), sa.Column("kind", TEXT), sa.Column("account_id", TEXT),
    sa.Column("subject_type", TEXT), sa.Column("subject_id", TEXT),
    sa.Column("usage_resource_id", TEXT), sa.Column("value", QUANTITY),
    sa.Column("threshold", QUANTITY), sa.Column("unit", TEXT), sa.Column("as_of", DATE),
    sa.Column("details", TEXT), sa.Column("channel", TEXT), sa.Column("recipient", TEXT),
    sa.Column("run_id", TEXT), sa.Column("fired_at", INSTANT),
    sa.UniqueConstraint("period", "rule_id", "account_id", "subject_type", "subject_id"),
)  # fmt: skip
alert_deliveries = sa.Table(
    "alert_deliveries", alert_metadata,
    sa.Column("alert_id", TEXT, primary_key=True), sa.Column("attempt", INT, primary_key=True),
    sa.Column("channel", TEXT), sa.Column("target", TEXT), sa.Column("started_at", INSTANT),
    sa.Column("finished_at", INSTANT), sa.Column("outcome", TEXT),  # sending|delivered|failed
    sa.Column("status_code", INT), sa.Column("error", TEXT), sa.Column("next_attempt_at", INSTANT),
    sa.Column("worker", TEXT),
)  # fmt: skip
