"""The audit tables of tables.py (`AUDIT_TABLES`): created on first use, replaced by their own
keys, read back with bound parameters only.

They are small (a row per table and period, per ad hoc request), so plain SQLAlchemy inserts are
enough; values cross in the boundary types of tables.py.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import pandas as pd
import sqlalchemy as sa

from consumption_pipeline.storage.tables import AUDIT_TABLES, MONEY, audit_metadata
from consumption_pipeline.storage.warehouse import create_schema


def replace_rows(engine: sa.Engine, name: str, key: dict[str, Any], frame: pd.DataFrame) -> None:
    """In one transaction: delete the rows of `name` matching `key`, insert `frame`."""
    create_schema(engine, audit_metadata)
    table = AUDIT_TABLES[name]
    unknown = set(frame.columns) - set(table.c.keys())
    if unknown:
        raise ValueError(f"table {name!r} has no column(s) {sorted(unknown)}")
    records = [{c: _value(table.c[c], v) for c, v in row.items()} for row in _records(frame)]
    with engine.begin() as conn:
        conn.execute(table.delete().where(*(table.c[c] == _value(table.c[c], v)
                                             for c, v in key.items())))  # fmt: skip
        if records:
            conn.execute(table.insert(), records)


def read_rows(engine: sa.Engine, name: str, where: dict[str, Any]) -> pd.DataFrame:
    """Rows of `name` whose columns equal `where` (a list value means any of its items)."""
    create_schema(engine, audit_metadata)
    table = AUDIT_TABLES[name]
    conditions = []
    for column, value in where.items():
        values = value if isinstance(value, list | tuple | set) else [value]
        conditions.append(table.c[column].in_([_value(table.c[column], v) for v in values]))
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table).where(*conditions)).mappings().all()
    frame = pd.DataFrame(rows, columns=list(table.c.keys()))
    return _typed(table, frame)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.astype("object").where(frame.notna(), None).to_dict("records")


def _value(column: sa.Column, value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if column.type is MONEY:
        return Decimal(str(value))
    if isinstance(column.type, sa.DateTime):
        stamp = pd.Timestamp(value)
        utc = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return utc.to_pydatetime()
    if isinstance(column.type, sa.Date):
        return pd.Timestamp(value).date() if not isinstance(value, dt.date) else value
    if isinstance(column.type, sa.Numeric):
        return float(value)
    if isinstance(column.type, sa.Integer):
        return int(value)
    return str(value)


def _typed(table: sa.Table, frame: pd.DataFrame) -> pd.DataFrame:
    for column in table.c:
        values = frame[column.name]
        if column.type is MONEY:
            frame[column.name] = [None if v is None else Decimal(str(v)) for v in values]
        elif isinstance(column.type, sa.DateTime):
            frame[column.name] = pd.to_datetime(values, utc=True)
        elif isinstance(column.type, sa.Date):
            frame[column.name] = pd.to_datetime(values)
        elif isinstance(column.type, sa.Numeric):
            frame[column.name] = values.astype("float64").round(6)
        elif isinstance(column.type, sa.Integer):
            frame[column.name] = values.astype("Int64")
        else:
            frame[column.name] = values.astype("str").where(values.notna(), pd.NA)
    return frame
