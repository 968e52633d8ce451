"""The new-usage sensor (docs/rules.md "Inputs" and "Late usage and restatements"): when event files
arrive in the usage landing folder (or change, or leave it), or a catalog file changes, refresh
the open periods they touch.

A contract change or credit (`asset_changes.csv`, `credit_grants.csv`) touches the periods of its
dates (a changed file: those of its rows before and after the change), and one dated in a closed
period goes the way of late usage. Any other catalog file may change any bill: it touches every
open period (a closed period's bill stays as exported until someone recomputes it).

A file touches the periods of its events' usage dates in the billing time zone; a row with no
readable date (and a file that cannot be read) touches every open period, since each of them
quarantines it (or fails on it, naming the file). The sensor requests the billing job for the
earliest open period touched and every open period after it, oldest first, because a period's
opening balances are the previous period's closing balances.

Events of a period that is no longer open are never billed silently. A closed period's export is
never changed: the sensor requests the billing job for that period and every later period no
longer open, oldest first, each of which books the difference from what was billed as a
restatement (docs/rules.md), then for every open period. A period past its grace period but not closed
yet is billed by its close run, and a period before the first one this deployment processed is
billed only if someone backfills it. Each case is reported, as a warning in the tick's log and as
an observation of `usage_files` with the period, its status, the files and the event counts.

The cursor keeps, per file, its modification time, size and the periods it touches, so that each
file is read once per change, and a removed file refreshes the periods it used to touch.
"""

import hashlib
import json
from collections import Counter
from pathlib import Path

import dagster as dg
import pandas as pd

from consumption_pipeline.closing.dates import label
from consumption_pipeline.closing.register import ClosureRegister, processed_periods
from consumption_pipeline.defs.resources import SourceDirectory, WarehouseResource
from consumption_pipeline.defs.schedules import (
    automation_on,
    automation_request,
    billing_today,
    periods_to_refresh,
)
from consumption_pipeline.domain.catalog import REQUIRED
from consumption_pipeline.storage import objects, sources
from consumption_pipeline.storage.settings import Settings
from consumption_pipeline.storage.warehouse import Warehouse

MINIMUM_INTERVAL_SECONDS = 60
ALL_OPEN = "*"  # in a file's periods: it has rows without a usage date
# The catalog files whose rows are dated facts, and the columns holding their dates.
DATED_CATALOG = {"asset_changes.csv": ("effective_date", "end_date"),
                 "credit_grants.csv": ("effective_date", "valid_to")}  # fmt: skip


def file_stamps(root: Path) -> dict[str, list[int]]:
    """Every event file of the landing folder and every catalog file: [modification time in ns,
    size in bytes]."""
    try:
        paths = sources.event_files(root)
    except sources.SourceError:
        paths = []  # no folder or no file yet: no usage arrived
    paths += [root / name for name in REQUIRED if (root / name).is_file()]
    stamps = {}
    for path in paths:
        stat = path.stat()
        stamps[str(path.relative_to(root))] = [stat.st_mtime_ns, stat.st_size]
    return stamps


def touched_periods(root: Path, name: str, timezone: str) -> tuple[Counter, str | None]:
    """Events (or dated catalog rows) of one file per period it touches ('YYYY-MM-01', or
    ALL_OPEN for rows without a usage date, and for any other catalog file), and why the file
    could not be read, if it could not."""
    if name in REQUIRED:
        return _catalog_periods(root / name)
    try:
        events = sources.read_events(root / name, root)
    except sources.SourceError as error:
        return Counter({ALL_OPEN: 0}), str(error)
    stamps = events["occurred_at"]
    if pd.api.types.is_datetime64_any_dtype(stamps):  # Parquet: already instants
        instants = pd.to_datetime(stamps, utc=True)
    else:
        instants = pd.to_datetime(stamps.astype("str"), utc=True, format="ISO8601", errors="coerce")
    dated = instants.notna() & events["malformed"].isna()
    months = instants[dated].dt.tz_convert(timezone).dt.tz_localize(None).dt.to_period("M")
    counts = Counter({f"{m.start_time:%Y-%m-%d}": int(n) for m, n in months.value_counts().items()})
    if (~dated).any():
        counts[ALL_OPEN] = int((~dated).sum())
    return counts, None


def _catalog_periods(path: Path) -> tuple[Counter, str | None]:
    if path.name not in DATED_CATALOG:
        return Counter({ALL_OPEN: 0}), None
    try:
        rows = sources.read_catalog_file(path)
    except sources.SourceError as error:
        return Counter({ALL_OPEN: 0}), str(error)
    counts = Counter()
    for column in DATED_CATALOG[path.name]:
        if column in rows:
            text = rows[column].astype("str").str.strip()
            dates = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
            counts.update(f"{d:%Y-%m}-01" for d in dates.dropna())
            if (dates.isna() & text.fillna("").ne("")).any():
                counts[ALL_OPEN] += 1  # an unreadable date: the input check stops every period
    return counts, None


def build(settings: Settings, billing_job: str) -> dg.Definitions:
    status = dg.DefaultSensorStatus.RUNNING if automation_on() else dg.DefaultSensorStatus.STOPPED

    @dg.sensor(
        job_name=billing_job, minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
        default_status=status,
        description="New usage files and catalog changes: refresh the open periods they touch, "
                    "restate closed ones, report late usage and late contract changes.",
    )  # fmt: skip
    def new_usage_files(
        context: dg.SensorEvaluationContext, source: SourceDirectory, warehouse: WarehouseResource
    ):
        root = objects.local_folder(source.path)
        known: dict[str, dict] = json.loads(context.cursor) if context.cursor else {}
        stamps = file_stamps(root)
        arrived = sorted(n for n, s in stamps.items() if known.get(n, {}).get("stamp") != s)
        removed = sorted(set(known) - set(stamps))
        if not arrived and not removed:
            return dg.SkipReason("no new, changed or removed usage file")

        files = {n: known[n] for n in stamps if n not in arrived}
        events: dict[str, Counter] = {}  # period -> events per file
        for name in arrived:
            counts, problem = touched_periods(root, name, source.billing_timezone)
            if problem:
                context.log.warning(f"{problem}: the runs of the open periods will fail on it")
            files[name] = {"stamp": stamps[name], "periods": sorted(counts)}
            for period, count in counts.items():
                events.setdefault(period, Counter())[name] += count
        gone = {period for name in removed for period in known[name]["periods"]}
        # A changed catalog file may have lost rows: the periods they touched change too.
        gone |= {period for name in arrived if name in DATED_CATALOG and name in known
                 for period in known[name]["periods"] if period != ALL_OPEN}  # fmt: skip

        today = billing_today(source)
        store = warehouse.open()
        open_now = periods_to_refresh(store, today, source.grace_days, settings.first_period)
        touched = set(events) | gone
        touched = set(open_now) if ALL_OPEN in touched else touched & set(open_now)
        refresh = [p for p in open_now if touched and p >= min(touched)]
        # Periods after the newest open one are billed when they come (a credit valid to a
        # later month, usage stamped ahead): neither late nor refreshed now.
        newest = max(open_now, default="9999-12-31")
        late = {p: files for p, files in events.items()
                if p not in open_now and p != ALL_OPEN and p < newest}  # fmt: skip
        observations = late_usage(store, late)
        for observation in observations:
            context.log.warning(observation.metadata["late_usage/message"].value)
        restate = periods_to_restate(store, late, open_now)
        if restate:  # the balances of every later period change: refresh all the open ones
            refresh = open_now

        change = json.dumps({n: stamps.get(n) for n in arrived + removed}, sort_keys=True)
        key = ":" + hashlib.sha256(change.encode()).hexdigest()[:12]
        requests = [
            automation_request(billing_job, p, source, today, "restatement", key) for p in restate
        ] + [automation_request(billing_job, p, source, today, "new_usage", key) for p in refresh]
        return dg.SensorResult(
            run_requests=requests, cursor=json.dumps(files, sort_keys=True),
            asset_events=observations,
        )  # fmt: skip

    return dg.Definitions(sensors=[new_usage_files])


def periods_to_restate(
    store: Warehouse, late: dict[str, Counter], open_now: list[str]
) -> list[str]:
    """The earliest closed period that late usage belongs to and every period after it that is
    no longer open, oldest first: each is recomputed in turn (its opening balances are the
    previous one's closing balances) and books its difference as a restatement."""
    closed = ClosureRegister(store).closed_periods()
    touched = [p for p in late if p in closed]
    if not touched:
        return []
    known = set(processed_periods(store)) | set(closed)
    return sorted(p for p in known if p >= min(touched) and p not in open_now)


def late_usage(store: Warehouse, late: dict[str, Counter]) -> list[dg.AssetObservation]:
    """One observation of `usage_files` per period no longer open that new usage belongs to:
    closed, awaiting its close, or before the first period this deployment processed."""
    closed = set(ClosureRegister(store).closed_periods())
    processed = processed_periods(store) + sorted(closed)
    observations = []
    for period, files in sorted(late.items()):
        status = (
            "closed" if period in closed
            else "awaiting close" if processed and period >= min(processed)
            else "not processed"
        )  # fmt: skip
        observations.append(dg.AssetObservation(asset_key="usage_files", metadata={
            "late_usage/period": label(period), "late_usage/events": sum(files.values()),
            "late_usage/files": ", ".join(sorted(files)), "late_usage/status": status,
            "late_usage/message": _late_usage(period, files, status),
        }))  # fmt: skip
    return observations


def _late_usage(period: str, files: Counter, status: str) -> str:
    count, where = sum(files.values()), ", ".join(sorted(files))
    if all(name in DATED_CATALOG for name in files):
        kind = "late contract change" + ("s" if count != 1 else "")
        what = f"{kind}: {count} row{'s' if count != 1 else ''} of {where}"
    else:
        what = f"late usage: {count} events in {where}"
    why = {
        "closed": "which is closed: its export is never changed; it is recomputed and the "
        "difference booked as a restatement in the next open period",
        "awaiting close": "past its grace period and not closed yet: its close run will bill them",
        "not processed": "which this deployment has not processed: backfill it to bill them",
    }[status]
    return f"{what} belong to period {label(period)}, {why}"
