"""Materialization metadata (row counts and a small Markdown preview of what was written) and the
data-quality checks as Dagster asset checks."""

from __future__ import annotations

import warnings

import dagster as dg
import pandas as pd

from consumption_pipeline.quality.outcome import Outcome

PREVIEW_ROWS = 10
FAILING_ROWS = 50  # failing rows shown in a check's metadata


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


def check_spec(
    name: str, asset: str, periods: dg.PartitionsDefinition, blocking: bool, description: str
) -> dg.AssetCheckSpec:
    """A check run with its asset, once per billing period. A blocking check protects money:
    when it fails, nothing downstream of its asset runs for that period."""
    # Partitioned checks (a preview feature in Dagster 1.13) record each result on its period.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(
            name, asset=asset, partitions_def=periods, blocking=blocking, description=description
        )


def check_result(asset: str, outcome: Outcome, blocking: bool) -> dg.AssetCheckResult:
    """The outcome as a check result: a blocking check fails with ERROR, the others WARN; the
    failing rows (the first FAILING_ROWS) go in the metadata."""
    severity = dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN
    metadata = {"failing_rows": len(outcome.failing), **outcome.facts}
    if not outcome.passed:
        metadata["first_failing_rows"] = preview(outcome.failing, FAILING_ROWS)
    return dg.AssetCheckResult(
        asset_key=asset, check_name=outcome.check, passed=outcome.passed, severity=severity,
        description=outcome.summary, metadata=metadata,
    )  # fmt: skip
