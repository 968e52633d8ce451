"""`consumption-pipeline run`: materialize every stage of a range of billing periods through
Dagster, in period order, and print each account's invoice summary."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

import pandas as pd

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
from consumption_pipeline.domain import formatting
from consumption_pipeline.storage import objects, sources
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


def add_run_command(commands: argparse._SubParsersAction) -> None:
    env = Settings.from_env()
    run = commands.add_parser("run", help="materialize all stages for a range of billing periods")
    run.add_argument("--source", help=f"source directory (default: {env.source_dir})")
    run.add_argument(
        "--warehouse",
        type=flag(warehouse_url),
        help=f"SQLAlchemy URL (default: {env.warehouse_url})",
    )
    run.add_argument(
        "--from",
        dest="first",
        type=flag(month),
        help="first period YYYY-MM (default: the first with usage)",
    )
    run.add_argument(
        "--to",
        dest="last",
        type=flag(month),
        help="last period YYYY-MM (default: the last with usage)",
    )
    run.add_argument(
        "--timezone",
        type=flag(billing_timezone),
        default=env.billing_timezone,
        help="billing time zone (default: %(default)s)",
    )
    run.add_argument(
        "--grace-days",
        type=flag(grace_days),
        default=env.grace_days,
        help="days before a period closes (default: %(default)s)",
    )
    run.add_argument(
        "--as-of",
        type=flag(as_of),
        default=env.as_of,
        help="judge open/closed on this date YYYY-MM-DD (default: today)",
    )
    add_dask_flag(run)
    run.set_defaults(command=run_command)


def run_command(args: argparse.Namespace) -> int:
    warehouse, given_by = warehouse_of(args.warehouse)
    chosen = replace(
        Settings.from_env(), source_dir=source_folder(args.source),
        warehouse_url=warehouse, billing_timezone=args.timezone, grace_days=args.grace_days,
        as_of=args.as_of, dask_address=dask_of(args.dask),
    )  # fmt: skip
    periods = _periods(args.first, args.last, chosen)
    dagster_home()  # the folder, checked before the warehouse is created
    with named(given_by):  # reachable, writable
        Warehouse(chosen.warehouse_url, chosen.lake_url).engine.dispose()
    with open_instance() as instance:
        run_periods(chosen, periods, instance)
    print(invoice_summary(chosen.warehouse_url, periods))
    return 0


def _periods(first: str | None, last: str | None, settings: Settings) -> list[str]:
    names = {"first": f"--from {first}", "last": f"--to {last}"}
    if first is None or last is None:
        covered = _periods_with_usage(settings)
        names["first"] = names["first"] if first else f"the first period with usage {covered[0]}"
        names["last"] = names["last"] if last else f"the last period with usage {covered[-1]}"
        first = first or covered[0]
        last = last or max(covered[-1], first)
    settings.check_period(first, names["first"])
    settings.check_period(last, names["last"])
    if last < first:
        raise ValueError(f"{names['last']} is before {names['first']}")
    months = pd.period_range(pd.Period(first, "M"), pd.Period(last, "M"), freq="M")
    return [p.start_time.strftime("%Y-%m-%d") for p in months]


def _periods_with_usage(settings: Settings) -> list[str]:

    root = objects.local_folder(settings.source_dir)
    stamps = [sources.read_events(p, root)["occurred_at"] for p in sources.event_files(root)]
    instants = pd.to_datetime(
        pd.concat(stamps).astype("str"), utc=True, format="ISO8601", errors="coerce"
    )
    months = instants.dropna().dt.tz_convert(settings.billing_timezone).dt.strftime("%Y-%m")
    if months.empty:
        raise ValueError(
            f"{root / 'usage'}: no event with a readable timestamp; give --from and --to"
        )
    return sorted(months.unique())


def run_periods(settings: Settings, periods: list[str], instance: dg.DagsterInstance) -> None:
    """Materialize the billing job for each period, in order, on a persistent Dagster instance."""
    # Deferred: the code location loads Dagster, which takes seconds; a bad flag stops first.
    from consumption_pipeline.definitions import BILLING_JOB, build_defs

    job = build_defs(settings).resolve_job_def(BILLING_JOB)
    for period in periods:
        result = job.execute_in_process(
            partition_key=period, instance=instance, raise_on_error=False, run_config=QUIET
        )
        if not result.success:
            raise RunFailed(f"period {period[:7]}: {failure(result)} (run {result.run_id})")
        print(
            f"period {period[:7]}: all stages materialized (run {result.run_id})",
            file=sys.stderr,
        )


def invoice_summary(warehouse_url: str, periods: list[str]) -> str:
    """One line per account and period: invoice lines, amount owed and status."""

    lines = Warehouse(warehouse_url).read_periods("liable_summaries", periods)
    if lines.empty:
        return "no invoice lines"
    lines["period"] = pd.to_datetime(lines["period"]).dt.strftime("%Y-%m")
    rows = [f"{'period':<8} {'account':<16} {'lines':>5} {'amount':>16} {'currency':<8} status"]
    keys = ["period", "account_id", "currency", "status"]
    totals = lines.groupby(keys, sort=True)["amount"].agg(["size", "sum"])
    for (period, account, currency, status), count, total in zip(
        totals.index, totals["size"], totals["sum"], strict=True
    ):
        amount = formatting.money_digits(total, currency)
        rows.append(f"{period:<8} {account:<16} {count:>5,} {amount:>16} {currency:<8} {status}")
    return "\n".join(rows)
