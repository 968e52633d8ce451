"""The event-level work on a real Dask cluster (a LocalCluster of two worker processes on
loopback): the sample billed through the CLI with --dask gives exactly the tables, lake files and
lineage digests of a run in one process, and the files were indexed on both workers; a worker
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
from consumption_pipeline.storage.lake import Lake
from consumption_pipeline.storage.settings import DEFAULT_SOURCE
from consumption_pipeline.storage.tables import LAKE_TABLES
from consumption_pipeline.storage.warehouse import Warehouse
from consumption_pipeline_tests.snapshots import snapshot

PERIODS = ["2026-09-01", "2026-10-01"]
SAMPLE = ["--from", "2026-09", "--to", "2026-10", "--as-of", "2026-11-25"]
LINEAGE = ["period", "step", "table_name", "code_version", "fingerprint", "inputs",
           "output_digest", "row_count"]  # fmt: skip


@pytest.fixture(scope="module")
def cluster():
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                     dashboard_address=None) as local,
        Client(local) as client,
    ):  # fmt: skip
        yield local.scheduler_address, client


def bill(folder: Path, monkeypatch, *extra: str) -> str:
    home = folder / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    url = f"sqlite:///{folder / 'warehouse.db'}"
    command = ["run", "--source", str(DEFAULT_SOURCE), "--warehouse", url, *SAMPLE, *extra]
    assert main(command) == 0
    return url


def lineage(url: str) -> pd.DataFrame:
    found = runs.for_periods(Warehouse(url).engine, PERIODS)[LINEAGE]
    return found.sort_values(LINEAGE[:3], ignore_index=True)


def test_a_run_on_the_cluster_equals_a_run_in_one_process(cluster, tmp_path, monkeypatch):
    address, client = cluster
    here = bill(tmp_path / "here", monkeypatch)
    with get_task_stream(client) as tasks:
        there = bill(tmp_path / "there", monkeypatch, "--dask", address)
    # The sample's four event files, indexed per period (eight tasks), and the batches that can
    # hold each period's dates read and placed, spread over both workers.
    workers = set(client.scheduler_info()["workers"])
    indexed = [t for t in tasks.data if "entry" in t["key"]]
    placed = [t for t in tasks.data if "place" in t["key"]]
    assert len(indexed) == 8 and len(placed) >= 2
    assert {t["worker"] for t in indexed} == {t["worker"] for t in indexed + placed} == workers
    expected, got = snapshot(here, PERIODS), snapshot(there, PERIODS)
    assert list(got) == list(expected)
    for name in expected:
        pd.testing.assert_frame_equal(got[name], expected[name], obj=name)
    pd.testing.assert_frame_equal(lineage(there), lineage(here))
    lakes = Lake(Warehouse(here).lake.root), Lake(Warehouse(there).lake.root)
    for name in LAKE_TABLES:
        for period in PERIODS:
            pd.testing.assert_frame_equal(*(lake.read_period(name, period) for lake in lakes))


def test_a_worker_killed_while_the_files_are_indexed_changes_no_table(cluster, tmp_path):
    """Six CSV files of 20,000 events, indexed on the cluster; the first worker seen indexing
    one is killed (its nanny starts it again). The cluster runs the lost tasks again, and the
    run ends with the tables of a run in one process."""
    address, client = cluster
    source = tmp_path / "source"
    generate(source, accounts=50, events=120_000, periods=["2026-10"], files=6,
             event_format="csv", seed=3)  # fmt: skip
    here = run_program(tmp_path / "here", source)
    there = run_program(tmp_path / "there", source, "--dask", address, kill=client)
    expected, got = snapshot(here, ["2026-10-01"]), snapshot(there, ["2026-10-01"])
    for name in expected:
        pd.testing.assert_frame_equal(got[name], expected[name], obj=name)


def run_program(folder: Path, source: Path, *extra: str, kill: Client | None = None) -> str:
    """The CLI in its own process over October; with `kill`, the first worker seen indexing a
    file is killed meanwhile."""
    home = folder / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    url = f"sqlite:///{folder / 'warehouse.db'}"
    command = [sys.executable, "-m", "consumption_pipeline.cli", "run", "--source", str(source),
               "--warehouse", url, "--from", "2026-10", "--to", "2026-10", *extra]  # fmt: skip
    program = subprocess.Popen(command, env={**os.environ, "DAGSTER_HOME": str(home)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    killed = kill is None
    while not killed and program.poll() is None:
        busy = [w for w, keys in kill.processing().items() if any("entry" in k for k in keys)]
        if busy:
            pid = kill.run(os.getpid, workers=busy[:1])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed = True
        time.sleep(0.01)
    out, err = program.communicate(timeout=600)
    assert program.returncode == 0, err
    assert killed, "no worker was seen indexing a file"
    return url
