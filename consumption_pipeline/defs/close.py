"""Closing a billing period in Dagster (docs/rules.md "Time"): the `billing_export` asset, which writes
a closed period's final liable summaries to the outbox once (closing/outbox.py), and
the `period_close_job`, which materializes the five stages for the last time and then exports.

The close is judged on the `source` resource's date (`as_of`, else today in the billing time
zone): the period-close schedule passes the day of its tick in the run config, so a close run
means the same thing whenever it executes.
"""

from pathlib import Path

import dagster as dg

from consumption_pipeline.closing.close import close_period
from consumption_pipeline.closing.outbox import outbox_dir, outbox_folder
from consumption_pipeline.defs.partitions import previous_period
from consumption_pipeline.defs.resources import SourceDirectory, WarehouseResource

PERIOD_CLOSE_JOB = "period_close_job"


class BillingOutbox(dg.ConfigurableResource):
    """The folder the billing system collects closed periods from (`CONSUMPTION_OUTBOX_DIR`)."""

    path: str


def build(periods: dg.PartitionsDefinition) -> dg.Definitions:
    @dg.asset(
        partitions_def=periods,
        group_name="billing",
        deps=["liable_summaries",
              dg.AssetDep("billing_export", partition_mapping=previous_period())],
    )  # fmt: skip
    def billing_export(
        context: dg.AssetExecutionContext,
        source: SourceDirectory,
        warehouse: WarehouseResource,
        outbox: BillingOutbox,
    ) -> dg.MaterializeResult:
        """The closed period's final liable summaries in the outbox (CSV, JSON and a manifest),
        written once; the period is then recorded in `period_closures`. Periods close in order."""
        with warehouse.holding(context) as store:
            manifest = close_period(
                store, Path(outbox.path), context.partition_key, source.today(),
                source.grace_days, context.run.run_id,
            )  # fmt: skip
        folder = outbox_folder(Path(outbox.path), context.partition_key)
        return dg.MaterializeResult(metadata={
            "dagster/row_count": manifest["rows"], "outbox": dg.MetadataValue.path(str(folder)),
            "checksum": manifest["checksum"], "closed_on": manifest["closed_on"],
            **{f"total/{currency}": total for currency, total in manifest["totals"].items()},
        })  # fmt: skip

    close_job = dg.define_asset_job(
        PERIOD_CLOSE_JOB,
        selection=dg.AssetSelection.groups("lifecycle") | dg.AssetSelection.assets(billing_export),
        description="Close one billing period: all five stages for the last time, then the export.",
    )
    return dg.Definitions(
        assets=[billing_export],
        jobs=[close_job],
        resources={"outbox": BillingOutbox(path=outbox_dir())},
    )
