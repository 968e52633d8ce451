"""The restatements asset (consumption_pipeline/audit/restatement.py): after a closed period is
recomputed, the difference from what was billed for it, booked into the next open period."""

from decimal import Decimal

import dagster as dg
import pandas as pd

from consumption_pipeline.audit import markdown
from consumption_pipeline.audit.fingerprints import code_version
from consumption_pipeline.audit.restatement import restate
from consumption_pipeline.defs.lineage import record_lineage
from consumption_pipeline.defs.resources import SourceDirectory, WarehouseResource


def build(periods: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        partitions_def=periods,
        group_name="audit",
        deps=["liable_summaries"],
        description="Differences between a closed period's billed lines and its recomputation.",
    )
    def restatements(
        context: dg.AssetExecutionContext, source: SourceDirectory, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        with warehouse.holding(context) as store:
            version = record_lineage(context, source, store, {})
            result = restate(store, context.partition_key, context.run.run_id, code_version())
        if result is None:
            return dg.MaterializeResult(data_version=version, metadata={"dagster/row_count": 0,
                                                                        "restatement": "none"})  # fmt: skip
        lines = result.lines
        totals = lines.groupby("currency")["amount"].agg(lambda a: sum(a, Decimal(0)))
        shown = lines[["account_id", "asset_id", "usage_resource_id", "consumption", "debited",
                       "overage_quantity", "amount", "currency"]]  # fmt: skip
        events = result.events[["change", "event_id", "account_id", "quantity", "billed_quantity",
                                "source_file", "row_number"]]  # fmt: skip
        return dg.MaterializeResult(data_version=version, metadata={
            "dagster/row_count": len(lines), "restatement": result.restatement_id,
            "booked_in": f"{pd.Timestamp(result.booked_in):%Y-%m}", "reason": result.reason,
            **{f"total/{c}": str(v) for c, v in totals.items()},
            "lines": dg.MetadataValue.md(markdown.table(shown)),
            "events": dg.MetadataValue.md(markdown.table(events, max_rows=50)),
        })  # fmt: skip

    return restatements
