"""Deployment settings, from the environment so that the CLI and the Dagster UI agree.

Each setting has a parser that refuses a bad value with a sentence saying what was expected;
`Settings.from_env` names the variable and the CLI names the flag, before anything runs."""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import math
import os
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa

from consumption_pipeline.storage import objects
from consumption_pipeline.storage.cluster import dask_address
from consumption_pipeline.storage.locks import LOCK_WAIT_SECONDS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SOURCE = PROJECT_ROOT / "data" / "sample"
DEFAULT_WAREHOUSE = f"sqlite:///{PROJECT_ROOT / 'data' / 'warehouse.db'}"
MAX_GRACE_DAYS = 366  # a period closes within a year of its end
T = TypeVar("T")


def billing_timezone(text: str) -> str:
    """An IANA time zone name, e.g. UTC or Europe/Paris."""
    zones = zoneinfo.available_timezones()
    if text in zones:
        return text
    by_case = {zone.lower(): zone for zone in sorted(zones)}
    same = [text.lower()] if text.lower() in by_case else []  # only the case differs
    close = same or difflib.get_close_matches(text.lower(), by_case, n=3)
    examples = [by_case[c] for c in close] or ["UTC", "Europe/Paris"]
    raise ValueError(f"unknown time zone {text!r}: expected an IANA name such as "
                     f"{' or '.join(examples)}")  # fmt: skip


def month(text: str) -> str:
    """A billing period as YYYY-MM (1900-01 to 2199-12)."""
    found = re.fullmatch(r"(\d{4})-(\d{2})", text)
    if not found or not 1900 <= int(found[1]) <= 2199 or not 1 <= int(found[2]) <= 12:
        raise ValueError(f"expected a billing period YYYY-MM, e.g. 2026-09, got {text!r}")
    return text


def day(text: str) -> str:
    """A calendar date as YYYY-MM-DD that exists (no 30 February)."""
    found = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", text)
    try:
        date = dt.date(*map(int, found.groups())) if found else None
    except ValueError:
        date = None
    if date is None or not 1900 <= date.year <= 2199:
        raise ValueError(f"expected a date YYYY-MM-DD, e.g. 2026-10-04, got {text!r}")
    return text


def as_of(text: str) -> str:
    """The date period statuses are judged on; empty means today."""
    return day(text) if text else ""


def first_period(text: str) -> str:
    """The first billing period, as the first day of its month."""
    if not re.fullmatch(r"\d{4}-\d{2}-01", text):
        raise ValueError(f"expected the first day of a month YYYY-MM-01, got {text!r}")
    return day(text)


def grace_days(text: str) -> int:
    return _bounded_int(text, 0, MAX_GRACE_DAYS, "a whole number of days")


def positive_int(text: str) -> int:
    return _bounded_int(text, 1, 10**9, "a whole number")


def port(text: str) -> int:
    return _bounded_int(text, 0, 65535, "a port number")


WAREHOUSE_EXAMPLE = "sqlite:///data/warehouse.db or postgresql+psycopg2://user@host:5432/billing"
_SQLITE_DRIVERS = ("sqlite", "sqlite+pysqlite")
_POSTGRES_DRIVERS = ("postgresql", "postgresql+psycopg2")  # a bare postgresql:// means psycopg2


def warehouse_url(text: str) -> str:
    """A SQLAlchemy URL of a SQLite file or a PostgreSQL database whose driver is installed. A
    bare `postgresql://` is bound to psycopg2, the installed driver (storage/warehouse.py)."""
    try:
        parsed = sa.make_url(text)
    except (sa.exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ValueError(f"expected a SQLAlchemy URL such as {WAREHOUSE_EXAMPLE}, got "
                         f"{_hide_password(text)!r}") from None  # fmt: skip
    shown = parsed.render_as_string(hide_password=True)
    scheme = parsed.drivername
    installed = parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=True)
    if scheme in ("postgres", "pgsql", "psql"):
        raise ValueError(f"{shown!r}: {scheme!r} is not a SQLAlchemy scheme: write {installed}")
    if parsed.get_backend_name() == "postgresql" and scheme not in _POSTGRES_DRIVERS:
        raise ValueError(f"{shown!r}: driver {scheme!r} is not installed: write {installed}")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"the warehouse is SQLite or PostgreSQL ({WAREHOUSE_EXAMPLE}), got "
                         f"{shown!r}")  # fmt: skip
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite(parsed, shown)
    else:
        _check_postgres(parsed, shown)
    return text


def _check_sqlite(parsed: sa.URL, shown: str) -> None:
    if parsed.drivername not in _SQLITE_DRIVERS:
        raise ValueError(f"driver {parsed.drivername!r} is not installed: use "
                         f"{WAREHOUSE_EXAMPLE}")  # fmt: skip
    if parsed.host:  # sqlite://data/w.db: two slashes make 'data' a host
        path = "/".join(p for p in (parsed.host, parsed.database) if p)
        raise ValueError(f"{shown!r} is not a SQLite URL: write sqlite:///{path} (three slashes "
                         "before a relative path, four before an absolute one)")  # fmt: skip
    if parsed.database in (None, "", ":memory:"):
        raise ValueError(f"{shown!r} names no file (a warehouse in memory is gone when the "
                         f"command ends): write one such as sqlite:///data/warehouse.db")  # fmt: skip


def _check_postgres(parsed: sa.URL, shown: str) -> None:
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise ValueError(f"{shown!r}: port {parsed.port} is not a port number (1 to 65535)")
    if not parsed.database:
        named = parsed.set(drivername="postgresql+psycopg2", database="billing")
        raise ValueError(f"{shown!r} names no database: write one such as "
                         f"{named.render_as_string(hide_password=True)}")  # fmt: skip


def _hide_password(text: str) -> str:
    """A URL that does not parse, for a message: what looks like a password is masked."""
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", text)


def dagster_home(text: str) -> str:
    """The Dagster instance's folder: an absolute path to a folder that exists (Dagster's own
    rule); a command does not create it, so that a mistyped path never starts a new, empty
    instance whose runs the UI does not show."""
    path = Path(text)
    if not path.is_absolute():
        raise ValueError(f"{text!r} is not an absolute path (Dagster needs one): use "
                         f"{path.resolve()}")  # fmt: skip
    if not path.exists():
        raise ValueError(f"{text}: no such folder: create it (mkdir -p {text}) or unset "
                         "DAGSTER_HOME to use the project's data/dagster_home")  # fmt: skip
    if not path.is_dir():
        raise ValueError(f"{text}: not a folder")
    return text


def source_folder(text: str, name: str) -> str:
    """The source directory named by `name` (a flag or a variable), which must exist: an
    absolute path, or an object-store URL (storage/objects.py)."""
    if objects.is_url(text):
        try:
            found = objects.exists(text)
        except (OSError, ValueError) as error:  # an unknown scheme, no credentials, no server
            raise ValueError(f"{name} {text}: cannot be opened: {error}") from None
        if not found:
            raise ValueError(f"{name} {text}: no such folder (no object under it)")
        return text
    path = Path(text).resolve()
    if not path.exists():
        raise ValueError(f"{name} {text}: no such folder")
    if not path.is_dir():
        raise ValueError(f"{name} {text}: not a folder")
    return str(path)


def lock_wait_seconds(text: str) -> float:
    """How long a writer waits for a period another run holds before it stops."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= 86400:  # also refuses NaN and infinity
        raise ValueError(f"expected a number of seconds from 0 to 86400, got {text!r}")
    return seconds


def anomaly_factor(text: str) -> float:
    """The factor of change between periods above which usage is flagged."""
    try:
        factor = float(text)
    except ValueError:
        factor = math.nan
    if not 1 < factor < math.inf:  # also refuses NaN
        raise ValueError(f"expected a number above 1, got {text!r}")
    return factor


def _bounded_int(text: str, low: int, high: int, what: str) -> int:
    if not re.fullmatch(r"[+-]?\d{1,10}", text.strip()) or not low <= int(text) <= high:
        raise ValueError(f"expected {what} from {low} to {high}, got {text!r}")
    return int(text)


@dataclass(frozen=True)
class Settings:
    source_dir: str = str(DEFAULT_SOURCE)
    warehouse_url: str = DEFAULT_WAREHOUSE
    lake_url: str = (
        ""  # event-level tables; empty means beside the warehouse (warehouse.default_lake)
    )
    billing_timezone: str = "UTC"
    grace_days: int = 3
    as_of: str = ""  # YYYY-MM-DD the period status is judged on; empty means today
    first_period: str = "2024-01-01"
    anomaly_factor: float = 3.0  # a warning when usage changes more than this between periods
    lock_wait_seconds: float = LOCK_WAIT_SECONDS
    dask_address: str = ""  # a Dask scheduler for the event-level work; empty: in-process

    def check_period(self, period: str, name: str) -> None:
        """Refuse, naming `name`, a period YYYY-MM that is not a billing period: before the
        first one, or not begun yet in the billing time zone."""
        current = dt.datetime.now(zoneinfo.ZoneInfo(self.billing_timezone)).strftime("%Y-%m")
        if period < self.first_period[:7]:
            raise ValueError(f"{name} is before the first billing period {self.first_period[:7]}")
        if period > current:
            raise ValueError(f"{name} has not begun: the current billing period is {current}")

    @classmethod
    def from_env(cls) -> Settings:
        """The settings from CONSUMPTION_* variables; a bad value stops naming the variable."""
        return cls(
            source_dir=_env("SOURCE_DIR", cls.source_dir, str),
            warehouse_url=_env("WAREHOUSE_URL", cls.warehouse_url, warehouse_url),
            lake_url=_env("LAKE_URL", cls.lake_url, str),
            billing_timezone=_env("BILLING_TIMEZONE", cls.billing_timezone, billing_timezone),
            grace_days=_env("GRACE_DAYS", cls.grace_days, grace_days),
            as_of=_env("AS_OF", cls.as_of, as_of),
            first_period=_env("FIRST_PERIOD", cls.first_period, first_period),
            anomaly_factor=_env("ANOMALY_FACTOR", cls.anomaly_factor, anomaly_factor),
            lock_wait_seconds=_env("LOCK_WAIT_SECONDS", cls.lock_wait_seconds, lock_wait_seconds),
            dask_address=_env("DASK_ADDRESS", cls.dask_address, dask_address),
        )


def _env(name: str, default: T, parse: Callable[[str], T]) -> T:
    variable = f"CONSUMPTION_{name}"
    if variable not in os.environ:
        return default
    try:
        return parse(os.environ[variable])
    except ValueError as error:
        raise ValueError(f"{variable}: {error}") from None


def flag(parse: Callable[[str], T]) -> Callable[[str], T]:
    """`parse` as an argparse type: its sentence becomes the flag's error message."""

    def check(text: str) -> T:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    check.__name__ = parse.__name__
    return check
