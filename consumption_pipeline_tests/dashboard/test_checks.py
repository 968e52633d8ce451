"""Asset-check results read back from a real Dagster instance, per billing period."""

from pathlib import Path

import dagster as dg
import pytest

from consumption_pipeline.dashboard.checks import CheckReader, dagster_home, read_check_results

PERIODS = dg.MonthlyPartitionsDefinition(start_date="2026-09-01", end_date="2026-12-01")
ROWS_OK = dg.AssetCheckKey(dg.AssetKey("ledger"), "rows_ok")
CLOSING = dg.AssetCheckKey(dg.AssetKey("ledger"), "closing_not_negative")
NEVER_RUN = dg.AssetCheckKey(dg.AssetKey("ledger"), "never_run")
KEYS = dg.AssetCheckKey(dg.AssetKey("ledger"), "keys_unique")


@dg.asset(partitions_def=PERIODS, check_specs=[
    dg.AssetCheckSpec("rows_ok", asset="ledger"),
    dg.AssetCheckSpec("keys_unique", asset="ledger", blocking=True),
])  # fmt: skip
def ledger(context: dg.AssetExecutionContext):
    # Fails for October only; reported from the asset's own step.
    passed = context.partition_key != "2026-10-01"
    yield dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(
                check_name="rows_ok", passed=passed, description="rows reconcile",
                metadata={"rows": 278},
            ),
            dg.AssetCheckResult(check_name="keys_unique", passed=True),
        ]
    )  # fmt: skip


@dg.asset_check(asset=ledger, partitions_def=PERIODS)
def closing_not_negative(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, severity=dg.AssetCheckSeverity.WARN)


JOB = dg.define_asset_job("checked", selection=dg.AssetSelection.assets(ledger))
DEFS = dg.Definitions(assets=[ledger], asset_checks=[closing_not_negative], jobs=[JOB])


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("checks_home")
    (folder / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(folder)) as instance:
        for period in ("2026-09-01", "2026-10-01", "2026-10-01"):  # October runs twice
            DEFS.resolve_job_def("checked").execute_in_process(
                partition_key=period, instance=instance
            )
    return folder


def outcomes(results) -> dict[str, tuple[str, str | None]]:
    return {r.check: (r.outcome, r.kind) for r in results}


def test_each_check_shows_its_result_for_the_period(home: Path):
    with dg.DagsterInstance.from_config(str(home)) as instance:
        september = read_check_results(instance, [ROWS_OK, KEYS, CLOSING, NEVER_RUN], "2026-09-01")
        october = read_check_results(instance, [ROWS_OK, KEYS, CLOSING, NEVER_RUN], "2026-10-01")
        november = read_check_results(instance, [ROWS_OK, CLOSING, NEVER_RUN], "2026-11-01")
    # the kind is whether a failure blocks what is downstream, never the severity's ERROR or WARN
    assert outcomes(september) == {
        "rows_ok": ("passed", "warning"),
        "keys_unique": ("passed", "blocking"),
        "closing_not_negative": ("passed", "warning"),
    }
    assert outcomes(october) == {
        "rows_ok": ("failed", "warning"),
        "keys_unique": ("passed", "blocking"),
        "closing_not_negative": ("passed", "warning"),
    }
    assert november == []  # never run for November
    rows_ok = next(r for r in october if r.check == "rows_ok")
    assert (rows_ok.asset, rows_ok.description, rows_ok.metadata) == (
        "ledger",
        "rows reconcile",
        [("rows", "278")],
    )


def test_the_latest_run_of_a_period_wins(home: Path):
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": "2026-10-01"}))
        [result] = read_check_results(instance, [ROWS_OK], "2026-10-01")
    assert len(runs) == 2
    assert result.run_id == runs[0].run_id  # get_runs lists the newest first


def test_no_instance_or_no_checks_means_no_results(home: Path, tmp_path: Path):
    assert CheckReader(None, lambda: [ROWS_OK]).results("2026-09-01") == []
    assert CheckReader(home, lambda: []).results("2026-09-01") == []
    assert outcomes(CheckReader(home, lambda: [ROWS_OK]).results("2026-09-01")) == {
        "rows_ok": ("passed", "warning")
    }
    assert dagster_home(str(tmp_path / "absent")) is None
    assert not (tmp_path / "absent").exists()


def test_an_unreadable_code_location_is_reported_not_hidden(home: Path):
    def keys() -> list[dg.AssetCheckKey]:
        raise RuntimeError("the code location did not load")

    report = CheckReader(home, keys).report("2026-09-01")
    assert (report.results, report.problem) == ([], "RuntimeError: the code location did not load")
