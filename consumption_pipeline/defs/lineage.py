"""Lineage for auditors: every stage records which run wrote each period's rows, from which inputs,
with which code.

Each stage calls `record_lineage` once, after its write. It stores one `stage_runs` row per table
written (run id, code version, input fingerprints, digest and row count of what was written),
adds the input and output digests to the materialization's metadata and returns the data version
of what it wrote: a digest of the asset's code version and of its inputs (the period's event set,
every catalog file, the settings the step uses and the digests of the upstream rows it read). Two
materializations with the same data version ran the same code on the same inputs; the Dagster UI
shows the code version and the data version of each, and marks what changed since.
"""

import datetime as dt
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import dagster as dg
import pandas as pd

from consumption_pipeline.audit import fingerprints, runs
from consumption_pipeline.audit.restatement import keep_billed_basis
from consumption_pipeline.closing.dates import closes_on
from consumption_pipeline.closing.register import ClosureRegister
from consumption_pipeline.defs.resources import SourceDirectory, WarehouseResource
from consumption_pipeline.domain.calendar import period_bounds
from consumption_pipeline.domain.catalog import REQUIRED
from consumption_pipeline.storage import objects, sources
from consumption_pipeline.storage.tables import TABLES
from consumption_pipeline.storage.warehouse import Warehouse

T, U = TypeVar("T"), TypeVar("U")

# The rows each step reads from the warehouse: (step that wrote them, table, period offset).
STEP_READS: dict[str, list[tuple[str, str, int]]] = {
    "ingest": [],
    "entitlement_buckets": [],
    "rated_usage": [("ingest", "usage_events", 0)],
    "drawdown": [
        ("rated_usage", "rated_usage", 0), ("entitlement_buckets", "entitlement_buckets", 0),
        ("drawdown", "bucket_balances", -1), ("drawdown", "entitlement_buckets", -1),
        ("entitlement_buckets", "entitlement_buckets", -1),
    ],
    "summaries": [("drawdown", "usage_summaries", 0)],
    "restatements": [("summaries", "liable_summaries", 0)],
    "forecast": [
        ("drawdown", "bucket_balances", 0), ("drawdown", "entitlement_ledger", 0),
        ("drawdown", "usage_summaries", 0), ("drawdown", "entitlement_ledger", -1),
        ("drawdown", "usage_summaries", -1), ("entitlement_buckets", "entitlement_buckets", 0),
        ("drawdown", "entitlement_buckets", 0),
    ],
}  # fmt: skip


# The steps whose result depends on the period's events (the buckets come from the catalog alone).
READS_EVENTS = set(STEP_READS) - {"entitlement_buckets"}


def output_digests(written: dict[str, pd.DataFrame]) -> dict[str, str]:
    """The digest of each table a step writes (fingerprints.frame_digest)."""
    return {name: fingerprints.frame_digest(frame, TABLES[name]) for name, frame in written.items()}


def alongside(work: Callable[[], T], main: Callable[[], U]) -> tuple[U, T]:
    """`main` here and `work` (a step's digests, or checks of its frames) in a worker thread at
    the same time: a bulk write mostly waits on the database, and numpy and Arrow let go of the
    interpreter, so the two share the cores. The frames must not change meanwhile. An error of
    `main` comes first."""
    with ThreadPoolExecutor(1) as pool:
        done = pool.submit(work)
        result = main()
        return result, done.result()


def record_lineage(
    context: dg.AssetExecutionContext,
    source: SourceDirectory,
    warehouse: Warehouse | WarehouseResource,
    written: dict[str, pd.DataFrame],
    extra_inputs: dict[str, str] | None = None,
    outputs: dict[str, str] | None = None,
    rows: dict[str, int] | None = None,
) -> dg.DataVersion:
    """Record the run, inputs, code version and row counts of the tables this step just wrote
    (`outputs`: their digests, if already computed; `rows`: the row counts of those written
    part by part, not in `written`); return their data version."""
    store = warehouse.open() if isinstance(warehouse, WarehouseResource) else warehouse
    step, period = context.assets_def.node_def.name, context.partition_key
    outputs = output_digests(written) if outputs is None else outputs
    counts = {**{name: len(frame) for name, frame in written.items()}, **(rows or {})}
    extra_inputs = extra_inputs or {}
    inputs = {**_source_inputs(source, step, extra_inputs), **_upstream_inputs(store, step, period),
              **extra_inputs}  # fmt: skip
    inputs["events"] = outputs.get("usage_events") or (
        runs.output_digest(store.engine, period, "ingest", "usage_events")
        if step in READS_EVENTS
        else "not an input of this step"
    )
    inputs["settings/status"] = _status(source, period) if step == "summaries" else "-"
    # the assets of one step share its code version (defs/metadata.described)
    code = context.assets_def.code_versions_by_key[next(iter(context.selected_asset_keys))]
    fingerprint = fingerprints.mapping_digest({"code_version": code, **inputs})
    if counts:  # the restatements step writes only audit tables: metadata alone
        runs.record(store.engine, pd.DataFrame({
            "period": pd.Timestamp(period), "step": step, "table_name": list(counts),
            "run_id": context.run.run_id, "code_version": code, "fingerprint": fingerprint,
            "inputs": json.dumps(inputs, sort_keys=True),
            "output_digest": [outputs[name] for name in counts], "row_count": list(counts.values()),
            "recorded_at": pd.Timestamp(dt.datetime.now(dt.UTC)),
        }))  # fmt: skip
    assets = {key.to_user_string() for key in context.selected_asset_keys}
    metadata = {
        **{f"lineage/input/{k}": v for k, v in sorted(inputs.items())},
        # rows of the tables that are no asset of their own (an asset shows its row count)
        **{f"lineage/rows/{k}": n for k, n in counts.items() if k not in assets},
        **{f"lineage/output/{k}": v for k, v in outputs.items()},
    }  # fmt: skip
    for key in context.selected_asset_keys:
        context.add_asset_metadata(metadata, asset_key=key)
    if step == "ingest" and _due_and_not_closed(store, source, period):
        keep_billed_basis(store, period, counts["usage_events"], inputs, fingerprints.code_version(),
                          context.run.run_id)  # fmt: skip
    return dg.DataVersion(fingerprint)


def _source_inputs(source: SourceDirectory, step: str, known: dict[str, str]) -> dict[str, str]:
    root = objects.local_folder(source.path)
    inputs = {"settings/billing_timezone": source.billing_timezone}
    for name in sorted(REQUIRED):
        path = root / name
        inputs[f"catalog/{name}"] = fingerprints.file_digest(path) if path.exists() else "absent"
    if step == "ingest" and "event_files" not in known:  # the ingest digests them as it reads
        inputs["event_files"] = fingerprints.files_digest(sources.event_files(root), root)
    return inputs


def _upstream_inputs(store: Warehouse, step: str, period: str) -> dict[str, str]:
    inputs = {}
    for writer, table, offset in STEP_READS.get(step, []):
        at = (pd.Timestamp(period) + pd.DateOffset(months=offset)).strftime("%Y-%m-%d")
        label = f"{table}@{at[:7]}" + (f" ({writer})" if table == "entitlement_buckets" else "")
        inputs[label] = runs.output_digest(store.engine, at, writer, table)
    return inputs


def _due_and_not_closed(store: Warehouse, source: SourceDirectory, period: str) -> bool:
    """Past its grace period and not closed yet: what is computed now is what its close exports,
    so it is what the period is billed on (audit/restatement.py)."""

    due = source.today() >= closes_on(period, source.grace_days)
    return due and ClosureRegister(store).closure(period) is None


def _status(source: SourceDirectory, period: str) -> str:
    """Whether the period is judged closed: the one input of the summaries that is a date."""
    _, end = period_bounds(pd.Timestamp(period))
    closed = source.today() >= end + pd.Timedelta(days=source.grace_days)
    return f"{'closed' if closed else 'open'} (grace_days={source.grace_days})"
