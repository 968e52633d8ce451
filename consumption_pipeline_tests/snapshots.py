"""The warehouse's tables as frames, to compare two runs."""

from __future__ import annotations

import pandas as pd

from consumption_pipeline.storage.tables import TABLES
from consumption_pipeline.storage.warehouse import Warehouse


def snapshot(url: str, periods: list[str], lake: str = "") -> dict[str, pd.DataFrame]:
    """Every period table of the warehouse (and its lake) over `periods`, in a canonical row
    order."""
    store = Warehouse(url, lake)
    tables = {}
    for name in TABLES:
        frame = store.read_periods(name, periods)
        tables[name] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return tables
