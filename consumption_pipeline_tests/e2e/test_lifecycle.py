"""The whole lifecycle through Dagster, over several periods, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from decimal import Decimal

import dagster as dg
import pandas as pd
import pytest

from consumption_pipeline.cli import main
from consumption_pipeline.storage.settings import DEFAULT_SOURCE
from consumption_pipeline.storage.tables import TABLES
from consumption_pipeline.storage.warehouse import Warehouse
from consumption_pipeline_tests.e2e.conftest import BACKENDS, fresh_warehouse
from consumption_pipeline_tests.snapshots import snapshot

PERIODS = ["2026-09-01", "2026-10-01", "2026-11-01"]


def run(source, warehouse_url: str, *args: str) -> int:
    return main(["run", "--source", str(source), "--warehouse", warehouse_url, *args])


SAMPLE_RUN = ["--from", "2026-09", "--to", "2026-11", "--as-of", "2026-11-25"]


@pytest.fixture(scope="module", params=BACKENDS)
def sample_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The shipped sample run once per backend through the CLI: (warehouse URL, Dagster home)."""
    folder = tmp_path_factory.mktemp(request.param)
    home = folder / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with pytest.MonkeyPatch.context() as env, fresh_warehouse(request.param, folder) as url:
        env.setenv("DAGSTER_HOME", str(home))
        assert run(DEFAULT_SOURCE, url, *SAMPLE_RUN) == 0
        yield url, home


@pytest.fixture
def sample_warehouse(sample_run) -> str:
    return sample_run[0]


def test_worked_example_is_billed_to_the_cent(sample_warehouse: str):
    lines = Warehouse(sample_warehouse).read_periods("liable_summaries", PERIODS)
    acme = lines[lines["account_id"].eq("ACME")]
    acme = acme.set_index(acme["period"].dt.strftime("%Y-%m"))
    # September: 800 credits drawn from the grant, nothing owed. October: 100 credits × $0.02.
    assert acme.loc["2026-09", "amount"] == Decimal("0.00")
    assert acme.loc["2026-10", "amount"] == Decimal("2.00")
    assert acme.loc["2026-10", "overage_quantity"] == 100
    assert acme.loc["2026-10", "consumption"] == 1800  # 500 + 1,300 credits
    # Closed once the grace period after October passed; November is still open on 11-25.
    assert set(acme["status"]) == {"final"}
    assert set(lines.loc[lines["period"].eq("2026-11-01"), "status"]) == {"provisional"}


def test_conservation_laws_hold_in_every_period(sample_warehouse: str):
    store = Warehouse(sample_warehouse)
    counts = store.read_periods("ingest_reconciliation", PERIODS)
    parts = counts[["accepted", "duplicates", "quarantined", "other_periods"]].sum(axis=1)
    assert (counts["events_read"] == parts).all()
    assert (counts["events_read"] == 285).all()  # every file is read for every period
    assert counts["accepted"].sum() == 273 and counts["duplicates"].sum() == 1

    usage = store.read_periods("usage_summaries", PERIODS)
    assert ((usage["debited"] + usage["overage"] - usage["drawdown_quantity"]).abs() < 1e-9).all()

    balances = store.read_periods("bucket_balances", PERIODS)
    flows = balances["opening"] + balances["credited"] - balances["debited"]
    flows -= balances["expired"] + balances["rolled_over"]
    assert ((flows - balances["closing"]).abs() < 1e-9).all()
    assert (balances["closing"] >= 0).all()

    ratable = (
        store.read_periods("ratable_summaries", PERIODS)
        .groupby(["period", "account_id"])["amount"]
        .sum()
    )
    liable = (
        store.read_periods("liable_summaries", PERIODS)
        .groupby(["period", "account_id"])["amount"]
        .sum()
    )
    assert (liable.reindex(ratable.index) == ratable).all()
    assert liable.drop(ratable.index).eq(Decimal(0)).all()


def test_quarantined_events_carry_reason_file_and_row(sample_warehouse: str):
    quarantined = Warehouse(sample_warehouse).read_period("quarantined_events", "2026-10-01")
    by_id = quarantined.set_index("event_id")
    assert by_id.loc["gw-90006", "reason"] == "too_many_decimals"
    assert by_id.loc["gw-90004", "reason"] == "unknown_account"
    assert by_id.loc["gw-90005", "reason"] == "asset_of_another_account"
    assert set(by_id.loc["gw-90002", "reason"]) == {"conflict"}
    assert by_id.loc["gw-90006", "source_file"] == "usage/gateway_export.csv"
    assert by_id.loc["gw-90006", "row_number"] == 108  # line 108 of the file, header = line 1


def test_rerunning_the_periods_leaves_every_table_identical(sample_warehouse: str):
    before = snapshot(sample_warehouse, PERIODS)
    assert run(DEFAULT_SOURCE, sample_warehouse, *SAMPLE_RUN) == 0
    after = snapshot(sample_warehouse, PERIODS)
    for name in TABLES:
        pd.testing.assert_frame_equal(before[name], after[name], obj=name)


def test_materializations_carry_row_counts_and_previews(sample_run):
    instance = dg.DagsterInstance.from_config(str(sample_run[1]))
    event = instance.get_latest_materialization_event(dg.AssetKey("liable_summaries"))
    metadata = event.asset_materialization.metadata
    assert event.asset_materialization.partition == "2026-11-01"
    assert metadata["dagster/row_count"].value > 0
    assert "| account_id |" in metadata["preview"].value
    # money at its currency's minor unit, quantities without trailing zeros, as the reports read
    assert not re.search(r"\.0\b|\.000000|_none_|nan", metadata["preview"].value)
    assert re.search(r"\| [\d,]+\.\d\d \| USD \|", metadata["preview"].value)


def test_a_first_period_without_history_opens_valid_buckets_with_their_grant(warehouse_url: str):
    # October alone: no September balance, so no rollover. The October PRO grant (1,000) opens on
    # 10-01. 10-05: 500 drawn (500 left). 10-10: PACK opens with 500. 10-20: 1,300 needed:
    # October grant 500 (ends first), PACK 500, overage 300 → 300 × $0.02 = $6.00.
    assert (
        run(
            DEFAULT_SOURCE,
            warehouse_url,
            "--from",
            "2026-10",
            "--to",
            "2026-10",
            "--as-of",
            "2026-11-25",
        )
        == 0
    )
    lines = Warehouse(warehouse_url).read_period("liable_summaries", "2026-10-01")
    acme = lines[lines["account_id"].eq("ACME")].iloc[0]
    assert (acme["overage_quantity"], acme["amount"]) == (300, Decimal("6.00"))


def test_a_broken_catalog_fails_the_run_with_a_message_naming_file_row_and_column(
    sample_copy, sqlite_url: str, capsys: pytest.CaptureFixture
):
    accounts = (sample_copy / "accounts.csv").read_text().replace(",USD", ",usd dollars", 1)
    (sample_copy / "accounts.csv").write_text(accounts)
    assert run(sample_copy, sqlite_url, "--from", "2026-10", "--to", "2026-10") == 1
    message = capsys.readouterr().err
    assert "accounts.csv: row 1 (line 2), column 'currency'" in message
    assert "period 2026-10" in message and "Traceback" not in message
