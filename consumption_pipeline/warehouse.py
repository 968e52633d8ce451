"""The warehouse of DOMAIN.md "Outputs": replace a period's rows in one transaction, read them.

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
back the same way. SQLite stores dates as 'YYYY-MM-DD' text, instants as
'YYYY-MM-DD HH:MM:SS.ffffffZ' text (fixed width, so text order is time order) and NUMERIC as REAL:
quantities and money are exact there only to 15 significant digits; PostgreSQL keeps NUMERIC(28,6).
Row order of reads is not guaranteed.
"""

from __future__ import annotations

import contextlib
import io
import sqlite3
import time
from collections.abc import Iterator, Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa

from consumption_pipeline.tables import MONEY, TABLES, metadata

Kind = Literal["text", "quantity", "money", "date", "instant", "bool", "int"]

MICRO = Decimal("0.000001")
_ARROW: dict[Kind, pa.DataType] = {
    "text": pa.string(),
    "quantity": pa.float64(),
    "money": pa.decimal128(28, 6),
    "date": pa.date32(),
    "instant": pa.timestamp("us", tz="UTC"),
    "bool": pa.bool_(),
    "int": pa.int64(),
}
# Beyond 2**53 micro-units a float64 cannot carry 6 decimals; rounding there would only move ulps.
_ROUNDABLE = 2.0**53 / 1e6
_COPY_BATCH_ROWS = 250_000  # bounds the CSV buffer held in memory during a COPY
_SQLITE_BUSY_MS = 120_000  # a writer waits this long for another process's transaction


class Warehouse:
    """The warehouse tables behind one SQLAlchemy URL (SQLite or PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: sa.Engine = _create_engine(url)
        self._postgres = self.engine.dialect.name == "postgresql"
        self._quote = self.engine.dialect.identifier_preparer.quote
        _create_tables(self.engine)

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
        """
        day, where = _period(period), where or {}
        unknown = set(where) - set(frames)
        if unknown:
            raise ValueError(f"where names tables that are not replaced: {sorted(unknown)}")
        wires = {
            name: _to_wire(_table(name), frame, day, where.get(name, {}))
            for name, frame in frames.items()
        }
        with self.engine.begin() as conn:
            for name, wire in wires.items():
                table = TABLES[name]
                matching = [table.c[c] == value for c, value in where.get(name, {}).items()]
                conn.execute(table.delete().where(table.c.period == day, *matching))
                if wire.num_rows:
                    (self._copy_in if self._postgres else self._insert_many)(conn, name, wire)

    def read_period(
        self, table: str, period: str, where: dict[str, str] | None = None
    ) -> pd.DataFrame:
        """The rows of `table` in `period` (and matching `where`), in boundary types."""
        filters = {"period": [_period(period)], **{c: [v] for c, v in (where or {}).items()}}
        return self._read(table, filters)

    def read_periods(self, table: str, periods: Sequence[str]) -> pd.DataFrame:
        """The rows of `table` in any of `periods`, in boundary types."""
        return self._read(table, {"period": [_period(p) for p in periods]})

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Run `sql` with bound `:name` parameters; columns come back as the driver returns them."""
        with self.engine.connect() as conn:
            return pd.read_sql_query(sa.text(sql), conn, params=params or {})

    def periods(self, table: str) -> list[str]:
        """The distinct periods present in `table`, sorted, as 'YYYY-MM-01'."""
        sql = f"SELECT DISTINCT period FROM {self._quote(_table(table).name)} ORDER BY period"
        with self.engine.connect() as conn:
            return [str(p) for (p,) in conn.exec_driver_sql(sql)]

    # -- reading ---------------------------------------------------------------------------

    def _read(self, name: str, filters: dict[str, list[Any]]) -> pd.DataFrame:
        table = _table(name)
        _check_known(table, filters)
        if any(not values for values in filters.values()):
            return _to_frame(table, _empty_wire(table))
        placeholder = "%s" if self._postgres else "?"
        columns = ", ".join(self._quote(c.name) for c in table.columns)
        conditions = " AND ".join(
            f"{self._quote(c)} IN ({', '.join([placeholder] * len(vs))})"
            for c, vs in filters.items()
        )
        sql = f"SELECT {columns} FROM {self._quote(name)} WHERE {conditions}"
        params = [_bind(v, self._postgres) for c, vs in filters.items() for v in vs]
        with self.engine.connect() as conn, _driver_errors(self.engine, sql):
            wire = (_select_postgres if self._postgres else _select_sqlite)(
                conn, table, sql, params
            )
        return _to_frame(table, wire)

    # -- writing ---------------------------------------------------------------------------

    def _copy_in(self, conn: sa.Connection, name: str, wire: pa.Table) -> None:
        columns = ", ".join(self._quote(c) for c in wire.column_names)
        sql = f"COPY {self._quote(name)} ({columns}) FROM STDIN WITH (FORMAT csv)"
        cursor = conn.connection.dbapi_connection.cursor()  # same connection: same transaction
        options = pacsv.WriteOptions(include_header=False)
        with _driver_errors(self.engine, sql):
            for batch in _instants_as_text(wire).to_batches(max_chunksize=_COPY_BATCH_ROWS):
                sink = pa.BufferOutputStream()
                pacsv.write_csv(batch, sink, options)
                cursor.copy_expert(sql, pa.BufferReader(sink.getvalue()), size=1 << 20)

    def _insert_many(self, conn: sa.Connection, name: str, wire: pa.Table) -> None:
        columns = ", ".join(self._quote(c) for c in wire.column_names)
        marks = ", ".join("?" * wire.num_columns)
        sql = f"INSERT INTO {self._quote(name)} ({columns}) VALUES ({marks})"
        values = [_sqlite_values(wire.column(i)) for i in range(wire.num_columns)]
        cursor = conn.connection.dbapi_connection.cursor()  # same connection: same transaction
        with _driver_errors(self.engine, sql):
            cursor.executemany(sql, zip(*values, strict=True))


# -- engine and schema -----------------------------------------------------------------------


def _create_engine(url: str) -> sa.Engine:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(parsed, connect_args={"options": _POSTGRES_OPTIONS})
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed)
    if (
        parsed.database
        and parsed.database != ":memory:"
        and not parsed.database.startswith("file:")
    ):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
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
    cursor.close()


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
    """Create the tables of `schema` that are missing, once per process and URL; several step
    processes may race to do it."""
    key = (engine.url.render_as_string(hide_password=True), id(schema))
    if key in _CREATED:
        return
    with engine.begin() as conn:
        _lock_schema(conn)
        schema.create_all(conn)
    _CREATED.add(key)


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
    with engine.begin() as conn:
        _lock_schema(conn)
        metadata.create_all(conn)
        # Deletes and reads select by period. Periods are written in bulk, so their rows sit
        # together: a BRIN index finds them at almost no cost per COPY (a B-tree costs ~2 s per
        # million rows); SQLite has only B-trees (~1 s per million rows).
        using = "USING brin " if engine.dialect.name == "postgresql" else ""
        for name in TABLES:
            conn.exec_driver_sql(
                f"CREATE INDEX IF NOT EXISTS {_index(name)} ON {name} {using}(period)"
            )


def _schema_complete(conn: sa.Connection) -> bool:
    inspector = sa.inspect(conn)
    present = set(inspector.get_table_names())
    return all(
        name in present and _index(name) in {i["name"] for i in inspector.get_indexes(name)}
        for name in TABLES
    )


def _index(table: str) -> str:
    return f"ix_{table}_period"


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


def _check_known(table: sa.Table, columns: dict[str, Any] | pd.DataFrame) -> None:
    for column in columns:
        if column not in table.c:
            raise ValueError(f"table {table.name!r} has no column {column!r}")


def _period(period: str | date) -> date:
    """'YYYY-MM-01' as a date; anything else is a caller error, not a period."""
    with contextlib.suppress(ValueError):
        day = date.fromisoformat(str(period))
        if day.day == 1 and day.isoformat() == str(period):
            return day
    raise ValueError(f"a period is 'YYYY-MM-01', got {period!r}")


_KINDS: tuple[tuple[type[sa.types.TypeEngine], Kind], ...] = (
    (sa.DateTime, "instant"),
    (sa.Date, "date"),
    (sa.Boolean, "bool"),
    (sa.Integer, "int"),
    (sa.Numeric, "quantity"),
)


def _kind(column: sa.Column) -> Kind:
    # MONEY and QUANTITY are both NUMERIC(28,6); only the type object tells them apart.
    if column.type is MONEY:
        return "money"
    return next((kind for type_, kind in _KINDS if isinstance(column.type, type_)), "text")


def _bind(value: Any, postgres: bool) -> Any:
    # SQLite keeps dates as 'YYYY-MM-DD' text; psycopg2 renders a date as a typed DATE literal.
    return value.isoformat() if isinstance(value, date) and not postgres else value


# -- frames to Arrow ("wire") ----------------------------------------------------------------


def _to_wire(table: sa.Table, frame: pd.DataFrame, day: date, where: dict[str, str]) -> pa.Table:
    """The frame as an Arrow table in the column types of `table`; period and `where` filled in."""
    _check_known(table, frame)
    _check_known(table, where)
    fixed: dict[str, Any] = {"period": pd.Timestamp(day), **where}
    arrays = {}
    for name in [c.name for c in table.columns if c.name in frame.columns or c.name in fixed]:
        column = table.c[name]
        if name not in frame.columns:
            frame_values = pd.Series([fixed[name]]).repeat(len(frame))
        else:
            frame_values = frame[name]
        try:
            arrays[name] = _to_arrow(_kind(column), frame_values)
        except (TypeError, ValueError, ArithmeticError, pa.ArrowException) as error:
            raise ValueError(f"{table.name}.{name}: {error}") from error
        if name in fixed and name in frame.columns:
            _check_constant(table.name, name, arrays[name], _to_arrow(_kind(column), [fixed[name]]))
    return pa.table(arrays)


def _check_constant(table: str, column: str, values: pa.Array, expected: pa.Array) -> None:
    if values.null_count or not pc.all(pc.equal(values, expected[0]), min_count=0).as_py():
        raise ValueError(f"{table}.{column}: every row must be {expected[0]}")


def _to_arrow(kind: Kind, values: pd.Series | list) -> pa.Array:
    values = pd.Series(values) if isinstance(values, list) else values
    if kind == "quantity":
        floats = values.to_numpy(dtype="float64", na_value=np.nan)
        if np.isinf(floats).any():
            raise ValueError("infinite quantity")
        return pa.array(_round6(floats), from_pandas=True)
    if kind == "money":
        return pa.array([_money(v) for v in values.tolist()], _ARROW["money"])
    if kind == "date":
        return _dates(values)
    if kind == "instant":
        instants = pd.to_datetime(values, utc=True)  # naive instants are taken as UTC
        return pa.array(instants, from_pandas=True).cast(_ARROW["instant"], safe=False)
    return pa.array(values, _ARROW[kind], from_pandas=True)


def _round6(floats: np.ndarray) -> np.ndarray:
    return np.where(np.abs(floats) < _ROUNDABLE, np.round(floats, 6), floats)


def _money(value: Any) -> Decimal | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, bool):
        raise TypeError(f"not an amount of money: {value!r}")
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
        # ROUND_HALF_UP rounds ties away from zero, as PostgreSQL rounds NUMERIC input
        return amount.quantize(MICRO, rounding=ROUND_HALF_UP)
    except InvalidOperation as error:
        raise ValueError(f"not an amount of money (or too large): {value!r}") from error


def _dates(values: pd.Series) -> pa.Array:
    stamps = values if pd.api.types.is_datetime64_dtype(values.dtype) else pd.to_datetime(values)
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        raise ValueError("a date must be naive, got a timezone-aware instant")
    if (stamps.notna() & (stamps != stamps.dt.normalize())).any():
        raise ValueError("a date must be at midnight")
    return pa.array(stamps.to_numpy(dtype="datetime64[D]"), from_pandas=True)


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


def _sqlite_values(values: pa.ChunkedArray) -> list:
    if pa.types.is_date32(values.type):
        return values.cast(pa.string()).to_pylist()  # '2026-10-01'
    if pa.types.is_timestamp(values.type):
        return _utc_text(values).to_pylist()
    if pa.types.is_decimal(values.type):
        return [None if v is None else float(v) for v in values.to_pylist()]  # few rows
    return values.to_pylist()


# -- Arrow ("wire") to frames ----------------------------------------------------------------


def _empty_wire(table: sa.Table) -> pa.Table:
    return pa.schema([(c.name, _ARROW[_kind(c)]) for c in table.columns]).empty_table()


def _select_postgres(conn: sa.Connection, table: sa.Table, sql: str, params: list) -> pa.Table:
    cursor = conn.connection.dbapi_connection.cursor()
    cursor.execute("SET LOCAL TIME ZONE 'UTC'")  # instants come out as '...+00'
    buffer = io.BytesIO()
    select = cursor.mogrify(sql, params).decode()
    cursor.copy_expert(f"COPY ({select}) TO STDOUT WITH (FORMAT csv)", buffer)
    if not buffer.getbuffer().nbytes:
        return _empty_wire(table)
    buffer.seek(0)
    return pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(column_names=[c.name for c in table.columns]),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={c.name: _ARROW[_kind(c)] for c in table.columns},
            # COPY writes NULL as an unquoted empty field and '' as a quoted one
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )


def _select_sqlite(conn: sa.Connection, table: sa.Table, sql: str, params: list) -> pa.Table:
    cursor = conn.connection.dbapi_connection.cursor()
    rows = cursor.execute(sql, params).fetchall()
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in table.columns]
    pairs = zip(table.columns, columns, strict=True)
    return pa.table({c.name: _from_sqlite(_kind(c), list(v)) for c, v in pairs})


def _from_sqlite(kind: Kind, values: list) -> pa.Array:
    if kind == "money":
        money = [None if v is None else Decimal(repr(float(v))).quantize(MICRO) for v in values]
        return pa.array(money, _ARROW["money"])
    if kind in ("date", "instant"):
        return pa.array(values, pa.string()).cast(_ARROW[kind])
    if kind == "bool":
        return pa.array(values, pa.int64()).cast(pa.bool_())
    return pa.array(values, _ARROW[kind])


def _to_frame(table: sa.Table, wire: pa.Table) -> pd.DataFrame:
    return pd.DataFrame({c.name: _to_series(_kind(c), wire.column(c.name)) for c in table.columns})


def _to_series(kind: Kind, values: pa.ChunkedArray) -> pd.Series:
    if kind == "quantity":
        return pd.Series(_round6(values.to_numpy()), dtype="float64")
    if kind == "money":
        return pd.Series(values.to_pylist(), dtype=object)
    if kind == "date":
        return values.cast(pa.timestamp("us")).to_pandas()
    if kind in ("int", "bool") and values.null_count:
        data = values.fill_null(0 if kind == "int" else False).to_numpy()
        mask = values.is_null().to_numpy(zero_copy_only=False)
        array = pd.arrays.IntegerArray if kind == "int" else pd.arrays.BooleanArray
        return pd.Series(array(data, mask))
    if kind in ("int", "bool"):
        return pd.Series(values.to_numpy(), dtype="int64" if kind == "int" else "bool")
    return values.to_pandas()
