"""The shipped sample run once through the CLI on SQLite, shared by the audit tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from consumption_pipeline.cli import main
from consumption_pipeline.defs.resources import SourceDirectory
from consumption_pipeline.domain.catalog import Catalog
from consumption_pipeline.storage.settings import DEFAULT_SOURCE

AS_OF = "2026-11-25"
SAMPLE_RUN = ["--from", "2026-09", "--to", "2026-11", "--as-of", AS_OF]


@dataclass(frozen=True)
class SampleRun:
    url: str  # the warehouse
    home: Path  # the Dagster instance the runs are recorded in
    folder: Path


def new_dagster_home(folder: Path) -> Path:
    home = folder / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return home


def run_cli(home: Path, *args: str) -> int:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(home))
        return main(list(args))


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SampleRun]:
    folder = tmp_path_factory.mktemp("audited_sample")
    home = new_dagster_home(folder)
    url = f"sqlite:///{folder / 'warehouse.db'}"
    assert (
        run_cli(home, "run", "--source", str(DEFAULT_SOURCE), "--warehouse", url, *SAMPLE_RUN) == 0
    )
    yield SampleRun(url, home, folder)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return SourceDirectory(path=str(DEFAULT_SOURCE)).catalog()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, sqlite_url, postgres_url) -> Iterator[sa.Engine]:
    """An engine on a new SQLite file, then on the session's PostgreSQL database."""
    url = sqlite_url if request.param == "sqlite" else postgres_url
    if request.param == "sqlite":
        Path(sa.make_url(url).database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)
    yield engine
    engine.dispose()
