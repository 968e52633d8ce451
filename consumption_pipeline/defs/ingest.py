"""Stage 1 assets: accepted and quarantined usage events of a billing period."""

import dagster as dg
import pandas as pd

from consumption_pipeline.defs.metadata import table_metadata
from consumption_pipeline.defs.resources import SourceDirectory, WarehouseResource
from consumption_pipeline.domain.ingest import ingest


def build(periods: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name="ingest",
        specs=[
            dg.AssetSpec("usage_events", deps=["usage_files", "catalog"], group_name="lifecycle",
                         description="Accepted usage events of the period, deduplicated by event_id."),
            dg.AssetSpec("quarantined_events", deps=["usage_files", "catalog"], group_name="lifecycle",
                         description="Events that cannot be billed, each with its reason."),
        ],
        partitions_def=periods,
    )  # fmt: skip
    def ingest_events(
        context: dg.AssetExecutionContext, source: SourceDirectory, warehouse: WarehouseResource
    ):
        period = pd.Timestamp(context.partition_key)
        result = ingest(source.event_files(), source.catalog(), period, source.billing_timezone)
        reconciliation = pd.DataFrame([result.reconciliation])
        warehouse.open().replace_period(context.partition_key, {
            "usage_events": result.usage_events, "quarantined_events": result.quarantined_events,
            "ingest_reconciliation": reconciliation,
        })  # fmt: skip
        reasons = result.quarantined_events["reason"].value_counts().to_dict()
        yield dg.MaterializeResult(asset_key="usage_events", metadata=table_metadata(
            result.usage_events, **{k: int(v) for k, v in result.reconciliation.items()}))  # fmt: skip
        yield dg.MaterializeResult(asset_key="quarantined_events", metadata=table_metadata(
            result.quarantined_events, **{f"reason/{k}": int(v) for k, v in reasons.items()}))  # fmt: skip

    return ingest_events
