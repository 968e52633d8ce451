"""The warehouse tables of DOMAIN.md "Outputs", with their column types.

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


def _table(name: str, *columns: tuple[str, sa.types.TypeEngine]) -> sa.Table:
    return sa.Table(name, metadata, *(sa.Column(n, t) for n, t in columns))


usage_events = _table(
    "usage_events",
    ("period", DATE), ("event_id", TEXT), ("account_id", TEXT), ("asset_id", TEXT),
    ("usage_resource_id", TEXT), ("quantity", QUANTITY), ("occurred_at", INSTANT),
    ("usage_date", DATE), ("source_file", TEXT), ("row_number", INT),
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
)  # fmt: skip

rated_usage = _table(
    "rated_usage",
    ("period", DATE), ("summary_id", TEXT), ("account_id", TEXT), ("asset_id", TEXT),
    ("usage_resource_id", TEXT), ("aggregation_period", TEXT), ("window_start", DATE),
    ("window_date", DATE), ("event_count", INT), ("consumption", QUANTITY),
    ("drawdown_resource_id", TEXT), ("tokens_per_unit", QUANTITY),
    ("drawdown_quantity", QUANTITY), ("currency", TEXT), ("rate_source", TEXT),
    ("rate_asset_id", TEXT), ("rate_effective_from", DATE), ("overage_chargeable", BOOL),
)  # fmt: skip

usage_summaries = _table(
    "usage_summaries",
    *[(c.name, c.type) for c in rated_usage.columns],
    ("debited", QUANTITY), ("overage", QUANTITY),
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
)  # fmt: skip

liable_summaries = _table(
    "liable_summaries",
    ("period", DATE), ("account_id", TEXT), ("asset_id", TEXT), ("usage_resource_id", TEXT),
    ("consumption", QUANTITY), ("debited", QUANTITY), ("overage_quantity", QUANTITY),
    ("net_unit_rate", MONEY), ("amount", MONEY), ("currency", TEXT), ("status", TEXT),
)  # fmt: skip

TABLES: dict[str, sa.Table] = dict(metadata.tables)
