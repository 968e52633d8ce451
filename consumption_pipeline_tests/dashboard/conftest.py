"""One warehouse filled by the real pipeline from the shipped sample, shared by the dashboard tests:
the CLI runs 2026-09..11 into SQLite on a fresh Dagster instance, and the warehouse's own writer
copies every period into a fresh PostgreSQL database, so both backends hold the same rows."""

from __future__ import annotations

import contextlib
import gc
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from consumption_pipeline.cli import main
from consumption_pipeline.dashboard.catalog import CatalogView, load_catalog
from consumption_pipeline.dashboard.store import READ_TABLES, ReadOnlyWarehouse
from consumption_pipeline.storage.settings import DEFAULT_SOURCE
from consumption_pipeline.storage.warehouse import Warehouse
from consumption_pipeline_tests.e2e.conftest import fresh_warehouse

PERIODS = ["2026-09-01", "2026-10-01", "2026-11-01"]
SAMPLE_RUN = ["--from", "2026-09", "--to", "2026-11", "--as-of", "2026-11-25"]
BACKENDS = ["sqlite", "postgresql"]


@dataclass(frozen=True)
class Sample:
    urls: dict[str, str]  # backend -> warehouse URL
    dagster_home: Path
    folder: Path


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sample]:
    folder = tmp_path_factory.mktemp("dashboard")
    home = folder / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    sqlite_url = f"sqlite:///{folder / 'warehouse.db'}"
    with pytest.MonkeyPatch.context() as env, fresh_warehouse("postgresql", folder) as pg_url:
        env.setenv("DAGSTER_HOME", str(home))
        run = ["run", "--source", str(DEFAULT_SOURCE), "--warehouse", sqlite_url, *SAMPLE_RUN]
        assert main(run) == 0
        _copy(sqlite_url, pg_url)
        # The run's engines close with their last reference: collect them now, so that the
        # last connection copies the log into the file and no writer's close lands in a test.
        gc.collect()
        yield Sample({"sqlite": sqlite_url, "postgresql": pg_url}, home, folder)


def _copy(source_url: str, target_url: str) -> None:
    source, target = Warehouse(source_url), Warehouse(target_url)
    for period in PERIODS:
        frames = {name: source.read_period(name, period) for name in READ_TABLES}
        target.replace_period(period, frames)
    source.engine.dispose()
    target.engine.dispose()


@pytest.fixture(scope="session")
def catalog() -> CatalogView:
    return load_catalog(DEFAULT_SOURCE)


@pytest.fixture(scope="module", params=BACKENDS)
def store(request: pytest.FixtureRequest, sample: Sample) -> Iterator[ReadOnlyWarehouse]:
    opened = ReadOnlyWarehouse(sample.urls[request.param])
    yield opened
    opened.engine.dispose()


@pytest.fixture
def sqlite_copy(sample: Sample, tmp_path: Path) -> Path:
    """A private copy of the SQLite warehouse (through SQLite's backup, which includes what is
    still in the write-ahead log), for tests that change it."""
    target = tmp_path / "warehouse.db"
    with contextlib.closing(sqlite3.connect(sample.folder / "warehouse.db")) as source:
        with contextlib.closing(sqlite3.connect(target)) as copy:
            source.backup(copy)
    return target
