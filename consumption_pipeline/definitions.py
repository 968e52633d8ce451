"""The one `Definitions` object of the code location: the lifecycle of DOMAIN.md as assets."""

from __future__ import annotations

import dagster as dg

from consumption_pipeline.defs import buckets, drawdown, ingest, rating, summaries
from consumption_pipeline.defs.partitions import billing_periods
from consumption_pipeline.defs.resources import SourceDirectory, WarehouseResource
from consumption_pipeline.settings import Settings

BILLING_JOB = "billing_job"


def build_defs(settings: Settings) -> dg.Definitions:
    periods = billing_periods(settings.first_period, settings.billing_timezone)
    sources = [
        dg.AssetSpec("catalog", group_name="sources",
                     description=f"Catalog CSV files in {settings.source_dir}"),
        dg.AssetSpec("usage_files", group_name="sources",
                     description=f"Usage event files in {settings.source_dir}/usage"),
    ]  # fmt: skip
    stages = [module.build(periods) for module in (ingest, buckets, rating, drawdown, summaries)]
    billing_job = dg.define_asset_job(BILLING_JOB, selection=dg.AssetSelection.groups("lifecycle"),
                                      description="All five stages of one billing period, in order.")  # fmt: skip
    return dg.Definitions(
        assets=[*sources, *stages],
        jobs=[billing_job],
        resources={
            "source": SourceDirectory(
                path=settings.source_dir, billing_timezone=settings.billing_timezone,
                grace_days=settings.grace_days, as_of=settings.as_of,
            ),
            "warehouse": WarehouseResource(url=settings.warehouse_url),
        },
    )  # fmt: skip


defs = build_defs(Settings.from_env())
