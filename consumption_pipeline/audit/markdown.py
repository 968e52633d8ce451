"""Markdown tables for the reports that analysts and auditors read, in the formats of
domain/formatting.py: money at its currency's minor unit (the row's `currency`), quantities with
their decimals and thousands separators, an absent value an empty cell, an empty table "none"."""

from __future__ import annotations

import pandas as pd

from consumption_pipeline.domain import formatting

EMPTY = "none"


def table(
    frame: pd.DataFrame,
    max_rows: int | None = None,
    currency: str | None = None,
    total: int | None = None,
) -> str:
    """A Markdown table of `frame` (all rows, or the first `max_rows` and a count of the rest,
    of `total` rows if `frame` is the first of them). Money columns are in each row's
    `currency`, else in `currency`."""
    if frame.empty:
        return EMPTY
    shown = frame if max_rows is None else frame.head(max_rows)
    columns = [str(c) for c in frame.columns]
    currencies = (
        shown["currency"].tolist() if "currency" in shown.columns else [currency] * len(shown)
    )
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += [
        "| "
        + " | ".join(cell(v, c, row_currency) for v, c in zip(row, columns, strict=True))
        + " |"
        for row, row_currency in zip(shown.itertuples(index=False), currencies, strict=True)
    ]
    rows = len(frame) if total is None else total
    if rows > len(shown):
        lines.append(f"\n… {rows - len(shown):,} more rows")
    return "\n".join(lines)


def cell(value: object, column: str = "", currency: object = None) -> str:
    """One value as a table shows it: money of a money `column` in `currency`, any other number
    as a quantity, a date as YYYY-MM-DD, nothing for an absent value."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float) and pd.isna(value):
        return ""
    shown = formatting.cell(value, column, currency)
    if shown is not None:
        return "" if shown == formatting.ABSENT else shown
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d") if value == value.normalize() else value.isoformat()
    return str(value).replace("|", "\\|")
