"""Real databases for the tests: SQLite in a temporary folder, PostgreSQL in a throwaway one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumption_pipeline.storage.settings import PROJECT_ROOT
from consumption_pipeline_tests.postgres import postgres_database

# What Python, uv and the tools keep in a checkout by themselves.
TOOL_FOLDERS = {".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache"}


def checkout_files() -> set[Path]:
    found = set()
    for folder, subfolders, files in os.walk(PROJECT_ROOT):
        subfolders[:] = [s for s in subfolders if s not in TOOL_FOLDERS]
        found |= {Path(folder) / name for name in files + subfolders}
    return found


@pytest.fixture(scope="session", autouse=True)
def checkout_left_as_found() -> Iterator[None]:
    """The suite writes into temporary folders only: it leaves no file or folder in the
    checkout (a test that did fails the session at its end)."""
    before = checkout_files()
    yield
    left = sorted(str(p.relative_to(PROJECT_ROOT)) for p in checkout_files() - before)
    assert not left, f"the tests left these in the checkout: {', '.join(left)}"


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


@pytest.fixture(scope="session")
def s3() -> Iterator[dict[str, str]]:
    """moto's S3 server on loopback, with the AWS variables pointing at it set for the session
    (so Dask workers started later read them too)."""
    from consumption_pipeline_tests.objectstore import s3_server

    with s3_server() as environment, pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        yield environment
