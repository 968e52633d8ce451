"""Real databases for the tests: SQLite in a temporary folder, PostgreSQL in a throwaway one."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

# The server the suite needs; override for another host. Trust auth, so no password in the URL.
POSTGRES_SERVER = os.environ.get(
    "CONSUMPTION_PIPELINE_TEST_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432"
)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database for this session, dropped at the end. Fails (never skips) without a server:
    the PostgreSQL half of the suite is not optional."""
    name = f"cp_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(f"{POSTGRES_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as error:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_SERVER} (user postgres, trust auth); "
            f"start it or set CONSUMPTION_PIPELINE_TEST_POSTGRES.\n{error}",
            pytrace=False,
        )
    try:
        yield f"{POSTGRES_SERVER}/{name}"
    finally:
        with admin.connect() as conn:  # FORCE: engines a test forgot to dispose still hold sessions
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file in a folder that does not exist yet (the warehouse creates it)."""
    return f"sqlite:///{tmp_path / 'warehouse' / 'warehouse.sqlite'}"
