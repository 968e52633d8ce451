"""Read-only access to the warehouse tables of DOMAIN.md "Outputs", for the dashboard.

The dashboard never writes the warehouse: a SQLite file is opened with ``mode=ro`` (and
``query_only``), a PostgreSQL session is read-only (``default_transaction_read_only``), and no
table is created. Every value reaches SQL as a bound parameter of a SQLAlchemy Core statement.
Rows come back as dicts of Python values: text as ``str``, quantities and money as ``Decimal``
(exact on PostgreSQL; on SQLite to the 6 decimals the warehouse keeps), dates as ``date``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from consumption_pipeline.tables import TABLES

# The tables the dashboard reads: the lifecycle's outputs in SQL (DOMAIN.md "Outputs"; the
# event-level tables are in the lake, and the summaries carry what the dashboard shows of them).
READ_TABLES = (
    "quarantined_events", "ingest_reconciliation", "entitlement_buckets", "usage_summaries",
    "entitlement_ledger", "bucket_balances", "ratable_summaries", "liable_summaries",
)  # fmt: skip


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
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(stmt)]

    def periods(self) -> list[date]:
        """The billing periods the pipeline has run, oldest first (one reconciliation row each)."""
        table = TABLES["ingest_reconciliation"]
        stmt = sa.select(table.c.period).distinct().order_by(table.c.period)
        with self.engine.connect() as conn:
            return [p for (p,) in conn.execute(stmt)]

    def exists(self, table: str, where: dict[str, Any]) -> bool:
        source = TABLES[table]
        stmt = sa.select(sa.literal(1)).select_from(source).where(*_conditions(source, where))
        with self.engine.connect() as conn:
            return conn.execute(stmt.limit(1)).first() is not None

    def optional_table(self, name: str) -> sa.Table | None:
        """A table that another part of the project may add later (None while it is absent);
        looked up again on every call until it appears."""
        if self._optional.get(name) is None and name in self._table_names():
            self._optional[name] = sa.Table(name, sa.MetaData(), autoload_with=self.engine)
        return self._optional.get(name)

    def _table_names(self) -> list[str]:
        try:
            return sa.inspect(self.engine).get_table_names()
        except sa.exc.DBAPIError as error:
            raise WarehouseUnavailable(
                f"{_shown(self.url)}: cannot read the warehouse: {error.orig}"
            ) from None


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
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_read_only(parsed)
    if parsed.get_backend_name() == "postgresql":
        options = "-c default_transaction_read_only=on"
        return sa.create_engine(parsed, connect_args={"options": options})
    return sa.create_engine(parsed)


def _sqlite_read_only(parsed: sa.URL) -> sa.Engine:
    if not parsed.database or parsed.database == ":memory:":
        raise WarehouseUnavailable(f"{parsed}: a SQLite warehouse must be a file")
    path = Path(parsed.database)
    if not path.is_file():
        raise WarehouseUnavailable(f"{path}: no warehouse file (run `consumption-pipeline run`)")
    uri = f"{path.resolve().as_uri()}?mode=ro"

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        connection.execute("PRAGMA query_only = ON")
        return connection

    return sa.create_engine("sqlite://", creator=connect)


def _shown(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)
