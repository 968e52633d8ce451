"""`consumption-pipeline close --period YYYY-MM`: close a billing period by hand, through the
period-close job (defs/close.py), judged on --as-of (else today)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg

from consumption_pipeline.cli.instance import (
    QUIET,
    RunFailed,
    add_dask_flag,
    dagster_home,
    dask_of,
    failure,
    named,
    open_instance,
    source_folder,
    warehouse_of,
)
from consumption_pipeline.closing.close import ensure_closable
from consumption_pipeline.closing.dates import label
from consumption_pipeline.closing.outbox import outbox_dir, outbox_folder, read_manifest
from consumption_pipeline.domain import formatting
from consumption_pipeline.storage.settings import (
    Settings,
    as_of,
    billing_timezone,
    flag,
    grace_days,
    month,
    warehouse_url,
)
from consumption_pipeline.storage.warehouse import Warehouse


def add_close_command(commands: argparse._SubParsersAction) -> None:
    env = Settings.from_env()
    close = commands.add_parser(
        "close", help="close a billing period: materialize it a last time and export it once"
    )
    close.add_argument("--period", required=True, type=flag(month), help="billing period YYYY-MM")
    close.add_argument("--source", help=f"source directory (default: {env.source_dir})")
    close.add_argument(
        "--warehouse",
        type=flag(warehouse_url),
        help=f"SQLAlchemy URL (default: {env.warehouse_url})",
    )
    close.add_argument("--outbox", default=outbox_dir(), help="outbox (default: %(default)s)")
    close.add_argument(
        "--timezone",
        type=flag(billing_timezone),
        default=env.billing_timezone,
        help="billing time zone (default: %(default)s)",
    )
    close.add_argument(
        "--grace-days",
        type=flag(grace_days),
        default=env.grace_days,
        help="grace days (default: %(default)s)",
    )
    close.add_argument(
        "--as-of",
        type=flag(as_of),
        default=env.as_of,
        help="judge on this date YYYY-MM-DD (default: today)",
    )
    add_dask_flag(close)
    close.set_defaults(command=run_close_command)


def run_close_command(args: argparse.Namespace) -> int:
    period = f"{args.period}-01"
    warehouse, given_by = warehouse_of(args.warehouse)
    settings = replace(
        Settings.from_env(), source_dir=source_folder(args.source),
        warehouse_url=warehouse, billing_timezone=args.timezone, grace_days=args.grace_days,
        as_of=args.as_of, dask_address=dask_of(args.dask),
    )  # fmt: skip
    settings.check_period(args.period, f"--period {args.period}")
    dagster_home()
    with named(given_by):  # reachable, writable, before the instance records a run
        Warehouse(settings.warehouse_url, settings.lake_url).engine.dispose()
    with open_instance() as instance:
        result = close_in_process(settings, period, args.outbox, instance)
    if not result.success:
        raise RunFailed(f"period {label(period)}: {failure(result)} (run {result.run_id})")
    manifest = read_manifest(Path(args.outbox), period)
    print(closed_line(manifest, outbox_folder(Path(args.outbox), period), period))
    return 0


def closed_line(manifest: dict, folder: Path, period: str) -> str:
    """What the close prints: '... 26 lines (179.89 EUR, 51,266 JPY, 159.13 USD) ...'."""
    totals = ", ".join(formatting.money(Decimal(total), currency)
                       for currency, total in manifest["totals"].items())  # fmt: skip
    lines = f"{manifest['rows']:,} line{'' if manifest['rows'] == 1 else 's'}"
    return (
        f"period {label(period)} closed on {manifest['closed_on']}: {lines} "
        f"({totals or 'nothing owed'}) exported to {folder}, checksum {manifest['checksum']}"
    )


def close_in_process(
    settings: Settings, period: str, outbox: str, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    """Close a period by hand: the period-close job in this process, recorded in `instance`,
    judged on `settings.as_of` (else today). A period that may not close is refused before any
    stage runs."""
    # Deferred: the code location loads Dagster, which takes seconds; a bad flag stops first.
    from consumption_pipeline.definitions import build_defs
    from consumption_pipeline.defs.close import PERIOD_CLOSE_JOB
    from consumption_pipeline.defs.resources import SourceDirectory

    source = SourceDirectory(
        path=settings.source_dir, billing_timezone=settings.billing_timezone,
        grace_days=settings.grace_days, as_of=settings.as_of,
    )  # fmt: skip
    today = f"{source.today():%Y-%m-%d}"
    store = Warehouse(settings.warehouse_url, settings.lake_url)
    ensure_closable(store, period, source.today(), source.grace_days)
    job = build_defs(replace(settings, as_of=today)).resolve_job_def(PERIOD_CLOSE_JOB)
    return job.execute_in_process(
        partition_key=period, instance=instance, raise_on_error=False,
        run_config={**QUIET, "resources": {"outbox": {"config": {"path": outbox}}}},
        tags={"consumption/trigger": "by_hand", "consumption/as_of": today},
    )  # fmt: skip
