"""The event-level work on a real Dask cluster (a LocalCluster of two worker processes on
loopback), its sources and lake on an object store (moto's S3 server on loopback): the sample
billed through the CLI with --dask gives exactly the tables, lake files and lineage digests of a
run in one process over a local folder, and the files were indexed on both workers; a worker
killed meanwhile changes nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from distributed import Client, LocalCluster, get_task_stream

from consumption_pipeline.audit import runs
from consumption_pipeline.cli import main
from consumption_pipeline.cli.synthetic import generate
from consumption_pipeline.storage import objects
from consumption_pipeline.storage.lake import Lake
from consumption_pipeline.storage.settings import DEFAULT_SOURCE
from consumption_pipeline.storage.tables import LAKE_TABLES
from consumption_pipeline.storage.warehouse import Warehouse
from consumption_pipeline_tests.objectstore import new_bucket, upload
from consumption_pipeline_tests.snapshots import snapshot

PERIODS = ["2026-09-01", "2026-10-01"]
SAMPLE = ["--from", "2026-09", "--to", "2026-10", "--as-of", "2026-11-25"]
LINEAGE = ["period", "step", "table_name", "code_version", "fingerprint", "inputs",
           "output_digest", "row_count"]  # fmt: skip


@pytest.fixture(scope="module")
def cluster(s3, tmp_path_factory):
    """The cluster, its workers reading the object store (the session's AWS variables) into a
    cache folder of their own, as on machines of their own."""
    cache = {objects.CACHE_ENV: str(tmp_path_factory.mktemp("workers_cache"))}
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                     dashboard_address=None, env=cache) as local,
        Client(local) as client,
    ):  # fmt: skip
        yield local.scheduler_address, client


@pytest.fixture
def bucket(s3, tmp_path, monkeypatch) -> str:
    """A new bucket's URL; the run's process copies sources into a cache folder of its own."""
    monkeypatch.setenv(objects.CACHE_ENV, str(tmp_path / "run_cache"))
    return f"s3://{new_bucket(s3)}"


def bill(folder: Path, monkeypatch, source: str, *extra: str) -> str:
    home = folder / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    url = f"sqlite:///{folder / 'warehouse.db'}"
    assert main(["run", "--source", source, "--warehouse", url, *SAMPLE, *extra]) == 0
    return url


def lineage(url: str) -> pd.DataFrame:
    found = runs.for_periods(Warehouse(url).engine, PERIODS)[LINEAGE]
    return found.sort_values(LINEAGE[:3], ignore_index=True)


def test_a_run_on_the_cluster_equals_a_run_in_one_process(cluster, bucket, tmp_path, monkeypatch):
    address, client = cluster
    here = bill(tmp_path / "here", monkeypatch, str(DEFAULT_SOURCE))
    upload(DEFAULT_SOURCE, f"{bucket}/source")
    monkeypatch.setenv("CONSUMPTION_LAKE_URL", f"{bucket}/lake")
    with get_task_stream(client) as tasks:
        there = bill(tmp_path / "there", monkeypatch, f"{bucket}/source", "--dask", address)
    # The sample's four event files, indexed per period (eight tasks), the batches that can
    # hold each period's dates read and placed, and the accepted events summed by window part
    # by part (a part per placed batch), spread over both workers.
    workers = set(client.scheduler_info()["workers"])
    indexed = [t for t in tasks.data if "entry" in t["key"]]
    placed = [t for t in tasks.data if "place" in t["key"]]
    summed = [t for t in tasks.data if "part_of" in t["key"]]
    assert len(indexed) == 8 and len(placed) >= 2 and len(summed) >= 2
    assert {t["worker"] for t in indexed} == {t["worker"] for t in tasks.data} == workers
    expected, got = snapshot(here, PERIODS), snapshot(there, PERIODS, f"{bucket}/lake")
    assert list(got) == list(expected)
    for name in expected:
        pd.testing.assert_frame_equal(got[name], expected[name], obj=name)
    pd.testing.assert_frame_equal(lineage(there), lineage(here))
    lakes = Lake(Warehouse(here).lake.root), Lake(f"{bucket}/lake")
    for name in LAKE_TABLES:
        for period in PERIODS:
            pd.testing.assert_frame_equal(*(lake.read_period(name, period) for lake in lakes))


@pytest.fixture(scope="module")
def six_files(tmp_path_factory) -> tuple[Path, dict[str, pd.DataFrame]]:
    """Six CSV files of 20,000 events, and the tables of October billed from them in one
    process over the local folder."""
    folder = tmp_path_factory.mktemp("six_files")
    generate(folder / "source", accounts=50, events=120_000, periods=["2026-10"], files=6,
             event_format="csv", seed=3)  # fmt: skip
    here = run_program(folder / "here", str(folder / "source"))
    return folder / "source", snapshot(here, ["2026-10-01"])


@pytest.mark.parametrize("task", ["entry", "place"])
def test_a_worker_killed_in_the_ingest_changes_no_table(cluster, bucket, six_files, tmp_path, task):
    """The six files on the object store, indexed on the cluster, then read and placed there;
    the first worker seen at a task of `task` is killed (its nanny starts it again). The cluster
    runs the lost tasks again, and the run ends with the tables of a run in one process."""
    address, client = cluster
    source, expected = six_files
    upload(source, f"{bucket}/source")
    there = run_program(tmp_path / "there", f"{bucket}/source", "--dask", address,
                        kill=(client, task))  # fmt: skip
    got = snapshot(there, ["2026-10-01"])
    for name in expected:
        pd.testing.assert_frame_equal(got[name], expected[name], obj=name)


def run_program(
    folder: Path, source: str, *extra: str, kill: tuple[Client, str] | None = None
) -> str:
    """The CLI in its own process over October; with `kill` (a client, a task's name), the first
    worker seen at such a task is killed meanwhile."""
    home = folder / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    url = f"sqlite:///{folder / 'warehouse.db'}"
    command = [sys.executable, "-m", "consumption_pipeline.cli", "run", "--source", source,
               "--warehouse", url, "--from", "2026-10", "--to", "2026-10", *extra]  # fmt: skip
    program = subprocess.Popen(command, env={**os.environ, "DAGSTER_HOME": str(home)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    killed = kill is None
    while not killed and program.poll() is None:
        client, task = kill
        busy = [w for w, keys in client.processing().items() if any(task in k for k in keys)]
        if busy:
            pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed = True
        time.sleep(0.01)
    out, err = program.communicate(timeout=600)
    assert program.returncode == 0, err
    assert killed, "no worker was seen at the task"
    return url
