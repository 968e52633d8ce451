"""The standard flows on the billing calendar (docs/rules.md "Time"), as Dagster schedules:

- `refresh_open_periods`, every day at 02:00 in the billing time zone, materializes the open
  periods (today's, and the previous one during its grace days), oldest first, so that their
  liable summaries stay provisional but current;
- `close_periods`, every day at 01:00, closes each period whose grace period has passed and that is
  not closed yet, oldest first: the period-close job materializes it for the last time and exports
  it. Normally that is one period, on the day after its last grace day; after a daemon outage it
  catches up.

"Today" is the tick's scheduled time in the billing time zone (or `as_of` when it is set). It is
passed to each run in its config, so a run judges open and closed as of its tick however long it
waited in the queue, and a test drives the schedules through a month end by choosing the tick.

Every run these flows request carries the tag `consumption/lane: automation`. The production
instance (deploy/dagster.yaml) runs one such run at a time, oldest first, because a period's
opening balances are the previous period's closing balances.
"""

import datetime as dt
import os
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd

from consumption_pipeline.closing.dates import label, open_periods
from consumption_pipeline.closing.register import ClosureRegister, periods_to_close
from consumption_pipeline.defs.close import PERIOD_CLOSE_JOB
from consumption_pipeline.defs.resources import SourceDirectory, WarehouseResource
from consumption_pipeline.storage.settings import Settings
from consumption_pipeline.storage.warehouse import Warehouse

REFRESH_CRON, CLOSE_CRON = "0 2 * * *", "0 1 * * *"
LANE_TAG, LANE = "consumption/lane", "automation"
AS_OF_TAG, TRIGGER_TAG = "consumption/as_of", "consumption/trigger"
# "on" starts the schedules and the sensor when the code location loads (else: in the UI)
AUTOMATION_ENV = "CONSUMPTION_AUTOMATION"


def automation_on() -> bool:
    return os.environ.get(AUTOMATION_ENV, "").lower() == "on"


def billing_today(source: SourceDirectory, instant: dt.datetime | None = None) -> pd.Timestamp:
    """The date open and closed are judged on: `as_of` if set, else `instant` (or now) as a date
    in the billing time zone."""
    if source.as_of or instant is None:
        return source.today()
    return pd.Timestamp(instant.astimezone(ZoneInfo(source.billing_timezone)).date())


def run_config(source: SourceDirectory, today: pd.Timestamp) -> dict:
    """The run's `source` as configured, with the judging date pinned (run config replaces a
    resource's whole config, so every field is repeated)."""
    config = {**source.model_dump(), "as_of": f"{today:%Y-%m-%d}"}
    return {"resources": {"source": {"config": config}}}


def automation_request(
    job_name: str, period: str, source: SourceDirectory, today: pd.Timestamp, trigger: str,
    key: str = "",
) -> dg.RunRequest:  # fmt: skip
    return dg.RunRequest(
        run_key=f"{trigger}:{label(period)}:{today:%Y-%m-%d}{key}",
        job_name=job_name,
        partition_key=period,
        run_config=run_config(source, today),
        tags={LANE_TAG: LANE, AS_OF_TAG: f"{today:%Y-%m-%d}", TRIGGER_TAG: trigger},
    )


def periods_to_refresh(
    store: Warehouse, today: pd.Timestamp, grace_days: int, first_period: str
) -> list[str]:
    """The open periods on `today` that no one closed early, oldest first."""
    closed = set(ClosureRegister(store).closed_periods())
    return [p for p in open_periods(today, grace_days, first_period) if p not in closed]


def build(settings: Settings, billing_job: str) -> dg.Definitions:
    status = (
        dg.DefaultScheduleStatus.RUNNING if automation_on() else dg.DefaultScheduleStatus.STOPPED
    )

    @dg.schedule(
        cron_schedule=REFRESH_CRON, job_name=billing_job, default_status=status,
        execution_timezone=settings.billing_timezone,
        description="Every day: materialize the open periods (provisional lines), oldest first.",
    )  # fmt: skip
    def refresh_open_periods(
        context: dg.ScheduleEvaluationContext, source: SourceDirectory, warehouse: WarehouseResource
    ):
        today = billing_today(source, context.scheduled_execution_time)
        periods = periods_to_refresh(
            warehouse.open(), today, source.grace_days, settings.first_period
        )
        if not periods:
            return dg.SkipReason(f"no open period on {today:%Y-%m-%d}")
        return [automation_request(billing_job, p, source, today, "refresh") for p in periods]

    @dg.schedule(
        cron_schedule=CLOSE_CRON, job_name=PERIOD_CLOSE_JOB, default_status=status,
        execution_timezone=settings.billing_timezone,
        description="Every day: close each period whose grace period has passed, oldest first.",
    )  # fmt: skip
    def close_periods(
        context: dg.ScheduleEvaluationContext, source: SourceDirectory, warehouse: WarehouseResource
    ):
        today = billing_today(source, context.scheduled_execution_time)
        periods = periods_to_close(warehouse.open(), today, source.grace_days)
        if not periods:
            return dg.SkipReason(f"no period to close on {today:%Y-%m-%d}")
        return [automation_request(PERIOD_CLOSE_JOB, p, source, today, "close") for p in periods]

    return dg.Definitions(schedules=[refresh_open_periods, close_periods])
