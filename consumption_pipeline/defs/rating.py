"""Stage 3 asset: usage summaries per window, converted to tokens, with the rate chosen."""

import dagster as dg
import pandas as pd

from consumption_pipeline.defs.metadata import table_metadata
from consumption_pipeline.defs.resources import SourceDirectory, WarehouseResource
from consumption_pipeline.domain.rating import rate_usage


def build(periods: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(partitions_def=periods, deps=["usage_events", "catalog"], group_name="lifecycle")
    def rated_usage(
        context: dg.AssetExecutionContext, source: SourceDirectory, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """One row per (account, asset, resource, window): consumption and drawdown quantity."""
        store = warehouse.open()
        events = store.read_period("usage_events", context.partition_key)
        rated = rate_usage(events, source.catalog(), pd.Timestamp(context.partition_key))
        store.replace_period(context.partition_key, {"rated_usage": rated})
        return dg.MaterializeResult(metadata=table_metadata(rated))

    return rated_usage
