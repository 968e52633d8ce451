"""Benchmark: one billing period of synthetic usage through the five stages, beside a DuckDB
SQL reference computing the same ingest, token conversion and usage summaries.

    uv run python benchmarks/bench.py                      # 1M and 10M events
    uv run python benchmarks/bench.py --sizes 1000000      # a quick run
    uv run python benchmarks/bench.py --sizes 100000000    # 100M (~5 min, 1.6 GB disk; DuckDB ~20 GB RAM)
    uv run python benchmarks/bench.py --dagster sqlite postgresql  # also one partition via Dagster
    uv run python benchmarks/bench.py --history 12         # a period beside 12 months of files
    uv run python benchmarks/bench.py --sizes 1000000 --dagster sqlite --dask 2  # and on 2 Dask workers

Each side runs in its own child process so that its peak memory (RSS) is its own; the data is
generated once per size (seeded) under --data-dir and reused.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import shutil
import threading
import time
from pathlib import Path

PERIOD = "2026-10"
STAGES = ["ingest", "buckets", "rate", "drawdown", "summaries"]


class PeakMemory:
    """Samples this process's resident set size; `peak()` is the largest seen since `reset()`."""

    def __init__(self, every: float = 0.01):
        self._peak, self._every = 0, every
        self._page = resource.getpagesize()
        threading.Thread(target=self._run, daemon=True).start()

    def _rss(self) -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * self._page

    def _run(self) -> None:
        while True:
            self._peak = max(self._peak, self._rss())
            time.sleep(self._every)

    def reset(self) -> None:
        self._peak = self._rss()

    def peak(self) -> int:
        return max(self._peak, self._rss())


def run_pipeline(source: str, out: str, queue: mp.Queue) -> None:
    """The five stages of one period in this process, timed stage by stage. As in the pipeline,
    the ingest writes the accepted events to a lake file batch by batch and the rating reads them
    back batch by batch, so memory follows the batches and the summaries, not the events."""
    import tempfile

    import pandas as pd

    from consumption_pipeline.domain.buckets import create_buckets
    from consumption_pipeline.domain.catalog import build_catalog
    from consumption_pipeline.domain.drawdown import draw_down
    from consumption_pipeline.domain.ingest import Ingestion
    from consumption_pipeline.domain.rating import RATED_FROM, rate_usage
    from consumption_pipeline.domain.summaries import summarize
    from consumption_pipeline.storage import sources
    from consumption_pipeline.storage.lake import Lake
    from consumption_pipeline.storage.tables import TABLES
    from consumption_pipeline.storage.wire import period_day, to_wire

    memory, period, root, results = PeakMemory(), pd.Timestamp(f"{PERIOD}-01"), Path(source), {}
    key, lake = f"{PERIOD}-01", Lake(tempfile.mkdtemp(prefix="bench-lake-"))

    def stage(name, work):
        memory.reset()
        started = time.perf_counter()
        value = work()
        results[name] = (time.perf_counter() - started, memory.peak())
        return value

    def read_and_ingest():
        catalog = build_catalog(sources.read_catalog(root))
        run = Ingestion(sources.EventFiles(root), catalog, period, "UTC")
        table, day = TABLES["usage_events"], period_day(key)
        lake.write_period(
            "usage_events", key, (to_wire(table, b, day, {}, dictionaries=True) for b in run)
        )
        return catalog, run

    def rate():
        return rate_usage(lake.read_batches("usage_events", key, RATED_FROM), catalog, period)

    catalog, ingested = stage("ingest", read_and_ingest)
    buckets = stage("buckets", lambda: create_buckets(catalog, period))
    rated = stage("rate", rate)
    drawn = stage("drawdown", lambda: draw_down(rated, buckets, pd.DataFrame(), catalog, period))
    stage("summaries", lambda: summarize(drawn.usage_summaries, catalog, period, period))
    rated[["account_id", "asset_id", "usage_resource_id", "window_start", "consumption",
           "drawdown_quantity"]].to_parquet(out)  # fmt: skip
    shutil.rmtree(lake.root)
    queue.put({"stages": results, "events": ingested.reconciliation["events_read"]})


REFERENCE_SQL = """
WITH raw AS (
    SELECT * FROM read_parquet($usage, union_by_name = true)
), valid AS (
    SELECT event_id, account_id, coalesce(asset_id, '') AS asset_key, usage_resource_id,
           CAST(round(quantity * 1000000) AS BIGINT) AS micro, occurred_at
    FROM raw
    WHERE event_id IS NOT NULL AND account_id IS NOT NULL AND usage_resource_id IS NOT NULL
      AND occurred_at IS NOT NULL AND isfinite(quantity) AND quantity >= 0
      AND quantity <= 1e12 AND round(quantity * 1000000) / 1000000 = quantity
), copies AS (
    SELECT DISTINCT * FROM valid
), conflicts AS (
    SELECT event_id FROM copies GROUP BY event_id HAVING count(*) > 1
), events AS (
    SELECT c.*, CAST(timezone('UTC', c.occurred_at) AS DATE) AS usage_date
    FROM copies c ANTI JOIN conflicts USING (event_id)
    JOIN accounts a USING (account_id)
    JOIN resources r USING (usage_resource_id)
    LEFT JOIN assets s ON s.asset_id = c.asset_key
    WHERE c.asset_key = '' OR s.account_id = c.account_id
), in_period AS (
    SELECT e.*, r.aggregation_method, r.aggregation_period, r.token_resource_id,
           CASE WHEN r.aggregation_period = 'monthly' THEN CAST($start AS DATE) ELSE usage_date END AS window_start,
           CASE WHEN r.aggregation_period = 'monthly' THEN CAST($last AS DATE) ELSE usage_date END AS window_date
    FROM events e JOIN resources r USING (usage_resource_id)
    WHERE usage_date >= CAST($start AS DATE) AND usage_date <= CAST($last AS DATE)
), summaries AS (
    SELECT account_id, asset_key, usage_resource_id, window_start, window_date,
           any_value(token_resource_id) AS token_resource_id,
           CASE WHEN any_value(aggregation_method) = 'peak' THEN max(micro) ELSE sum(micro) END AS consumption
    FROM in_period GROUP BY ALL
)
SELECT s.account_id, nullif(s.asset_key, '') AS asset_id, s.usage_resource_id, s.window_start,
       s.consumption / 1e6 AS consumption,
       CASE WHEN s.token_resource_id IS NULL THEN s.consumption
            ELSE CAST(floor((s.consumption * t.micro_rate + 500000) / 1000000) AS BIGINT)
       END / 1e6 AS drawdown_quantity
FROM summaries s
LEFT JOIN token_rates t ON t.usage_resource_id = s.usage_resource_id
     AND t.effective_from <= s.window_date
     AND (t.effective_to IS NULL OR s.window_date < t.effective_to)
"""


def run_reference(source: str, out: str, queue: mp.Queue) -> None:
    """The hand-written DuckDB job: read, deduplicate, filter the period, convert, summarize."""
    import duckdb
    import pandas as pd

    memory, root = PeakMemory(), Path(source)
    memory.reset()
    started = time.perf_counter()
    db = duckdb.connect()
    for name, file in [("accounts", "accounts.csv"), ("resources", "usage_resources.csv"),
                       ("assets", "assets.csv")]:  # fmt: skip
        db.execute(
            f"CREATE TABLE {name} AS SELECT * FROM read_csv('{root / file}', all_varchar = true)"
        )
    db.execute(
        f"CREATE TABLE token_rates AS SELECT usage_resource_id, "
        f"CAST(round(CAST(tokens_per_unit AS DOUBLE) * 1000000) AS HUGEINT) AS micro_rate, "
        f"CAST(effective_from AS DATE) AS effective_from, CAST(effective_to AS DATE) AS effective_to "
        f"FROM read_csv('{root / 'token_rates.csv'}', all_varchar = true)"
    )
    start = pd.Timestamp(f"{PERIOD}-01")
    last = start + pd.offsets.MonthEnd(0)
    params = {
        "usage": str(root / "usage" / "*.parquet"),
        "start": f"{start:%Y-%m-%d}",
        "last": f"{last:%Y-%m-%d}",
    }
    result = db.execute(REFERENCE_SQL, params).df()
    elapsed = time.perf_counter() - started
    result.to_parquet(out)
    queue.put({"seconds": elapsed, "peak": memory.peak()})


def in_child(target, *args) -> dict:
    queue = mp.get_context("spawn").Queue()
    process = mp.get_context("spawn").Process(target=target, args=(*args, queue))
    process.start()
    while True:
        try:
            result = queue.get(timeout=1)
            break
        except Exception:  # queue.Empty: keep waiting while the child lives
            if not process.is_alive():
                raise SystemExit(
                    f"{target.__name__} failed (exit code {process.exitcode})"
                ) from None
    process.join()
    return result


def same_summaries(ours: str, reference: str) -> tuple[bool, int]:
    import pandas as pd

    keys = ["account_id", "asset_id", "usage_resource_id", "window_start"]
    a, b = pd.read_parquet(ours), pd.read_parquet(reference)
    for frame in (a, b):
        frame["asset_id"] = frame["asset_id"].fillna("")
        frame["window_start"] = pd.to_datetime(frame["window_start"]).astype("datetime64[s]")
        for column in ["consumption", "drawdown_quantity"]:
            frame[column] = (frame[column].astype("float64") * 1e6).round().astype("int64")
    a = a.sort_values(keys, ignore_index=True)[[*keys, "consumption", "drawdown_quantity"]]
    b = b.sort_values(keys, ignore_index=True)[[*keys, "consumption", "drawdown_quantity"]]
    return len(a) == len(b) and a.astype(str).equals(b.astype(str)), len(a)


def through_dagster(source: Path, url: str, home: Path, *extra: str) -> dict:
    """One partition through the CLI (the billing job on a Dagster instance): wall seconds and
    the peak RSS of its process, sampled from /proc."""
    import os
    import subprocess
    import sys

    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    command = [sys.executable, "-m", "consumption_pipeline.cli", "run", "--source", str(source),
               "--warehouse", url, "--from", PERIOD, "--to", PERIOD, *extra]  # fmt: skip
    started, peak = time.perf_counter(), 0
    process = subprocess.Popen(command, env={**os.environ, "DAGSTER_HOME": str(home.resolve())},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    while process.poll() is None:
        try:
            with open(f"/proc/{process.pid}/statm") as statm:
                peak = max(peak, int(statm.read().split()[1]) * resource.getpagesize())
        except OSError:
            pass
        time.sleep(0.05)
    if process.returncode:
        raise SystemExit(f"the partition through Dagster failed: {process.stderr.read()}")
    return {"seconds": time.perf_counter() - started, "peak": peak}


def fresh_sqlite(source: Path) -> str:
    """A new SQLite warehouse in the source folder (and no lake, nor source index, beside it)."""
    (source / "warehouse.db").unlink(missing_ok=True)
    shutil.rmtree(source / "warehouse.lake", ignore_errors=True)
    return f"sqlite:///{source / 'warehouse.db'}"


def postgres_database(server: str):
    """A new database on `server` for one run, dropped afterwards."""
    import contextlib
    import uuid

    import sqlalchemy as sa

    from consumption_pipeline.storage.warehouse import default_lake

    @contextlib.contextmanager
    def database():
        name = f"cp_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield f"{server}/{name}"
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()
            shutil.rmtree(default_lake(f"{server}/{name}"), ignore_errors=True)

    return database()


def dataset(data_dir: Path, events: int, accounts: int, seed: int) -> Path:
    from consumption_pipeline.cli.synthetic import generate

    folder = data_dir / f"events-{events}-accounts-{accounts}-seed-{seed}"
    if not (folder / "accounts.csv").exists():
        files = max(2, events // 4_000_000)
        generate(folder, accounts=accounts, events=events, periods=[PERIOD], seed=seed, files=files)
    return folder


def history_sources(data_dir: Path, months: int, events: int, accounts: int, seed: int):
    """Two sources of the same catalog: `months` months of files ending with PERIOD (one file
    per month, `events` rows each: its month's events and its share of undated rows), and a
    copy holding PERIOD's file alone."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from consumption_pipeline.cli.synthetic import generate

    full = data_dir / f"history-{months}x{events}-accounts-{accounts}-seed-{seed}"
    own = full.with_name(full.name + "-own-month")
    if (own / "accounts.csv").exists():
        return own, full
    last = pd.Period(PERIOD, "M")
    names = [str(last - k) for k in range(months - 1, -1, -1)]
    generated = full.with_name(full.name + "-generated")
    generate(generated, accounts=accounts, events=events * months, periods=names, seed=seed,
             files=months)  # fmt: skip
    (full / "usage").mkdir(parents=True, exist_ok=True)
    writers = {}
    for number, path in enumerate(sorted((generated / "usage").glob("*.parquet"))):
        for batch in pq.ParquetFile(path).iter_batches(1 << 20):
            table = pa.Table.from_batches([batch])
            stamps = table.column("occurred_at").to_pandas()
            month = stamps.dt.strftime("%Y-%m").fillna(names[number]).to_numpy()
            for name in sorted(set(month)):
                part = table.filter(pa.array(month == name))
                if name not in writers:
                    writers[name] = pq.ParquetWriter(
                        full / "usage" / f"{name}.parquet", part.schema
                    )
                writers[name].write_table(part)
    for writer in writers.values():
        writer.close()
    own.mkdir(exist_ok=True)
    for path in generated.glob("*.csv"):
        shutil.copy(path, full / path.name)
        shutil.copy(path, own / path.name)
    (own / "usage").mkdir(exist_ok=True)
    shutil.copy(full / "usage" / f"{PERIOD}.parquet", own / "usage" / f"{PERIOD}.parquet")
    shutil.rmtree(generated)
    return own, full


def history(data_dir: Path, months: int, events: int, accounts: int, seed: int) -> dict:
    """PERIOD through Dagster (SQLite) with `months` months of files in usage/, beside PERIOD
    with its own file alone: each run twice, the first indexing the files, the second reading
    the index."""
    own, full = history_sources(data_dir, months, events, accounts, seed)
    figures = {}
    for label, source in (("own month", own), (f"{months} months", full)):
        warehouse = source / "warehouse.db"
        for stale in (warehouse, source / "warehouse.lake", source / "dagster-history"):
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(
                missing_ok=True
            )
        url = f"sqlite:///{warehouse}"
        runs = [through_dagster(source, url, source / "dagster-history") for _ in range(2)]
        figures[label] = runs
        for run, when in zip(runs, ("first (indexing)", "again (index read)"), strict=True):
            print(f"{f'{label}, {when}':<36}{run['seconds']:>9.2f} s{run['peak'] / 1024 / 1024:>9,.0f} MB",
                  flush=True)  # fmt: skip
    ratio = figures[f"{months} months"][1]["seconds"] / figures["own month"][1]["seconds"]
    print(f"{months} months of files / own month alone (index read): {ratio:.2f}x", flush=True)
    return {"months": months, "events_per_month": events, "runs": figures, "ratio": ratio}


def report(size: int, ours: dict, reference: dict, same: bool, summaries: int) -> str:
    mb = 1024 * 1024
    lines = [f"\n{size:,} events ({PERIOD}), {summaries:,} usage summaries; same summaries as DuckDB: {same}",
             f"{'stage':<28}{'seconds':>9}{'events/s':>14}{'peak RSS MB':>13}"]  # fmt: skip
    for name in STAGES:
        seconds, peak = ours["stages"][name]
        lines.append(f"{name:<28}{seconds:>9.2f}{size / seconds:>14,.0f}{peak / mb:>13,.0f}")
    core = sum(ours["stages"][s][0] for s in ("ingest", "rate"))
    total = sum(ours["stages"][s][0] for s in STAGES)
    peak = max(p for _, p in ours["stages"].values())
    lines += [
        f"{'all five stages':<28}{total:>9.2f}{size / total:>14,.0f}{peak / mb:>13,.0f}",
        f"{'ingest + rate (summaries)':<28}{core:>9.2f}{size / core:>14,.0f}",
        f"{'DuckDB reference':<28}{reference['seconds']:>9.2f}{size / reference['seconds']:>14,.0f}"
        f"{reference['peak'] / mb:>13,.0f}",
        f"ratio ingest+rate / DuckDB: {core / reference['seconds']:.2f}x",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=Path("data/bench"))
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument(
        "--dagster",
        nargs="*",
        choices=["sqlite", "postgresql"],
        default=[],
        help="also time one whole partition through Dagster on these warehouses",
    )
    parser.add_argument("--postgres", default="postgresql+psycopg2://postgres@127.0.0.1:5432",
                        help="server for --dagster postgresql (default: %(default)s)")  # fmt: skip
    parser.add_argument("--dask", type=int, metavar="N",
                        help="also the partition through Dagster (SQLite) with its event-level "
                             "work on a LocalCluster of N worker processes")  # fmt: skip
    parser.add_argument("--history", type=int, metavar="MONTHS",
                        help="instead: the period through Dagster with MONTHS months of files in "
                             "usage/, beside its own month's file alone")  # fmt: skip
    parser.add_argument("--history-events", type=int, default=1_000_000,
                        help="events per month for --history (default: %(default)s)")  # fmt: skip
    args = parser.parse_args()
    if args.history:
        found = history(args.data_dir, args.history, args.history_events, args.accounts, args.seed)
        if args.json:
            args.json.write_text(json.dumps(found, indent=2))
        return
    figures = []
    for size in args.sizes:
        source = dataset(args.data_dir, size, args.accounts, args.seed)
        ours_out, ref_out = str(source / "ours.parquet"), str(source / "reference.parquet")
        ours = in_child(run_pipeline, str(source), ours_out)
        reference = in_child(run_reference, str(source), ref_out)
        same, summaries = same_summaries(ours_out, ref_out)
        print(report(size, ours, reference, same, summaries), flush=True)
        partitions = {}
        for backend in args.dagster:
            home = source / f"dagster-{backend}"
            if backend == "sqlite":
                partitions[backend] = through_dagster(source, fresh_sqlite(source), home)
            else:
                with postgres_database(args.postgres) as url:
                    partitions[backend] = through_dagster(source, url, home)
            seconds, peak = partitions[backend]["seconds"], partitions[backend]["peak"]
            name = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[backend]
            print(f"{f'via Dagster ({name})':<28}{seconds:>9.2f}{size / seconds:>14,.0f}"
                  f"{peak / 1024 / 1024:>13,.0f}", flush=True)  # fmt: skip
        if args.dask:
            from distributed import LocalCluster

            with LocalCluster(n_workers=args.dask, threads_per_worker=1, processes=True,
                              host="127.0.0.1", dashboard_address=None) as cluster:  # fmt: skip
                found = through_dagster(source, fresh_sqlite(source), source / "dagster-dask",
                                        "--dask", cluster.scheduler_address)  # fmt: skip
            partitions[f"sqlite on {args.dask} Dask workers"] = found
            print(f"{f'via Dagster, {args.dask} Dask workers':<28}{found['seconds']:>9.2f}"
                  f"{size / found['seconds']:>14,.0f}{found['peak'] / 1024 / 1024:>13,.0f}",
                  flush=True)  # fmt: skip
        figures.append({"events": size, "ours": ours, "reference": reference, "same": same,
                        "dagster": partitions})  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
