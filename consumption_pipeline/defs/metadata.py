"""What Dagster shows of each asset: its code version, kinds, table name and column schema (from
the table definitions), the column lineage along the billed path, the materialization metadata
(row counts, a small Markdown preview) and the data-quality checks as Dagster asset checks."""

from __future__ import annotations

import warnings

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from consumption_pipeline.audit import markdown
from consumption_pipeline.audit.fingerprints import asset_code_version
from consumption_pipeline.quality.outcome import Outcome
from consumption_pipeline.storage.tables import AUDIT_TABLES, LAKE_TABLES, TABLES, alert_metadata

# Every table an asset may be kept as.
KEPT = {**TABLES, **AUDIT_TABLES, **alert_metadata.tables}

# The table each asset is kept as, where its name is not the asset's key.
KEPT_AS = {"restatements": "restatement_lines", "adhoc_summary": "adhoc_summaries"}

# Where each column of the billed path comes from (space-separated "asset.column"s): the invoice
# line back to the events, as the UI's column lineage shows it.
_KEY = {c: f"{{0}}.{c}" for c in ("account_id", "asset_id", "usage_resource_id")}
_RATED = ("aggregation_period", "window_start", "window_date", "event_count", "consumption",
          "drawdown_resource_id", "tokens_per_unit", "drawdown_quantity", "currency",
          "rate_source", "rate_asset_id", "rate_effective_from", "overage_chargeable")  # fmt: skip
COLUMN_LINEAGE: dict[str, dict[str, str]] = {
    "rated_usage": {
        **{c: s.format("usage_events") for c, s in _KEY.items()},
        "summary_id": "usage_events.account_id usage_events.asset_id usage_events.usage_resource_id usage_events.usage_date",
        "window_start": "usage_events.usage_date", "window_date": "usage_events.usage_date",
        "event_count": "usage_events.event_id", "consumption": "usage_events.quantity",
        "drawdown_quantity": "usage_events.quantity",
    },
    "usage_summaries": {
        **{c: s.format("rated_usage") for c, s in _KEY.items()}, "summary_id": "rated_usage.summary_id",
        **{c: f"rated_usage.{c}" for c in _RATED},
        "debited": "rated_usage.drawdown_quantity entitlement_buckets.granted",
        "overage": "rated_usage.drawdown_quantity entitlement_buckets.granted",
        "commitment_bucket_id": "entitlement_buckets.bucket_id",
    },
    "ratable_summaries": {
        **{c: s.format("usage_summaries") for c, s in _KEY.items()},
        **{c: f"usage_summaries.{c}" for c in ("rate_source", "rate_asset_id", "rate_effective_from", "currency")},
        "overage_quantity": "usage_summaries.overage",
        "net_unit_rate": "usage_summaries.rate_source usage_summaries.rate_asset_id usage_summaries.rate_effective_from",
        "amount": "usage_summaries.overage usage_summaries.rate_asset_id usage_summaries.rate_effective_from",
    },
    "liable_summaries": {
        **{c: s.format("ratable_summaries") for c, s in _KEY.items()},
        "consumption": "usage_summaries.consumption", "debited": "usage_summaries.debited",
        **{c: f"ratable_summaries.{c}" for c in ("overage_quantity", "net_unit_rate", "amount", "currency")},
    },
}  # fmt: skip


def described(assets: dg.AssetsDefinition, module: str, warehouse_url: str) -> dg.AssetsDefinition:
    """`assets` (defined in `module`) with their code version, kinds, table name and column
    schema."""
    dialect = sa.make_url(warehouse_url).get_backend_name()
    code_version = asset_code_version(module)

    def describe(spec: dg.AssetSpec) -> dg.AssetSpec:
        table = KEPT_AS.get(spec.key.to_user_string(), spec.key.to_user_string())
        if table not in KEPT:
            return spec.replace_attributes(code_version=code_version, kinds={"pandas"})
        kept = "parquet" if table in LAKE_TABLES else dialect
        return spec.replace_attributes(
            code_version=code_version, kinds={"pandas", kept},
            metadata={**spec.metadata, "dagster/table_name": table,
                      "dagster/column_schema": column_schema(table, dialect)},
        )  # fmt: skip

    return assets.map_asset_specs(describe)


def column_schema(table: str, dialect: str) -> dg.TableSchema:
    """The columns of `table` with their types as the warehouse's dialect names them (the lake's
    as SQLite would: they are Arrow types of the same names)."""
    definition = KEPT[table]
    names = sa.dialects.registry.load("postgresql" if dialect == "postgresql" else "sqlite")()
    return dg.TableSchema(columns=[
        dg.TableColumn(c.name, c.type.compile(dialect=names)) for c in definition.columns
    ])  # fmt: skip


def column_lineage(asset: str) -> dict:
    """The materialization metadata of `asset`'s column lineage (none off the billed path)."""
    if asset not in COLUMN_LINEAGE:
        return {}
    return {"dagster/column_lineage": dg.TableColumnLineage(deps_by_column={
        column: [dg.TableColumnDep(asset_key=dg.AssetKey(s.split(".")[0]), column_name=s.split(".")[1])
                 for s in sources.split()]
        for column, sources in COLUMN_LINEAGE[asset].items()
    })}  # fmt: skip


PREVIEW_ROWS = 10
FAILING_ROWS = 50  # failing rows shown in a check's metadata


def preview(
    frame: pd.DataFrame, rows: int = PREVIEW_ROWS, total: int | None = None
) -> dg.MarkdownMetadataValue:
    """The first `rows` rows, in the reports' formats (money at its currency's minor unit), of
    `total` if `frame` is the first of them."""
    return dg.MetadataValue.md(markdown.table(frame, max_rows=rows, total=total))


def table_metadata(frame: pd.DataFrame, total: int | None = None, **extra) -> dict:
    """A table's row count and first rows; `frame` may be the first `total` rows of it."""
    rows = len(frame) if total is None else total
    return {"dagster/row_count": rows, "preview": preview(frame, total=rows), **extra}


def check_spec(
    name: str, asset: str, periods: dg.PartitionsDefinition, blocking: bool, description: str
) -> dg.AssetCheckSpec:
    """A check run with its asset, once per billing period. A blocking check protects money:
    when it fails, nothing downstream of its asset runs for that period."""
    # Partitioned checks (a preview feature in Dagster 1.13) record each result on its period.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(
            name, asset=asset, partitions_def=periods, blocking=blocking, description=description
        )


def check_result(asset: str, outcome: Outcome, blocking: bool) -> dg.AssetCheckResult:
    """The outcome as a check result: a blocking check fails with ERROR, the others WARN; the
    failing rows (the first FAILING_ROWS) go in the metadata."""
    severity = dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN
    metadata = {"failing_rows": len(outcome.failing), **outcome.facts}
    if not outcome.passed:
        metadata["first_failing_rows"] = preview(outcome.failing, FAILING_ROWS)
    return dg.AssetCheckResult(
        asset_key=asset, check_name=outcome.check, passed=outcome.passed, severity=severity,
        description=outcome.summary, metadata=metadata,
    )  # fmt: skip
