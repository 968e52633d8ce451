"""Frames to Arrow and back in the column types of a table of tables.py: the one conversion that
the SQL warehouse and the lake share, so a frame reads back the same from either.

See warehouse.py for the boundary types (what a frame carries, what comes back).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from consumption_pipeline.storage.tables import MONEY

Kind = Literal["text", "quantity", "money", "date", "instant", "bool", "int"]

MICRO = Decimal("0.000001")
ARROW: dict[Kind, pa.DataType] = {
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


def check_known(table: sa.Table, columns: dict[str, Any] | pd.DataFrame) -> None:
    for column in columns:
        if column not in table.c:
            raise ValueError(f"table {table.name!r} has no column {column!r}")


def projection(table: sa.Table, columns: Sequence[str]) -> sa.Table:
    """`table` with only `columns` (in the table's order), for reading."""
    check_known(table, columns)
    kept = [sa.Column(c.name, c.type) for c in table.columns if c.name in columns]
    return sa.Table(table.name, sa.MetaData(), *kept)


def period_day(period: str | date) -> date:
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


def kind_of(column: sa.Column) -> Kind:
    # MONEY and QUANTITY are both NUMERIC(28,6); only the type object tells them apart.
    if column.type is MONEY:
        return "money"
    return next((kind for type_, kind in _KINDS if isinstance(column.type, type_)), "text")


# -- frames to Arrow ("wire") ----------------------------------------------------------------


def to_wire(
    table: sa.Table,
    frame: pd.DataFrame,
    day: date,
    where: dict[str, str],
    dictionaries: bool = False,
) -> pa.Table:
    """The frame as an Arrow table in the column types of `table`; period and `where` filled in.
    With `dictionaries`, categorical text stays dictionary-encoded (the lake writes it so)."""
    check_known(table, frame)
    check_known(table, where)
    fixed: dict[str, Any] = {"period": pd.Timestamp(day), **where}
    arrays = {}
    for name in [c.name for c in table.columns if c.name in frame.columns or c.name in fixed]:
        column = table.c[name]
        try:
            if name in frame.columns:
                arrays[name] = _to_arrow(kind_of(column), frame[name], dictionaries)
            else:  # one value for every row: converted once
                one = _to_arrow(kind_of(column), [fixed[name]])
                arrays[name] = one.take(np.zeros(len(frame), np.int64))
        except (TypeError, ValueError, ArithmeticError, pa.ArrowException) as error:
            raise ValueError(f"{table.name}.{name}: {error}") from error
        if name in fixed and name in frame.columns:
            _check_constant(
                table.name, name, arrays[name], _to_arrow(kind_of(column), [fixed[name]])
            )
    return pa.table(arrays)


def _check_constant(table: str, column: str, values: pa.Array, expected: pa.Array) -> None:
    if values.null_count or not pc.all(pc.equal(values, expected[0]), min_count=0).as_py():
        raise ValueError(f"{table}.{column}: every row must be {expected[0]}")


def _to_arrow(kind: Kind, values: pd.Series | list, dictionaries: bool = False) -> pa.Array:
    values = pd.Series(values) if isinstance(values, list) else values
    if kind == "quantity":
        floats = values.to_numpy(dtype="float64", na_value=np.nan)
        if np.isinf(floats).any():
            raise ValueError("infinite quantity")
        return pa.array(round6(floats), from_pandas=True)
    if kind == "money":
        return _amounts(values.tolist())
    if kind == "date":
        return _dates(values)
    if kind == "instant":
        instants = pd.to_datetime(values, utc=True)  # naive instants are taken as UTC
        return pa.array(instants, from_pandas=True).cast(ARROW["instant"], safe=False)
    if isinstance(values.dtype, pd.CategoricalDtype):  # each distinct value converted once
        codes = values.cat.codes.to_numpy()
        categories = pa.array(values.cat.categories.to_numpy(dtype=object), ARROW[kind])
        if dictionaries and kind == "text":
            return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), categories)
        return categories.take(pa.array(codes, mask=codes < 0))
    return pa.array(values, ARROW[kind], from_pandas=True)


def round6(floats: np.ndarray) -> np.ndarray:
    return np.where(np.abs(floats) < _ROUNDABLE, np.round(floats, 6), floats)


def _amounts(values: list) -> pa.Array:
    # Decimals of at most 6 places (amounts as the domain makes them) convert in one Arrow call,
    # which refuses any that would need rounding; those, and other values, go one at a time.
    if all(isinstance(v, Decimal) or v is None for v in values):
        with contextlib.suppress(pa.ArrowInvalid):
            return pa.array(values, ARROW["money"])
    return pa.array([_money(v) for v in values], ARROW["money"])


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
    instants = stamps.to_numpy(dtype="datetime64[us]")
    days = instants.astype("datetime64[D]")
    if ((instants != days) & ~np.isnat(instants)).any():
        raise ValueError("a date must be at midnight")
    return pa.array(days, from_pandas=True)


# -- Arrow ("wire") to frames ----------------------------------------------------------------


def empty_wire(table: sa.Table) -> pa.Table:
    return pa.schema([(c.name, ARROW[kind_of(c)]) for c in table.columns]).empty_table()


def to_frame(table: sa.Table, wire: pa.Table) -> pd.DataFrame:
    return pd.DataFrame(
        {c.name: _to_series(kind_of(c), wire.column(c.name)) for c in table.columns}
    )


def _to_series(kind: Kind, values: pa.ChunkedArray) -> pd.Series:
    if kind == "quantity":
        return pd.Series(round6(values.to_numpy()), dtype="float64")
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
