"""End to end in headless Chromium: `consumption-pipeline dashboard` serves the sample warehouse;
the browser opens the index, follows a period, an account and an asset link, and the numbers on
the pages equal the warehouse's (plain SQL, formatted here) and the sample's hand-computed ones.

Set DASHBOARD_SCREENSHOT_DIR to keep the account page's screenshot (the README's picture is
taken this way).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect, sync_playwright

from consumption_pipeline.storage.settings import DEFAULT_SOURCE

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
SYMBOLS = {"USD": "$", "EUR": "€", "JPY": "¥"}


def money(amount: Decimal, currency: str) -> str:
    """The sample's currencies as a reader expects them: $2.00, €7.95, ¥34,515."""
    places = 0 if currency == "JPY" else 2
    return f"{SYMBOLS[currency]}{amount:,.{places}f}"


@pytest.fixture(scope="module")
def server(sample) -> Iterator[str]:
    """The CLI command, on a free port of 127.0.0.1; yields its address."""
    command = [sys.executable, "-m", "consumption_pipeline.cli", "dashboard",
               "--warehouse", sample.urls["sqlite"], "--source", str(DEFAULT_SOURCE),
               "--port", "0", "--dagster-home", str(sample.dagster_home)]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stderr.readline()
        found = re.match(r"dashboard: (http://127\.0\.0\.1:\d+)/", line)
        assert found, f"unexpected first line from the dashboard: {line!r}"
        # Keep reading what the server logs, so that a full pipe never blocks it.
        threading.Thread(target=process.stderr.read, daemon=True).start()
        yield found.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def page(server: str) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.set_default_timeout(60_000)
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        yield page
        browser.close()
    # Charts and styles come from the dashboard itself: nothing else was asked for.
    assert requested and all(url.startswith(server + "/") for url in requested), requested


@pytest.fixture(scope="module")
def sql(sample) -> Iterator[sa.Connection]:
    engine = sa.create_engine(sample.urls["sqlite"])
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def decimal(value: object) -> Decimal:
    return Decimal(repr(round(float(value), 6))).normalize()


def test_index_account_and_asset_pages_show_the_warehouses_numbers(
    page: Page, server: str, sql, tmp_path: Path
):
    page.goto(server + "/")
    expect(page.locator("nav.periods strong")).to_have_text("2026-11")
    november = sql.execute(sa.text(
        "SELECT account_id, currency, SUM(amount) FROM liable_summaries "
        "WHERE period = '2026-11-01' GROUP BY account_id, currency"
    )).all()  # fmt: skip
    assert len(november) == 5  # ACME, STARK and VANDELAY have no usage in November
    for account_id, currency, amount in november:
        cell = page.locator(f'tr[data-account="{account_id}"] td.amount')
        expect(cell).to_have_text(money(decimal(amount), currency))
    expect(page.locator('tr[data-account="ACME"] td.amount')).to_have_text("—")

    page.get_by_role("link", name="2026-10").click()
    expect(page.locator("nav.periods strong")).to_have_text("2026-10")
    # The worked example: 1,800 credits in October, 100 of them overage, $2.00.
    acme = page.locator('tr[data-account="ACME"]')
    expect(acme.locator("td.consumption")).to_have_text("1,800 credits")
    expect(acme.locator("td.overage")).to_have_text("100 credits")
    expect(acme.locator("td.amount")).to_have_text("$2.00")

    page.get_by_role("link", name="ACME", exact=True).click()
    expect(page.locator("#scope-id")).to_have_text("ACME")
    assert "period=2026-10" in page.url
    check_account_page(page, sql)
    shot = Path(os.environ.get("DASHBOARD_SCREENSHOT_DIR") or tmp_path) / "dashboard-account.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000  # a page, not a blank

    page.locator("a.asset-link", has_text="A1").click()
    expect(page.locator("#scope-id")).to_have_text("A1")
    check_asset_page(page, sql)


def check_account_page(page: Page, sql) -> None:
    invoice = page.locator('.invoice[data-period="2026-10"]')
    expect(invoice.locator(".badge")).to_have_text("final")
    expect(invoice.locator(".amount-total")).to_have_text("$2.00")
    # Every bucket's balance is the warehouse's closing balance of October.
    closing = dict(sql.execute(sa.text(
        "SELECT bucket_id, closing FROM bucket_balances "
        "WHERE period = '2026-10-01' AND account_id = 'ACME'"
    )).all())  # fmt: skip
    rows = page.locator("tr[data-bucket]")
    expect(rows).to_have_count(len(closing))
    for bucket_id, value in closing.items():
        cell = page.locator(f'tr[data-bucket="{bucket_id}"] td.balance')
        expect(cell).to_have_text(f"{decimal(value):,f} credits")
    expect(page.locator('tr[data-bucket="A1:PRO_CREDITS:2026-09-01"] td.consumed')).to_have_text(
        "800 credits"
    )
    # The wallet: 200 left from September, 0 at the end of October (see test_data).
    statement = page.locator('.statement[data-resource="credits"]')
    expect(statement.locator("tr.opening td.balance")).to_have_text("200 credits")
    expect(statement.locator("tr.closing td.balance")).to_have_text("0 credits")
    expect(statement.locator("tr.entry")).to_have_count(8)
    # One chart per usage resource, drawn on the server: 80 h, 50 h and 130 h.
    expect(page.locator('[data-resource="compute_hours"] svg.chart g.bar')).to_have_count(3)
    rate = page.locator('#rate-table tr[data-resource="credits"]')
    expect(rate.locator("td.source")).to_have_text("price book")
    expect(page.locator("#laws .badge")).to_have_text(["holds"] * 4)
    # The period's asset checks as the instance recorded them (or that there are none).
    expect(page.locator("#checks-problem")).to_have_count(0)
    expect(page.locator("#checks, #no-checks")).to_have_count(1)


def check_asset_page(page: Page, sql) -> None:
    lines = sql.execute(sa.text(
        "SELECT period, amount FROM liable_summaries WHERE asset_id = 'A1' ORDER BY period"
    )).all()  # fmt: skip
    assert len(lines) == 2  # September and October; no usage in November
    for period, amount in lines:
        cell = page.locator(f'.invoice[data-period="{str(period)[:7]}"] td.amount')
        expect(cell).to_have_text(money(decimal(amount), "USD"))
    # A1's buckets only: the PRO grants and the rollover, not A2's PACK.
    expect(page.locator("tr[data-bucket]")).to_have_count(3)
    expect(page.locator('tr[data-bucket="A2:PACK_CREDITS:2026-10-10"]')).to_have_count(0)


def test_an_unknown_id_with_html_is_a_not_found_page(page: Page, server: str):
    page.goto(server + "/accounts/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    expect(page).to_have_title("Not found · Usage dashboard")
    expect(page.locator("#message")).to_have_text(
        "No account “<script>alert(1)</script>” in the catalog or the warehouse."
    )
    expect(page.locator("script")).to_have_count(0)
