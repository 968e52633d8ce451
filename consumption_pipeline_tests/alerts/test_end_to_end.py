"""Alerts end to end: `consumption-pipeline run` over two periods of the shipped sample with
rules for ACME, a real webhook receiver and a real SMTP server on loopback; the receiver is down
for the first run, fails its first request when back, and the pending_alerts sensor catches up;
three runs in all, and each alert is delivered once."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
from collections import Counter
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from consumption_pipeline.cli import main
from consumption_pipeline.closing.alerts import AlertRegister
from consumption_pipeline.definitions import build_defs
from consumption_pipeline.defs.resources import WarehouseResource
from consumption_pipeline.storage.settings import DEFAULT_SOURCE, Settings
from consumption_pipeline.storage.warehouse import Warehouse
from consumption_pipeline_tests.alerts.receivers import SmtpReceiver, WebhookReceiver
from consumption_pipeline_tests.e2e.conftest import BACKENDS, fresh_warehouse

SECRET = "e2e-signing-secret"


@pytest.fixture(autouse=True)
def each_test_has_its_dagster_home(dagster_home: Path) -> Path:
    return dagster_home


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DEFAULT_SOURCE, tmp_path / "source"))


def write_rules(source: Path, url: str) -> None:
    (source / "alert_rules.csv").write_text(
        "rule_id,account_id,kind,threshold,usage_resource_id,scope,channel,recipient\n"
        f"acme-credits-80,ACME,consumed_share,80,credits,,webhook,{url}\n"
        f"acme-low-balance,ACME,balance_below,300,credits,,webhook,{url}\n"
        "acme-overage,ACME,overage_amount,1,,,email,billing@acme.example\n"
    )


def run(source: Path, url: str) -> int:
    return main(["run", "--source", str(source), "--warehouse", url, "--from", "2026-09",
                 "--to", "2026-10", "--as-of", "2026-12-01"])  # fmt: skip


def tick(url: str) -> str:
    """One evaluation of the pending_alerts sensor, as the daemon makes it."""
    defs = build_defs(Settings(warehouse_url=url))
    sensor = defs.resolve_sensor_def("pending_alerts")
    context = dg.build_sensor_context(resources={"warehouse": WarehouseResource(url=url)})
    result = sensor(context)
    return result.skip_message if isinstance(result, dg.SkipReason) else str(result)


def verified(request: dict) -> dict:
    stamp = request["headers"]["X-Consumption-Timestamp"]
    mac = hmac.new(SECRET.encode(), stamp.encode() + b"." + request["body"], hashlib.sha256)
    assert request["headers"]["X-Consumption-Signature"] == f"sha256={mac.hexdigest()}"
    body = json.loads(request["body"])
    assert request["headers"]["Idempotency-Key"] == body["alert_id"]
    return body


@pytest.mark.parametrize("backend", BACKENDS)
def test_alerts_fire_on_the_right_days_and_each_is_delivered_once(
    backend, source, tmp_path, monkeypatch, capsys
):
    receiver = WebhookReceiver(fail_first=1)  # down for the first run, then fails once
    smtp = SmtpReceiver().start()
    write_rules(source, receiver.url)
    monkeypatch.setenv("CONSUMPTION_ALERT_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("CONSUMPTION_ALERT_RETRY_SECONDS", "0")  # due again at once
    monkeypatch.setenv("CONSUMPTION_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CONSUMPTION_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("CONSUMPTION_SMTP_STARTTLS", "off")
    monkeypatch.setenv("CONSUMPTION_SMTP_SENDER", "alerts@pipeline.example")
    with fresh_warehouse(backend, tmp_path) as url:
        check_alerts(url, source, receiver, smtp, capsys)


def check_alerts(url: str, source: Path, receiver: WebhookReceiver, smtp: SmtpReceiver, capsys):
    try:
        # Run 1: the webhook receiver is down; the billing is not held up by it.
        assert run(source, url) == 0
        store = Warehouse(url)
        lines = store.read_period("liable_summaries", "2026-10-01")
        register = AlertRegister(store)
        state = register.read()
        assert Counter(state["status"]) == {"pending": 4, "delivered": 1}  # the email went
        # Each period's delivery step tried the receiver once, then left the rest pending.
        attempts = register.attempts()
        assert Counter(attempts["outcome"]) == {"failed": 2, "delivered": 1}
        assert attempts.loc[attempts["outcome"].eq("failed"), "error"].str.contains(
            "Connection refused").all()  # fmt: skip

        # The receiver is back (and fails its first request): the sensor delivers the rest.
        receiver.start()
        messages = [tick(url) for _ in range(3)]
        assert messages[0].startswith("alerts delivered 0, failed 1")
        assert messages[1].startswith("alerts delivered 4, failed 0")
        assert messages[2] == "alerts delivered 0, failed 0 (retried later), pending 0"

        # Runs 2 and 3: the same alerts are found, none is created or sent again.
        assert run(source, url) == 0
        assert run(source, url) == 0
        tick(url)
    finally:
        receiver.stop()
        smtp.stop()
    capsys.readouterr()

    store = Warehouse(url)
    pd.testing.assert_frame_equal(store.read_period("liable_summaries", "2026-10-01"), lines)
    state = AlertRegister(store).read().sort_values(["period", "rule_id"])
    # Worked out by hand from the sample (ACME is the worked example of docs/rules.md):
    # September: 800 of PRO's 1,000 credits drawn on 09-15: 80% consumed, 200 left (< 300).
    # October: the rollover 200 and PRO's 1,000 open on 10-01; 10-05 draws 500 (41.67%); PACK's
    # 500 opens on 10-10 (500 / 1,700 = 29.41%); 10-20 draws the remaining 1,200 and 100 more:
    # 1,700 / 1,700 = 100%, balance 0, and 100 credits of overage at $0.02 = $2.00 (> $1).
    assert state[["period", "rule_id", "subject_type", "subject_id", "as_of", "value",
                  "threshold", "unit", "channel"]].astype("str").values.tolist() == [
        ["2026-09-01", "acme-credits-80", "wallet", "credits", "2026-09-15", "80.000000", "80.000000", "percent", "webhook"],
        ["2026-09-01", "acme-low-balance", "wallet", "credits", "2026-09-15", "200.000000", "300.000000", "units", "webhook"],
        ["2026-10-01", "acme-credits-80", "wallet", "credits", "2026-10-20", "100.000000", "80.000000", "percent", "webhook"],
        ["2026-10-01", "acme-low-balance", "wallet", "credits", "2026-10-20", "0.000000", "300.000000", "units", "webhook"],
        ["2026-10-01", "acme-overage", "account", "ACME", "2026-10-20", "2.000000", "1.000000", "USD", "email"],
    ]  # fmt: skip
    assert json.loads(state.iloc[2]["details"]) == {"granted": 1700.0, "balance": 0.0,
                                                    "consumed": 1700.0, "buckets": 3}  # fmt: skip
    assert set(state["status"]) == {"delivered"}
    assert state["run_id"].nunique() == 2  # recorded by the first run's two periods, never again

    # Exactly one accepted POST per webhook alert, signed; one email; one delivered attempt each.
    bodies = [verified(r) for r in receiver.accepted]
    webhook_ids = set(state.loc[state["channel"].eq("webhook"), "alert_id"])
    assert sorted(b["alert_id"] for b in bodies) == sorted(webhook_ids)
    assert [r["status"] for r in receiver.requests] == [503, 200, 200, 200, 200]
    assert len(smtp.messages) == 1
    assert smtp.messages[0][2]["Idempotency-Key"] == state.iloc[4]["alert_id"]
    attempts = AlertRegister(store).attempts()
    delivered = attempts[attempts["outcome"].eq("delivered")]
    assert Counter(delivered["alert_id"]) == Counter({i: 1 for i in state["alert_id"]})


def test_a_bad_rule_file_stops_the_run_naming_its_row_and_column(source, tmp_path, capsys):
    (source / "alert_rules.csv").write_text(
        "rule_id,account_id,kind,threshold,usage_resource_id,scope,channel,recipient\n"
        "acme-credits-80,ACME,consumed_share,80,credits,,,\n"
        "acme-share-typo,ACME,consumed_share,180,credits,,,\n"
    )
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    assert main(["run", "--source", str(source), "--warehouse", url, "--from", "2026-09",
                 "--to", "2026-09"]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert "catalog_alert_rules" in err
    assert ("alert_rules.csv: row 2 (line 3), column 'threshold': expected a percentage above 0 "
            "and at most 100, got '180'") in err  # fmt: skip


def test_a_bad_channel_setting_stops_before_anything_runs(source, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CONSUMPTION_ALERT_TIMEOUT_SECONDS", "forever")
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    assert main(["run", "--source", str(source), "--warehouse", url, "--from", "2026-09",
                 "--to", "2026-09"]) == 2  # fmt: skip
    assert capsys.readouterr().err.strip() == (
        "consumption-pipeline: CONSUMPTION_ALERT_TIMEOUT_SECONDS: expected a number of seconds "
        "from 0.1 to 60, got 'forever'"
    )
