"""Materialization metadata: row counts and a small Markdown preview of what was written."""

from __future__ import annotations

import dagster as dg
import pandas as pd

PREVIEW_ROWS = 10


def preview(frame: pd.DataFrame, rows: int = PREVIEW_ROWS) -> dg.MarkdownMetadataValue:
    head = frame.head(rows).astype("object").where(frame.head(rows).notna(), "")
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += [
        "| " + " | ".join(_cell(v) for v in row) + " |" for row in head.itertuples(index=False)
    ]
    if len(frame) > rows:
        lines.append(f"\n{len(frame) - rows:,} more rows")
    return dg.MetadataValue.md("\n".join(lines))


def _cell(value) -> str:
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d") if value == value.normalize() else value.isoformat()
    return str(value).replace("|", "\\|")


def table_metadata(frame: pd.DataFrame, **extra) -> dict:
    return {"dagster/row_count": len(frame), "preview": preview(frame), **extra}
