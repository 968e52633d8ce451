"""Stage 5 assets: ratable summaries (priced overage) and liable summaries (invoice lines)."""

import dagster as dg
import pandas as pd

from consumption_pipeline.defs.metadata import table_metadata
from consumption_pipeline.defs.resources import SourceDirectory, WarehouseResource
from consumption_pipeline.domain.summaries import summarize


def build(periods: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name="summaries",
        specs=[
            dg.AssetSpec("ratable_summaries", deps=["usage_summaries"], group_name="lifecycle",
                         description="Overage of the period priced, one row per rate applied."),
            dg.AssetSpec("liable_summaries", deps=["usage_summaries", "ratable_summaries"],
                         group_name="lifecycle",
                         description="Invoice-ready lines per account, asset and billed resource."),
        ],
        partitions_def=periods,
    )  # fmt: skip
    def summaries(
        context: dg.AssetExecutionContext, source: SourceDirectory, warehouse: WarehouseResource
    ):
        store = warehouse.open()
        usage = store.read_period("usage_summaries", context.partition_key)
        period = pd.Timestamp(context.partition_key)
        result = summarize(usage, source.catalog(), period, source.today(), source.grace_days)
        store.replace_period(context.partition_key, {
            "ratable_summaries": result.ratable_summaries, "liable_summaries": result.liable_summaries,
        })  # fmt: skip
        liable = result.liable_summaries
        totals = liable.groupby("currency")["amount"].sum()
        yield dg.MaterializeResult(
            asset_key="ratable_summaries", metadata=table_metadata(result.ratable_summaries)
        )
        yield dg.MaterializeResult(asset_key="liable_summaries", metadata=table_metadata(
            liable, **{f"total/{c}": str(v) for c, v in totals.items()},
            status=str(liable["status"].iloc[0]) if len(liable) else "none"))  # fmt: skip

    return summaries
