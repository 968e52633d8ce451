"""End-to-end fixtures: a real Dagster instance per test and a fresh warehouse on each backend."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumption_pipeline.storage.settings import DEFAULT_SOURCE
from consumption_pipeline_tests.postgres import postgres_database

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(autouse=True)
def each_test_has_its_dagster_home(dagster_home: Path) -> Path:
    return dagster_home


@contextlib.contextmanager
def fresh_warehouse(backend: str, folder: Path) -> Iterator[str]:
    """A new, empty warehouse: a SQLite file, or a new PostgreSQL database (never skipped)."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'warehouse.db'}"
        return
    with postgres_database("cp_e2e") as url:
        yield url


@pytest.fixture(params=BACKENDS)
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_warehouse(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped sample, for tests that break it on purpose."""
    return Path(shutil.copytree(DEFAULT_SOURCE, tmp_path / "source"))
