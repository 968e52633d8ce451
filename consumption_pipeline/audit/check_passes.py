"""Input suites that passed, remembered by what they read (the `check_passes` table).

A suite's outcome is a function of its inputs and of the code that checks them. So when every
outcome of a suite passed, they are kept under a digest of the inputs (file digests, the period,
the settings), the package's code version and the Great Expectations release; the next run that
meets the same key reports the same outcomes, each saying which run validated them
(`passed_in_run`), without loading Great Expectations. Failures are never remembered: a failing
suite runs again, and lists its rows again, every time.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from importlib.metadata import version

import pandas as pd
import sqlalchemy as sa

from consumption_pipeline.audit import fingerprints, store
from consumption_pipeline.quality.outcome import Outcome, problems


def pass_key(inputs: Mapping[str, str]) -> str:
    """The key of a suite over `inputs`: they, the code version and the checking library."""
    return fingerprints.mapping_digest({
        **inputs, "code_version": fingerprints.code_version(),
        "great_expectations": version("great-expectations"),
    })  # fmt: skip


def checked(
    engine: sa.Engine, inputs: Mapping[str, str], run_id: str, check: Callable[[], list[Outcome]]
) -> list[Outcome]:
    """The outcomes of `check` over `inputs`: remembered ones if these inputs passed before."""
    known = remembered(engine, inputs)
    if known is not None:
        return known
    outcomes = check()
    if all(outcome.passed for outcome in outcomes):
        _remember(engine, pass_key(inputs), outcomes, run_id)
    return outcomes


def remembered(engine: sa.Engine, inputs: Mapping[str, str]) -> list[Outcome] | None:
    """The outcomes remembered for `inputs`, if they passed before."""
    found = store.read_rows(engine, "check_passes", {"pass_key": pass_key(inputs)})
    if not len(found):
        return None
    return [_remembered(row) for row in found.sort_values("position").itertuples()]


def _remember(engine: sa.Engine, key: str, outcomes: list[Outcome], run_id: str) -> None:
    try:
        store.replace_rows(engine, "check_passes", {"pass_key": key}, pd.DataFrame({
            "pass_key": key, "check_name": [o.check for o in outcomes],
            "position": range(len(outcomes)), "summary": [o.summary for o in outcomes],
            "facts": [json.dumps(o.facts, sort_keys=True, default=_plain) for o in outcomes], "run_id": run_id,
            "recorded_at": pd.Timestamp(dt.datetime.now(dt.UTC)),
        }))  # fmt: skip
    except sa.exc.IntegrityError:
        pass  # a run beside this one remembered the same outcomes first


def _remembered(row) -> Outcome:
    facts = {**json.loads(row.facts), "passed_in_run": row.run_id}
    return Outcome(row.check_name, True, row.summary, problems([]), facts)


def _plain(value):
    return value.item()  # numpy scalars among the facts
