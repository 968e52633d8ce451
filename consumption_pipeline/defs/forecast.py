"""Forecast assets: per period, when each open bucket runs out and the overage still to come
(consumption_pipeline/audit/forecast.py), stored for the dashboard."""

import dagster as dg
import pandas as pd
from pydantic import Field

from consumption_pipeline.audit.adhoc import RequestError, check_window_days
from consumption_pipeline.audit.forecast import DEFAULT_WINDOW_DAYS, as_of_for, forecast, read_state
from consumption_pipeline.defs.lineage import record_lineage
from consumption_pipeline.defs.metadata import table_metadata
from consumption_pipeline.defs.resources import SourceDirectory, WarehouseResource


class ForecastConfig(dg.Config):
    window_days: int = Field(
        default=DEFAULT_WINDOW_DAYS, description="Trailing window of the burn rates, in days."
    )


def build(periods: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name="forecast",
        specs=[
            dg.AssetSpec("bucket_forecasts", group_name="audit",
                         deps=["bucket_balances", "entitlement_ledger", "usage_summaries"],
                         description="Burn rate and projected exhaustion date of each open bucket."),
            dg.AssetSpec("overage_forecasts", group_name="audit",
                         deps=["bucket_balances", "entitlement_ledger", "usage_summaries"],
                         description="Overage projected for the rest of the period, per invoice line."),
        ],
        partitions_def=periods,
    )  # fmt: skip
    def forecast_assets(
        context: dg.AssetExecutionContext,
        config: ForecastConfig,
        source: SourceDirectory,
        warehouse: WarehouseResource,
    ):
        try:
            check_window_days(config.window_days, "window_days")
        except RequestError as error:
            raise dg.Failure(description=f"forecast not produced: {error}") from None
        period = pd.Timestamp(context.partition_key)
        as_of = as_of_for(period, source.today())
        with warehouse.holding(context) as store:
            state = read_state(store, context.partition_key, as_of, config.window_days)
            result = forecast(state, source.catalog(), period, as_of, config.window_days,
                              source.grace_days)  # fmt: skip
            frames = {"bucket_forecasts": result.buckets, "overage_forecasts": result.overage}
            store.replace_period(context.partition_key, frames)
            version = record_lineage(context, source, store, frames,
                           {"settings/as_of": f"{as_of:%Y-%m-%d}", "settings/window_days": str(config.window_days)})  # fmt: skip
        yield dg.MaterializeResult(asset_key="bucket_forecasts", data_version=version, metadata=table_metadata(
            result.buckets, as_of=f"{as_of:%Y-%m-%d}"))  # fmt: skip
        yield dg.MaterializeResult(asset_key="overage_forecasts", data_version=version, metadata=table_metadata(
            result.overage, as_of=f"{as_of:%Y-%m-%d}"))  # fmt: skip

    return forecast_assets
