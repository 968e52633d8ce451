"""`consumption-pipeline run`: materialize every stage of a range of billing periods through
Dagster, in period order, and print each account's invoice summary."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd

from consumption_pipeline.audit.commands import add_trace_command
from consumption_pipeline.dashboard.command import add_dashboard_command
from consumption_pipeline.export import add_close_command
from consumption_pipeline.settings import PROJECT_ROOT, Settings

DEFAULT_DAGSTER_HOME = PROJECT_ROOT / "data" / "dagster_home"
# The run's own log (with tracebacks) stays in the instance; the terminal gets one line.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


class RunFailed(RuntimeError):
    """A stage failed; the message says which period, which step and why."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.command(args)
    except RunFailed as failure:
        print(f"consumption-pipeline: {failure}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as error:
        print(f"consumption-pipeline: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="consumption-pipeline", description=__doc__)
    commands = parser.add_subparsers(required=True)
    run = commands.add_parser("run", help="materialize all stages for a range of billing periods")
    env = Settings.from_env()
    run.add_argument(
        "--source", default=env.source_dir, help="source directory (default: %(default)s)"
    )
    run.add_argument(
        "--warehouse", default=env.warehouse_url, help="SQLAlchemy URL (default: %(default)s)"
    )
    run.add_argument(
        "--from", dest="first", help="first period YYYY-MM (default: the first with usage)"
    )
    run.add_argument("--to", dest="last", help="last period YYYY-MM (default: the last with usage)")
    run.add_argument(
        "--timezone", default=env.billing_timezone, help="billing time zone (default: %(default)s)"
    )
    run.add_argument(
        "--grace-days", type=int, default=env.grace_days, help="days before a period closes"
    )
    run.add_argument(
        "--as-of", default=env.as_of, help="judge open/closed on this date (default: today)"
    )
    run.set_defaults(command=_run)
    add_trace_command(commands)
    add_dashboard_command(commands)
    add_close_command(commands)
    return parser


def _run(args: argparse.Namespace) -> int:
    settings = Settings(
        source_dir=str(Path(args.source).resolve()), warehouse_url=args.warehouse,
        billing_timezone=args.timezone, grace_days=args.grace_days, as_of=args.as_of or "",
        lake_url=Settings.from_env().lake_url, first_period=Settings.from_env().first_period,
        anomaly_factor=Settings.from_env().anomaly_factor,
    )  # fmt: skip
    periods = _periods(args.first, args.last, settings)
    run_periods(settings, periods)
    print(invoice_summary(settings.warehouse_url, periods))
    return 0


def _periods(first: str | None, last: str | None, settings: Settings) -> list[str]:
    if first is None or last is None:
        covered = _periods_with_usage(settings)
        first = first or covered[0]
        last = last or max(covered[-1], first)
    start, end = pd.Period(first, "M"), pd.Period(last, "M")
    if end < start:
        raise ValueError(f"--to {last} is before --from {first}")
    if start.start_time < pd.Timestamp(settings.first_period):
        raise ValueError(
            f"--from {first} is before the first billing period {settings.first_period}"
        )
    return [p.start_time.strftime("%Y-%m-%d") for p in pd.period_range(start, end, freq="M")]


def _periods_with_usage(settings: Settings) -> list[str]:
    from consumption_pipeline import sources

    root = Path(settings.source_dir)
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


def run_periods(settings: Settings, periods: list[str]) -> None:
    """Materialize the billing job for each period, in order, on a persistent Dagster instance."""
    os.environ.setdefault("DAGSTER_HOME", str(_default_dagster_home()))
    import dagster as dg

    from consumption_pipeline.definitions import BILLING_JOB, build_defs

    job = build_defs(settings).resolve_job_def(BILLING_JOB)
    with dg.DagsterInstance.get() as instance:
        for period in periods:
            result = job.execute_in_process(
                partition_key=period, instance=instance, raise_on_error=False, run_config=QUIET
            )
            if not result.success:
                raise RunFailed(f"period {period[:7]}: {_failure(result)} (run {result.run_id})")
            print(
                f"period {period[:7]}: all stages materialized (run {result.run_id})",
                file=sys.stderr,
            )


def _default_dagster_home() -> Path:
    DEFAULT_DAGSTER_HOME.mkdir(parents=True, exist_ok=True)
    config = DEFAULT_DAGSTER_HOME / "dagster.yaml"
    if not config.exists():
        config.write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    return DEFAULT_DAGSTER_HOME


def _failure(result) -> str:
    import dagster as dg

    # A failed blocking check explains the run better than the step error it raises.
    checks = [e.asset_check_evaluation_data for e in result.all_events
              if e.event_type_value == "ASSET_CHECK_EVALUATION"]  # fmt: skip
    failed = [c for c in checks
              if not c.passed and c.blocking and c.severity == dg.AssetCheckSeverity.ERROR]  # fmt: skip
    if failed:
        return "; ".join(f"blocking check '{c.check_name}' on {c.asset_key.to_user_string()} "
                         f"failed: {c.description}" for c in failed)  # fmt: skip
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error.cause is not None:
                error = error.cause
            return f"step '{event.step_key}' failed: {error.message.strip()}"
    return "the run failed"


def invoice_summary(warehouse_url: str, periods: list[str]) -> str:
    """One line per account and period: invoice lines, amount owed and status."""
    from consumption_pipeline.domain.money import round_money
    from consumption_pipeline.warehouse import Warehouse

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
        amount = round_money(total, currency)
        rows.append(f"{period:<8} {account:<16} {count:>5} {amount:>16,} {currency:<8} {status}")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
