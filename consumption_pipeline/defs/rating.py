"""Stage 3 asset: usage summaries per window, converted to tokens, with the rate chosen."""

import functools

import dagster as dg
import pandas as pd

from consumption_pipeline.defs.lineage import alongside, output_digests, record_lineage
from consumption_pipeline.defs.metadata import (
    check_result,
    check_spec,
    column_lineage,
    table_metadata,
)
from consumption_pipeline.defs.resources import SourceDirectory, WarehouseResource
from consumption_pipeline.domain.rating import RATED_FROM, rate_sums, rate_usage, window_sums
from consumption_pipeline.quality.anomalies import volume_anomalies
from consumption_pipeline.storage.warehouse import Warehouse


def build(periods: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    anomalies = check_spec("volume_anomalies", "rated_usage", periods, False,
                           "A warning naming the accounts whose usage of a resource fell to zero "
                           "or changed by more than the anomaly factor against the previous period.")  # fmt: skip

    @dg.asset(partitions_def=periods, deps=["usage_events", "catalog"], group_name="lifecycle",
              check_specs=[anomalies])  # fmt: skip
    def rated_usage(
        context: dg.AssetExecutionContext, source: SourceDirectory, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """One row per (account, asset, resource, window): consumption and drawdown quantity."""
        with warehouse.holding(context) as store:
            rated = _rated(store, source, context.partition_key)
            written = {"rated_usage": rated}
            _, digests = alongside(lambda: output_digests(written),
                                   lambda: store.replace_period(context.partition_key, written))  # fmt: skip
            version = record_lineage(context, source, store, written, outputs=digests)
        previous = store.read_period("rated_usage", _previous(context.partition_key))
        outcome = volume_anomalies(rated, previous, source.anomaly_factor)
        return dg.MaterializeResult(
            metadata=table_metadata(rated, **column_lineage("rated_usage"),
                                    **{"dagster/uri": store.lake.uri("rated_usage", context.partition_key)}),
            data_version=version, check_results=[check_result("rated_usage", outcome, False)],
        )  # fmt: skip

    return rated_usage


def _rated(store: Warehouse, source: SourceDirectory, period: str) -> pd.DataFrame:
    """The period's rated usage; with a cluster, each part of the events summed by window
    there, the parts' sums combined here."""
    catalog, month = source.catalog(), pd.Timestamp(period)
    if not source.dask_address:
        return rate_usage(store.read_batches("usage_events", period, RATED_FROM), catalog, month)
    task = functools.partial(window_sums, catalog=catalog, period=month)
    parts = store.lake.mapped_parts("usage_events", period, RATED_FROM, task, source.dask_address)
    return rate_sums(parts, catalog, month)


def _previous(period: str) -> str:
    return (pd.Timestamp(period) - pd.offsets.MonthBegin(1)).strftime("%Y-%m-%d")
