"""The benchmark harness at a small scale, so it cannot rot: it runs end to end, our usage
summaries equal those of the independent DuckDB SQL reference, and one partition of the same data
runs through Dagster on SQLite, on PostgreSQL and with its event-level work on two Dask workers."""

from __future__ import annotations

import subprocess
import sys

from consumption_pipeline.storage.settings import PROJECT_ROOT
from consumption_pipeline_tests.postgres import POSTGRES_SERVER


def test_benchmark_runs_and_matches_the_duckdb_reference(tmp_path):
    script = PROJECT_ROOT / "benchmarks" / "bench.py"
    command = [
        sys.executable,
        str(script),
        "--sizes",
        "20000",
        "--accounts",
        "40",
        "--data-dir",
        str(tmp_path),
        "--dagster",
        "sqlite",
        "postgresql",
        "--postgres",
        POSTGRES_SERVER,
        "--dask",
        "2",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    assert "same summaries as DuckDB: True" in result.stdout
    stages = ["ingest", "buckets", "rate", "drawdown", "summaries", "DuckDB reference",
              "via Dagster (SQLite)", "via Dagster (PostgreSQL)", "via Dagster, 2 Dask workers"]  # fmt: skip
    for stage in stages:
        assert stage in result.stdout


def test_the_history_benchmark_runs_a_period_beside_months_of_files(tmp_path):
    script = PROJECT_ROOT / "benchmarks" / "bench.py"
    command = [sys.executable, str(script), "--history", "2", "--history-events", "2000",
               "--accounts", "20", "--data-dir", str(tmp_path)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    for line in ["own month, first (indexing)", "2 months, again (index read)",
                 "2 months of files / own month alone (index read):"]:  # fmt: skip
        assert line in result.stdout
    # The two-month source holds both months' files; the other only the period's.
    history = next(tmp_path.glob("history-2x2000-*[0-9]"))
    assert sorted(p.name for p in (history / "usage").iterdir()) == [
        "2026-09.parquet",
        "2026-10.parquet",
    ]
    own = next(tmp_path.glob("history-2x2000-*-own-month"))
    assert [p.name for p in (own / "usage").iterdir()] == ["2026-10.parquet"]
