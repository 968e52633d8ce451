"""Stage 4 assets: usage drawn down against the buckets, the ledger and the bucket balances."""

import dagster as dg
import pandas as pd

from consumption_pipeline.defs.lineage import alongside, output_digests, record_lineage
from consumption_pipeline.defs.metadata import (
    check_result,
    check_spec,
    column_lineage,
    table_metadata,
)
from consumption_pipeline.defs.partitions import previous_period
from consumption_pipeline.defs.resources import SourceDirectory, WarehouseResource
from consumption_pipeline.domain.drawdown import draw_down
from consumption_pipeline.quality.conservation import bucket_balances_conserved, drawdown_conserved
from consumption_pipeline.storage.warehouse import Warehouse


def build(periods: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name="drawdown",
        specs=[
            dg.AssetSpec("usage_summaries", deps=["rated_usage", "entitlement_buckets"], group_name="lifecycle",
                         description="Rated usage with what the buckets covered and the overage."),
            dg.AssetSpec("entitlement_ledger", deps=["rated_usage", "entitlement_buckets"], group_name="lifecycle",
                         description="Every credit, debit, expiry and rollover of every bucket."),
            dg.AssetSpec("bucket_balances", group_name="lifecycle",
                         deps=["rated_usage", "entitlement_buckets",
                               dg.AssetDep("bucket_balances", partition_mapping=previous_period())],
                         description="Opening, flows and closing balance of each bucket."),
        ],
        partitions_def=periods,
        check_specs=[
            check_spec("drawdown_conserved", "usage_summaries", periods, True,
                       "Per summary: drawdown quantity = debited + overage, as in the ledger."),
            check_spec("bucket_balances_conserved", "bucket_balances", periods, True,
                       "Per bucket: opening + credited - debited - expired - rolled over = "
                       "closing >= 0, flows as in the ledger, opening = previous closing."),
        ],
    )  # fmt: skip
    def drawdown(
        context: dg.AssetExecutionContext, source: SourceDirectory, warehouse: WarehouseResource
    ):
        period = pd.Timestamp(context.partition_key)
        with warehouse.holding(context) as store:
            rated = store.read_period("rated_usage", context.partition_key)
            buckets = store.read_period(
                "entitlement_buckets", context.partition_key, where={"rollover_generation": 0}
            )
            carried = carried_buckets(store, period)
            result = draw_down(rated, buckets, carried, source.catalog(), period)
            written = {
                "usage_summaries": result.usage_summaries, "entitlement_ledger": result.entitlement_ledger,
                "bucket_balances": result.bucket_balances, "entitlement_buckets": result.rollover_buckets,
            }  # fmt: skip
            ledger = result.entitlement_ledger

            def digest_and_check():
                return output_digests(written), drawdown_conserved(result.usage_summaries, ledger), (
                    bucket_balances_conserved(result.bucket_balances, ledger, carried))  # fmt: skip

            # One transaction: the ledger, the balances and the rollover buckets agree, or none changes.
            _, (digests, conserved, balanced) = alongside(digest_and_check, lambda: store.replace_period(
                context.partition_key, written, where={"entitlement_buckets": {"origin": "rollover"}}))  # fmt: skip
            version = record_lineage(context, source, store, written, outputs=digests)
        overage = result.usage_summaries["overage"].sum()
        yield dg.MaterializeResult(asset_key="usage_summaries", data_version=version, metadata=table_metadata(
            result.usage_summaries, total_overage=float(overage), **column_lineage("usage_summaries")))  # fmt: skip
        yield dg.MaterializeResult(asset_key="entitlement_ledger", data_version=version,
                                   metadata=table_metadata(ledger))  # fmt: skip
        yield dg.MaterializeResult(asset_key="bucket_balances", data_version=version, metadata=table_metadata(
            result.bucket_balances, rollover_buckets=len(result.rollover_buckets)))  # fmt: skip
        yield check_result("usage_summaries", conserved, blocking=True)
        yield check_result("bucket_balances", balanced, blocking=True)

    return drawdown


def carried_buckets(store: Warehouse, period: pd.Timestamp) -> pd.DataFrame:
    """The buckets still open at the end of the previous period, with their closing balance."""
    previous = (period - pd.offsets.MonthBegin(1)).strftime("%Y-%m-%d")
    balances = store.read_period("bucket_balances", previous)
    buckets = store.read_period("entitlement_buckets", previous)
    still_open = balances.loc[balances["is_open"].astype(bool), ["bucket_id", "closing"]]
    return buckets.drop(columns=["period"]).merge(still_open, on="bucket_id")
