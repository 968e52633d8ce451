"""A production deployment for the tests: the instance of deploy/dagster.yaml on this machine's
PostgreSQL server, the code location of workspace.yaml served by its own code server, and a
daemon thread that runs the daemon's own iterations (backfills, then the run queue) every half
second. Runs are queued, dequeued under the instance's concurrency limits and launched as
processes of the code server, exactly as `dagster-daemon` does it, only without its fixed
30-second backfill interval.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster._daemon.backfill import execute_backfill_iteration
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)

from consumption_pipeline.storage.settings import PROJECT_ROOT
from consumption_pipeline_tests.postgres import postgres_database

LOCATION = "consumption_pipeline.definitions"  # workspace.yaml names it after its module
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
TIMEOUT = 1800  # seconds a test waits for runs (a loaded machine runs them 10 times slower)
_LOG = logging.getLogger("consumption_pipeline_tests.deployment")


class Deployment:
    """The instance, its workspace and the daemon thread that launches its runs."""

    def __init__(self, instance: dg.DagsterInstance, context: WorkspaceProcessContext) -> None:
        self.instance = instance
        self.context = context
        self._queue = QueuedRunCoordinatorDaemon(interval_seconds=1)
        self._iterating = threading.Lock()  # held while the daemon thread iterates
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._daemon, name="daemon", daemon=True)
        self.errors: list[BaseException] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _daemon(self) -> None:
        while not self._stop.is_set():
            with self._iterating:
                try:
                    list(execute_backfill_iteration(self.context, _LOG))
                    self.dequeue()
                except Exception as error:  # surfaced by wait(), as the daemon logs it
                    self.errors.append(error)
            self._stop.wait(0.5)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No daemon iteration runs inside this block (the caller may run one itself)."""
        with self._iterating:
            yield

    def dequeue(self) -> None:
        """One iteration of the run queue daemon: launch the queued runs the limits allow."""
        list(self._queue.run_iteration(self.context))

    def submit(
        self, job_name: str, partition: str, run_config: Mapping, tags: Mapping | None = None
    ) -> str:
        """Create a run of `job_name` for `partition` and submit it to the run queue, as the
        scheduler, the sensor daemon and the UI do; returns its run id."""
        workspace = self.context.create_request_context()
        location = workspace.get_code_location(LOCATION)
        repository = next(iter(location.get_repositories().values()))
        job = repository.get_full_job(job_name)
        plan = location.get_execution_plan(
            job, run_config, step_keys_to_execute=None, known_state=None, instance=self.instance
        )
        run = self.instance.create_run(
            job_name=job_name, run_id=None, run_config=run_config,
            resolved_op_selection=None, step_keys_to_execute=None, op_selection=None,
            status=None, root_run_id=None, parent_run_id=None,
            tags={**job.tags, **(tags or {}), "dagster/partition": partition},
            job_snapshot=job.job_snapshot,
            execution_plan_snapshot=plan.execution_plan_snapshot,
            parent_job_snapshot=job.parent_job_snapshot,
            remote_job_origin=job.get_remote_origin(), job_code_origin=job.get_python_origin(),
            asset_selection=None, asset_check_selection=None, asset_graph=repository.asset_graph,
        )  # fmt: skip
        self.instance.submit_run(run.run_id, workspace)
        return run.run_id

    def backfill(self, job_name: str, partitions: list[str], run_config: Mapping) -> str:
        """Launch a backfill of `job_name` over `partitions`, as the UI's "Launch backfill" and
        `dagster job backfill` do; the backfill daemon submits its runs. Returns its id."""
        workspace = self.context.create_request_context()
        repository = next(iter(workspace.get_code_location(LOCATION).get_repositories().values()))
        partition_set = next(s for s in repository.get_partition_sets() if s.job_name == job_name)
        backfill_id = uuid.uuid4().hex[:8]
        self.instance.add_backfill(
            PartitionBackfill(
                backfill_id=backfill_id, status=BulkActionStatus.REQUESTED, from_failure=False,
                tags={}, backfill_timestamp=time.time(), run_config=dict(run_config),
                partition_set_origin=partition_set.get_remote_origin(), partition_names=partitions,
            )
        )  # fmt: skip
        return backfill_id

    def run(self, run_id: str) -> dg.DagsterRun:
        return self.instance.get_run_by_id(run_id)

    def until(self, done, timeout: float = TIMEOUT, what: str = "runs") -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if self.errors:
                raise self.errors[0]
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not finish within {timeout} s")
            time.sleep(0.3)

    def wait(self, *run_ids: str) -> list[dg.DagsterRun]:
        self.until(lambda: all(self.run(r).status in FINISHED for r in run_ids))
        return [self.run(r) for r in run_ids]

    def backfill_runs(self, backfill_id: str) -> list[dg.RunRecord]:
        records = self.instance.get_run_records(RunsFilter(tags={"dagster/backfill": backfill_id}))
        return sorted(records, key=lambda r: r.create_timestamp)

    def wait_for_backfill(self, backfill_id: str) -> list[dg.RunRecord]:
        def done() -> bool:
            status = self.instance.get_backfill(backfill_id).status
            runs = self.backfill_runs(backfill_id)
            return status != BulkActionStatus.REQUESTED and all(
                r.dagster_run.status in FINISHED for r in runs
            )

        self.until(done, what=f"backfill {backfill_id}")
        return self.backfill_runs(backfill_id)

    def run_worker_pid(self, run_id: str) -> int | None:
        """The process the run executes in (its run worker), once it has said so."""
        for entry in self.instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
            data = entry.dagster_event.engine_event_data
            if data is not None and "pid" in data.metadata:
                return int(data.metadata["pid"].value)
        return None

    def kill(self, run_id: str) -> None:
        """SIGKILL the run's process (the code server then marks the run failed), or cancel the
        run if it has no process yet; returns once the run has finished."""
        pid = self.run_worker_pid(run_id)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        else:
            self.instance.run_coordinator.cancel_run(run_id)
        self.until(lambda: self.run(run_id).is_finished, what=f"the killed run {run_id}")

    def steps_started(self, run_id: str) -> set[str]:
        logs = self.instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
        return {entry.step_key for entry in logs}


@contextlib.contextmanager
def production_deployment(folder: Path, environment: Mapping[str, str]) -> Iterator[Deployment]:
    """deploy/dagster.yaml in a new DAGSTER_HOME on a new PostgreSQL database, the code location
    loaded by its own code server with `environment` added to this process's, and the daemon."""
    home = folder / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    with postgres_database("cp_dagster") as url, pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(home))
        env.setenv("DAGSTER_POSTGRES_URL", url)
        for name, value in environment.items():
            env.setenv(name, value)
        servers: list[int] = []
        try:
            with (
                dg.DagsterInstance.get() as instance,
                WorkspaceProcessContext(
                    instance, WorkspaceFileTarget(paths=[str(PROJECT_ROOT / "workspace.yaml")])
                ) as context,
            ):
                servers = _code_servers()
                deployment = Deployment(instance, context)
                deployment.start()
                try:
                    yield deployment
                finally:
                    deployment.stop()
        finally:
            _stop(servers)


def _code_servers() -> list[int]:
    """The code servers this process started (children running `dagster api grpc`)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes().split(b"\0")
            if parent == os.getpid() and b"api" in command and b"grpc" in command:
                found.append(int(stat.parent.name))
    return found


def _stop(pids: list[int], grace: float = 30) -> None:
    """A code server asked to stop waits for its runs; one that outlives `grace` is killed."""
    deadline = time.monotonic() + grace
    for pid in pids:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; its parent has not collected it yet
