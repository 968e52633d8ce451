"""Markdown tables for the reports that analysts and auditors read."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd


def table(frame: pd.DataFrame, max_rows: int | None = None) -> str:
    """A Markdown table of `frame` (all rows, or the first `max_rows` and a count of the rest)."""
    if frame.empty:
        return "_none_"
    shown = frame if max_rows is None else frame.head(max_rows)
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in shown.itertuples(index=False)
    ]
    if len(frame) > len(shown):
        lines.append(f"\n… {len(frame) - len(shown):,} more rows")
    return "\n".join(lines)


def cell(value: object) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:,.6f}".rstrip("0").rstrip(".")
    if isinstance(value, Decimal):
        return f"{value:,f}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d") if value == value.normalize() else value.isoformat()
    return str(value).replace("|", "\\|")
