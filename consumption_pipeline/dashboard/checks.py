"""The asset checks that guard a billing period (docs/rules.md "Conservation laws"), as the Dagster
instance recorded them: the latest evaluation of each check of the code location for one
partition. Read only; an instance that is absent or holds no evaluation shows none.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from consumption_pipeline.quality.checks import CHECKS
from consumption_pipeline.storage.settings import PROJECT_ROOT

if TYPE_CHECKING:
    import dagster as dg

log = logging.getLogger(__name__)
DEFAULT_DAGSTER_HOME = PROJECT_ROOT / "data" / "dagster_home"
# Evaluations that record no partition are matched to theirs through their run; this many of the
# most recent are looked at per check.
UNPARTITIONED_LOOKBACK = 100


@dataclass(frozen=True)
class CheckResult:
    asset: str
    check: str
    outcome: str  # passed, failed, or "not evaluated" (planned in a run that did not evaluate it)
    kind: str | None  # blocking (a failure stops what is downstream) or warning
    description: str | None
    metadata: list[tuple[str, str]]
    run_id: str


def dagster_home(explicit: str | None = None) -> Path | None:
    """The instance the CLI runs on: `explicit`, else $DAGSTER_HOME, else the CLI's default
    folder; None when that folder does not exist (nothing is created)."""
    chosen = explicit or os.environ.get("DAGSTER_HOME") or str(DEFAULT_DAGSTER_HOME)
    return Path(chosen) if Path(chosen).is_dir() else None


def check_keys() -> list[dg.AssetCheckKey]:
    """Every asset check of a billing period (quality/checks.py)."""
    import dagster as dg  # deferred: only a page that shows checks needs Dagster

    return [dg.AssetCheckKey(dg.AssetKey(asset), name) for asset, name in CHECKS]


@dataclass(frozen=True)
class CheckReport:
    results: list[CheckResult]
    problem: str | None = None  # why the results could not be read, if they could not


class CheckReader:
    """Reads check results for one period from the instance at `home` (opened per read, so that
    runs finishing meanwhile show up)."""

    def __init__(self, home: Path | None, keys: Callable[[], Sequence[dg.AssetCheckKey]]) -> None:
        self.home = home
        self._keys = keys
        self._cached_keys: list[dg.AssetCheckKey] | None = None

    def results(self, period: str) -> list[CheckResult]:
        if self.home is None:
            return []
        import dagster as dg  # deferred: pages without an instance never load Dagster

        if self._cached_keys is None:
            self._cached_keys = list(self._keys())
        if not self._cached_keys:
            return []
        with dg.DagsterInstance.from_config(str(self.home)) as instance:
            return read_check_results(instance, self._cached_keys, period)

    def report(self, period: str) -> CheckReport:
        """The results, or why there are none: an unreadable instance or code location is said,
        not hidden, and does not take the rest of the page down."""
        try:
            return CheckReport(self.results(period))
        except Exception as error:  # any failure of the instance or the code location
            log.warning("asset-check results for %s unreadable", period, exc_info=error)
            return CheckReport([], f"{type(error).__name__}: {error}")


def read_check_results(
    instance: dg.DagsterInstance, keys: Sequence[dg.AssetCheckKey], period: str
) -> list[CheckResult]:
    """The latest execution of each check in `keys` for partition `period` ('YYYY-MM-DD');
    checks never executed for it are left out."""
    # Deferred with Dagster itself (see check_keys).
    from dagster._core.event_api import PartitionKeyFilter
    from dagster._core.storage.asset_check_execution_record import (
        AssetCheckExecutionRecordStatus as Status,
    )

    storage = instance.event_log_storage
    run_partitions: dict[str, str | None] = {}
    results = []
    for key in keys:
        candidates = list(
            storage.get_asset_check_execution_history(
                key, limit=1, partition_filter=PartitionKeyFilter(key=period)
            )
        )
        # A check result yielded by a partitioned asset's own step is recorded without its
        # partition (Dagster 1.13); its run's partition tag says which period it judged.
        unpartitioned = storage.get_asset_check_execution_history(
            key,
            limit=UNPARTITIONED_LOOKBACK,
            partition_filter=PartitionKeyFilter(key=None),
            status={Status.SUCCEEDED, Status.FAILED},
        )
        _learn_partitions(instance, [r.run_id for r in unpartitioned], run_partitions)
        candidates += [r for r in unpartitioned if run_partitions.get(r.run_id) == period][:1]
        # The newest wins: a run's evaluation is stored after its planned row, and a planned
        # row newer than every evaluation is a run that did not get to evaluate the check.
        if candidates:
            results.append(_result(key, max(candidates, key=lambda r: r.id)))
    return results


def _learn_partitions(instance: dg.DagsterInstance, run_ids: list[str], known: dict) -> None:
    import dagster as dg  # deferred with Dagster itself (see check_keys)

    missing = sorted(set(run_ids) - set(known))
    if not missing:
        return
    for run in instance.get_runs(filters=dg.RunsFilter(run_ids=missing)):
        known[run.run_id] = run.tags.get("dagster/partition")
    for run_id in missing:
        known.setdefault(run_id, None)


def _result(key: dg.AssetCheckKey, record) -> CheckResult:
    evaluation = record.event.dagster_event.event_specific_data if record.event else None
    passed = getattr(evaluation, "passed", None)
    outcome = "not evaluated" if passed is None else ("passed" if passed else "failed")
    metadata = getattr(evaluation, "metadata", None) or {}
    return CheckResult(
        asset=key.asset_key.to_user_string(),
        check=key.name,
        outcome=outcome,
        kind=_kind(getattr(evaluation, "blocking", None)),
        description=getattr(evaluation, "description", None),
        metadata=[(name, _shown(value)) for name, value in metadata.items()],
        run_id=record.run_id,
    )


def _kind(blocking: bool | None) -> str | None:
    """A planned check that never ran records no kind."""
    return None if blocking is None else ("blocking" if blocking else "warning")


def _shown(value: object) -> str:
    inner = getattr(value, "value", value)
    return str(inner)
