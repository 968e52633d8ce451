"""The two Dagster instances (dagster.yaml with no server, deploy/dagster.yaml on PostgreSQL) and
the production flows of the code location."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from consumption_pipeline.definitions import BILLING_JOB, build_defs
from consumption_pipeline.defs.close import PERIOD_CLOSE_JOB
from consumption_pipeline.storage.settings import PROJECT_ROOT, Settings
from consumption_pipeline_tests.postgres import postgres_database

LIMITS = [
    {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1},
    {"key": "dagster/backfill", "value": {"applyLimitPerUniqueValue": True}, "limit": 1},
    {"key": "consumption/lane", "value": "automation", "limit": 1},
]


def instance_from(config: Path, home: Path) -> dg.DagsterInstance:
    home.mkdir(exist_ok=True)
    shutil.copy(config, home / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(home))


def test_the_default_instance_needs_no_server(tmp_path: Path):
    with instance_from(PROJECT_ROOT / "deploy" / "local" / "dagster.yaml", tmp_path) as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert type(instance.event_log_storage).__name__ == "SqliteEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "SqliteScheduleStorage"
        assert instance.get_concurrency_config().run_queue_config.tag_concurrency_limits == LIMITS
        assert not instance.telemetry_enabled


def test_the_production_instance_keeps_everything_in_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    with postgres_database("cp_instance") as url:
        monkeypatch.setenv("DAGSTER_POSTGRES_URL", url)
        with instance_from(PROJECT_ROOT / "deploy" / "dagster.yaml", tmp_path) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
            assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
            queue = instance.get_concurrency_config().run_queue_config
            assert (queue.max_concurrent_runs, queue.tag_concurrency_limits) == (4, LIMITS)
            assert instance.run_monitoring_enabled and not instance.telemetry_enabled


def test_the_code_location_holds_the_production_flows(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("CONSUMPTION_AUTOMATION", raising=False)
    defs = build_defs(Settings(billing_timezone="Europe/Paris"))
    refresh = defs.get_schedule_def("refresh_open_periods")
    close = defs.get_schedule_def("close_periods")
    assert (refresh.cron_schedule, refresh.job_name) == ("0 2 * * *", BILLING_JOB)
    assert (close.cron_schedule, close.job_name) == ("0 1 * * *", PERIOD_CLOSE_JOB)
    assert refresh.execution_timezone == close.execution_timezone == "Europe/Paris"
    assert refresh.default_status == dg.DefaultScheduleStatus.STOPPED
    sensor = defs.get_sensor_def("new_usage_files")
    assert sensor.job_name == BILLING_JOB
    job = defs.resolve_job_def(PERIOD_CLOSE_JOB)
    keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert {"usage_events", "bucket_balances", "liable_summaries", "billing_export"} <= keys
    assert job.executor_def.name == "in_process"


def test_automation_on_starts_the_schedules_and_the_sensor(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CONSUMPTION_AUTOMATION", "on")
    defs = build_defs(Settings())
    assert defs.get_schedule_def("close_periods").default_status == (
        dg.DefaultScheduleStatus.RUNNING
    )
    assert defs.get_sensor_def("new_usage_files").default_status == dg.DefaultSensorStatus.RUNNING
