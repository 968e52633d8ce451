"""Great Expectations (1.x) run in memory: an ephemeral context, pandas frames as batches.

Nothing is written to disk and nothing goes over the network (analytics off). Great Expectations
is slow to import, so it is imported on first use, once per process. Every expectation carries
`meta={"column": ..., "expected": ...}`: the column a failing row is told about and what it
should have held.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from types import ModuleType

import pandas as pd

# Rows of one failed expectation that are located; its count stays exact beyond them.
ROW_LIMIT = 1000
# Set before Great Expectations is first imported, whichever function imports it.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@dataclass(frozen=True)
class Failure:
    """One failed expectation: its meta, how many rows fail and the first of them."""

    order: int  # the expectation's place in its suite
    column: str
    expected: str
    count: int
    rows: list[int]  # positions in the frame; empty when the expectation is about the table


def gxe() -> ModuleType:
    """The `great_expectations.expectations` module (imported on first use)."""
    _context()
    import great_expectations.expectations as expectations  # deferred: GX is slow to import

    return expectations


def membership(values: pd.Series, known) -> pd.Series:
    """True where a value is in `known`, False where not, None where missing: the column a
    set-membership expectation checks against {True}. GX renders an expectation's configuration
    many times per validation, so a value set of thousands of ids costs seconds per check."""
    return values.isin(known).astype("boolean").where(values.notna(), pd.NA)


def row_condition(column: str, value: str):
    """A row condition `column == value` for a column map expectation."""
    from great_expectations.expectations.row_conditions import Column  # deferred, as GX

    return Column(column) == value


@cache
def _context():
    # Deferred: GX takes seconds to import, and loading the code location must stay fast.
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX fingerprints every batch under 1 GB by hashing it whole (seconds per million rows);
    # an ephemeral context never reads the fingerprint back.
    from great_expectations.execution_engine import pandas_execution_engine

    pandas_execution_engine.HASH_THRESHOLD = 0
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


@cache
def _batch_definition():
    source = _context().data_sources.add_pandas("frames")
    return source.add_dataframe_asset("frame").add_batch_definition_whole_dataframe("whole")


def validate_by_column(frame: pd.DataFrame, expectations: list, suite: str) -> list[Failure]:
    """`validate`, one batch per column (or pair) the expectations read: GX takes the rows of its
    whole frame per expectation, so narrow frames keep millions of rows cheap. Expectations
    with row conditions read other columns: they are not for this."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for order, expectation in enumerate(expectations):
        columns = getattr(expectation, "column", None) or (
            expectation.column_A,
            expectation.column_B,
        )
        groups.setdefault((columns,) if isinstance(columns, str) else columns, []).append(order)
    failures = [
        failure
        for columns, orders in groups.items()
        for failure in validate(
            frame[list(columns)], [expectations[i] for i in orders], suite, orders
        )  # fmt: skip
    ]
    return sorted(failures, key=lambda f: f.order)


def validate(
    frame: pd.DataFrame, expectations: list, suite: str, orders: list[int] | None = None
) -> list[Failure]:
    """Run `expectations` on `frame` (positional index); the failed ones, in suite order (their
    places in the suite are `orders`, if given)."""
    import great_expectations as gx  # deferred: GX is slow to import

    if not expectations:
        return []
    frame = frame.reset_index(drop=True)
    for order, expectation in zip(orders or range(len(expectations)), expectations, strict=True):
        expectation.meta = {**(expectation.meta or {}), "order": order}
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(
        gx.ExpectationSuite(name=suite, expectations=expectations),
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": ROW_LIMIT},
    )
    failures = []
    for outcome in result.results:
        if outcome.success:
            continue
        meta = outcome.expectation_config.meta or {}
        order, column, expected = meta.get("order", 0), meta.get("column", ""), meta["expected"]
        exception = outcome.exception_info or {}
        if exception.get("raised_exception"):
            # An expectation that could not run has not shown the data to be good.
            expected += f" (could not be checked: {exception.get('exception_message', '')})"
            failures.append(Failure(order, column, expected, len(frame), []))
            continue
        found = outcome.result or {}
        rows = [int(i) for i in found.get("partial_unexpected_index_list") or []]
        count = int(found.get("unexpected_count") or len(rows))
        failures.append(Failure(order, column, expected, count, rows))
    return sorted(failures, key=lambda f: f.order)
