"""Alert assets and the sensor that retries their delivery (README "Alerts").

- `alerts` (per period, after the forecast): the rules of `alert_rules.csv` evaluated on the
  period as of the forecast's date (audit/alerts.py); the alerts not recorded yet are inserted
  (closing/alerts.py), those already recorded are left as they were.
- `alert_deliveries` (per period, after `alerts`): one delivery attempt of each pending alert of
  the period. It never fails and never waits long: a receiver that is down costs one timeout, and
  what it missed stays pending for the sensor.
- `pending_alerts` (sensor, every minute): attempts every due alert of any period, retrying with
  backoff until each is delivered.
"""

import os

import dagster as dg
import pandas as pd

from consumption_pipeline.audit.alerts import period_alerts
from consumption_pipeline.audit.forecast import as_of_for
from consumption_pipeline.closing.alerts import AlertRegister, Pass, deliver_pending
from consumption_pipeline.defs.metadata import table_metadata
from consumption_pipeline.defs.resources import SourceDirectory, WarehouseResource
from consumption_pipeline.defs.schedules import automation_on
from consumption_pipeline.storage.alert_settings import AlertSettings

STEP_BUDGET_SECONDS = 10.0  # the billing job's delivery step: the rest is left to the sensor
SENSOR_BUDGET_SECONDS = 40.0  # within a sensor tick's 60 s
SENSOR_INTERVAL_SECONDS = 60


def build(periods: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        partitions_def=periods, group_name="audit", deps=["bucket_forecasts", "liable_summaries"],
        description="Alerts: each rule of alert_rules.csv and subject whose threshold is crossed "
                    "in the period, recorded once, on the first day it is crossed.",
    )  # fmt: skip
    def alerts(
        context: dg.AssetExecutionContext, source: SourceDirectory, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        period = pd.Timestamp(context.partition_key)
        as_of = as_of_for(period, source.today())
        with warehouse.holding(context) as store:
            found = period_alerts(store, source.catalog(), context.partition_key, as_of,
                                  source.grace_days)  # fmt: skip
            new = AlertRegister(store).record(found, context.run.run_id)
        return dg.MaterializeResult(metadata=table_metadata(
            found.drop(columns=["details"]), new_alerts=new, as_of=f"{as_of:%Y-%m-%d}"))  # fmt: skip

    @dg.asset(
        partitions_def=periods, group_name="audit", deps=[alerts],
        description="One delivery attempt of each pending alert of the period (webhook or "
                    "email); never fails the billing: what is missed is retried by the "
                    "pending_alerts sensor.",
    )  # fmt: skip
    def alert_deliveries(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        done = _deliver(warehouse, f"run {context.run.run_id}", context.partition_key,
                        STEP_BUDGET_SECONDS)  # fmt: skip
        for note in done.notes:
            context.log.warning(note)
        return dg.MaterializeResult(metadata={
            "delivered": done.delivered, "failed": done.failed, "pending": done.pending,
            "notes": "; ".join(done.notes) or "none",
        })  # fmt: skip

    return [alerts, alert_deliveries]


def _deliver(warehouse: WarehouseResource, worker: str, period: str | None, budget: float):
    try:
        settings = AlertSettings.from_env()
    except ValueError as error:  # checked when the code location loads; changed since
        return Pass(notes=[str(error)])
    return deliver_pending(warehouse.open(), settings, worker, period, budget)


def build_sensor() -> dg.Definitions:
    status = dg.DefaultSensorStatus.RUNNING if automation_on() else dg.DefaultSensorStatus.STOPPED

    @dg.sensor(
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS, default_status=status,
        description="Delivers the alerts still pending (a receiver that was down, a channel "
                    "configured since), each once, retrying with backoff.",
    )  # fmt: skip
    def pending_alerts(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
        done = _deliver(warehouse, f"sensor pending_alerts (pid {os.getpid()})", None,
                        SENSOR_BUDGET_SECONDS)  # fmt: skip
        for note in done.notes:
            context.log.warning(note)
        return dg.SkipReason(
            f"alerts delivered {done.delivered}, failed {done.failed} (retried later), "
            f"pending {done.pending}"
        )

    return dg.Definitions(sensors=[pending_alerts])
