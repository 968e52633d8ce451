"""The verdict of one data-quality check: passed or not, and every row that fails it.

Each failing row carries a `problem` column, one sentence that names where the row is (file and
row, or summary, or bucket) and what was expected, so a reader needs nothing else to act on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

SUMMARY_ROWS = 3  # failing rows quoted in the one-line summary


@dataclass(frozen=True)
class Outcome:
    check: str
    passed: bool
    summary: str  # one line: what was checked, or how many rows fail and the first of them
    failing: pd.DataFrame  # every failing row, with a `problem` column
    facts: dict[str, int | float | str] = field(default_factory=dict)


def verdict(check: str, failing: pd.DataFrame, checked: str, **facts) -> Outcome:
    """An outcome from the failing rows (none: passed); `checked` says what was checked."""
    failing = failing.reset_index(drop=True)
    if failing.empty:
        return Outcome(check, True, f"passed: {checked}", failing, facts)
    first = "; ".join(failing["problem"].head(SUMMARY_ROWS))
    more = f" (and {len(failing) - SUMMARY_ROWS} more)" if len(failing) > SUMMARY_ROWS else ""
    rows = "row fails" if len(failing) == 1 else "rows fail"
    return Outcome(check, False, f"{len(failing)} {rows}: {first}{more}", failing, facts)


def problems(columns: list[str]) -> pd.DataFrame:
    """An empty frame of failing rows with the given locating columns."""
    return pd.DataFrame(columns=[*columns, "problem"])
