"""Benchmark: buckets + drawdown of one period, an earlier commit's code against the current code,
alternating in one process (so both see the same machine noise); the buckets stage is also
timed alone.

The earlier commit is exported with `git archive` into a temporary folder under another package
name; both read the same source directory (the earlier code ignores catalog files and columns it
does not know). The rated usage (stage 3) is computed once by the current code and shared.

    uv run python benchmarks/ab_drawdown.py SOURCE_DIR --baseline COMMIT [--rounds 16]

SOURCE_DIR is a synthetic source, e.g. one that benchmarks/bench.py generated under data/bench.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import io
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pandas as pd

PERIOD = pd.Timestamp("2026-10-01")
RATED = ["summary_id", "account_id", "asset_id", "usage_resource_id", "aggregation_period",
         "window_start", "window_date", "event_count", "consumption", "drawdown_resource_id",
         "tokens_per_unit", "drawdown_quantity", "currency", "rate_source", "rate_asset_id",
         "rate_effective_from", "overage_chargeable"]  # fmt: skip


def baseline_package(commit: str) -> str:
    """The package of `commit` importable as `consumption_pipeline_baseline`."""
    folder = Path(tempfile.mkdtemp(prefix="ab-baseline-"))
    archive = subprocess.run(["git", "archive", commit, "consumption_pipeline"], check=True,
                             capture_output=True).stdout  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    package = folder / "consumption_pipeline"
    for path in package.rglob("*.py"):
        text = re.sub(
            r"\bconsumption_pipeline\b", "consumption_pipeline_baseline", path.read_text()
        )
        path.write_text(text)
    package.rename(folder / "consumption_pipeline_baseline")
    sys.path.insert(0, str(folder))
    return "consumption_pipeline_baseline"


def stages(package: str):
    """The catalog builder, buckets and drawdown of one package."""
    module = lambda name: importlib.import_module(f"{package}.{name}")  # noqa: E731
    return (module("storage.sources").read_catalog, module("domain.catalog").build_catalog,
            module("domain.buckets").create_buckets, module("domain.drawdown").draw_down)  # fmt: skip


def rated_usage(source: Path) -> pd.DataFrame:
    from consumption_pipeline.domain.catalog import build_catalog
    from consumption_pipeline.domain.ingest import Ingestion
    from consumption_pipeline.domain.rating import rate_usage
    from consumption_pipeline.storage import sources

    catalog = build_catalog(sources.read_catalog(source))
    events = Ingestion(sources.EventFiles(source), catalog, PERIOD, "UTC")  # batch by batch
    return rate_usage(events, catalog, PERIOD)[RATED]


def alternate(runs: dict, rated: pd.DataFrame, rounds: int) -> dict[str, dict[str, list]]:
    """Seconds of buckets alone and of buckets + drawdown per run, the two codes taking turns
    to go first."""
    times = {name: {"buckets": [], "both": []} for name in runs}
    for i in range(rounds):
        for name in ("before", "after") if i % 2 == 0 else ("after", "before"):
            catalog, buckets, draw = runs[name]
            gc.collect()
            started = time.perf_counter()
            made = buckets(catalog, PERIOD)
            built = time.perf_counter()
            draw(rated, made, pd.DataFrame(), catalog, PERIOD)
            times[name]["buckets"].append(built - started)
            times[name]["both"].append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("source", type=Path)
    parser.add_argument("--baseline", required=True, help="the earlier commit")
    parser.add_argument("--rounds", type=int, default=16)
    args = parser.parse_args()
    rated = rated_usage(args.source)
    runs = {}
    for name, package in (("before", baseline_package(args.baseline)),
                          ("after", "consumption_pipeline")):  # fmt: skip
        read, build, buckets, draw = stages(package)
        runs[name] = (build(read(args.source)), buckets, draw)
    times = alternate(runs, rated, args.rounds)
    for name, stage in times.items():
        seconds, alone = stage["both"], stage["buckets"]
        print(f"{name:<7} min {min(seconds):.2f} s, median {statistics.median(seconds):.2f} s "
              f"over {len(seconds)} runs (buckets alone: min {min(alone):.3f} s, median "
              f"{statistics.median(alone):.3f} s)")  # fmt: skip
    before, after = times["before"]["both"], times["after"]["both"]
    print(f"after / before: {statistics.median(after) / statistics.median(before):.3f} (medians), "
          f"{min(after) / min(before):.3f} (best runs)")  # fmt: skip


if __name__ == "__main__":
    main()
