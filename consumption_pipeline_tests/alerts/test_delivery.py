"""Alert delivery (closing/alerts.py) against real receivers on loopback, on SQLite and
PostgreSQL: each alert delivered once, every attempt recorded, a receiver that fails or is down
retried with backoff, signatures verifiable, two senders at once sending nothing twice."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from consumption_pipeline.closing.alerts import (
    LEASE_SECONDS,
    AlertRegister,
    deliver_pending,
    payload,
)
from consumption_pipeline.domain.alerts import ALERT_COLUMNS, alert_id
from consumption_pipeline.storage.alert_settings import AlertSettings
from consumption_pipeline.storage.warehouse import Warehouse
from consumption_pipeline_tests.alerts.receivers import SmtpReceiver, WebhookReceiver
from consumption_pipeline_tests.postgres import postgres_database

SECRET = "test-signing-secret"
T0 = dt.datetime(2026, 10, 21, 8, 0, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path: Path) -> Iterator[Warehouse]:
    if request.param == "sqlite":
        yield Warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}", str(tmp_path / "lake"))
        return
    with postgres_database("cp_alerts") as url:
        warehouse = Warehouse(url, str(tmp_path / "lake"))
        yield warehouse
        warehouse.engine.dispose()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


def alerts(*subjects: str, channel: str | None = "webhook", recipient: str | None = None,
           period: str = "2026-10-01") -> pd.DataFrame:  # fmt: skip
    rows = []
    for subject in subjects:
        rows.append({
            "alert_id": alert_id(pd.Timestamp(period), "share80", "ACME", "wallet", subject),
            "period": pd.Timestamp(period), "rule_id": "share80", "kind": "consumed_share",
            "account_id": "ACME", "subject_type": "wallet", "subject_id": subject,
            "usage_resource_id": subject, "value": 93.333333, "threshold": 80.0,
            "unit": "percent", "as_of": pd.Timestamp("2026-10-20"),
            "details": json.dumps({"granted": 1500.0, "balance": 100.0}), "channel": channel,
            "recipient": recipient,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=ALERT_COLUMNS)


def webhook(url: str, **kwargs) -> AlertSettings:
    return AlertSettings(webhook_url=url, webhook_secret=SECRET, timeout_seconds=2,
                         retry_seconds=60, retry_cap_seconds=3600, **kwargs)  # fmt: skip


def at(moment: dt.datetime):
    return lambda: moment


def verify(request: dict) -> dict:
    """What a receiver does: recompute the signature over timestamp and body, then read it."""
    stamp = request["headers"]["X-Consumption-Timestamp"]
    expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + request["body"],
                        hashlib.sha256).hexdigest()  # fmt: skip
    assert hmac.compare_digest(request["headers"]["X-Consumption-Signature"], f"sha256={expected}")
    return json.loads(request["body"])


def test_a_webhook_gets_each_alert_once_signed_with_its_idempotency_key(store, receiver):
    register = AlertRegister(store)
    found = alerts("credits", "api_calls")
    assert register.record(found, "run-1") == 2
    done = deliver_pending(store, webhook(receiver.url), "test", now=at(T0))
    assert (done.delivered, done.failed, done.pending) == (2, 0, 0)
    assert len(receiver.requests) == 2
    for request in receiver.requests:
        body = verify(request)
        assert request["headers"]["Idempotency-Key"] == body["alert_id"]
        assert request["headers"]["Content-Type"] == "application/json"
        assert request["path"] == "/hooks/alerts"
    [first] = [b for b in map(verify, receiver.requests) if b["subject"]["id"] == "credits"]
    assert first == {
        "alert_id": found["alert_id"][0], "period": "2026-10", "rule_id": "share80",
        "kind": "consumed_share", "account_id": "ACME",
        "subject": {"type": "wallet", "id": "credits"}, "usage_resource_id": "credits",
        "value": "93.333333", "threshold": "80", "unit": "percent", "as_of": "2026-10-20",
        "details": {"granted": 1500.0, "balance": 100.0},
    }  # fmt: skip
    # Recording the same alerts again creates none; delivering again sends nothing.
    assert register.record(found, "run-2") == 0
    for hours in (1, 24, 24 * 40):
        deliver_pending(
            store, webhook(receiver.url), "test", now=at(T0 + dt.timedelta(hours=hours))
        )
    assert len(receiver.requests) == 2
    attempts = register.attempts()
    assert (
        attempts[["attempt", "outcome", "status_code"]].values.tolist()
        == [[1, "delivered", 200]] * 2
    )
    state = register.read(account_id="ACME")
    assert state["status"].tolist() == ["delivered", "delivered"]
    assert state["run_id"].tolist() == ["run-1", "run-1"]  # recorded once, by the first run


def test_a_receiver_failing_the_first_two_is_retried_with_backoff_until_delivered(store):
    receiver = WebhookReceiver(fail_first=2).start()
    try:
        AlertRegister(store).record(alerts("credits"), "run-1")
        settings = webhook(receiver.url)
        # Attempt 1 at T0 fails (503): attempt 2 is due 60 s later, attempt 3 120 s after that.
        for seconds, requests in [(0, 1), (30, 1), (60, 2), (170, 2), (180, 3), (10_000, 3)]:
            deliver_pending(store, settings, "test", now=at(T0 + dt.timedelta(seconds=seconds)))
            assert len(receiver.requests) == requests, seconds
    finally:
        receiver.stop()
    assert [r["status"] for r in receiver.requests] == [503, 503, 200]
    assert len({verify(r)["alert_id"] for r in receiver.requests}) == 1  # the same alert, same key
    attempts = AlertRegister(store).attempts()
    assert attempts[["attempt", "outcome", "status_code"]].values.tolist() == [
        [1, "failed", 503], [2, "failed", 503], [3, "delivered", 200]]  # fmt: skip
    assert attempts["error"].iloc[0] == "HTTP 503 Service Unavailable"
    waits = pd.to_datetime(attempts["next_attempt_at"], utc=True) - pd.to_datetime(
        attempts["finished_at"], utc=True)  # fmt: skip
    assert waits.iloc[:2].dt.total_seconds().tolist() == [60.0, 120.0]


def test_a_receiver_that_is_down_costs_one_attempt_and_gets_everything_when_back(store):
    receiver = WebhookReceiver()  # not started: connections are refused
    AlertRegister(store).record(alerts("credits", "api_calls", "gb_stored"), "run-1")
    started = time.monotonic()
    done = deliver_pending(store, webhook(receiver.url), "test", now=at(T0))
    assert time.monotonic() - started < 5
    # One attempt fails; the two alerts behind it wait for the next pass, unattempted.
    assert (done.delivered, done.failed, done.pending) == (0, 1, 2)
    attempts = AlertRegister(store).attempts()
    assert attempts["outcome"].tolist() == ["failed"]
    assert "Connection refused" in attempts["error"].iloc[0]
    receiver.start()
    try:
        done = deliver_pending(store, webhook(receiver.url), "test",
                               now=at(T0 + dt.timedelta(minutes=5)))  # fmt: skip
        assert (done.delivered, done.failed, done.pending) == (3, 0, 0)
        deliver_pending(store, webhook(receiver.url), "test", now=at(T0 + dt.timedelta(hours=5)))
    finally:
        receiver.stop()
    assert Counter(verify(r)["subject"]["id"] for r in receiver.requests) == {
        "credits": 1, "api_calls": 1, "gb_stored": 1}  # fmt: skip


def test_a_receiver_that_does_not_answer_times_out(store):
    receiver = WebhookReceiver(delay=3).start()
    try:
        AlertRegister(store).record(alerts("credits"), "run-1")
        settings = AlertSettings(webhook_url=receiver.url, webhook_secret=SECRET,
                                 timeout_seconds=0.5)  # fmt: skip
        started = time.monotonic()
        done = deliver_pending(store, settings, "test", now=at(T0))
        assert time.monotonic() - started < 2.5 and done.failed == 1
    finally:
        receiver.stop()
    assert "timed out" in AlertRegister(store).attempts()["error"].iloc[0]


def test_two_senders_at_once_deliver_each_alert_once(store):
    receiver = WebhookReceiver(delay=0.1).start()
    try:
        subjects = [f"resource_{i}" for i in range(8)]
        AlertRegister(store).record(alerts(*subjects), "run-1")
        senders = [threading.Thread(target=deliver_pending, args=(
            store, webhook(receiver.url), f"sender-{i}"), kwargs={"now": at(T0)})
            for i in range(3)]  # fmt: skip
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
    finally:
        receiver.stop()
    assert sorted(verify(r)["subject"]["id"] for r in receiver.requests) == sorted(subjects)
    attempts = AlertRegister(store).attempts()
    assert len(attempts) == 8 and set(attempts["outcome"]) == {"delivered"}


def test_an_attempt_cut_short_is_sent_again_after_its_lease_with_the_same_key(store, receiver):
    register = AlertRegister(store)
    register.record(alerts("credits"), "run-1")
    # A sender claimed attempt 1 and died before recording its outcome.
    [due] = register.due(T0)
    assert register.claim(due, receiver.url, "dead sender", T0)
    assert not register.claim(due, receiver.url, "another sender", T0)  # attempt 1 is taken
    deliver_pending(store, webhook(receiver.url), "test", now=at(T0 + dt.timedelta(seconds=60)))
    assert receiver.requests == []  # the lease still holds
    later = T0 + dt.timedelta(seconds=LEASE_SECONDS + 1)
    deliver_pending(store, webhook(receiver.url), "test", now=at(later))
    assert len(receiver.requests) == 1
    assert receiver.requests[0]["headers"]["Idempotency-Key"] == due["alert_id"]
    assert register.attempts()["outcome"].tolist() == ["unknown", "delivered"]


def test_email_goes_over_smtp_once_from_the_configured_sender(store):
    smtp = SmtpReceiver().start()
    try:
        register = AlertRegister(store)
        register.record(alerts("credits", channel="email", recipient="billing@acme.example"),
                        "run-1")  # fmt: skip
        settings = AlertSettings(smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_starttls=False,
                                 smtp_sender="alerts@pipeline.example", timeout_seconds=5)  # fmt: skip
        done = deliver_pending(store, settings, "test", now=at(T0))
        deliver_pending(store, settings, "test", now=at(T0 + dt.timedelta(days=1)))
    finally:
        smtp.stop()
    assert done.delivered == 1 and len(smtp.messages) == 1
    sender, recipients, message = smtp.messages[0]
    assert (sender, recipients) == ("alerts@pipeline.example", ["billing@acme.example"])
    [alert] = register.read().to_dict("records")
    assert message["Message-ID"] == f"<{alert['alert_id']}@consumption-pipeline>"
    assert "".join(message["Subject"].splitlines()) == ("[consumption alert] ACME: wallet credits: 93.333333% consumed "
                                  "(threshold 80%) on 2026-10-20")  # fmt: skip
    body = message.get_payload(decode=True).decode()
    assert "Rule share80 (consumed_share) fired for account ACME in period 2026-10" in body
    assert payload(alert).decode() in body
    assert register.attempts()[["outcome", "status_code"]].values.tolist() == [["delivered", 250]]


def test_starttls_on_never_falls_back_to_plain_text(store):
    smtp = SmtpReceiver().start()  # offers no STARTTLS
    try:
        AlertRegister(store).record(alerts("credits", channel="email",
                                           recipient="billing@acme.example"), "run-1")  # fmt: skip
        settings = AlertSettings(smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_starttls=True,
                                 smtp_sender="alerts@pipeline.example")  # fmt: skip
        done = deliver_pending(store, settings, "test", now=at(T0))
    finally:
        smtp.stop()
    assert done.failed == 1 and smtp.messages == []
    assert "STARTTLS" in AlertRegister(store).attempts()["error"].iloc[0]


def test_without_a_configured_channel_alerts_wait_and_nothing_is_attempted(store):
    register = AlertRegister(store)
    register.record(pd.concat([alerts("credits"),
                               alerts("api_calls", channel="email", recipient="a@b.example"),
                               alerts("gb_stored", channel=None)]), "run-1")  # fmt: skip
    done = deliver_pending(store, AlertSettings(), "test", now=at(T0))
    assert (done.delivered, done.failed, done.pending) == (0, 0, 2)
    assert sorted(done.notes) == [
        "email alerts wait for CONSUMPTION_SMTP_HOST",
        "webhook alerts wait for CONSUMPTION_ALERT_WEBHOOK_URL (or a recipient)",
    ]
    # A URL without a secret: never sent unsigned.
    done = deliver_pending(store, AlertSettings(webhook_url="http://127.0.0.1:9/x"), "test",
                           now=at(T0))  # fmt: skip
    assert any("CONSUMPTION_ALERT_WEBHOOK_SECRET" in note for note in done.notes)
    assert register.attempts().empty
    state = register.read().set_index("subject_id")["status"].to_dict()
    assert state == {"credits": "pending", "api_calls": "pending", "gb_stored": "recorded"}
