"""The account page's *Alerts* (README "Alerts"): the alerts of the period (fired, delivered or
pending, with their attempts) from the warehouse tables `alerts` and `alert_deliveries`, and the
rules of `alert_rules.csv` that watch the account. Read-only: the tables are looked up, never
created, and a warehouse without them simply has no alerts yet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from consumption_pipeline.closing.alerts import delivery_state, describe, number_text
from consumption_pipeline.dashboard.catalog import CatalogView
from consumption_pipeline.dashboard.store import ReadOnlyWarehouse


def _text(value) -> str:
    return "" if value is None or pd.isna(value) else str(value)


@dataclass(frozen=True)
class AlertView:
    alert_id: str
    rule_id: str
    kind: str
    subject: str  # e.g. "wallet credits", "bucket A2:PACK_CREDITS:2026-10-10", "account ACME"
    value: str
    threshold: str
    as_of: date
    what: str  # one line, as the notification says it
    channel: str  # webhook, email or "none"
    recipient: str
    status: str  # delivered, pending, recorded (no channel)
    attempts: int
    delivered_at: str
    last_error: str


@dataclass(frozen=True)
class RuleView:
    rule_id: str
    kind: str
    threshold: str
    watches: str  # "this account" or "every account"
    resource: str
    scope: str
    channel: str
    recipient: str


def account_alerts(store: ReadOnlyWarehouse, account_id: str, period: date) -> list[AlertView]:
    """The account's alerts of the period, in the order they fired (by as-of date)."""
    table = store.optional_table("alerts")
    if table is None:
        return []
    found = pd.DataFrame(store.select(table, {"account_id": account_id, "period": period},
                                      order_by=["as_of", "rule_id", "subject_id"]),
                         columns=list(table.c.keys()))  # fmt: skip
    if found.empty:
        return []
    attempts = store.optional_table("alert_deliveries")
    tries = pd.DataFrame(
        store.select(attempts, {"alert_id": list(found["alert_id"])}) if attempts is not None
        else [], columns=list(attempts.c.keys()) if attempts is not None else
        ["alert_id", "attempt", "outcome", "error", "started_at", "finished_at", "next_attempt_at"],
    )  # fmt: skip
    state = delivery_state(found, tries)
    return [_view(r) for r in state.to_dict("records")]


def _view(r: dict[str, Any]) -> AlertView:
    unit, value = _text(r["unit"]), number_text(r["value"])
    return AlertView(
        alert_id=r["alert_id"], rule_id=r["rule_id"], kind=r["kind"],
        subject=f"{r['subject_type']} {r['subject_id']}",
        value=f"{value}%" if unit == "percent" else f"{value} {unit}".strip(),
        threshold=number_text(r["threshold"]), as_of=pd.Timestamp(r["as_of"]).date(),
        what=describe(r), channel=_text(r["channel"]) or "none", recipient=_text(r["recipient"]),
        status=r["status"], attempts=int(r["attempts"]),
        delivered_at="" if pd.isna(r["delivered_at"]) else f"{r['delivered_at']:%Y-%m-%d %H:%M} UTC",
        last_error="" if r["status"] == "delivered" else _text(r["last_error"]),
    )  # fmt: skip


def watching_rules(catalog: CatalogView, account_id: str) -> list[RuleView]:
    """The rules of alert_rules.csv that watch the account: its own and those of every account."""
    return [
        RuleView(
            r.rule_id,
            r.kind,
            r.threshold,
            "this account" if r.account_id else "every account",
            r.usage_resource_id or "any",
            r.scope or ("wallet" if r.kind in ("consumed_share", "balance_below") else ""),
            r.channel or "none",
            r.recipient or "",
        )  # fmt: skip
        for r in catalog.alert_rules
        if r.account_id in (None, account_id)
    ]
