"""Read-only access to the warehouse tables of docs/rules.md "Outputs", for the dashboard.

The dashboard never writes the warehouse: a SQLite file is opened with ``mode=ro`` (and
``query_only``) and no file is created beside it (_SqliteFiles), a PostgreSQL session is
read-only (``default_transaction_read_only``), and no table is created. Each query has a
connection of its own. Every value reaches SQL as a bound parameter of a SQLAlchemy Core
statement. Rows come back as dicts of Python values: text as ``str``, quantities and money as
``Decimal`` (exact on PostgreSQL; on SQLite to the 6 decimals the warehouse keeps), dates as
``date``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from consumption_pipeline.storage.tables import TABLES
from consumption_pipeline.storage.warehouse import parse_url

# The tables the dashboard reads: the lifecycle's outputs in SQL (docs/rules.md "Outputs"; the
# event-level tables are in the lake, and the summaries carry what the dashboard shows of them).
READ_TABLES = (
    "quarantined_events", "ingest_reconciliation", "entitlement_buckets", "usage_summaries",
    "entitlement_ledger", "bucket_balances", "ratable_summaries", "liable_summaries",
)  # fmt: skip


# Starlette runs each page in one of anyio's worker threads (40 at most), and a page runs its
# queries one after another: 40 PostgreSQL sessions let every worker query without waiting.
_POSTGRES_POOL = {"pool_size": 10, "max_overflow": 30, "pool_pre_ping": True}

T = TypeVar("T")


class WarehouseUnavailable(ValueError):
    """The warehouse cannot be read; the message says where and why."""


class ReadOnlyWarehouse:
    """The warehouse behind one SQLAlchemy URL (SQLite or PostgreSQL), opened read-only."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _read_only_engine(url)
        self._optional: dict[str, sa.Table | None] = {}
        missing = sorted(set(READ_TABLES) - set(self._table_names()))
        if missing:
            self.engine.dispose()
            raise WarehouseUnavailable(
                f"{_shown(url)}: warehouse tables missing: {', '.join(missing)} "
                "(run `consumption-pipeline run` first)"
            )

    @property
    def shown_url(self) -> str:
        """The URL without its password, for messages."""
        return _shown(self.url)

    def rows(
        self, table: str, where: dict[str, Any] | None = None, order_by: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """The rows of `table` whose columns equal `where`'s values (a list or set of values
        means any of them; None means NULL), ordered by `order_by`."""
        return self.select(TABLES[table], where, order_by)

    def select(
        self, table: sa.Table, where: dict[str, Any] | None = None, order_by: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        stmt = sa.select(table).where(*_conditions(table, where or {}))
        stmt = stmt.order_by(*(table.c[c] for c in order_by))
        return self._read(lambda conn: [dict(row._mapping) for row in conn.execute(stmt)])

    def periods(self) -> list[date]:
        """The billing periods the pipeline has run, oldest first (one reconciliation row each)."""
        table = TABLES["ingest_reconciliation"]
        stmt = sa.select(table.c.period).distinct().order_by(table.c.period)
        return self._read(lambda conn: [p for (p,) in conn.execute(stmt)])

    def exists(self, table: str, where: dict[str, Any]) -> bool:
        source = TABLES[table]
        stmt = sa.select(sa.literal(1)).select_from(source).where(*_conditions(source, where))
        return self._read(lambda conn: conn.execute(stmt.limit(1)).first() is not None)

    def optional_table(self, name: str) -> sa.Table | None:
        """A table that another part of the project may add later (None while it is absent);
        looked up again on every call until it appears."""
        if self._optional.get(name) is None and name in self._table_names():
            self._optional[name] = self._read(
                lambda conn: sa.Table(name, sa.MetaData(), autoload_with=conn)
            )
        return self._optional.get(name)

    def _table_names(self) -> list[str]:
        try:
            return self._read(lambda conn: sa.inspect(conn).get_table_names())
        except sa.exc.DBAPIError as error:
            raise WarehouseUnavailable(
                f"{_shown(self.url)}: cannot read the warehouse: {str(error.orig).strip()}"
            ) from None

    def _read(self, work: Callable[[sa.Connection], T]) -> T:
        """`work` on a connection of its own; a SQLite read of the bare file (_SqliteFiles) is
        done again when a writer changed the file meanwhile, so a torn read is never shown."""
        while True:
            with self.engine.connect() as conn:
                seen: _SqliteFiles | None = getattr(conn.connection.dbapi_connection, "seen", None)
                try:
                    result = work(conn)
                except sa.exc.DBAPIError:
                    if seen is None or seen.still():
                        raise
                    continue
            if seen is None or seen.still():
                return result


def _conditions(table: sa.Table, where: dict[str, Any]) -> list[sa.ColumnElement[bool]]:
    conditions = []
    for column, value in where.items():
        if isinstance(value, list | tuple | set | frozenset):
            conditions.append(table.c[column].in_(list(value)))
        else:
            conditions.append(
                table.c[column].is_(None) if value is None else table.c[column] == value
            )
    return conditions


def _read_only_engine(url: str) -> sa.Engine:
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_read_only(parsed)
    if parsed.get_backend_name() == "postgresql":
        options = "-c default_transaction_read_only=on"
        return sa.create_engine(parsed, connect_args={"options": options}, **_POSTGRES_POOL)
    return sa.create_engine(parsed)


@dataclass(frozen=True)
class _SqliteFiles:
    """What a writer changes: the database file, and whether its -wal and -shm are there.

    The warehouse is in WAL mode (warehouse.py), where a reader needs the -wal and -shm: with
    ``mode=ro`` SQLite creates them when they are missing and, being read-only, cannot remove
    them again (sqlite.org/wal.html, read-only databases: the files must exist, be creatable,
    or the file be ``immutable``). So:

    - both there (a writer is connected, or left them): the read goes through them, and
      SQLite's locks and read marks keep it apart from the writer;
    - not both there: no writer is connected, and the last one to close copied the log into
      the file before removing it, so the file holds every commit and is read alone
      (``immutable=1``: no locks, no files). A writer that connects meanwhile creates the -wal
      before it copies anything into the file, so a read after which the file or the -wal/-shm
      differ from before is done again (from Linux 6.13 on, a file changed after its times
      were read gets a later time, to the nanosecond).

    A read that starts while the last writer is closing may still find its -wal/-shm gone and
    make new, empty ones: SQLite has no way to read a WAL database alongside a writer without
    them."""

    path: Path
    through_log: bool
    state: tuple[object, ...]

    @classmethod
    def now(cls, path: Path) -> _SqliteFiles:
        db = path.stat()
        log = [Path(f"{path}{suffix}").exists() for suffix in ("-wal", "-shm")]
        state = (db.st_ino, db.st_size, db.st_mtime_ns, db.st_ctime_ns, *log)
        return cls(path, all(log), state)

    def still(self) -> bool:
        return self == _SqliteFiles.now(self.path)


class _ReadConnection(sqlite3.Connection):
    seen: _SqliteFiles | None = None  # the files a read of the bare file relies on


def _sqlite_read_only(parsed: sa.URL) -> sa.Engine:
    if not parsed.database or parsed.database == ":memory:":
        raise WarehouseUnavailable(f"{parsed}: a SQLite warehouse must be a file")
    path = Path(parsed.database)
    if not path.is_file():
        raise WarehouseUnavailable(f"{path}: no warehouse file (run `consumption-pipeline run`)")
    path = path.resolve()

    def connect() -> sqlite3.Connection:
        files = _SqliteFiles.now(path)
        uri = f"{path.as_uri()}?mode=ro" + ("" if files.through_log else "&immutable=1")
        # check_same_thread stays on: one thread opens, uses and closes each connection.
        connection = sqlite3.connect(uri, uri=True, factory=_ReadConnection)
        connection.execute("PRAGMA query_only = ON")
        connection.seen = None if files.through_log else files
        return connection

    # One connection per query, closed after it: no two threads ever share one (sharing them
    # crashed SQLite under load), an immutable connection never keeps pages a writer has since
    # replaced, and no connection holds the -wal/-shm open once the writer that made them
    # closes. Opening one costs well under a millisecond.
    return sa.create_engine("sqlite://", creator=connect, poolclass=sa.pool.NullPool)


def _shown(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)
