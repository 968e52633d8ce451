"""The production deployment (deploy/dagster.yaml) on this machine's PostgreSQL server: runs are
queued, dequeued under the instance's limits and launched as processes of the code server.

- A backfill of 12 periods completes in period order (launched first: it proceeds while the
  other tests run).
- On a SQLite and on a PostgreSQL warehouse: a run killed in the middle of writing a stage leaves
  that stage's previous rows intact; the re-run converges to an uninterrupted run; three
  materializations give identical tables; two runs of different periods launched together
  both run at once and give the tables of sequential runs.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from consumption_pipeline.definitions import BILLING_JOB
from consumption_pipeline.storage.settings import DEFAULT_SOURCE
from consumption_pipeline.storage.warehouse import Warehouse
from consumption_pipeline_tests.postgres import postgres_database
from consumption_pipeline_tests.production.conftest import (
    LATE_ACME,
    assert_same_tables,
    copy_sample,
    launch_config,
    materialize,
    settings_for,
)
from consumption_pipeline_tests.production.deployment import Deployment, production_deployment
from consumption_pipeline_tests.production.stall import PostgresStall, SqliteStall
from consumption_pipeline_tests.snapshots import snapshot

TWELVE = [
    p.start_time.strftime("%Y-%m-%d") for p in pd.period_range("2025-12", "2026-11", freq="M")
]
SEP, OCT, NOV = "2026-09-01", "2026-10-01", "2026-11-01"
DRAWDOWN = ["usage_summaries", "entitlement_ledger", "bucket_balances", "entitlement_buckets"]
LATER = ["ratable_summaries", "liable_summaries"]  # written by the stage after the drawdown
EARLIER = ["usage_events", "quarantined_events", "ingest_reconciliation", "rated_usage"]
LAUNCHED = {dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.SUCCESS}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("deployment")
    environment = {  # the code location's defaults; every launched run names its own warehouse
        "CONSUMPTION_WAREHOUSE_URL": f"sqlite:///{folder / 'default.db'}",
        "CONSUMPTION_OUTBOX_DIR": str(folder / "outbox"),
    }
    with production_deployment(folder, environment) as deployment:
        yield deployment


@pytest.fixture(scope="module", autouse=True)
def backfill(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory):
    """The sample backfilled over 12 periods into a PostgreSQL warehouse: (backfill id, URL)."""
    folder = tmp_path_factory.mktemp("backfill")
    with postgres_database("cp_backfill") as url:
        config = launch_config(settings_for(DEFAULT_SOURCE, url), folder / "outbox")
        backfill_id = deployment.backfill(BILLING_JOB, TWELVE, config)
        try:
            yield backfill_id, url
        finally:  # its runs must end before its database goes
            deployment.wait_for_backfill(backfill_id)


@pytest.fixture(scope="module")
def late_reference(tmp_path_factory: pytest.TempPathFactory):
    """Uninterrupted in-process runs with ACME's late usage: October alone, then September and
    November around it. Returns (October's tables, the three periods' tables)."""
    folder = tmp_path_factory.mktemp("reference")
    source = copy_sample(folder / "source")
    (source / "usage" / "late_acme.csv").write_text(LATE_ACME)
    settings = settings_for(source, f"sqlite:///{folder / 'warehouse.db'}")
    with dg.DagsterInstance.ephemeral() as instance:
        materialize(settings, OCT, instance)
        october = snapshot(settings.warehouse_url, [OCT])
        materialize(settings, SEP, instance)
        materialize(settings, NOV, instance)
    return october, snapshot(settings.warehouse_url, [SEP, OCT, NOV])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def crash(request: pytest.FixtureRequest, deployment: Deployment, tmp_path_factory):
    """October materialized on the sample; ACME's late usage arrives; a run of October launched
    by the deployment is killed in the middle of its drawdown write; October is run again three
    times; then September and November are launched together. Returns what each step left."""
    folder = tmp_path_factory.mktemp(request.param)
    source = copy_sample(folder / "source")
    with _warehouse(request.param, folder) as url:
        settings = settings_for(source, url)
        config = launch_config(settings, folder / "outbox")
        seen: dict = {}
        with dg.DagsterInstance.ephemeral() as instance:
            materialize(settings, OCT, instance)
            seen["before"] = snapshot(url, [OCT])
            (source / "usage" / "late_acme.csv").write_text(LATE_ACME)

            launched: list[str] = []
            stall = (
                PostgresStall(url)
                if request.param == "postgresql"
                else SqliteStall(url.removeprefix("sqlite:///"),
                                 lambda: "drawdown" in deployment.steps_started(launched[0]))
            )  # fmt: skip
            stall.install()
            try:
                run_id = deployment.submit(BILLING_JOB, OCT, config)
                launched.append(run_id)
                deployment.until(stall.reached, what="the stalled drawdown")
            finally:  # killed when stalled, or when the test gave up on it
                if launched:
                    deployment.kill(run_id)
                stall.release()
            seen["killed"] = deployment.run(run_id).status
            seen["after_kill"] = snapshot(url, [OCT])

            seen["materializations"] = []
            for _ in range(3):  # the re-run, then two more
                materialize(settings, OCT, instance)
                seen["materializations"].append(snapshot(url, [OCT]))

        with deployment.paused():  # both submitted before the queue looks at them
            together = [deployment.submit(BILLING_JOB, p, config) for p in (SEP, NOV)]
            deployment.dequeue()
            seen["launched_together"] = [deployment.run(r).status for r in together]
        seen["together"] = [run.status for run in deployment.wait(*together)]
        seen["three_periods"] = snapshot(url, [SEP, OCT, NOV])
        yield seen


def _warehouse(backend: str, folder: Path):
    from contextlib import nullcontext

    if backend == "sqlite":
        return nullcontext(f"sqlite:///{folder / 'warehouse.db'}")
    return postgres_database("cp_crash")


def test_a_killed_run_leaves_the_stage_it_was_writing_as_it_was(crash, late_reference):
    assert crash["killed"] == dg.DagsterRunStatus.FAILURE
    # The drawdown was killed inside its transaction, after rewriting usage_summaries: none of
    # its tables changed, nor those of the stage after it.
    assert_same_tables(crash["after_kill"], crash["before"], DRAWDOWN + LATER)
    # The stages before it had committed: they already hold the late event.
    october, _ = late_reference
    assert_same_tables(crash["after_kill"], october, EARLIER)
    # ACME's October events: 10-05 and 10-20, then the late one of 10-25.
    assert len(crash["before"]["usage_events"].query("account_id == 'ACME'")) == 2
    assert len(crash["after_kill"]["usage_events"].query("account_id == 'ACME'")) == 3


def test_the_rerun_converges_to_an_uninterrupted_run(crash, late_reference):
    october, _ = late_reference
    assert_same_tables(crash["materializations"][0], october)
    # October alone (no September history): 10-05 500 credits from the October grant (500
    # left); 10-20 1,300 credits: grant 500, PACK 500, overage 300; 10-25 the late 100 credits:
    # nothing left, overage 400 -> 400 x $0.02 = $8.00 (before the late event: 300 -> $6.00).
    lines = crash["materializations"][0]["liable_summaries"].query("account_id == 'ACME'")
    assert (lines["overage_quantity"].tolist(), lines["amount"].tolist()) == ([400], [Decimal(8)])
    before = crash["before"]["liable_summaries"].query("account_id == 'ACME'")
    assert before["amount"].tolist() == [Decimal(6)]


def test_three_materializations_of_a_period_give_identical_tables(crash):
    first, second, third = crash["materializations"]
    assert_same_tables(second, first)
    assert_same_tables(third, first)


def test_two_periods_launched_together_run_at_once_and_do_not_corrupt_each_other(
    crash, late_reference
):
    # One pass of the run queue launched both: different periods do not wait for each other.
    assert all(status in LAUNCHED for status in crash["launched_together"])
    assert crash["together"] == [dg.DagsterRunStatus.SUCCESS] * 2
    _, three_periods = late_reference
    assert_same_tables(crash["three_periods"], three_periods)


def test_a_backfill_of_twelve_periods_completes_in_period_order(deployment, backfill):
    backfill_id, url = backfill
    runs = deployment.wait_for_backfill(backfill_id)
    assert [r.dagster_run.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * 12
    by_start = sorted(runs, key=lambda r: r.start_time)
    assert [r.dagster_run.tags["dagster/partition"] for r in by_start] == TWELVE
    for earlier, later in zip(by_start, by_start[1:], strict=False):
        assert later.start_time >= earlier.end_time  # each period waited for the one before
    store = Warehouse(url)
    assert store.periods("ingest_reconciliation") == TWELVE
    # With September done before October, ACME's September rollover reaches October: overage
    # 100 credits x $0.02 = $2.00 (the worked example of docs/rules.md); out of order it would be $6.00.
    acme = store.read_period("liable_summaries", OCT).query("account_id == 'ACME'")
    assert (acme["overage_quantity"].tolist(), acme["amount"].tolist()) == ([100], [Decimal(2)])
