"""Closing a billing period (DOMAIN.md "Time"): when a period closes, the export of its final
liable summaries to the billing outbox, and the register of closed periods.

A period closes `grace_days` after its end (October, with 3 grace days, on 4 November). Closing it
writes its final liable summaries once to `<outbox>/<YYYY-MM>/`:

- `liable_summaries.csv` and `liable_summaries.json`: one line per liable summary, sorted by
  account, asset and resource; quantities and money as decimal text (money at the currency's minor
  unit), so that no consumer reads them through a float; `line_type` tells the period's own usage
  (`usage`) from the restatement of an earlier period booked into it (`adjustment`);
- `manifest.json`: the period, the date the close was judged on, the row count, the total amount
  per currency, the size and SHA-256 of each file, and `checksum`, the SHA-256 of the CSV.

The files are written to a hidden staging folder and renamed into place in one step, so a crash
leaves the complete folder or none, and a folder in place is never written again. The close is
then recorded in the warehouse table `period_closures`, which is what makes a period closed: a
second close is an error naming the period. A crash between the rename and the record is
completed by the next attempt, which finds the folder already holding exactly those lines.

`consumption-pipeline close --period YYYY-MM` closes a period by hand (defs/close.py runs it).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import errno
import hashlib
import io
import json
import os
import shutil
import tempfile
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from consumption_pipeline.domain.calendar import period_bounds
from consumption_pipeline.domain.money import round_money
from consumption_pipeline.settings import (
    PROJECT_ROOT,
    Settings,
    as_of,
    billing_timezone,
    flag,
    grace_days,
    month,
    warehouse_url,
)
from consumption_pipeline.tables import closure_metadata, period_closures
from consumption_pipeline.warehouse import Warehouse, create_schema

OUTBOX_ENV = "CONSUMPTION_OUTBOX_DIR"
DEFAULT_OUTBOX = PROJECT_ROOT / "data" / "outbox"
LINES_CSV, LINES_JSON, MANIFEST = "liable_summaries.csv", "liable_summaries.json", "manifest.json"
COLUMNS = [
    "period", "account_id", "asset_id", "usage_resource_id", "consumption", "debited",
    "overage_quantity", "net_unit_rate", "amount", "currency", "status", "line_type",
    "restatement_id",
]  # fmt: skip
QUANTITIES = ["consumption", "debited", "overage_quantity"]


class PeriodOpenError(ValueError):
    """The period may not close yet; the message names it and says why."""


class PeriodClosedError(ValueError):
    """The period is closed (or its export differs from the warehouse): it is never exported
    again; the message names it."""


def outbox_dir() -> str:
    return os.environ.get(OUTBOX_ENV, str(DEFAULT_OUTBOX))


# -- the calendar of closes -------------------------------------------------------------------


def period_key(day: pd.Timestamp | str) -> str:
    """The period (partition key 'YYYY-MM-01') that contains `day`."""
    return pd.Timestamp(day).strftime("%Y-%m-01")


def label(period: str) -> str:
    return str(period)[:7]


def closes_on(period: str, grace_days: int) -> pd.Timestamp:
    """The first day on which the period is closed: its end (exclusive) plus the grace days."""
    _, end = period_bounds(pd.Timestamp(period))
    return end + pd.Timedelta(days=grace_days)


def open_periods(today: pd.Timestamp, grace_days: int, first_period: str) -> list[str]:
    """The periods still open on `today`, oldest first: today's own and any earlier one whose
    grace period has not passed (the previous one during the first `grace_days` of a month)."""
    periods, period = [], pd.Timestamp(period_key(today))
    while period >= pd.Timestamp(first_period) and closes_on(str(period), grace_days) > today:
        periods.insert(0, period_key(period))
        period -= pd.offsets.MonthBegin(1)
    return periods


def due_periods(since: str, today: pd.Timestamp, grace_days: int) -> list[str]:
    """The periods from `since` on whose grace period has passed on `today`, oldest first."""
    months = pd.period_range(pd.Timestamp(since), today, freq="M")
    keys = [m.start_time.strftime("%Y-%m-01") for m in months]
    return [p for p in keys if closes_on(p, grace_days) <= today]


# -- the register of closed periods ----------------------------------------------------------


class ClosureRegister:
    """The warehouse table `period_closures`: one row per closed period, inserted once."""

    def __init__(self, store: Warehouse) -> None:
        self.engine = store.engine
        create_schema(self.engine, closure_metadata)

    def closed_periods(self) -> list[str]:
        with self.engine.connect() as conn:
            days = conn.execute(sa.select(period_closures.c.period)).scalars().all()
        return sorted(period_key(d) for d in days)

    def closure(self, period: str) -> dict[str, Any] | None:
        day = dt.date.fromisoformat(period_key(period))
        with self.engine.connect() as conn:
            query = sa.select(period_closures).where(period_closures.c.period == day)
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def record(self, manifest: dict[str, Any], folder: Path, run_id: str) -> None:
        row = {
            "period": dt.date.fromisoformat(manifest["period"] + "-01"),
            "closed_on": dt.date.fromisoformat(manifest["closed_on"]),
            "grace_days": manifest["grace_days"], "lines": manifest["rows"],
            "totals": json.dumps(manifest["totals"], sort_keys=True),
            "checksum": manifest["checksum"], "outbox": str(folder), "run_id": run_id,
            "recorded_at": dt.datetime.now(dt.UTC),
        }  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(period_closures.insert().values(**row))


def processed_periods(store: Warehouse) -> list[str]:
    """The periods the pipeline has materialized: every ingest writes one reconciliation row."""
    return store.periods("ingest_reconciliation")


def periods_to_close(store: Warehouse, today: pd.Timestamp, grace_days: int) -> list[str]:
    """The periods due on `today` and not closed, oldest first, from the first period the
    warehouse holds: a deployment does not close the months before it started."""
    closed = ClosureRegister(store).closed_periods()
    known = processed_periods(store) + closed
    if not known:
        return []
    return [p for p in due_periods(min(known), today, grace_days) if p not in closed]


# -- closing one period ----------------------------------------------------------------------


def close_period(
    store: Warehouse, outbox: Path, period: str, today: pd.Timestamp, grace_days: int, run_id: str
) -> dict[str, Any]:
    """Export the period's final liable summaries to the outbox and record it as closed."""
    ensure_closable(store, period, today, grace_days)
    lines = store.read_period("liable_summaries", period)
    provisional = int((lines["status"] != "final").sum())
    if provisional:
        raise PeriodOpenError(
            f"period {label(period)}: {provisional} liable summaries are provisional; "
            f"materialize the period as of {today:%Y-%m-%d} before closing it"
        )
    manifest = write_outbox(outbox, period, lines, today, grace_days)
    ClosureRegister(store).record(manifest, outbox_folder(outbox, period), run_id)
    return manifest


def ensure_closable(store: Warehouse, period: str, today: pd.Timestamp, grace_days: int) -> None:
    """Refuse, naming the period, to close it when it is closed already, still open on `today`,
    or preceded by a processed period that is not closed (its opening balances could change)."""
    register = ClosureRegister(store)
    closure = register.closure(period)
    if closure is not None:
        raise PeriodClosedError(
            f"period {label(period)} is closed: exported on {closure['closed_on']} to "
            f"{closure['outbox']} (checksum {closure['checksum']}); a closed period is never "
            "exported twice"
        )
    closing_day = closes_on(period, grace_days)
    if today < closing_day:
        raise PeriodOpenError(
            f"period {label(period)} is open until {closing_day:%Y-%m-%d} ({grace_days} grace "
            f"days after its end), judged on {today:%Y-%m-%d}"
        )
    previous = period_key(pd.Timestamp(period) - pd.offsets.MonthBegin(1))
    if previous in processed_periods(store) and register.closure(previous) is None:
        raise PeriodOpenError(
            f"period {label(period)} cannot close before period {label(previous)}: its opening "
            f"balances are the closing balances of {label(previous)}, which is not closed"
        )


# -- closing by hand: `consumption-pipeline close` ------------------------------------------


def add_close_command(commands: argparse._SubParsersAction) -> None:
    env = Settings.from_env()
    close = commands.add_parser(
        "close", help="close a billing period: materialize it a last time and export it once"
    )
    close.add_argument("--period", required=True, type=flag(month), help="billing period YYYY-MM")
    close.add_argument("--source", default=env.source_dir, help="source directory")
    close.add_argument(
        "--warehouse", type=flag(warehouse_url), default=env.warehouse_url, help="SQLAlchemy URL"
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
    close.set_defaults(command=run_close_command)


def run_close_command(args: argparse.Namespace) -> int:
    import dagster as dg

    from consumption_pipeline.cli import RunFailed, _default_dagster_home, _failure
    from consumption_pipeline.defs.close import close_in_process

    period = f"{args.period}-01"
    settings = replace(
        Settings.from_env(), source_dir=str(Path(args.source).resolve()),
        warehouse_url=args.warehouse, billing_timezone=args.timezone, grace_days=args.grace_days,
        as_of=args.as_of,
    )  # fmt: skip
    settings.check_period(args.period, f"--period {args.period}")
    os.environ.setdefault("DAGSTER_HOME", str(_default_dagster_home()))
    with dg.DagsterInstance.get() as instance:
        result = close_in_process(settings, period, args.outbox, instance)
    if not result.success:
        raise RunFailed(f"period {label(period)}: {_failure(result)} (run {result.run_id})")
    manifest = read_manifest(Path(args.outbox), period)
    totals = ", ".join(f"{total} {currency}" for currency, total in manifest["totals"].items())
    print(
        f"period {label(period)} closed on {manifest['closed_on']}: {manifest['rows']} lines "
        f"({totals or 'nothing owed'}) exported to {outbox_folder(Path(args.outbox), period)}, "
        f"checksum {manifest['checksum']}"
    )
    return 0


# -- the outbox ------------------------------------------------------------------------------


def outbox_folder(outbox: Path, period: str) -> Path:
    return Path(outbox) / label(period)


def read_manifest(outbox: Path, period: str) -> dict[str, Any]:
    path = outbox_folder(outbox, period) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PeriodClosedError(
            f"period {label(period)}: {path.parent} exists without a {MANIFEST}; it was not "
            "written by an export: move it away before closing the period"
        ) from None


def write_outbox(
    outbox: Path, period: str, lines: pd.DataFrame, closed_on: pd.Timestamp, grace_days: int
) -> dict[str, Any]:
    """Write the period's folder once (stage, then rename) and return its manifest. A folder
    already in place is kept if it holds exactly these lines, else it is an error."""
    rows = export_rows(lines)
    files = {LINES_CSV: _csv_bytes(rows), LINES_JSON: _json_bytes(rows)}
    manifest = {
        "period": label(period), "closed_on": f"{closed_on:%Y-%m-%d}", "grace_days": grace_days,
        "rows": len(rows), "totals": currency_totals(lines),
        "files": {name: {"rows": len(rows), "bytes": len(data), "sha256": _sha256(data)}
                  for name, data in files.items()},
        "checksum": _sha256(files[LINES_CSV]),
        "exported_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }  # fmt: skip
    target = outbox_folder(outbox, period)
    if target.exists():
        return _already_exported(outbox, period, manifest["checksum"])
    outbox = Path(outbox)
    outbox.mkdir(parents=True, exist_ok=True)
    for stale in outbox.glob(f".{label(period)}.*"):  # left by an attempt that crashed
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{label(period)}.", dir=outbox))
    files[MANIFEST] = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    for name, data in files.items():  # the manifest last: a folder with one is complete
        _write_durably(staging / name, data)
    staging.chmod(0o755)
    _fsync_dir(staging)
    try:
        staging.rename(target)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
        return _already_exported(outbox, period, manifest["checksum"])  # another close won
    _fsync_dir(outbox)
    return manifest


def _already_exported(outbox: Path, period: str, checksum: str) -> dict[str, Any]:
    existing = read_manifest(outbox, period)
    if existing.get("checksum") != checksum:
        raise PeriodClosedError(
            f"period {label(period)} was already exported to {outbox_folder(outbox, period)} "
            "with other lines; exported files are never changed: late usage is restated in a "
            "later period"
        )
    return existing


def export_rows(lines: pd.DataFrame) -> pd.DataFrame:
    """The liable summaries as text (None where missing), in the export's column order, sorted
    so that the same lines always give the same bytes."""
    frame = lines.astype({"asset_id": "object", "restatement_id": "object"})
    frame = frame.assign(
        asset_id=frame["asset_id"].where(frame["asset_id"].notna(), None),
        restatement_id=frame["restatement_id"].where(frame["restatement_id"].notna(), None),
        line_type=frame["line_type"].fillna("usage"),
    )
    frame = frame.assign(
        _asset=frame["asset_id"].fillna(""), _restatement=frame["restatement_id"].fillna("")
    ).sort_values(["account_id", "_asset", "usage_resource_id", "line_type", "_restatement"])
    frame = frame.reset_index(drop=True)
    amounts = zip(frame["amount"], frame["currency"], strict=True)
    return pd.DataFrame({
        "period": pd.to_datetime(frame["period"]).dt.strftime("%Y-%m-%d"),
        **{c: frame[c] for c in ["account_id", "asset_id", "usage_resource_id"]},
        **{q: [_quantity(v) for v in frame[q].to_numpy()] for q in QUANTITIES},
        "net_unit_rate": [_decimal(v) for v in frame["net_unit_rate"]],
        "amount": [str(round_money(_as_decimal(a), c)) for a, c in amounts],
        **{c: frame[c] for c in ["currency", "status", "line_type", "restatement_id"]},
    }, dtype="object")[COLUMNS]  # fmt: skip


def currency_totals(lines: pd.DataFrame) -> dict[str, str]:
    """The sum of the (already rounded) line amounts per currency."""
    totals: dict[str, Decimal] = {}
    for currency, amount in zip(lines["currency"], lines["amount"], strict=True):
        totals[currency] = totals.get(currency, Decimal(0)) + _as_decimal(amount)
    return {c: str(round_money(total, c)) for c, total in sorted(totals.items())}


def _as_decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _quantity(value: float) -> str:
    """Up to 6 decimals (the warehouse's precision), without trailing zeros: 1800, 0.25."""
    text = f"{float(value) + 0.0:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _decimal(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return f"{_as_decimal(value):.6f}"


def _csv_bytes(rows: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows.fillna("").itertuples(index=False, name=None))
    return buffer.getvalue().encode("utf-8")


def _json_bytes(rows: pd.DataFrame) -> bytes:
    """An array with one line per object (json's indenting encoder is ten times slower)."""
    objects = (
        json.dumps(dict(zip(COLUMNS, values, strict=True)), ensure_ascii=False)
        for values in rows.itertuples(index=False, name=None)
    )
    return ("[\n" + ",\n".join(objects) + "\n]\n").encode("utf-8")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_durably(path: Path, data: bytes) -> None:
    with path.open("xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    path.chmod(0o444)  # exported files are never changed


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
