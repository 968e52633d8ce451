"""The dashboard under load: a real server process (`consumption-pipeline dashboard`) answers
1,000 requests, 50 at a time, across the index and every account and asset page of each period,
on SQLite and on PostgreSQL. Every answer is the page as it was when asked alone, the server
stays up and its memory flat, and a SQLite warehouse is left exactly as it was: no -wal or -shm
beside it, every file of its folder the same bytes with the same times."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from consumption_pipeline.dashboard.app import account_url, asset_url
from consumption_pipeline.dashboard.store import READ_TABLES
from consumption_pipeline.storage.settings import DEFAULT_SOURCE
from consumption_pipeline.storage.warehouse import Warehouse
from consumption_pipeline_tests.dashboard.conftest import PERIODS

REQUESTS = 1000
CONCURRENCY = 50
WARM_UP = 200  # requests before the first memory reading: caches and worker threads filled
RSS_GROWTH_LIMIT_KB = 50 * 1024
START_SECONDS = 60


@pytest.fixture(scope="module")
def pages(catalog) -> list[str]:
    """The index (each period, and a search), and every account and asset page of each period."""
    periods = [date.fromisoformat(p) for p in PERIODS]
    return [
        "/", "/?q=glob", *(f"/?period={p:%Y-%m}" for p in periods),
        *(account_url(a, p) for a in sorted(catalog.accounts) for p in periods),
        *(asset_url(a, p) for a in sorted(catalog.assets) for p in periods),
    ]  # fmt: skip


@pytest.fixture
def idle_sqlite(sqlite_copy: Path) -> Path:
    """The warehouse as a finished run leaves it: in WAL mode, with no -wal or -shm (the last
    connection to close copies the log into the file and removes them)."""
    with contextlib.closing(sqlite3.connect(sqlite_copy)) as conn:
        assert conn.execute("PRAGMA journal_mode = WAL").fetchone() == ("wal",)
    assert [p.name for p in sqlite_copy.parent.iterdir()] == ["warehouse.db"]
    return sqlite_copy


@dataclass
class Server:
    process: subprocess.Popen[str]
    port: int
    log: list[str]  # what the server wrote to stderr

    def rss_kb(self) -> int:
        assert self.process.poll() is None, f"the server died: {''.join(self.log)[-3000:]}"
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE).group(1))


@contextlib.contextmanager
def dashboard_server(url: str, tmp_path: Path) -> Iterator[Server]:
    """`consumption-pipeline dashboard` on a free port of 127.0.0.1, stopped afterwards. It is
    given no Dagster instance, so that the load is on the warehouse."""
    command = [
        sys.executable, "-m", "consumption_pipeline.cli", "dashboard", "--warehouse", url,
        "--source", str(DEFAULT_SOURCE), "--dagster-home", str(tmp_path / "no_dagster_home"),
        "--host", "127.0.0.1", "--port", "0",
    ]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stderr.readline()
        address = re.search(r"http://127\.0\.0\.1:(\d+)/", first)
        assert address, f"the dashboard did not start: {first}{process.stderr.read()}"
        server = Server(process, int(address.group(1)), [])
        threading.Thread(target=lambda: server.log.extend(process.stderr), daemon=True).start()
        _wait_until_up(server)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + START_SECONDS
    while isinstance(fetch(server.port, "/")[0], str):
        assert server.process.poll() is None, "".join(server.log)
        assert time.monotonic() < deadline, f"no answer in {START_SECONDS} s"
        time.sleep(0.05)


def fetch(port: int, path: str) -> tuple[int | str, bytes]:
    """The status and body, or what went wrong with the connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException) as error:
        return f"{type(error).__name__}: {error}", b""
    finally:
        conn.close()


def load(server: Server, pages: list[str], count: int) -> list[tuple[str, int | str, bytes]]:
    """`count` requests, `CONCURRENCY` at a time, going round `pages`."""
    asked = [pages[i % len(pages)] for i in range(count)]
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        answers = list(pool.map(lambda path: fetch(server.port, path), asked))
    return [(path, status, body) for path, (status, body) in zip(asked, answers, strict=True)]


def assert_holds_under_load(server: Server, pages: list[str], count: int = REQUESTS) -> None:
    alone = {path: fetch(server.port, path) for path in pages}
    assert {path: status for path, (status, _) in alone.items()} == dict.fromkeys(pages, 200)
    load(server, pages, WARM_UP)
    rss_before = server.rss_kb()
    started = time.monotonic()
    answers = load(server, pages, count)
    seconds = time.monotonic() - started
    assert server.process.poll() is None, f"the server died: {''.join(server.log)[-3000:]}"
    rss_after = server.rss_kb()
    print(
        f"\n{count} requests in {seconds:.1f} s; server RSS {rss_before} kB after warm-up, "
        f"{rss_after} kB after ({(rss_after - rss_before) / 1024:+.1f} MB)"
    )
    wrong = Counter(
        (path, status) for path, status, body in answers if (status, body) != alone[path]
    )
    assert not wrong, f"answers other than the page alone: {wrong.most_common(5)}"
    assert rss_after - rss_before < RSS_GROWTH_LIMIT_KB


def folder_state(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Every file of the folder (and the folder itself) by name: size, mtime, sha256."""
    state = {".": (0, folder.stat().st_mtime_ns, "")}
    for path in folder.iterdir():
        stat = path.stat()
        state[path.name] = (
            stat.st_size,
            stat.st_mtime_ns,
            hashlib.sha256(path.read_bytes()).hexdigest(),
        )
    return state


def test_sqlite_serves_1000_requests_at_50_and_leaves_the_warehouse_as_it_was(
    idle_sqlite: Path, pages: list[str], tmp_path: Path
):
    before = folder_state(idle_sqlite.parent)
    with dashboard_server(f"sqlite:///{idle_sqlite}", tmp_path / "run") as server:
        assert_holds_under_load(server, pages)
    # No -wal, no -shm, not a byte or a time changed.
    assert folder_state(idle_sqlite.parent) == before


def test_postgresql_serves_1000_requests_at_50(sample, pages: list[str], tmp_path: Path):
    with dashboard_server(sample.urls["postgresql"], tmp_path) as server:
        assert_holds_under_load(server, pages)


def test_a_writer_beside_the_load_never_shows_a_torn_page(
    idle_sqlite: Path, pages: list[str], tmp_path: Path
):
    # The writer rewrites every period with the rows it already holds, connecting and closing
    # each time: the files come and go, and a page read at any moment is the same page.
    url = f"sqlite:///{idle_sqlite}"
    source = Warehouse(url)
    frames = {p: {t: source.read_period(t, p) for t in READ_TABLES} for p in PERIODS}
    source.engine.dispose()
    done, writes = threading.Event(), []

    def write() -> None:
        while not done.is_set():
            writer = Warehouse(url)
            period = PERIODS[len(writes) % len(PERIODS)]
            writer.replace_period(period, frames[period])
            writer.engine.dispose()
            writes.append(period)

    with dashboard_server(url, tmp_path / "run") as server:
        thread = threading.Thread(target=write)
        thread.start()
        try:
            assert_holds_under_load(server, pages, count=500)
        finally:
            done.set()
            thread.join()
    print(f"{len(writes)} periods rewritten meanwhile")
    assert len(writes) >= 10
