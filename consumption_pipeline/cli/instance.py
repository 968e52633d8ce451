"""What the commands share to run Dagster in this process: the instance's home, quiet logging
and one line for a failed run."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg

from consumption_pipeline.storage import cluster, settings
from consumption_pipeline.storage.settings import DEFAULT_SOURCE, PROJECT_ROOT

DEFAULT_DAGSTER_HOME = PROJECT_ROOT / "data" / "dagster_home"
SOURCE_ENV = "CONSUMPTION_SOURCE_DIR"
WAREHOUSE_ENV = "CONSUMPTION_WAREHOUSE_URL"
DASK_ENV = "CONSUMPTION_DASK_ADDRESS"
# The run's own log (with tracebacks) stays in the instance; the terminal gets one line.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


class RunFailed(RuntimeError):
    """A stage failed; the message says which period, which step and why."""


def dagster_home() -> Path:
    """The Dagster instance's folder, in DAGSTER_HOME for the run: $DAGSTER_HOME when it is set
    (an absolute path to a folder that exists: a command never creates it, so a mistyped path
    does not start a new, empty instance), else data/dagster_home, created with the project's
    dagster.yaml."""
    given = os.environ.get("DAGSTER_HOME", "")
    if given:
        try:
            return Path(settings.dagster_home(given))
        except ValueError as error:
            raise ValueError(f"DAGSTER_HOME: {error}") from None
    DEFAULT_DAGSTER_HOME.mkdir(parents=True, exist_ok=True)
    config = DEFAULT_DAGSTER_HOME / "dagster.yaml"
    if not config.exists():
        config.write_text((PROJECT_ROOT / "deploy" / "local" / "dagster.yaml").read_text())
    os.environ["DAGSTER_HOME"] = str(DEFAULT_DAGSTER_HOME)
    return DEFAULT_DAGSTER_HOME


@contextlib.contextmanager
def open_instance() -> Iterator[dg.DagsterInstance]:
    """The instance of DAGSTER_HOME; one that cannot be opened (a dagster.yaml Dagster refuses)
    is one line naming the folder."""
    import dagster as dg  # deferred: Dagster loads in seconds, a bad flag stops first

    home = os.environ["DAGSTER_HOME"]
    _logs_without_waiting(Path(home))
    try:
        instance = dg.DagsterInstance.get()
    except Exception as error:  # noqa: BLE001 - whatever Dagster raises, one line naming the home
        said = " ".join(str(error).split()) or "Dagster refused it"
        raise ValueError(f"DAGSTER_HOME: {home}: cannot open the Dagster instance (its "
                         f"dagster.yaml?): {said[:300]}") from None  # fmt: skip
    with instance:
        yield instance


def _logs_without_waiting(home: Path) -> None:
    """Put the instance's own SQLite files (its runs and event logs) in write-ahead-log mode with
    normal sync: an event is stored without waiting for the disk (a run writes hundreds; this
    halves a sample run), and a power cut may lose the last events but never corrupts a file.
    The warehouse keeps its own settings (storage/warehouse.py)."""
    import sqlalchemy as sa

    folder = str(home.resolve())

    def on_connect(connection, _record) -> None:
        if not isinstance(connection, sqlite3.Connection):
            return
        name = connection.execute("PRAGMA database_list").fetchone()[2]
        if name and str(Path(name).resolve()).startswith(folder + os.sep):
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")

    if not sa.event.contains(sa.engine.Engine, "connect", on_connect):
        sa.event.listen(sa.engine.Engine, "connect", on_connect)


def add_dask_flag(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--dask", metavar="ADDRESS", type=settings.flag(cluster.dask_address),
        help="Dask scheduler the event-level work runs on, e.g. tcp://10.0.0.5:8786 (default: "
             f"${DASK_ENV}, else in this process)",
    )  # fmt: skip


def dask_of(given: str | None) -> str:
    """The Dask scheduler's address (--dask, else $CONSUMPTION_DASK_ADDRESS, else none), checked
    reachable before any run starts."""
    address = given if given is not None else settings.Settings.from_env().dask_address
    if address:
        with named("--dask" if given is not None else DASK_ENV):
            cluster.reachable(address)
    return address


def warehouse_of(given: str | None) -> tuple[str, str]:
    """The warehouse URL and what gave it: --warehouse, else $CONSUMPTION_WAREHOUSE_URL (both
    checked when read), else the default SQLite file."""
    if given is not None:
        return given, "--warehouse"
    if WAREHOUSE_ENV in os.environ:
        return settings.Settings.from_env().warehouse_url, WAREHOUSE_ENV
    return settings.DEFAULT_WAREHOUSE, "the default warehouse"


@contextlib.contextmanager
def named(name: str) -> Iterator[None]:
    """A warehouse that cannot be opened is named with the flag or variable that gave it."""
    try:
        yield
    except (ValueError, OSError) as error:
        raise ValueError(f"{name}: {error}") from None


def source_folder(given: str | None) -> str:
    """The source directory: --source, else $CONSUMPTION_SOURCE_DIR, else the shipped sample;
    a folder that does not exist is named with the flag or variable that gave it."""
    if given is not None:
        return settings.source_folder(given, "--source")
    if os.environ.get(SOURCE_ENV):
        return settings.source_folder(os.environ[SOURCE_ENV], SOURCE_ENV)
    return settings.source_folder(str(DEFAULT_SOURCE), "the sample source")


def failure(result) -> str:
    import dagster as dg  # deferred: loaded by then, but not by a command that stops at a flag

    # A failed blocking check explains the run better than the step error it raises.
    checks = [e.asset_check_evaluation_data for e in result.all_events
              if e.event_type_value == "ASSET_CHECK_EVALUATION"]  # fmt: skip
    failed = [c for c in checks
              if not c.passed and c.blocking and c.severity == dg.AssetCheckSeverity.ERROR]  # fmt: skip
    if failed:
        return "; ".join(f"blocking check '{c.check_name}' on {c.asset_key.to_user_string()} "
                         f"failed: {c.description}" for c in failed)  # fmt: skip
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error.cause is not None:
                error = error.cause
            text = error.message.strip()
            own = re.match(r"consumption_pipeline(\.\w+)+: ", text)  # our errors say it all
            return f"step '{event.step_key}' failed: {text[own.end() :] if own else text}"
    return "the run failed"
