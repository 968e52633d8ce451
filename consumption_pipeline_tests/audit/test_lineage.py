"""Lineage: every partition materialization records its inputs, code version and data version."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from consumption_pipeline.audit import runs
from consumption_pipeline.audit.fingerprints import file_digest, frame_digest, mapping_digest
from consumption_pipeline.definitions import BILLING_JOB, defs
from consumption_pipeline.defs.lineage import alongside
from consumption_pipeline.domain.catalog import REQUIRED
from consumption_pipeline.storage.settings import DEFAULT_SOURCE
from consumption_pipeline.storage.tables import TABLES
from consumption_pipeline.storage.warehouse import Warehouse

PARTITIONED = [
    "usage_events", "quarantined_events", "entitlement_buckets", "rated_usage", "usage_summaries",
    "entitlement_ledger", "bucket_balances", "ratable_summaries", "liable_summaries",
    "bucket_forecasts", "overage_forecasts", "restatements",
]  # fmt: skip


def latest(home, asset: str, partition: str) -> dg.EventLogRecord:
    instance = dg.DagsterInstance.from_config(str(home))
    return instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records[0]


@pytest.mark.parametrize("asset", PARTITIONED)
def test_every_partition_materialization_records_inputs_code_and_data_version(sample_run, asset):
    record = latest(sample_run.home, asset, "2026-10-01")
    materialization = record.asset_materialization
    metadata = materialization.metadata
    for name in sorted(REQUIRED):  # every catalog file, by the SHA-256 of its bytes
        assert metadata[f"lineage/input/catalog/{name}"].value == file_digest(DEFAULT_SOURCE / name)
    # The period's event set: the digest of October's accepted events, recomputed here.
    events = Warehouse(sample_run.url).read_period("usage_events", "2026-10-01")
    if asset == "entitlement_buckets":  # granted from the catalog alone
        assert metadata["lineage/input/events"].value == "not an input of this step"
    else:
        assert metadata["lineage/input/events"].value == frame_digest(
            events, TABLES["usage_events"]
        )
    # Dagster's own code and data versions: the asset's declared code version, and a digest of
    # it with the inputs recorded beside the run in stage_runs.
    key = dg.AssetKey(asset)
    assert (
        materialization.tags["dagster/code_version"]
        == (defs.resolve_assets_def(key).code_versions_by_key[key])
    )
    step = record.event_log_entry.dagster_event.step_key
    rows = runs.for_periods(Warehouse(sample_run.url).engine, ["2026-10-01"])
    rows = rows[rows["step"] == step]
    if asset == "restatements":  # it writes only audit tables: no stage_runs row
        assert rows.empty and len(materialization.tags["dagster/data_version"]) == 32
    else:
        row = rows.iloc[0]
        recorded = {"code_version": row["code_version"], **json.loads(row["inputs"])}
        assert row["code_version"] == materialization.tags["dagster/code_version"]
        assert materialization.tags["dagster/data_version"] == mapping_digest(recorded)
    # What Dagster shows itself is not repeated by hand.
    assert not {"lineage/fingerprint", "lineage/code_version", f"lineage/rows/{asset}"} & set(
        metadata
    )


def test_the_drawdown_records_the_previous_periods_balances_it_opened_with(sample_run):
    metadata = latest(
        sample_run.home, "bucket_balances", "2026-10-01"
    ).asset_materialization.metadata
    september = runs.output_digest(Warehouse(sample_run.url).engine, "2026-09-01", "drawdown",
                                   "bucket_balances")  # fmt: skip
    assert metadata["lineage/input/bucket_balances@2026-09"].value == september != "absent"


def test_the_run_of_every_table_is_recorded_in_the_warehouse(sample_run):
    record = latest(sample_run.home, "liable_summaries", "2026-10-01")
    rows = runs.for_periods(Warehouse(sample_run.url).engine, ["2026-10-01"])
    written = rows.set_index(["step", "table_name"])
    assert written.loc[("summaries", "liable_summaries"), "run_id"] == record.run_id
    assert set(written["run_id"]) == {record.run_id}  # one billing run wrote the whole period
    assert written.loc[("ingest", "usage_events"), "row_count"] == 105  # October's accepted events


def test_the_audit_assets_are_defined_where_analysts_and_the_billing_job_find_them():
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey("adhoc_summary")).partitions_def is None
    for key in ["bucket_forecasts", "overage_forecasts", "restatements"]:
        assert isinstance(
            graph.get(dg.AssetKey(key)).partitions_def, dg.MonthlyPartitionsDefinition
        )
    job = defs.resolve_job_def(BILLING_JOB)
    selected = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert {"bucket_forecasts", "overage_forecasts", "restatements"} <= selected
    assert "adhoc_summary" not in selected
    config = defs.resolve_assets_def("adhoc_summary").op.config_schema.config_type
    assert {"account_id", "start_date", "end_date", "granularity"} <= set(config.fields)
    assert config.fields["account_id"].is_required and not config.fields["asset_id"].is_required


def test_work_alongside_the_main_part_returns_both_results_and_a_main_error_is_not_hidden():
    assert alongside(lambda: "digests", lambda: "checks") == ("checks", "digests")

    def failing_write():
        raise RuntimeError("database gone")

    with pytest.raises(RuntimeError, match="database gone"):
        alongside(lambda: "digests", failing_write)
