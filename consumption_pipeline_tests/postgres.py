"""Throwaway databases on the PostgreSQL server the suite needs (it fails, never skips, without
one)."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from consumption_pipeline.storage.warehouse import default_lake

# The server the suite needs; override for another host. Trust auth, so no password in the URL.
POSTGRES_SERVER = os.environ.get(
    "CONSUMPTION_PIPELINE_TEST_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432"
)


@contextlib.contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """A new database named `prefix_<random>`, dropped afterwards with its default lake; yields
    its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
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
        lake = Path(default_lake(f"{POSTGRES_SERVER}/{name}"))
        shutil.rmtree(lake, ignore_errors=True)
        with contextlib.suppress(OSError):  # the folder of default lakes, unless others remain
            lake.parent.rmdir()
