"""The code location loads, with every stage asset, the billing job and monthly partitions."""

from __future__ import annotations

import re
import shutil

import dagster as dg

from consumption_pipeline.cli.run import _periods_with_usage
from consumption_pipeline.definitions import BILLING_JOB, build_defs, defs
from consumption_pipeline.defs.resources import SourceDirectory
from consumption_pipeline.storage.settings import PROJECT_ROOT, Settings

SAMPLE = PROJECT_ROOT / "data" / "sample"

LIFECYCLE = [
    "usage_events", "quarantined_events", "entitlement_buckets", "rated_usage", "usage_summaries",
    "entitlement_ledger", "bucket_balances", "ratable_summaries", "liable_summaries",
]  # fmt: skip


def test_every_stage_asset_is_defined_and_monthly_partitioned():
    graph = defs.resolve_asset_graph()
    for key in LIFECYCLE:
        node = graph.get(dg.AssetKey(key))
        assert isinstance(node.partitions_def, dg.MonthlyPartitionsDefinition), key
    assert graph.get(dg.AssetKey("catalog")).is_external


def test_stages_depend_on_each_other_in_lifecycle_order():
    graph = defs.resolve_asset_graph()

    def parents(key: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(dg.AssetKey(key)).parent_keys}

    assert {"usage_files", "catalog"} <= parents("usage_events")
    assert "usage_events" in parents("rated_usage")
    assert {"rated_usage", "entitlement_buckets", "bucket_balances"} <= parents("bucket_balances")
    assert "usage_summaries" in parents("liable_summaries")


def test_opening_balances_depend_on_the_previous_period():
    node = defs.resolve_asset_graph().get(dg.AssetKey("bucket_balances"))
    mapping = node.partition_mappings[dg.AssetKey("bucket_balances")]
    assert (mapping.start_offset, mapping.end_offset) == (-1, -1)


def test_billing_job_selects_every_stage():
    job = defs.resolve_job_def(BILLING_JOB)
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} >= set(LIFECYCLE)


def test_the_lock_wait_setting_reaches_the_warehouse_resource(monkeypatch):
    monkeypatch.setenv("CONSUMPTION_LOCK_WAIT_SECONDS", "12.5")
    resources = build_defs(Settings.from_env()).resources
    assert resources["warehouse"].lock_wait_seconds == 12.5
    assert Settings().lock_wait_seconds == 900.0


def test_partitions_follow_the_configured_time_zone_and_first_period():
    settings = Settings(billing_timezone="Europe/Paris", first_period="2026-01-01")
    periods = build_defs(settings).resolve_assets_def("entitlement_buckets").partitions_def
    assert periods.timezone == "Europe/Paris"
    assert periods.get_first_partition_key() == "2026-01-01"


def test_the_readmes_ui_command_starts_the_partitions_at_the_samples_first_usage():
    readme = (PROJECT_ROOT / "README.md").read_text()
    command = re.search(r"^CONSUMPTION_FIRST_PERIOD=(\S+) DAGSTER_HOME=\S+ uv run dagster dev .*$",
                        readme, re.MULTILINE)  # fmt: skip
    assert command, "the README's UI command"
    first = command.group(1)
    assert first[:7] == _periods_with_usage(Settings())[0] == "2026-09"
    periods = build_defs(Settings(first_period=first)).resolve_assets_def("usage_events")
    assert periods.partitions_def.get_first_partition_key() == "2026-09-01"
    # `dagster dev` run from the project folder finds no instance file there to warn about
    assert not (PROJECT_ROOT / "dagster.yaml").exists()
    assert (PROJECT_ROOT / "deploy" / "local" / "dagster.yaml").is_file()


def test_each_step_gets_the_catalog_of_the_files_as_they_are_now(tmp_path):
    # The catalog is built once while the files stay the same, and again once they change.
    shutil.copytree(SAMPLE, tmp_path / "source")
    source = SourceDirectory(path=str(tmp_path / "source"))
    first = source.catalog()
    assert source.catalog() is first
    accounts = tmp_path / "source" / "accounts.csv"
    accounts.write_text(
        accounts.read_text().replace("GLOBEX,Globex GmbH,EUR", "GLOBEX,Globex GmbH,CHF")
    )
    currency = source.catalog().accounts.set_index("account_id")["currency"]
    assert currency["GLOBEX"] == "CHF"
    assert first.accounts.set_index("account_id")["currency"]["GLOBEX"] == "EUR"


def test_the_shared_list_of_checks_is_the_code_locations():
    from consumption_pipeline.quality.checks import CHECKS

    keys = defs.resolve_asset_graph().asset_check_keys
    assert sorted((k.asset_key.to_user_string(), k.name) for k in keys) == CHECKS
    assert len(CHECKS) == 18  # 11 catalog files, 7 checks of the stages' outputs
