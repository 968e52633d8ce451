"""Closing a billing period in Dagster (DOMAIN.md "Time"): the `billing_export` asset, which writes
a closed period's final liable summaries to the outbox once (consumption_pipeline/export.py), and
the `period_close_job`, which materializes the five stages for the last time and then exports.

The close is judged on the `source` resource's date (`as_of`, else today in the billing time
zone): the period-close schedule passes the day of its tick in the run config, so a close run
means the same thing whenever it executes.
"""

from dataclasses import replace
from pathlib import Path

import dagster as dg

from consumption_pipeline.defs.partitions import previous_period
from consumption_pipeline.defs.resources import SourceDirectory, WarehouseResource
from consumption_pipeline.export import (
    close_period,
    ensure_closable,
    outbox_dir,
    outbox_folder,
)
from consumption_pipeline.settings import Settings
from consumption_pipeline.warehouse import Warehouse

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


def close_in_process(
    settings: Settings, period: str, outbox: str, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    """Close a period by hand: the period-close job in this process, recorded in `instance`,
    judged on `settings.as_of` (else today). A period that may not close is refused before any
    stage runs."""
    from consumption_pipeline.cli import QUIET
    from consumption_pipeline.definitions import build_defs

    source = SourceDirectory(
        path=settings.source_dir, billing_timezone=settings.billing_timezone,
        grace_days=settings.grace_days, as_of=settings.as_of,
    )  # fmt: skip
    today = f"{source.today():%Y-%m-%d}"
    store = Warehouse(settings.warehouse_url, settings.lake_url)
    ensure_closable(store, period, source.today(), source.grace_days)
    job = build_defs(replace(settings, as_of=today)).resolve_job_def(PERIOD_CLOSE_JOB)
    return job.execute_in_process(
        partition_key=period, instance=instance, raise_on_error=False,
        run_config={**QUIET, "resources": {"outbox": {"config": {"path": outbox}}}},
        tags={"consumption/trigger": "by_hand", "consumption/as_of": today},
    )  # fmt: skip
