"""The account page's Alerts section over the sample warehouse: the alerts fired in the period
with their delivery state, and the rules that watch the account (data/sample/alert_rules.csv)."""

from __future__ import annotations

import socket
import threading
import urllib.request
from collections.abc import Iterator
from datetime import date

import pytest
import uvicorn

from consumption_pipeline.dashboard.alerts import account_alerts, watching_rules
from consumption_pipeline.dashboard.app import create_app, open_dashboard
from consumption_pipeline.dashboard.store import ReadOnlyWarehouse
from consumption_pipeline.storage.settings import DEFAULT_SOURCE

OCTOBER = date(2026, 10, 1)


@pytest.fixture(scope="module")
def sqlite_store(sample) -> Iterator[ReadOnlyWarehouse]:
    opened = ReadOnlyWarehouse(sample.urls["sqlite"])
    yield opened
    opened.engine.dispose()


def test_acme_october_alerts_fired_and_pending_without_a_configured_channel(sqlite_store):
    # The worked example: ACME's credits are all drawn on 10-20 (1,700 of 1,700), with 100
    # credits of overage at $0.02 = $2.00 (> $1); PACK's bucket emptied on 10-20, so the forecast
    # of 11-01 sees it exhausted (0 days). No webhook URL or SMTP host is set in the sample run.
    found = account_alerts(sqlite_store, "ACME", OCTOBER)
    assert [(a.as_of, a.rule_id, a.subject, a.value, a.threshold, a.channel, a.status)
            for a in found] == [
        (date(2026, 10, 20), "acme-credits-80", "wallet credits", "100%", "80", "webhook", "pending"),
        (date(2026, 10, 20), "acme-overage", "account ACME", "2 USD", "1", "email", "pending"),
        (date(2026, 11, 1), "runway-7-days", "bucket A2:PACK_CREDITS:2026-10-10", "0 days", "7",
         "none", "recorded"),
    ]  # fmt: skip
    assert all(a.attempts == 0 for a in found)
    assert found[0].what == "wallet credits: 100% consumed (threshold 80%) on 2026-10-20"


def test_a_warehouse_without_alert_tables_has_no_alerts(store):
    # The PostgreSQL copy holds the lifecycle tables only.
    if store.optional_table("alerts") is None:
        assert account_alerts(store, "ACME", OCTOBER) == []


def test_the_rules_that_watch_an_account(catalog):
    assert [(r.rule_id, r.watches, r.resource, r.scope, r.channel)
            for r in watching_rules(catalog, "ACME")] == [
        ("acme-credits-80", "this account", "credits", "wallet", "webhook"),
        ("acme-overage", "this account", "any", "", "email"),
        ("runway-7-days", "every account", "any", "", "none"),
    ]  # fmt: skip
    assert [r.rule_id for r in watching_rules(catalog, "GLOBEX")] == ["runway-7-days"]


@pytest.fixture(scope="module")
def base_url(sample) -> Iterator[str]:
    dashboard = open_dashboard(sample.urls["sqlite"], DEFAULT_SOURCE, sample.dagster_home)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(dashboard), log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/", timeout=5).close()
            break
        except OSError:
            threading.Event().wait(0.05)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


def page(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return answer.read().decode()


def test_the_account_page_shows_its_alerts_and_rules(base_url):
    html = page(f"{base_url}/accounts/ACME?period=2026-10")
    assert '<section id="alerts">' in html and '<a href="#alerts">Alerts</a>' in html
    assert html.count("data-alert=") == 3 and html.count("data-rule=") == 3
    assert "alert-pending" in html and "alert-recorded" in html
    september = page(f"{base_url}/accounts/ACME?period=2026-09")
    assert september.count("data-alert=") == 1  # 800 of 1,000 on 09-15: 80%
    assert 'id="no-alerts"' in page(f"{base_url}/accounts/SOYLENT?period=2026-10")
    assert 'id="alerts"' not in page(f"{base_url}/assets/A1?period=2026-10")
