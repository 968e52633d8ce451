"""The warehouse of docs/rules.md "Outputs": replace a period's rows in one transaction, read them.

Frames cross this boundary in the types tables.py documents, and come back in the same types:

=========  =============================  =================================================
kind       written from                   read back as
=========  =============================  =================================================
text       strings, NA → NULL             pandas ``str`` (NaN for NULL)
QUANTITY   float64 (or other numbers)     float64 rounded to 6 decimals (NaN for NULL)
MONEY      ``Decimal`` (or floats)        ``Decimal`` quantized to 6 places, e.g.
                                          ``Decimal('0.010000')`` (None for NULL)
DATE       datetime64 at midnight, dates  datetime64[us], naive, midnight (NaT for NULL)
INSTANT    tz-aware datetime64 (naive     datetime64[us, UTC] (NaT for NULL)
           is taken as UTC)
BOOL       bool (or pandas ``boolean``)   bool; ``boolean`` when a NULL is present
INT        int64 (or pandas ``Int64``)    int64; ``Int64`` when a NULL is present
=========  =============================  =================================================

Every frame is converted to Arrow (vectorized) before the transaction opens, so a bad frame never
touches the database. PostgreSQL then loads it with COPY ... FORMAT csv (Arrow's CSV writer quotes
every string and leaves NULL unquoted, which is exactly how COPY tells '' from NULL) and reads it
back the same way. SQLite takes and gives whole tables through a staging file (staging.py). It
stores dates as 'YYYY-MM-DD' text, instants as 'YYYY-MM-DD HH:MM:SS.ffffffZ' text (fixed width,
so text order is time order) and NUMERIC as REAL: quantities and money are exact there only to
15 significant digits; PostgreSQL keeps NUMERIC(28,6). Row order of reads is not guaranteed.
"""

from __future__ import annotations

import contextlib
import io
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa

from consumption_pipeline.storage import locks
from consumption_pipeline.storage.lake import Lake
from consumption_pipeline.storage.settings import PROJECT_ROOT
from consumption_pipeline.storage.staging import SCHEMA, attached, stage, staging_file, unstage
from consumption_pipeline.storage.tables import AUDIT_TABLES, KEYS, LAKE_TABLES, TABLES, metadata
from consumption_pipeline.storage.wire import (
    ARROW,
    MICRO,
    Kind,
    check_known,
    empty_wire,
    kind_of,
    period_day,
    projection,
    to_frame,
    to_wire,
)  # fmt: skip

_COPY_BATCH_ROWS = 250_000  # bounds the CSV buffer held in memory during a COPY
_SQLITE_BUSY_MS = 120_000  # a writer waits this long for another process's transaction


class WarehouseError(ValueError):
    """The warehouse refused a read or write; the message names the warehouse and the table."""


class Warehouse:
    """The warehouse tables behind one SQLAlchemy URL (SQLite or PostgreSQL), with the lake that
    keeps its event-level tables (by default beside a SQLite file, see `default_lake`)."""

    def __init__(self, url: str, lake: str = "") -> None:
        self.url = url
        self.lake = Lake(lake or default_lake(url))
        self.engine: sa.Engine = _create_engine(url)
        self._postgres = self.engine.dialect.name == "postgresql"
        self._quote = self.engine.dialect.identifier_preparer.quote
        with self._named("opening it"):
            _create_tables(self.engine)

    @property
    def shown_url(self) -> str:
        """The URL without its password, for messages."""
        return self.engine.url.render_as_string(hide_password=True)

    def period_lock(
        self, period: str, holder: str, wait: float = locks.LOCK_WAIT_SECONDS
    ) -> contextlib.AbstractContextManager[None]:
        """Hold `period` for one stage's read, compute and write (locks.py): another writer of
        the period waits, or stops after `wait` seconds naming `holder`."""
        return locks.hold(self.engine, period_day(period).isoformat(), holder, wait)

    def replace_period(
        self,
        period: str,
        frames: dict[str, pd.DataFrame],
        where: dict[str, dict[str, str]] | None = None,
    ) -> None:
        """In ONE transaction, for each table in `frames`: delete its rows of `period` (only those
        matching `where[table]`, if given), then insert the frame. All tables are replaced, or
        none.

        A frame may omit columns (NULL) and `period`/`where` columns (filled in); if present they
        must hold exactly those values, or a re-run would leave rows the delete does not reach.

        Lake tables are not in the transaction: every frame is checked first, then each lake file
        is replaced (atomically), then the SQL tables. A failure in between leaves the lake ahead
        of the SQL tables until the step runs again.
        """
        day, where = period_day(period), where or {}
        unknown = set(where) - set(frames)
        if unknown:
            raise ValueError(f"where names tables that are not replaced: {sorted(unknown)}")
        wires = {
            name: to_wire(_table(name), frame, day, where.get(name, {}))
            for name, frame in frames.items()
        }
        for name in LAKE_TABLES & set(wires):
            self.lake.replace_period(name, period, wires.pop(name), where.get(name))
        with (
            self._named(f"replacing period {day:%Y-%m}"),
            self.engine.connect() as conn,
            self._inserting(conn, wires) as insert,
            conn.begin(),
        ):
            self._lock_for_write(conn, day)
            for name, wire in wires.items():
                table = TABLES[name]
                matching = [table.c[c] == value for c, value in where.get(name, {}).items()]
                conn.execute(table.delete().where(table.c.period == day, *matching))
                if wire.num_rows:
                    with self._named(f"replacing period {day:%Y-%m} of table {name}"):
                        insert(conn, name, wire)
        if not self._postgres:
            _CHECKPOINTS.submit(_checkpoint, self.engine)

    def write_batches(self, period: str, table: str, frames: Iterable[pd.DataFrame]) -> None:
        """Replace a lake table's rows of `period` with `frames`, each converted and written as
        it comes: a period too large to hold at once (the accepted events of a big period)."""
        day = period_day(period)
        wires = (to_wire(TABLES[table], frame, day, {}, dictionaries=True) for frame in frames)
        self.lake.write_period(table, period, wires)

    def read_batches(
        self, table: str, period: str, columns: Sequence[str] | None = None
    ) -> Iterator[pd.DataFrame]:
        """A lake table's rows of `period`, a part at a time; only `columns`, if given."""
        return self.lake.read_batches(table, period, columns)

    def read_period(
        self,
        table: str,
        period: str,
        where: dict[str, str] | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The rows of `table` in `period` (and matching `where`), in boundary types; only
        `columns`, if given (a SQL result costs per value: read what you use)."""
        if table in LAKE_TABLES:
            return self.lake.read_period(table, period, where, columns)
        filters = {"period": [period_day(period)], **{c: [v] for c, v in (where or {}).items()}}
        return self._read(table, filters, columns)

    def read_periods(self, table: str, periods: Sequence[str]) -> pd.DataFrame:
        """The rows of `table` in any of `periods`, in boundary types."""
        if table in LAKE_TABLES:
            return self.lake.read_periods(table, periods)
        return self._read(table, {"period": [period_day(p) for p in periods]})

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Run `sql` with bound `:name` parameters; columns come back as the driver returns them."""
        with self.engine.connect() as conn:
            return pd.read_sql_query(sa.text(sql), conn, params=params or {})

    def periods(self, table: str) -> list[str]:
        """The distinct periods present in `table`, sorted, as 'YYYY-MM-01'."""
        if table in LAKE_TABLES:
            return self.lake.periods(table)
        sql = f"SELECT DISTINCT period FROM {self._quote(_table(table).name)} ORDER BY period"
        with self.engine.connect() as conn:
            return [str(p) for (p,) in conn.exec_driver_sql(sql)]

    def _lock_for_write(self, conn: sa.Connection, day: date) -> None:
        """Writers of one period take turns from their delete to their commit: on PostgreSQL a
        delete does not see rows another transaction inserts meanwhile, so two interleaved
        replaces would both insert. (SQLite has one writer at a time already.)"""
        if self._postgres:
            lock = sa.text("SELECT pg_advisory_xact_lock(:kind, :period)")
            conn.execute(lock, {"kind": locks.WRITE_LOCKS,
                                "period": locks.period_number(day.isoformat())})  # fmt: skip

    @contextlib.contextmanager
    def _named(self, doing: str) -> Iterator[None]:
        """A database error names the warehouse and what was being done, in one sentence."""
        try:
            yield
        except WarehouseError:
            raise
        except sa.exc.DBAPIError as error:
            reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
            raise WarehouseError(f"warehouse {self.shown_url}: {doing}: {reason}") from error

    # -- reading ---------------------------------------------------------------------------

    def _read(
        self, name: str, filters: dict[str, list[Any]], columns: Sequence[str] | None = None
    ) -> pd.DataFrame:
        table = _table(name)
        check_known(table, filters)
        if columns is not None:
            table = projection(table, columns)
        if any(not values for values in filters.values()):
            return to_frame(table, empty_wire(table))
        placeholder = "%s" if self._postgres else "?"
        selected = ", ".join(self._selected(c) for c in table.columns)
        conditions = " AND ".join(
            f"{self._quote(c)} IN ({', '.join([placeholder] * len(vs))})"
            for c, vs in filters.items()
        )
        sql = f"SELECT {selected} FROM {self._quote(name)} WHERE {conditions}"
        params = [_bind(v, self._postgres) for c, vs in filters.items() for v in vs]
        with (
            self._named(f"reading table {name}"),
            self.engine.connect() as conn,
            _driver_errors(self.engine, sql),
        ):
            wire = (_select_postgres if self._postgres else _select_sqlite)(
                conn, table, sql, params
            )
        return to_frame(table, wire)

    def _selected(self, column: sa.Column) -> str:
        name = self._quote(column.name)
        if self._postgres or kind_of(column) not in ("quantity", "money"):
            return name
        # SQLite keeps a whole NUMERIC as an INTEGER: one type per column for the staging read.
        return f"CAST({name} AS REAL) AS {name}"

    # -- writing ---------------------------------------------------------------------------

    def _copy_in(self, conn: sa.Connection, name: str, wire: pa.Table) -> None:
        columns = ", ".join(self._quote(c) for c in wire.column_names)
        sql = f"COPY {self._quote(name)} ({columns}) FROM STDIN WITH (FORMAT csv)"
        cursor = conn.connection.dbapi_connection.cursor()  # same connection: same transaction
        batches = _instants_as_text(wire).to_batches(max_chunksize=_COPY_BATCH_ROWS)
        # The next batch is written as CSV (without the GIL) while the server loads this one.
        with _driver_errors(self.engine, sql), ThreadPoolExecutor(1) as background:
            written = background.submit(_csv, batches[0])
            for following in [*batches[1:], None]:
                csv = written.result()
                if following is not None:
                    written = background.submit(_csv, following)
                cursor.copy_expert(sql, pa.BufferReader(csv), size=1 << 20)

    @contextlib.contextmanager
    def _inserting(self, conn: sa.Connection, wires: dict[str, pa.Table]) -> Iterator[Callable]:
        """How rows go in: COPY on PostgreSQL; on SQLite, from a staging file (staging.py) that
        holds every table to insert and stays attached until the transaction is over."""
        if self._postgres:
            yield self._copy_in
            return
        with staging_file() as path:
            stage(path, {name: _sqlite_wire(wire) for name, wire in wires.items() if wire.num_rows})
            with attached(conn.connection.dbapi_connection, path):
                yield self._insert_staged

    def _insert_staged(self, conn: sa.Connection, name: str, wire: pa.Table) -> None:
        columns = ", ".join(self._quote(c) for c in wire.column_names)
        table = self._quote(name)
        conn.exec_driver_sql(
            f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM {SCHEMA}.{table}"
        )


def default_lake(url: str) -> str:
    """Where a warehouse keeps its lake unless told: beside a SQLite file (warehouse.db ->
    warehouse.lake), else under data/lake, named after the server and database."""
    parsed = sa.make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite":
        if database in ("", ":memory:") or database.startswith("file:"):
            raise ValueError(f"{url}: a warehouse in memory needs a lake location")
        return str(Path(database).with_suffix(".lake"))
    parts = [parsed.get_backend_name(), parsed.host, parsed.port, database]
    return str(PROJECT_ROOT / "data" / "lake" / "-".join(str(p) for p in parts if p))


# -- engine and schema -----------------------------------------------------------------------


def existing_warehouse(url: str, lake: str = "") -> Warehouse:
    """The warehouse at `url`, for a command that only reads it: a SQLite file that does not
    exist is an error naming it, not a new empty warehouse."""
    parsed = parse_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and not database.startswith("file:"):
        if database in ("", ":memory:") or not Path(database).is_file():
            raise WarehouseError(f"warehouse {url}: no such file (run `consumption-pipeline run`)")
    return Warehouse(url, lake)


def parse_url(url: str) -> sa.URL:
    """The URL, with a bare `postgresql://` bound to the installed driver (psycopg2) rather than
    SQLAlchemy's default (psycopg 3)."""
    parsed = sa.make_url(url)
    return (
        parsed.set(drivername="postgresql+psycopg2")
        if parsed.drivername == "postgresql"
        else parsed
    )


def _create_engine(url: str) -> sa.Engine:
    parsed = parse_url(url)
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(parsed, connect_args={"options": _POSTGRES_OPTIONS})
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed)
    if (
        parsed.database
        and parsed.database != ":memory:"
        and not parsed.database.startswith("file:")
    ):
        folder = Path(parsed.database).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise WarehouseError(
                f"warehouse {url}: cannot create its folder {folder}: {error.strerror}"
            ) from None
    engine = sa.create_engine(parsed)
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


# A writer whose process died (killed, or its machine lost) must not keep its period's locks:
# the server notices the closed connection within a second even while the statement waits for a
# lock, and ends a transaction left idle for a minute (a writer's statements run back to back).
_POSTGRES_OPTIONS = (
    "-c client_connection_check_interval=1000 -c idle_in_transaction_session_timeout=60000"
)


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    # WAL lets readers run beside a writer; the busy timeout makes a second writer (another
    # Dagster step writing another period) wait for the lock instead of failing. NORMAL sync is
    # durable across crashes of the process in WAL mode, and the warehouse can be recomputed.
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_MS}")
    _enable_wal(cursor)
    cursor.execute("PRAGMA synchronous = NORMAL")
    # A commit does not copy the log into the file itself (seconds per GB written): the
    # warehouse does it after each write, in the background (_checkpoint).
    cursor.execute("PRAGMA wal_autocheckpoint = 0")
    cursor.close()


# One worker: checkpoints run one at a time, and the process waits for them before it exits.
_CHECKPOINTS = ThreadPoolExecutor(1, thread_name_prefix="warehouse-checkpoint")


def _checkpoint(engine: sa.Engine) -> None:
    """Copy the write-ahead log into the database file, beside readers and the next writer."""
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Switching to WAL needs a moment alone with the file and ignores the busy timeout, so a
    process that meets another one switching waits and tries again."""
    deadline = time.monotonic() + _SQLITE_BUSY_MS / 1000
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


_CREATED: set[tuple[str, int]] = set()


def create_schema(engine: sa.Engine, schema: sa.MetaData) -> None:
    """Create the tables of `schema` that are missing, with their keys (tables.KEYS), once per
    process and URL; several step processes may race to do it."""
    key = (engine.url.render_as_string(hide_password=True), id(schema))
    if key in _CREATED:
        return
    with _keys_refused(engine, schema.tables), engine.begin() as conn:
        _lock_schema(conn)
        schema.create_all(conn)
        _add_columns(conn, schema)
        _create_keys(conn, schema.tables)
    _CREATED.add(key)


def _create_keys(conn: sa.Connection, names: Iterable[str]) -> None:
    """A unique index on each table's natural key; an older warehouse gains them on opening."""
    for name in names:
        if name in KEYS:
            table = TABLES.get(name, AUDIT_TABLES.get(name))
            columns = ", ".join(_key_part(table, c) for c in KEYS[name])
            conn.exec_driver_sql(f"CREATE UNIQUE INDEX IF NOT EXISTS {_key(name)} ON {name} "
                                 f"({columns})")  # fmt: skip


def _key_part(table: sa.Table, column: str) -> str:
    if not column.endswith("?"):
        return column
    name = column[:-1]
    # A typed literal on PostgreSQL (an index expression must not depend on settings).
    missing = "'0001-01-01'" if isinstance(table.c[name].type, sa.Date) else "''"
    return f"COALESCE({name}, {missing})"


@contextlib.contextmanager
def _keys_refused(engine: sa.Engine, names: Iterable[str]) -> Iterator[None]:
    """A key that an older warehouse's rows break (written twice by overlapping runs before the
    keys existed) is refused in one sentence naming the table and its periods."""
    try:
        yield
    except sa.exc.IntegrityError:
        with engine.connect() as conn:
            for name in names:
                if name in KEYS and (where := _repeated_keys(conn, name)):
                    shown = engine.url.render_as_string(hide_password=True)
                    raise WarehouseError(
                        f"warehouse {shown}: table {name} holds rows whose key "
                        f"({', '.join(c.rstrip('?') for c in KEYS[name])}) repeats, at {where} "
                        f"(written by overlapping runs): delete those rows of {name} and run "
                        "their periods again"
                    ) from None
        raise


def _repeated_keys(conn: sa.Connection, name: str) -> str:
    """Where a key repeats, e.g. "period 2026-09, 2026-10" (the key's first column)."""
    columns = ", ".join(c.rstrip("?") for c in KEYS[name])
    first = KEYS[name][0]
    sql = (f"SELECT DISTINCT {first} FROM {name} GROUP BY {columns} HAVING COUNT(*) > 1 "
           f"ORDER BY {first}")  # fmt: skip
    values = [str(v)[:7] if first == "period" else str(v) for (v,) in conn.exec_driver_sql(sql)]
    return f"{first} {', '.join(values)}" if values else ""


def _lock_schema(conn: sa.Connection) -> None:
    """Hold the schema lock until the transaction ends: a check-then-create is not atomic."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('consumption_pipeline'))"))
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _create_tables(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        if _schema_complete(conn):
            return
    # Several step processes may open a new warehouse at once: serialize the check-then-create.
    with _keys_refused(engine, metadata.tables), engine.begin() as conn:
        _lock_schema(conn)
        metadata.create_all(conn)
        locks.lock_metadata.create_all(conn)
        _add_columns(conn)
        _create_keys(conn, metadata.tables)
        # Deletes and reads select by period. Periods are written in bulk, so their rows sit
        # together: a BRIN index finds them at almost no cost per COPY (a B-tree costs ~2 s per
        # million rows); SQLite has only B-trees (~1 s per million rows).
        using = "USING brin " if engine.dialect.name == "postgresql" else ""
        for name in metadata.tables:
            conn.exec_driver_sql(
                f"CREATE INDEX IF NOT EXISTS {_index(name)} ON {name} {using}(period)"
            )


def _missing_columns(
    conn: sa.Connection, schema: sa.MetaData = metadata
) -> list[tuple[str, sa.Column]]:
    """The columns an older warehouse's tables lack (a later version added them)."""
    inspector, missing = sa.inspect(conn), []
    for name, table in schema.tables.items():
        if inspector.has_table(name):
            present = {c["name"] for c in inspector.get_columns(name)}
            missing += [(name, c) for c in table.columns if c.name not in present]
    return missing


def _add_columns(conn: sa.Connection, schema: sa.MetaData = metadata) -> None:
    """An older warehouse gains the newer columns on opening, empty (NULL) in its old rows."""
    for name, column in _missing_columns(conn, schema):
        kind = column.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN {column.name} {kind}")


def _schema_complete(conn: sa.Connection) -> bool:
    present = set(sa.inspect(conn).get_table_names())
    if _missing_columns(conn):
        return False
    indexes = set(_index_names(conn))
    wanted = {_index(name) for name in metadata.tables} | {
        _key(name) for name in metadata.tables if name in KEYS
    }
    return {*metadata.tables, *locks.lock_metadata.tables} <= present and wanted <= indexes


def _index_names(conn: sa.Connection) -> list[str]:
    # The catalog itself: reflection skips indexes on expressions (the keys' COALESCE).
    if conn.dialect.name == "postgresql":
        sql = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'index'"
    return [name for (name,) in conn.exec_driver_sql(sql)]


def _index(table: str) -> str:
    return f"ix_{table}_period"


def _key(table: str) -> str:
    return f"uq_{table}_key"


@contextlib.contextmanager
def _driver_errors(engine: sa.Engine, sql: str) -> Iterator[None]:
    """Raw DBAPI calls bypass SQLAlchemy: wrap their errors so callers see one exception family."""
    dbapi_error = engine.dialect.loaded_dbapi.Error
    try:
        yield
    except dbapi_error as error:
        raise sa.exc.DBAPIError.instance(sql, None, error, dbapi_error) from error


# -- validation ------------------------------------------------------------------------------


def _table(name: str) -> sa.Table:
    if name not in TABLES:
        raise ValueError(f"unknown warehouse table {name!r}; known: {', '.join(TABLES)}")
    return TABLES[name]


def _bind(value: Any, postgres: bool) -> Any:
    # SQLite keeps dates as 'YYYY-MM-DD' text; psycopg2 renders a date as a typed DATE literal.
    return value.isoformat() if isinstance(value, date) and not postgres else value


def _csv(batch: pa.RecordBatch) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(batch, sink, pacsv.WriteOptions(include_header=False))
    return sink.getvalue()


def _instants_as_text(wire: pa.Table) -> pa.Table:
    for i, field in enumerate(wire.schema):
        if pa.types.is_timestamp(field.type):
            wire = wire.set_column(i, field.name, _utc_text(wire.column(i)))
    return wire


def _utc_text(instants: pa.ChunkedArray) -> pa.ChunkedArray:
    """'2026-10-01 12:00:00.000000Z': ISO-8601, fixed width, so text order is time order."""
    # Formatting the values as naive is ~10x faster than formatting them with a time zone.
    naive = instants.cast(pa.timestamp("us")).cast(pa.string())
    return pc.binary_join_element_wise(naive, "Z", "")


def _sqlite_wire(wire: pa.Table) -> pa.Table:
    """The columns as SQLite keeps them: dates and instants as text, money as REAL, booleans as
    integers."""
    return pa.table({name: _sqlite_values(wire.column(name)) for name in wire.column_names})


def _sqlite_values(values: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    if pa.types.is_date32(values.type):
        return values.cast(pa.string())  # '2026-10-01'
    if pa.types.is_timestamp(values.type):
        return _utc_text(values)
    if pa.types.is_decimal(values.type):  # Python's float() rounds to the nearest double
        return pa.array([None if v is None else float(v) for v in values.to_pylist()])
    if pa.types.is_boolean(values.type):
        return values.cast(pa.int64())
    return values


# -- Arrow ("wire") to SQL results -----------------------------------------------------------


def _select_postgres(conn: sa.Connection, table: sa.Table, sql: str, params: list) -> pa.Table:
    cursor = conn.connection.dbapi_connection.cursor()
    cursor.execute("SET LOCAL TIME ZONE 'UTC'")  # instants come out as '...+00'
    buffer = io.BytesIO()
    select = cursor.mogrify(sql, params).decode()
    cursor.copy_expert(f"COPY ({select}) TO STDOUT WITH (FORMAT csv)", buffer)
    if not buffer.getbuffer().nbytes:
        return empty_wire(table)
    buffer.seek(0)
    return pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(column_names=[c.name for c in table.columns]),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={c.name: ARROW[kind_of(c)] for c in table.columns},
            # COPY writes NULL as an unquoted empty field and '' as a quoted one
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )


# How SQLite hands each kind back: dates and instants as text, booleans as integers, NUMERIC as
# REAL (or an integer when the value is whole).
_SQLITE_ARROW: dict[Kind, pa.DataType] = {
    **ARROW, "money": pa.float64(), "date": pa.string(), "instant": pa.string(), "bool": pa.int64(),
}  # fmt: skip


def _select_sqlite(conn: sa.Connection, table: sa.Table, sql: str, params: list) -> pa.Table:
    connection = conn.connection.dbapi_connection
    with staging_file() as path:
        with attached(connection, path):
            connection.execute(f"CREATE TABLE {SCHEMA}.result AS {sql}", params)
        values = unstage(path, "result")
    kinds = [kind_of(c) for c in table.columns]
    return pa.table({
        c.name: _from_sqlite(k, values.column(c.name).cast(_SQLITE_ARROW[k]))
        for c, k in zip(table.columns, kinds, strict=True)
    })  # fmt: skip


def _from_sqlite(kind: Kind, values: pa.Array) -> pa.Array:
    if kind == "money":
        money = [
            None if v is None else Decimal(repr(v)).quantize(MICRO) for v in values.to_pylist()
        ]
        return pa.array(money, ARROW["money"])
    return values.cast(ARROW[kind])
