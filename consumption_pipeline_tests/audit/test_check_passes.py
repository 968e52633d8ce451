"""Input suites that passed are remembered by what they read: the same inputs and code are not
validated twice (a warm run never loads Great Expectations), anything else is."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from consumption_pipeline.audit import check_passes, fingerprints
from consumption_pipeline.audit import store as audit_store
from consumption_pipeline.quality.outcome import Outcome, problems, verdict
from consumption_pipeline.storage.settings import DEFAULT_SOURCE


@pytest.fixture
def inputs(request) -> dict[str, str]:
    """Inputs no other test meets (the PostgreSQL database is the session's)."""
    return {"suite": "catalog", "catalog": request.node.nodeid}


class Suite:
    """A suite that counts its runs; it passes or fails as told."""

    def __init__(self, passed: bool):
        self.passed, self.runs = passed, 0

    def __call__(self) -> list[Outcome]:
        self.runs += 1
        failing = problems(["row"]) if self.passed else pd.DataFrame({"row": [2], "problem": ["x"]})
        return [verdict("catalog_accounts", failing, "8 rows of accounts.csv", rows=8),
                verdict("catalog_assets", problems(["row"]), "5 rows of assets.csv", rows=5)]  # fmt: skip


def test_a_pass_is_remembered_with_the_run_that_validated_it(engine, inputs):
    suite = Suite(passed=True)
    first = check_passes.checked(engine, inputs, "run-1", suite)
    again = check_passes.checked(engine, inputs, "run-2", suite)
    assert suite.runs == 1
    assert [(o.check, o.passed, o.summary) for o in again] == [
        ("catalog_accounts", True, "passed: 8 rows of accounts.csv"),
        ("catalog_assets", True, "passed: 5 rows of assets.csv"),
    ]
    assert [o.facts for o in first] == [{"rows": 8}, {"rows": 5}]
    assert [o.facts for o in again] == [
        {"rows": 8, "passed_in_run": "run-1"},
        {"rows": 5, "passed_in_run": "run-1"},
    ]
    assert all(o.failing.empty for o in again)


def test_a_failing_suite_runs_every_time_and_lists_its_rows(engine, inputs):
    suite = Suite(passed=False)
    for run in ("run-1", "run-2", "run-3"):
        outcomes = check_passes.checked(engine, inputs, run, suite)
        assert [o.passed for o in outcomes] == [False, True]
        assert outcomes[0].failing["row"].tolist() == [2]
    assert suite.runs == 3
    assert audit_store.read_rows(
        engine, "check_passes", {"pass_key": check_passes.pass_key(inputs)}
    ).empty


def test_other_inputs_or_other_code_validate_again(sqlite_url, monkeypatch, inputs):
    Path(sa.make_url(sqlite_url).database).parent.mkdir(parents=True)
    engine = sa.create_engine(sqlite_url)
    suite = Suite(passed=True)
    check_passes.checked(engine, inputs, "run-1", suite)
    check_passes.checked(engine, {**inputs, "catalog": "digest-2"}, "run-2", suite)
    assert suite.runs == 2
    monkeypatch.setattr(fingerprints, "code_version", lambda: "0.1.0+changed")
    check_passes.checked(engine, inputs, "run-3", suite)
    assert suite.runs == 3
    engine.dispose()


def test_runs_side_by_side_remember_one_pass(postgres_url, inputs):
    """Four runs meet the same new inputs at once: each gets passing outcomes, none fails on the
    other's row, and one set of rows is kept."""
    engine = sa.create_engine(postgres_url, pool_size=4)
    start, results, errors = threading.Barrier(4), [], []

    def run(n: int) -> None:
        start.wait()
        try:
            results.append(check_passes.checked(engine, inputs, f"run-{n}", Suite(passed=True)))
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [[o.passed for o in outcomes] for outcomes in results] == [[True, True]] * 4
    kept = audit_store.read_rows(
        engine, "check_passes", {"pass_key": check_passes.pass_key(inputs)}
    )
    assert sorted(kept["check_name"]) == ["catalog_accounts", "catalog_assets"]
    assert kept["run_id"].nunique() == 1
    engine.dispose()


# One period of the sample through the CLI in a new process; what it reports of its checks.
WARM_RUN = """
import json, sys
import dagster as dg
from consumption_pipeline.cli import main
assert main(["run", "--source", sys.argv[1], "--warehouse", sys.argv[2], "--from", "2026-10",
             "--to", "2026-10", "--as-of", "2026-11-25"]) == 0
instance = dg.DagsterInstance.get()
run = instance.get_runs(limit=1)[0]
records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
checks = {r.event_log_entry.dagster_event.asset_check_evaluation_data.check_name:
          r.event_log_entry.dagster_event.asset_check_evaluation_data for r in records.records}
print(json.dumps({"run": run.run_id, "gx": "great_expectations" in sys.modules,
                  "passed": {k: c.passed for k, c in checks.items()},
                  "validated_in": {k: c.metadata["passed_in_run"].value for k, c in checks.items()
                                   if "passed_in_run" in c.metadata}}))
"""


def test_a_warm_run_reports_the_passes_without_loading_great_expectations(tmp_path, dagster_home):
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"

    def run() -> dict:
        done = subprocess.run([sys.executable, "-c", WARM_RUN, str(DEFAULT_SOURCE), url],
                              capture_output=True, text=True, check=True)  # fmt: skip
        return json.loads(done.stdout.strip().splitlines()[-1])

    cold, warm = run(), run()
    input_suites = {"catalog_accounts", "catalog_price_book", "accepted_usage"}
    assert cold["gx"] is True and warm["gx"] is False
    assert cold["validated_in"] == {}
    assert input_suites <= set(warm["validated_in"])
    assert {warm["validated_in"][s] for s in input_suites} == {cold["run"]}
    assert warm["passed"] == cold["passed"] and all(warm["passed"].values())
    # Checks that are no input suite run every time.
    assert "events_reconcile" not in warm["validated_in"]
