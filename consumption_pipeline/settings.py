"""Deployment settings, from the environment so that the CLI and the Dagster UI agree."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = PROJECT_ROOT / "data" / "sample"
DEFAULT_WAREHOUSE = f"sqlite:///{PROJECT_ROOT / 'data' / 'warehouse.db'}"


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

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ.get
        return cls(
            source_dir=env("CONSUMPTION_SOURCE_DIR", cls.source_dir),
            warehouse_url=env("CONSUMPTION_WAREHOUSE_URL", cls.warehouse_url),
            lake_url=env("CONSUMPTION_LAKE_URL", cls.lake_url),
            billing_timezone=env("CONSUMPTION_BILLING_TIMEZONE", cls.billing_timezone),
            grace_days=int(env("CONSUMPTION_GRACE_DAYS", str(cls.grace_days))),
            as_of=env("CONSUMPTION_AS_OF", cls.as_of),
            first_period=env("CONSUMPTION_FIRST_PERIOD", cls.first_period),
            anomaly_factor=_factor(env("CONSUMPTION_ANOMALY_FACTOR", str(cls.anomaly_factor))),
        )


def _factor(text: str) -> float:
    try:
        factor = float(text)
    except ValueError:
        factor = float("nan")
    if not factor > 1:  # also refuses NaN
        raise ValueError(f"CONSUMPTION_ANOMALY_FACTOR: expected a number above 1, got {text!r}")
    return factor
