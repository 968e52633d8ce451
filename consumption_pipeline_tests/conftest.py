"""Real databases for the tests: SQLite in a temporary folder, PostgreSQL in a throwaway one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from consumption_pipeline_tests.postgres import postgres_database


@pytest.fixture(autouse=True)
def no_current_dagster_instance() -> Iterator[None]:
    """Each test starts with no current Dagster instance: Dagster loads definitions with the
    storage of the instance entered last, and one an earlier test disposed of would fail them."""
    from dagster._core.storage.defs_state.base import set_defs_state_storage

    with set_defs_state_storage(None):
        yield


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A new DAGSTER_HOME for the test (telemetry off)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database for this session, dropped at the end. Fails (never skips) without a server:
    the PostgreSQL half of the suite is not optional."""
    with postgres_database("cp_test") as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file in a folder that does not exist yet (the warehouse creates it)."""
    return f"sqlite:///{tmp_path / 'warehouse' / 'warehouse.sqlite'}"
