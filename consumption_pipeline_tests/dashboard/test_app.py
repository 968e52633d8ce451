"""The dashboard served over HTTP by a real server on 127.0.0.1: status codes, escaping, errors
without internals, and a warehouse left exactly as it was."""

from __future__ import annotations

import hashlib
import shutil
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import uvicorn

from consumption_pipeline.dashboard.app import create_app, open_dashboard
from consumption_pipeline.storage.settings import DEFAULT_SOURCE


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the sample source, so that a test may break its catalog."""
    return Path(shutil.copytree(DEFAULT_SOURCE, tmp_path_factory.mktemp("app") / "source"))


@pytest.fixture(scope="module")
def base_url(sample, source: Path) -> Iterator[str]:
    dashboard = open_dashboard(sample.urls["sqlite"], source, sample.dagster_home)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(dashboard), log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    for _ in range(200):  # the server is up once it answers
        try:
            urllib.request.urlopen(url + "/", timeout=5).close()
            break
        except (urllib.error.URLError, ConnectionError):
            threading.Event().wait(0.05)
    yield url
    server.should_exit = True
    thread.join(timeout=10)
    dashboard.store.engine.dispose()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_pages_of_accounts_and_assets(base_url: str):
    status, index = get(base_url + "/")
    assert status == 200 and 'href="/accounts/ACME?period=2026-11"' in index
    status, page = get(base_url + "/accounts/ACME?period=2026-10")
    assert status == 200 and 'id="scope-id">ACME<' in page and ">$2.00<" in page
    status, page = get(base_url + "/assets/A1?period=2026-10")
    assert status == 200 and 'id="scope-id">A1<' in page


def test_the_grants_and_rates_of_changed_contracts(base_url: str):
    _, page = get(base_url + "/accounts/HOOLI?period=2026-10")
    amendment = 'data-bucket="H1:PRO_CREDITS:2026-10-01:amend:ch-hooli-upsell"'
    row = page[page.index(amendment) : page.index("</tr>", page.index(amendment))]
    assert '<span class="muted origin">amendment</span>' in row
    assert "change ch-hooli-upsell" in row
    assert "Goodwill: API outage on 2026-10-07" in page  # the credit's row and its ledger credit
    _, page = get(base_url + "/accounts/STARK?period=2026-10")
    assert '<span class="muted origin">commitment</span>' in page and "commitment rate" in page


def test_an_asset_page_names_the_buckets_of_other_grants_that_covered_its_usage(base_url: str):
    _, page = get(base_url + "/assets/A1?period=2026-10")
    # A1's own buckets gave 200 (the rollover) + 1,000 (October's grant) = 1,200 credits of its
    # 1,800; A2's account-bound pack, valid from 10 October, gave the other 500; 100 are overage.
    for bucket, consumed in [("A1:PRO_CREDITS:2026-09-01:rollover", "200"),
                             ("A1:PRO_CREDITS:2026-10-01", "1,000")]:  # fmt: skip
        row = page[page.index(f'data-bucket="{bucket}"') :]
        assert row.index(f'<td class="num consumed">{consumed} credits</td>') < row.index("</tr>")
    cover = page[page.index('<li data-cover="A2:PACK_CREDITS:2026-10-10">') :]
    assert cover.startswith('<li data-cover="A2:PACK_CREDITS:2026-10-10">500 credits from ')
    assert '(asset <a href="/assets/A2?period=2026-10">A2</a>)</li>' in cover
    _, page = get(base_url + "/assets/A1?period=2026-09")
    assert 'id="covers"' not in page  # September: A1's own buckets covered all of it


def test_checks_are_labelled_by_outcome_and_kind(base_url: str):
    _, page = get(base_url + "/accounts/ACME?period=2026-10")
    table = page[
        page.index('<table id="checks">') : page.index(
            "</table>", page.index('<table id="checks">')
        )
    ]
    assert ('<td>liable_summaries</td><td>liable_equals_ratable</td><td><span class="badge passed">'
            'passed</span></td><td>blocking</td>') in table  # fmt: skip
    # October's usage moved by more than the factor for some accounts: a failed warning
    assert ('<td>rated_usage</td><td>volume_anomalies</td><td><span class="badge failed">'
            'failed</span></td><td>warning</td>') in table  # fmt: skip
    assert "ERROR" not in table and "WARN" not in table and "Severity" not in table


def test_search_filters_the_index(base_url: str):
    _, page = get(base_url + "/?q=glob")
    assert 'data-account="GLOBEX"' in page and 'data-account="ACME"' not in page
    _, page = get(base_url + "/?q=" + quote("<nobody>"))
    assert "No account matches &lt;nobody&gt;." in page


@pytest.mark.parametrize(
    "path",
    ["/accounts/NOPE", "/assets/NOPE", "/accounts/ACME?period=2030-01",
     "/accounts/ACME?period=October", "/nowhere", "/accounts/" + quote("x' OR '1'='1", safe="")],
)  # fmt: skip
def test_unknown_ids_and_periods_are_a_404_page(base_url: str, path: str):
    status, page = get(base_url + path)
    assert status == 404
    assert "<h1>Not found</h1>" in page and "Traceback" not in page


def test_ids_with_html_and_quotes_are_escaped(base_url: str):
    hostile = """<script>alert("x")</script>'"""
    status, page = get(base_url + "/assets/" + quote(hostile, safe=""))
    assert status == 404
    assert "<script>" not in page
    assert "No asset “&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&#39;”" in page


def test_serving_pages_leaves_the_warehouse_file_unchanged(sample, base_url: str):
    files = [sample.folder / "warehouse.db", sample.folder / "warehouse.db-wal"]

    def digest() -> list[str]:
        return [hashlib.sha256(f.read_bytes()).hexdigest() if f.exists() else "" for f in files]

    before = digest()
    for path in ["/", "/accounts/GLOBEX", "/assets/G1?period=2026-10", "/accounts/UMBRELLA"]:
        assert get(base_url + path)[0] == 200
    assert digest() == before


def test_a_broken_catalog_is_an_error_page_naming_the_cell(base_url: str, source: Path):
    accounts = source / "accounts.csv"
    original = accounts.read_text()
    accounts.write_text(original.replace("ACME,Acme Corporation,USD", "ACME,Acme Corporation,usd"))
    try:
        status, page = get(base_url + "/")
    finally:
        accounts.write_text(original)
    assert status == 500 and "Traceback" not in page
    assert "accounts.csv: row 1 (line 2), column &#39;currency&#39;" in page
    assert get(base_url + "/")[0] == 200  # the fixed catalog is read again
