"""Stage 5 assets: ratable summaries (priced overage) and liable summaries (invoice lines)."""

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
from consumption_pipeline.domain.summaries import SUMMARIZED, summarize
from consumption_pipeline.quality.conservation import liable_equals_ratable


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
        check_specs=[
            check_spec("liable_equals_ratable", "liable_summaries", periods, True,
                       "Per account and period: the sum of liable amounts = the sum of ratable "
                       "amounts."),
        ],
    )  # fmt: skip
    def summaries(
        context: dg.AssetExecutionContext, source: SourceDirectory, warehouse: WarehouseResource
    ):
        with warehouse.holding(context) as store:
            usage = store.read_period("usage_summaries", context.partition_key, columns=SUMMARIZED)
            period = pd.Timestamp(context.partition_key)
            result = summarize(usage, source.catalog(), period, source.today(), source.grace_days)
            written = {"ratable_summaries": result.ratable_summaries,
                       "liable_summaries": result.liable_summaries}  # fmt: skip
            # Only the usage lines: adjustment lines booked here by restatements of closed periods stay.
            _, digests = alongside(lambda: output_digests(written), lambda: store.replace_period(
                context.partition_key, written, where={"ratable_summaries": {"line_type": "usage"},
                                                       "liable_summaries": {"line_type": "usage"}}))  # fmt: skip
            version = record_lineage(context, source, store, written, outputs=digests)
        liable = result.liable_summaries
        totals = liable.groupby("currency")["amount"].sum()
        yield dg.MaterializeResult(asset_key="ratable_summaries", data_version=version, metadata=table_metadata(
            result.ratable_summaries, **column_lineage("ratable_summaries")))  # fmt: skip
        yield dg.MaterializeResult(asset_key="liable_summaries", data_version=version, metadata=table_metadata(
            liable, **column_lineage("liable_summaries"), **{f"total/{c}": str(v) for c, v in totals.items()},
            status=str(liable["status"].iloc[0]) if len(liable) else "none"))  # fmt: skip
        outcome = liable_equals_ratable(liable, result.ratable_summaries)
        yield check_result("liable_summaries", outcome, blocking=True)

    return summaries
