"""The one `Definitions` object of the code location: the lifecycle of docs/rules.md as assets."""

from __future__ import annotations

import dagster as dg

from consumption_pipeline.defs import adhoc as adhoc_module
from consumption_pipeline.defs import (
    alerts,
    buckets,
    close,
    drawdown,
    forecast,
    ingest,
    rating,
    restatements,
    schedules,
    sensors,
    summaries,
)
from consumption_pipeline.defs.adhoc import adhoc_summary
from consumption_pipeline.defs.metadata import described
from consumption_pipeline.defs.partitions import billing_periods
from consumption_pipeline.defs.resources import SourceDirectory, WarehouseResource
from consumption_pipeline.storage.alert_settings import AlertSettings
from consumption_pipeline.storage.settings import Settings

BILLING_JOB = "billing_job"


def build_defs(settings: Settings) -> dg.Definitions:
    periods = billing_periods(settings.first_period, settings.billing_timezone)
    sources = [
        dg.AssetSpec("catalog", group_name="sources", kinds={"csv"},
                     description=f"Catalog CSV files in {settings.source_dir}"),
        dg.AssetSpec("usage_files", group_name="sources", kinds={"file"},
                     description=f"Usage event files in {settings.source_dir}/usage"),
    ]  # fmt: skip

    def built(module):
        return described(module.build(periods), module.__name__, settings.warehouse_url)

    stages = [built(module) for module in (ingest, buckets, rating, drawdown, summaries)]
    forecasts, restated = built(forecast), built(restatements)
    adhoc = described(adhoc_summary, adhoc_module.__name__, settings.warehouse_url)
    AlertSettings.from_env()  # a bad alert channel setting stops here, naming the variable
    alerting = [
        described(a, alerts.__name__, settings.warehouse_url) for a in alerts.build(periods)
    ]
    billing_job = dg.define_asset_job(BILLING_JOB, selection=dg.AssetSelection.groups("lifecycle")
                                      | dg.AssetSelection.assets(forecasts, restated, *alerting),
                                      description="All five stages of one billing period, in order, its forecasts, restatements and alerts.")  # fmt: skip
    # Production flows: the period close and export, the schedules and the new-usage sensor.
    operations = [close.build(periods), schedules.build(settings, BILLING_JOB),
                  sensors.build(settings, BILLING_JOB), alerts.build_sensor()]  # fmt: skip
    base = dg.Definitions(
        assets=[*sources, *stages, forecasts, restated, *alerting, adhoc],
        jobs=[billing_job],
        # A run's steps form a chain: one process per run (a process per step costs its start-up).
        executor=dg.in_process_executor,
        resources={
            "source": SourceDirectory(
                path=settings.source_dir, billing_timezone=settings.billing_timezone,
                grace_days=settings.grace_days, as_of=settings.as_of,
                anomaly_factor=settings.anomaly_factor, dask_address=settings.dask_address,
            ),
            "warehouse": WarehouseResource(url=settings.warehouse_url, lake=settings.lake_url,
                                           lock_wait_seconds=settings.lock_wait_seconds),
        },
    )  # fmt: skip
    return dg.Definitions.merge(base, *operations)


defs = build_defs(Settings.from_env())
