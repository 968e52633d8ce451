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
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

SCHEMA = "staged"  # the staging file's name on the warehouse connection while it is attached


@contextlib.contextmanager
def staging_file() -> Iterator[Path]:
    """A path for a staging database, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="warehouse-staging-") as folder:
        yield Path(folder) / "staged.db"


def stage(path: Path, tables: dict[str, pa.Table]) -> None:
    """Write `tables` to the staging database at `path`, each as a new table of that name."""
    import adbc_driver_sqlite.dbapi as adbc

    with adbc.connect(str(path)) as conn, conn.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode = OFF")  # a scratch file: nothing to roll back to
        for name, table in tables.items():
            cursor.adbc_ingest(name, table, mode="create")
        conn.commit()


def unstage(path: Path, name: str) -> pa.Table:
    """Table `name` of the staging database at `path`, as SQLite types its values: integers as
    int64, reals as float64, text as strings (a column of NULLs only comes back as int64)."""
    import adbc_driver_sqlite.dbapi as adbc

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
