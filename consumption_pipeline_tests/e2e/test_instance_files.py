"""The Dagster instance a command runs on stores its events without waiting for the disk."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa

from consumption_pipeline.cli import main


def journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        return connection.execute("PRAGMA journal_mode").fetchone()[0]


def test_the_instances_sqlite_files_keep_a_write_ahead_log(dagster_home: Path, tmp_path: Path):
    warehouse = tmp_path / "warehouse.db"
    args = ["run", "--from", "2026-09", "--to", "2026-09", "--warehouse", f"sqlite:///{warehouse}"]
    assert main(args) == 0
    files = sorted(dagster_home.rglob("*.db"))
    assert files and {journal_mode(f) for f in files} == {"wal"}  # runs, index, event logs
    # a SQLite file outside the instance, opened through SQLAlchemy in the same process, keeps
    # whatever its owner chose
    plain = tmp_path / "other.db"
    engine = sa.create_engine(f"sqlite:///{plain}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    engine.dispose()
    assert journal_mode(plain) == "delete"
