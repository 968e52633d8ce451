"""Bulk transfer between Arrow tables and a SQLite warehouse, through a staging file.

Python's sqlite3 binds and fetches one value at a time: a million rows of twenty columns cost
~6 s each way. The ADBC SQLite driver moves whole Arrow columns in C, but it brings its own
SQLite library, and two SQLite libraries must never have the same file open in one process
(closing the file in one drops the other's locks: https://www.sqlite.org/howtocorrupt.html,
section 2.2.1). So the driver only ever opens a private staging file, before or after the
warehouse's own connection has it ATTACHed, never at the same time:

- a write stages the tables (driver), then the warehouse's transaction copies them with
  INSERT ... SELECT;
- a read copies the selected rows with CREATE TABLE ... AS SELECT, then reads them (driver).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

SCHEMA = "staged"  # the staging file's name on the warehouse connection while it is attached


_PREFIX = "warehouse-staging-"
_ORPHAN_AGE = 3600  # seconds: a staging folder lives for one read or write


@contextlib.contextmanager
def staging_file() -> Iterator[Path]:
    """A path for a staging database, removed afterwards. Folders that killed processes left
    behind are removed first."""
    _remove_orphans()
    with tempfile.TemporaryDirectory(prefix=f"{_PREFIX}{os.getpid()}-") as folder:
        yield Path(folder) / "staged.db"


def _remove_orphans() -> None:
    """Staging folders of processes that no longer run, if not touched for an hour (a process
    of another container sharing the folder may have the same number)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*-*"):
        pid = folder.name.removeprefix(_PREFIX).split("-", 1)[0]
        with contextlib.suppress(OSError):
            old = time.time() - folder.stat().st_mtime > _ORPHAN_AGE
            if pid.isdigit() and old and not _running(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


def stage(path: Path, tables: dict[str, pa.Table]) -> None:
    """Write `tables` to the staging database at `path`, each as a new table of that name."""
    import adbc_driver_sqlite.dbapi as adbc  # deferred: only SQLite bulk writes need the driver

    with adbc.connect(str(path)) as conn, conn.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode = OFF")  # a scratch file: nothing to roll back to
        for name, table in tables.items():
            cursor.adbc_ingest(name, table, mode="create")
        conn.commit()


def unstage(path: Path, name: str) -> pa.Table:
    """Table `name` of the staging database at `path`, as SQLite types its values: integers as
    int64, reals as float64, text as strings (a column of NULLs only comes back as int64)."""
    import adbc_driver_sqlite.dbapi as adbc  # deferred, as in stage()

    with adbc.connect(str(path)) as conn, conn.cursor() as cursor:
        # The driver infers each column's type from its first batch: make it the whole result.
        cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(2**30)})
        cursor.execute(f'SELECT * FROM "{name}"')
        return cursor.fetch_arrow_table()


@contextlib.contextmanager
def attached(connection: sqlite3.Connection, path: Path) -> Iterator[None]:
    """The staging database at `path` attached to `connection` as SCHEMA (outside any
    transaction: SQLite refuses to attach or detach inside one)."""
    connection.execute(f"ATTACH DATABASE ? AS {SCHEMA}", [str(path)])
    try:
        yield
    finally:
        connection.execute(f"DETACH DATABASE {SCHEMA}")
