"""The benchmark harness at a small scale, so it cannot rot: it runs end to end, our usage
summaries equal those of the independent DuckDB SQL reference, and one partition of the same data
runs through Dagster on SQLite and on PostgreSQL."""

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
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    assert "same summaries as DuckDB: True" in result.stdout
    stages = ["ingest", "buckets", "rate", "drawdown", "summaries", "DuckDB reference",
              "via Dagster (SQLite)", "via Dagster (PostgreSQL)"]  # fmt: skip
    for stage in stages:
        assert stage in result.stdout
