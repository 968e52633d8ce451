"""Stage 2 asset: the entitlement buckets that the assetized products grant in a period."""

import dagster as dg
import pandas as pd

from consumption_pipeline.defs.lineage import record_lineage
from consumption_pipeline.defs.metadata import table_metadata
from consumption_pipeline.defs.resources import SourceDirectory, WarehouseResource
from consumption_pipeline.domain.buckets import create_buckets


def build(periods: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(partitions_def=periods, deps=["catalog"], group_name="lifecycle")
    def entitlement_buckets(
        context: dg.AssetExecutionContext, source: SourceDirectory, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """Buckets of grants, commitments, amendments and credits valid in the period (rollover
        buckets, generation 1 and up, are added by the drawdown)."""
        buckets = create_buckets(source.catalog(), pd.Timestamp(context.partition_key))
        with warehouse.holding(context) as store:
            store.replace_period(
                context.partition_key,
                {"entitlement_buckets": buckets},
                where={"entitlement_buckets": {"rollover_generation": 0}},
            )
            version = record_lineage(context, source, store, {"entitlement_buckets": buckets})
        return dg.MaterializeResult(metadata=table_metadata(buckets), data_version=version)

    return entitlement_buckets
