"""Period locks: one writer per billing period at a time, across processes and machines.

A stage reads a period's inputs, computes and replaces the period's rows. Two runs of the same
period side by side (a CLI run beside the daemon, a backfill beside a schedule, a second
deployment) must not interleave those steps, so each stage holds its period's lock from its
first read to its last write. The lock belongs to the warehouse, so it holds whatever started
the runs:

- PostgreSQL: a session advisory lock on the period, on a connection of its own (the server
  drops it when the holder's connection goes, so a killed process never keeps it);
- SQLite: an exclusive `flock` on a file per period in a folder beside the database
  (`warehouse.db` -> `warehouse.locks/`), dropped by the kernel when the holder dies.

The holder writes who it is into `period_locks` (run, step, process, host, since), so that a
writer that has to wait can say which run holds the period. It waits up to `wait` seconds,
then stops with one line naming the period and the holder.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import socket
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

LOCK_WAIT_SECONDS = 900.0  # a stage of a 10M-event period takes well under a minute
_POLL_SECONDS = 0.2

# Advisory lock classes (the first of the two int4 keys): a stage's lock on a period, and the
# lock a single replace holds inside its transaction (warehouse.py), kept apart so that a stage
# holding its period can write it from another connection.
STAGE_LOCKS = zlib.crc32(b"consumption_pipeline.stage") & 0x7FFFFFFF
WRITE_LOCKS = zlib.crc32(b"consumption_pipeline.write") & 0x7FFFFFFF

lock_metadata = sa.MetaData()
period_locks = sa.Table(
    "period_locks", lock_metadata,
    sa.Column("period", sa.Text, primary_key=True), sa.Column("holder", sa.Text),
    sa.Column("process", sa.Text), sa.Column("since", sa.DateTime(timezone=True)),
)  # fmt: skip


class PeriodLocked(RuntimeError):
    """Another writer held the period for longer than this one would wait."""


def period_number(period: str) -> int:
    """'2026-10-01' -> 24322: the period as one int4, the second key of its advisory lock."""
    year, month = int(period[:4]), int(period[5:7])
    return year * 12 + month - 1


@contextlib.contextmanager
def hold(engine: sa.Engine, period: str, holder: str, wait: float) -> Iterator[None]:
    """Hold `period`'s lock on the warehouse behind `engine` while the block runs."""
    take = _advisory if engine.dialect.name == "postgresql" else _flock
    with take(engine, period, holder, wait):
        with _named(engine, period):
            _record(engine, period, holder)
        try:
            yield
        finally:
            with _named(engine, period):
                _release_record(engine, period, holder)


@contextlib.contextmanager
def _named(engine: sa.Engine, period: str) -> Iterator[None]:
    """A warehouse that cannot record the holder (read-only, say) is named in one sentence."""
    try:
        yield
    except sa.exc.DBAPIError as error:
        shown = engine.url.render_as_string(hide_password=True)
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise PeriodLocked(
            f"period {period[:7]}: warehouse {shown} cannot record who writes it: {reason}"
        ) from error


@contextlib.contextmanager
def _advisory(engine: sa.Engine, period: str, holder: str, wait: float) -> Iterator[None]:
    key = {"kind": STAGE_LOCKS, "period": period_number(period)}
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        try_lock = sa.text("SELECT pg_try_advisory_lock(:kind, :period)")
        _wait_for(lambda: conn.execute(try_lock, key).scalar(), engine, period, holder, wait)
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:kind, :period)"), key)
    except BaseException:
        conn.invalidate()  # a session that may still hold the lock never goes back to the pool
        raise
    finally:
        conn.close()


@contextlib.contextmanager
def _flock(engine: sa.Engine, period: str, holder: str, wait: float) -> Iterator[None]:
    path = lock_folder(engine) / f"period={period}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise PeriodLocked(
            f"period {period[:7]}: cannot open its lock file {path}: {error.strerror}"
        ) from None
    try:
        _wait_for(lambda: _try_flock(descriptor), engine, period, holder, wait)
        yield  # closing the descriptor releases the lock
    finally:
        os.close(descriptor)


def _try_flock(descriptor: int) -> bool:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def lock_folder(engine: sa.Engine) -> Path:
    """Beside a SQLite file (warehouse.db -> warehouse.locks); a database in memory is one
    process's own, so its locks need only be that process's."""
    database = (engine.url.database or "").removeprefix("file:")  # a URI filename too
    if database in ("", ":memory:") or engine.url.query.get("mode") == "memory":
        return Path(tempfile.gettempdir()) / f"warehouse-locks-{os.getpid()}"
    return Path(database).with_suffix(".locks")


def _wait_for(taken, engine: sa.Engine, period: str, holder: str, wait: float) -> None:
    deadline = time.monotonic() + wait
    while not taken():
        if time.monotonic() >= deadline:
            raise PeriodLocked(
                f"period {period[:7]} is being written by {_holder(engine, period)}; "
                f"{holder} waited {wait:g} s for it: run it again when that run has finished"
            )
        time.sleep(_POLL_SECONDS)


def _holder(engine: sa.Engine, period: str) -> str:
    with engine.connect() as conn:
        row = conn.execute(sa.select(period_locks).where(period_locks.c.period == period)).first()
    if row is None:
        return "another writer"
    since = row.since if row.since.tzinfo else row.since.replace(tzinfo=dt.UTC)
    return f"{row.holder} ({row.process}, since {since:%Y-%m-%d %H:%M:%S} UTC)"


def _record(engine: sa.Engine, period: str, holder: str) -> None:
    """Who holds the period now (a row a killed holder left is replaced)."""
    row = {"period": period, "holder": holder, "process": f"pid {os.getpid()} on "
           f"{socket.gethostname()}", "since": dt.datetime.now(dt.UTC)}  # fmt: skip
    with engine.begin() as conn:
        conn.execute(period_locks.delete().where(period_locks.c.period == period))
        conn.execute(period_locks.insert().values(**row))


def _release_record(engine: sa.Engine, period: str, holder: str) -> None:
    with engine.begin() as conn:
        conn.execute(period_locks.delete().where(
            period_locks.c.period == period, period_locks.c.holder == holder))  # fmt: skip
