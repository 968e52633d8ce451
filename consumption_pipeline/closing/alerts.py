"""Alerts, recorded once and delivered once (README "Alerts"), like the outbox of the close:

- **Recorded once.** An alert (domain/alerts.py) is inserted into `alerts` the first time it is
  found and never replaced: recomputing a period finds the same ids and inserts nothing.
- **Each attempt is a row** of `alert_deliveries` (alert, attempt number), inserted as `sending`
  *before* the request is made: the key (alert_id, attempt) lets one sender only claim an
  attempt, so two deliverers at once (the billing job and the sensor) never both send it. The row
  is then finished as `delivered` (a 2xx answer, or the SMTP server accepting the message) or
  `failed` with the error and when the next attempt is due: after `retry × 2^(n−1)` seconds,
  at most `retry_cap`.
- **Never sent twice.** A delivered alert is never attempted again. The one window left is a
  process killed between a receiver's answer and the record: its `sending` row becomes
  `unknown` after a lease, and the alert is sent again with the same idempotency key (the same
  Message-ID by email), so a receiver that honours the key sees it once.
- **A receiver that is down** costs one timeout per pass: a pass stops trying a target after its
  first failure and leaves the alerts behind it pending, and a pass has a time budget. Nothing
  here raises: the billing never fails or waits for a receiver.

A webhook is an HTTP POST of the alert as JSON with the headers `Idempotency-Key` (the alert id),
`X-Consumption-Timestamp` (Unix seconds) and `X-Consumption-Signature` (`sha256=` and the hex
HMAC-SHA256 of `<timestamp>.<body>` under the configured secret). An email goes over SMTP (STARTTLS
unless switched off) from the configured sender.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from consumption_pipeline.storage.alert_settings import AlertSettings
from consumption_pipeline.storage.tables import alert_deliveries, alert_metadata, alerts
from consumption_pipeline.storage.warehouse import Warehouse, create_schema

LEASE_SECONDS = 600  # a `sending` attempt older than this was cut short by a crash
SIGNATURE_HEADER = "X-Consumption-Signature"
TIMESTAMP_HEADER = "X-Consumption-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
ALERT_FIELDS = ["alert_id", "period", "rule_id", "kind", "account_id", "subject_type",
                "subject_id", "usage_resource_id", "value", "threshold", "unit", "as_of",
                "details", "channel", "recipient"]  # fmt: skip


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: how a receiver checks that the pipeline sent the body."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def payload(alert: dict[str, Any]) -> bytes:
    """The alert as JSON, the same bytes for every attempt."""
    body = {
        "alert_id": alert["alert_id"], "period": f"{pd.Timestamp(alert['period']):%Y-%m}",
        "rule_id": alert["rule_id"], "kind": alert["kind"], "account_id": alert["account_id"],
        "subject": {"type": alert["subject_type"], "id": alert["subject_id"]},
        "usage_resource_id": alert["usage_resource_id"], "value": number_text(alert["value"]),
        "threshold": number_text(alert["threshold"]), "unit": alert["unit"],
        "as_of": f"{pd.Timestamp(alert['as_of']):%Y-%m-%d}",
        "details": json.loads(alert["details"]) if alert["details"] else {},
    }  # fmt: skip
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def number_text(value) -> str:
    """Quantities and money as decimal text (6 decimals at most, no trailing zeros)."""
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


class AlertRegister:
    """The warehouse tables `alerts` and `alert_deliveries`."""

    def __init__(self, store: Warehouse) -> None:
        self.engine = store.engine
        create_schema(self.engine, alert_metadata)

    def record(self, found: pd.DataFrame, run_id: str, now: dt.datetime | None = None) -> int:
        """Insert the alerts not recorded yet; returns how many were new."""
        if found.empty:
            return 0
        now = now or dt.datetime.now(dt.UTC)
        rows = [_alert_row(r, run_id, now) for r in found.to_dict("records")]
        new = 0
        with self.engine.begin() as conn:
            known = set(conn.execute(sa.select(alerts.c.alert_id).where(
                alerts.c.alert_id.in_([r["alert_id"] for r in rows]))).scalars())  # fmt: skip
            for row in rows:
                if row["alert_id"] in known:
                    continue
                result = conn.execute(_insert_new(conn, alerts, row))
                new += result.rowcount or 0
        return new

    def read(self, account_id: str | None = None, period: str | None = None) -> pd.DataFrame:
        """The alerts (of one account, of one period) with their delivery state: `status`
        (delivered, pending, recorded: no channel), attempts, delivered_at, last_error,
        next_attempt_at."""
        query = sa.select(alerts)
        if account_id is not None:
            query = query.where(alerts.c.account_id == account_id)
        if period is not None:
            query = query.where(alerts.c.period == dt.date.fromisoformat(period[:10]))
        with self.engine.connect() as conn:
            found = pd.DataFrame(
                conn.execute(query).mappings().all(), columns=list(alerts.c.keys())
            )
            ids = list(found["alert_id"])
            tries = pd.DataFrame(conn.execute(sa.select(alert_deliveries).where(
                alert_deliveries.c.alert_id.in_(ids))).mappings().all(),
                columns=list(alert_deliveries.c.keys()))  # fmt: skip
        return delivery_state(found, tries)

    def attempts(self, alert_id: str | None = None) -> pd.DataFrame:
        query = sa.select(alert_deliveries).order_by(alert_deliveries.c.alert_id,
                                                     alert_deliveries.c.attempt)  # fmt: skip
        if alert_id is not None:
            query = query.where(alert_deliveries.c.alert_id == alert_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return pd.DataFrame(rows, columns=list(alert_deliveries.c.keys()))

    def due(self, now: dt.datetime, period: str | None = None) -> list[dict[str, Any]]:
        """The alerts with a channel, not delivered, whose next attempt is due, oldest first,
        each with the number of its next attempt."""
        state = self.read(period=period)
        if state.empty:
            return []
        due = state[state["status"].eq("pending")]
        stamp = pd.Timestamp(now)
        ready = due["next_attempt_at"].isna() | (due["next_attempt_at"] <= stamp)
        due = due[ready].sort_values(["fired_at", "alert_id"], kind="stable")
        return due.to_dict("records")

    def claim(self, alert: dict[str, Any], target: str, worker: str, now: dt.datetime) -> bool:
        """Insert the alert's next attempt as `sending`; False when another sender has it."""
        row = {"alert_id": alert["alert_id"], "attempt": int(alert["attempts"]) + 1,
               "channel": alert["channel"], "target": target, "started_at": now,
               "outcome": "sending", "worker": worker}  # fmt: skip
        with self.engine.begin() as conn:
            if alert["attempts"]:  # an attempt cut short by a crash: its outcome is unknown
                conn.execute(alert_deliveries.update().where(
                    alert_deliveries.c.alert_id == alert["alert_id"],
                    alert_deliveries.c.attempt == int(alert["attempts"]),
                    alert_deliveries.c.outcome == "sending").values(outcome="unknown",
                                                                    finished_at=now))  # fmt: skip
            result = conn.execute(_insert_new(conn, alert_deliveries, row))
        return bool(result.rowcount)

    def finish(self, alert_id: str, attempt: int, outcome: str, now: dt.datetime,
               status_code: int | None = None, error: str | None = None,
               next_attempt_at: dt.datetime | None = None) -> None:  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(alert_deliveries.update().where(
                alert_deliveries.c.alert_id == alert_id, alert_deliveries.c.attempt == attempt,
            ).values(outcome=outcome, finished_at=now, status_code=status_code, error=error,
                     next_attempt_at=next_attempt_at))  # fmt: skip


def _insert_new(conn: sa.Connection, table: sa.Table, row: dict[str, Any]):
    """An INSERT that does nothing when the key is taken (SQLite and PostgreSQL)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).values(**row).on_conflict_do_nothing()


def _alert_row(r: dict[str, Any], run_id: str, now: dt.datetime) -> dict[str, Any]:
    def text(value):
        return None if value is None or pd.isna(value) else str(value)

    return {
        "alert_id": r["alert_id"], "period": pd.Timestamp(r["period"]).date(),
        "rule_id": r["rule_id"], "kind": r["kind"], "account_id": r["account_id"],
        "subject_type": r["subject_type"], "subject_id": r["subject_id"],
        "usage_resource_id": text(r["usage_resource_id"]), "value": float(r["value"]),
        "threshold": float(r["threshold"]), "unit": text(r["unit"]),
        "as_of": pd.Timestamp(r["as_of"]).date(), "details": r["details"],
        "channel": text(r["channel"]), "recipient": text(r["recipient"]), "run_id": run_id,
        "fired_at": now,
    }  # fmt: skip


def delivery_state(found: pd.DataFrame, tries: pd.DataFrame) -> pd.DataFrame:
    """Each alert with its delivery state, from its attempts in order."""
    lease = dt.timedelta(seconds=LEASE_SECONDS)
    state: dict[str, dict[str, Any]] = {}
    for t in tries.sort_values(["alert_id", "attempt"]).to_dict("records"):
        s = state.setdefault(t["alert_id"], {"attempts": 0, "delivered_at": None})
        s["attempts"] = int(t["attempt"])
        s["last_error"] = t["error"]
        if t["outcome"] == "delivered" and s["delivered_at"] is None:
            s["delivered_at"] = _utc(t["finished_at"])
        # A `sending` attempt holds the alert until its lease runs out.
        s["next_attempt_at"] = (
            _utc(t["started_at"]) + lease if t["outcome"] == "sending"
            else _utc(t["next_attempt_at"])
        )  # fmt: skip
    out = found.copy()
    ids = out["alert_id"]
    out["attempts"] = [state.get(i, {}).get("attempts", 0) for i in ids]
    out["delivered_at"] = pd.to_datetime(
        [state.get(i, {}).get("delivered_at") for i in ids], utc=True)  # fmt: skip
    out["last_error"] = [state.get(i, {}).get("last_error") for i in ids]
    out["next_attempt_at"] = pd.to_datetime(
        [state.get(i, {}).get("next_attempt_at") for i in ids], utc=True)  # fmt: skip
    out["status"] = [
        "recorded" if c is None or pd.isna(c) else "delivered" if d is not pd.NaT else "pending"
        for c, d in zip(out["channel"], out["delivered_at"], strict=True)
    ]  # fmt: skip
    return out


def _utc(value) -> dt.datetime | None:
    """An instant read back (SQLite gives it without its zone: it was written in UTC)."""
    if value is None or pd.isna(value):
        return None
    stamp = pd.Timestamp(value)
    return (
        stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    ).to_pydatetime()


@dataclass
class Pass:
    """What one delivery pass did."""

    delivered: int = 0
    failed: int = 0
    pending: int = 0  # left for a later pass (target down, channel not configured, out of time)
    notes: list[str] | None = None


def deliver_pending(
    store: Warehouse, settings: AlertSettings, worker: str, period: str | None = None,
    budget_seconds: float = 30.0, now=None,
) -> Pass:  # fmt: skip
    """Attempt every due alert (of one period, if given) once; never raises."""
    done = Pass(notes=[])
    try:
        register = AlertRegister(store)
        clock = now or (lambda: dt.datetime.now(dt.UTC))
        started, down = time.monotonic(), set()
        for alert in register.due(clock(), period):
            target, problem = _target(alert, settings)
            if problem or target in down or time.monotonic() - started > budget_seconds:
                done.pending += 1
                if problem and problem not in done.notes:
                    done.notes.append(problem)
                continue
            if not register.claim(alert, target, worker, clock()):
                continue  # another sender has this attempt
            attempt = int(alert["attempts"]) + 1
            ok, status, error = _send(alert, target, settings)
            if ok:
                register.finish(alert["alert_id"], attempt, "delivered", clock(), status)
                done.delivered += 1
                continue
            wait = min(settings.retry_seconds * 2 ** (attempt - 1), settings.retry_cap_seconds)
            register.finish(alert["alert_id"], attempt, "failed", clock(), status, error,
                            clock() + dt.timedelta(seconds=wait))  # fmt: skip
            done.failed += 1
            down.add(target)
    except Exception as error:  # noqa: BLE001 - a delivery problem must never stop the billing
        done.notes.append(f"alert delivery stopped: {type(error).__name__}: {error}")
    return done


def _target(alert: dict[str, Any], settings: AlertSettings) -> tuple[str, str | None]:
    if alert["channel"] == "webhook":
        url = alert["recipient"] if isinstance(alert["recipient"], str) else settings.webhook_url
        if not url:
            return "", "webhook alerts wait for CONSUMPTION_ALERT_WEBHOOK_URL (or a recipient)"
        if not settings.webhook_secret:
            return "", "webhook alerts wait for CONSUMPTION_ALERT_WEBHOOK_SECRET (never unsigned)"
        return url, None
    if not settings.smtp_host:
        return "", "email alerts wait for CONSUMPTION_SMTP_HOST"
    return f"smtp://{settings.smtp_host}:{settings.smtp_port}", None


def _send(alert: dict[str, Any], target: str, settings: AlertSettings):
    try:
        if alert["channel"] == "webhook":
            return _post(alert, target, settings)
        return _mail(alert, settings)
    except Exception as error:  # noqa: BLE001 - every failure is recorded and retried
        return False, None, f"{type(error).__name__}: {error}"[:500]


def _post(alert: dict[str, Any], url: str, settings: AlertSettings):
    body = payload(alert)
    stamp = str(int(time.time()))
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "consumption-pipeline-alerts",
        IDEMPOTENCY_HEADER: alert["alert_id"], TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: signature(settings.webhook_secret, stamp, body),
    })  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=settings.timeout_seconds) as answer:
            return 200 <= answer.status < 300, answer.status, None
    except urllib.error.HTTPError as error:
        return False, error.code, f"HTTP {error.code} {error.reason}"[:500]


def _mail(alert: dict[str, Any], settings: AlertSettings):
    message = EmailMessage()
    message["From"], message["To"] = settings.smtp_sender, alert["recipient"]
    message["Subject"] = subject(alert)
    message["Message-ID"] = f"<{alert['alert_id']}@consumption-pipeline>"
    message[IDEMPOTENCY_HEADER] = alert["alert_id"]
    message.set_content(text(alert) + "\n\n" + payload(alert).decode() + "\n")
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port,
                      timeout=settings.timeout_seconds) as smtp:  # fmt: skip
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password)
        refused = smtp.send_message(message)
    if refused:
        return False, None, f"refused: {sorted(refused)}"
    return True, 250, None


def subject(alert: dict[str, Any]) -> str:
    return f"[consumption alert] {alert['account_id']}: {describe(alert)}"


def describe(alert: dict[str, Any]) -> str:
    """One line: what crossed which threshold, on which day."""
    value, threshold = number_text(alert["value"]), number_text(alert["threshold"])
    what = {
        "consumed_share": f"{value}% consumed (threshold {threshold}%)",
        "balance_below": f"balance {value} below {threshold}",
        "exhaustion_within_days": f"runs dry in {value} days (threshold {threshold})",
        "overage_amount": f"overage {value} {alert['unit']} (threshold {threshold})",
    }.get(alert["kind"], f"{alert['kind']} {value} (threshold {threshold})")
    resource = (
        f" {alert['usage_resource_id']}" if isinstance(alert["usage_resource_id"], str) else ""
    )
    subject_ = f"{alert['subject_type']} {alert['subject_id']}"
    return f"{subject_}{resource if alert['subject_type'] != 'wallet' else ''}: {what} on " \
           f"{pd.Timestamp(alert['as_of']):%Y-%m-%d}"  # fmt: skip


def text(alert: dict[str, Any]) -> str:
    return (f"Rule {alert['rule_id']} ({alert['kind']}) fired for account {alert['account_id']} "
            f"in period {pd.Timestamp(alert['period']):%Y-%m}: {describe(alert)}.")  # fmt: skip
