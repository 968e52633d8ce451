"""The data-quality checks in real Dagster runs of the sample, through the CLI, on SQLite.

September and October are billed from the good sample with an anomaly factor of 2, so that
October warns about ACME (80 h in September, 180 h in October: ×2.25) without blocking. Then a
second price for credits in USD from 2026-06-01 overlaps the price book's rate from 2026-01-01:
November's input check fails, and none of November's billing stages runs.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import dagster as dg
import pytest

from consumption_pipeline.cli import main
from consumption_pipeline.definitions import defs
from consumption_pipeline.storage.settings import DEFAULT_SOURCE
from consumption_pipeline.storage.warehouse import Warehouse

BLOCKING = {
    ("usage_events", "catalog_accounts"), ("usage_events", "catalog_usage_resources"),
    ("usage_events", "catalog_token_rates"), ("usage_events", "catalog_products"),
    ("usage_events", "catalog_product_grants"), ("usage_events", "catalog_assets"),
    ("usage_events", "catalog_price_book"), ("usage_events", "catalog_negotiated_rates"),
    ("usage_events", "accepted_usage"), ("usage_events", "events_reconcile"),
    ("usage_summaries", "drawdown_conserved"), ("bucket_balances", "bucket_balances_conserved"),
    ("liable_summaries", "liable_equals_ratable"),
}  # fmt: skip
WARNINGS = {("quarantined_events", "quarantine_explained"), ("rated_usage", "volume_anomalies")}
OVERLAP = (
    "price_book.csv: row 23 (line 24), column 'effective_from': expected no overlap with the rate "
    "of row 1 (line 2) for the same key (credits, USD), got '2026-06-01'"
)
BILLING = {"rated_usage", "usage_summaries", "entitlement_ledger", "bucket_balances",
           "ratable_summaries", "liable_summaries"}  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory):
    """(warehouse URL, Dagster instance, exit codes, CLI error output of the blocked run)."""
    folder = tmp_path_factory.mktemp("checks")
    source = Path(shutil.copytree(DEFAULT_SOURCE, folder / "source"))
    home = folder / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    url = f"sqlite:///{folder / 'warehouse.db'}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(home))
        env.setenv("CONSUMPTION_ANOMALY_FACTOR", "2")
        args = ["run", "--source", str(source), "--warehouse", url, "--as-of", "2026-12-10"]
        good = main([*args, "--from", "2026-09", "--to", "2026-10"])
        with (source / "price_book.csv").open("a") as prices:
            prices.write("credits,USD,per_unit,,0.05,,,2026-06-01,\n")
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            blocked = main([*args, "--from", "2026-11", "--to", "2026-11"])
    yield url, dg.DagsterInstance.from_config(str(home)), (good, blocked), err.getvalue()


def test_every_stage_declares_its_checks_blocking_where_money_is_at_stake():
    graph = defs.resolve_asset_graph()
    specs = {(k.asset_key.to_user_string(), k.name): graph.get_check_spec(k)
             for k in graph.asset_check_keys}  # fmt: skip
    assert BLOCKING | WARNINGS <= set(specs)
    assert {k for k in BLOCKING | WARNINGS if specs[k].blocking} == BLOCKING
    assert all(specs[k].partitions_def is not None for k in BLOCKING | WARNINGS)  # per period


def test_the_blocked_period_fails_the_cli_naming_the_check_and_the_failing_row(runs):
    _, _, (good, blocked), err = runs
    assert (good, blocked) == (0, 1)
    message = err.strip().splitlines()[-1]
    assert message.startswith(
        "consumption-pipeline: period 2026-11: blocking check 'catalog_price_book' on "
        f"usage_events failed: 1 row fails: {OVERLAP} (run "
    )
    assert "Traceback" not in err


def test_check_results_are_recorded_per_period(runs):
    _, instance, _, _ = runs

    def status(asset: str, check: str) -> dict[str, str]:
        key = dg.AssetCheckKey(dg.AssetKey(asset), check)
        infos = instance.event_log_storage.get_asset_check_partition_info([key])
        return {i.partition_key: i.latest_execution_status.value for i in infos}

    assert status("usage_events", "catalog_price_book") == {
        "2026-09-01": "SUCCEEDED", "2026-10-01": "SUCCEEDED", "2026-11-01": "FAILED",
    }  # fmt: skip
    # A warning is a failed check too, but it did not stop October's billing. November's
    # checks after the ingest were planned, never evaluated: their stages did not run.
    assert status("rated_usage", "volume_anomalies") == {
        "2026-09-01": "SUCCEEDED", "2026-10-01": "FAILED", "2026-11-01": "PLANNED",
    }  # fmt: skip
    assert status("liable_summaries", "liable_equals_ratable") == {
        "2026-09-01": "SUCCEEDED", "2026-10-01": "SUCCEEDED", "2026-11-01": "PLANNED",
    }  # fmt: skip


def latest_evaluation(instance, asset: str, check: str):
    key = dg.AssetCheckKey(dg.AssetKey(asset), check)
    history = instance.event_log_storage.get_asset_check_execution_history(key, limit=10)
    evaluated = [r.event.dagster_event for r in history if r.event.dagster_event.event_type_value
                 == "ASSET_CHECK_EVALUATION"]  # fmt: skip
    return evaluated[0].asset_check_evaluation_data


def test_the_failed_check_carries_its_failing_rows(runs):
    _, instance, _, _ = runs
    evaluation = latest_evaluation(instance, "usage_events", "catalog_price_book")
    assert (evaluation.partition, evaluation.passed, evaluation.blocking) == (
        "2026-11-01",
        False,
        True,
    )
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["failing_rows"].value == 1
    table = evaluation.metadata["first_failing_rows"].value
    assert "| price_book.csv | 23 | 24 | effective_from |" in table and OVERLAP in table


def test_the_warning_names_the_accounts_and_october_was_still_billed(runs):
    url, instance, _, _ = runs
    evaluation = latest_evaluation(instance, "rated_usage", "volume_anomalies")
    assert (evaluation.partition, evaluation.passed) == ("2026-10-01", False)
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    # ACME's compute went from 80 h to 180 h: ×2.25, beyond the factor of 2.
    assert "account 'ACME', compute_hours: usage changed 2.25x (80 in the previous period, " \
           "180 now)" in evaluation.description  # fmt: skip
    assert "ACME" in evaluation.metadata["accounts"].value
    lines = Warehouse(url).read_period("liable_summaries", "2026-10-01")
    assert set(lines["account_id"]) == {
        "ACME",
        "GLOBEX",
        "HOOLI",
        "INITECH",
        "SOYLENT",
        "STARK",
        "UMBRELLA",
        "VANDELAY",
    }


def test_no_billing_stage_ran_for_the_blocked_period(runs):
    url, instance, _, _ = runs
    run = instance.get_runs(limit=1)[0]
    assert run.tags.get("dagster/partition") == "2026-11-01"
    materialized = {
        e.dagster_event.asset_key.to_user_string()
        for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    }
    # The ingest wrote its rows (the check inspects them); nothing downstream of them ran.
    assert {"usage_events", "quarantined_events"} <= materialized
    assert not materialized & BILLING
    started = {
        e.step_key for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
    }
    failed = {
        e.step_key for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    }
    assert "ingest" in started and failed == {"ingest"}
    assert not {"rated_usage", "drawdown", "summaries"} & started
    store = Warehouse(url)
    for table in BILLING:
        assert store.read_period(table, "2026-11-01").empty, table
    assert not store.read_period("usage_events", "2026-11-01").empty
