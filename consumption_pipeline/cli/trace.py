"""`consumption-pipeline trace`: print the trace of one invoice line (audit/trace.py)."""

from __future__ import annotations

import argparse

from consumption_pipeline.audit.trace import LineKey, read_trace, restatement_markdown, to_markdown
from consumption_pipeline.cli.instance import named, source_folder, warehouse_of
from consumption_pipeline.domain.catalog import build_catalog
from consumption_pipeline.storage import objects, sources
from consumption_pipeline.storage.settings import Settings, flag, month, positive_int, warehouse_url
from consumption_pipeline.storage.warehouse import existing_warehouse


def add_trace_command(commands: argparse._SubParsersAction) -> None:
    env = Settings.from_env()
    trace = commands.add_parser(
        "trace", help="trace an invoice line back to its events, buckets, rates and runs"
    )
    trace.add_argument(
        "--warehouse",
        type=flag(warehouse_url),
        help=f"SQLAlchemy URL (default: {env.warehouse_url})",
    )
    trace.add_argument(
        "--source",
        help=f"source directory, for the catalog's rate rows (default: {env.source_dir})",
    )
    trace.add_argument("--period", type=flag(month), help="billing period YYYY-MM")
    trace.add_argument("--account", help="account_id")
    trace.add_argument("--asset", help="asset_id (omit for usage not tagged with an asset)")
    trace.add_argument("--resource", help="the billed usage resource, e.g. credits")
    trace.add_argument(
        "--restatement", help="trace a restatement (its adjustment lines) instead, e.g. 2026-09-R1"
    )
    trace.add_argument(
        "--max-events",
        type=flag(positive_int),
        default=50,
        help="events listed (default %(default)s)",
    )
    trace.set_defaults(command=run_trace)


def run_trace(args: argparse.Namespace) -> int:
    source_folder(args.source)  # checked before the warehouse is read
    warehouse, given_by = warehouse_of(args.warehouse)
    with named(given_by):
        store = existing_warehouse(warehouse, Settings.from_env().lake_url)
    if args.restatement:
        print(restatement_markdown(store, args.restatement))
        return 0
    missing = [f"--{n}" for n in ("period", "account", "resource") if not getattr(args, n)]
    if missing:
        raise ValueError(f"trace: {', '.join(missing)} required (or --restatement ID)")
    period = f"{args.period}-01"
    catalog = build_catalog(sources.read_catalog(objects.local_folder(source_folder(args.source))))
    key = LineKey(period, args.account, args.asset, args.resource)
    print(to_markdown(read_trace(store, key, catalog), args.max_events))
    return 0
