"""Shared pieces of the production tests: settings and run config for a source and a warehouse,
in-process runs, snapshots of a warehouse's period tables, and late usage for ACME."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd

from consumption_pipeline.definitions import BILLING_JOB, build_defs
from consumption_pipeline.storage.settings import DEFAULT_SOURCE, Settings
from consumption_pipeline.storage.tables import TABLES

AS_OF = "2026-11-25"  # September and October are past their grace period, November is open
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
# 10 more compute hours for ACME on 25 October: 10 h x 10 credits/h = 100 credits.
LATE_ACME = (
    "event_id,account_id,asset_id,usage_resource_id,quantity,occurred_at\n"
    "late-001,ACME,A1,compute_hours,10,2026-10-25T12:00:00Z\n"
)


def copy_sample(folder: Path) -> Path:
    """A writable copy of the shipped sample (a test adds files to its landing folder)."""
    return Path(shutil.copytree(DEFAULT_SOURCE, folder))


def settings_for(source: Path, url: str, as_of: str = AS_OF) -> Settings:
    return Settings(source_dir=str(source), warehouse_url=url, as_of=as_of)


def launch_config(settings: Settings, outbox: Path) -> dict:
    """Run config that points a launched run at these settings: the code server's own settings
    come from its environment, and run config replaces a resource's whole config."""
    resources = build_defs(settings).resources
    return {
        **QUIET,
        "resources": {
            "source": {"config": resources["source"].model_dump()},
            "warehouse": {"config": {"url": settings.warehouse_url}},
            "outbox": {"config": {"path": str(outbox)}},
        },
    }


def materialize(
    settings: Settings, period: str, instance: dg.DagsterInstance, job: str = BILLING_JOB, **kw
) -> dg.ExecuteInProcessResult:
    result = (
        build_defs(settings)
        .resolve_job_def(job)
        .execute_in_process(
            partition_key=period, instance=instance, raise_on_error=False, run_config=QUIET, **kw
        )
    )
    assert result.success, f"{job} {period}: {_failure(result)}"
    return result


def _failure(result: dg.ExecuteInProcessResult) -> str:
    failures = [e for e in result.all_events if e.is_step_failure]
    return failures[0].step_failure_data.error.to_string() if failures else "the run failed"


def assert_same_tables(actual: dict, expected: dict, names: list[str] | None = None) -> None:
    for name in names or list(TABLES):
        pd.testing.assert_frame_equal(actual[name], expected[name], obj=name)
