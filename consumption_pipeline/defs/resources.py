"""Resources: where the sources are and which warehouse the stages write."""

import contextlib
import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd

from consumption_pipeline.domain.catalog import Catalog, build_catalog
from consumption_pipeline.storage import objects, sources
from consumption_pipeline.storage.locks import LOCK_WAIT_SECONDS
from consumption_pipeline.storage.source_index import SourceIndex
from consumption_pipeline.storage.warehouse import Warehouse


class SourceDirectory(dg.ConfigurableResource):
    """The source directory of docs/rules.md "Inputs" and the billing clock."""

    path: str  # a folder or an object-store URL (storage/objects.py)
    billing_timezone: str = "UTC"
    grace_days: int = 3
    as_of: str = ""
    anomaly_factor: float = 3.0  # usage changing more than this against the previous period
    dask_address: str = ""  # a Dask scheduler: the event files are indexed on its workers

    def catalog_files(self) -> dict[str, pd.DataFrame]:
        """The catalog files as text, keyed by file name (for the input checks)."""
        return sources.read_catalog(objects.local_folder(self.path))

    def catalog(self) -> Catalog:
        return built_catalog(self.catalog_files())

    def event_files(self, index: SourceIndex | None = None) -> sources.EventFiles:
        """The event files, read batch by batch; their facts kept in `index`, if given."""
        return sources.EventFiles(self.path, index=index, cluster=self.dask_address)

    def today(self) -> pd.Timestamp:
        if self.as_of:
            return pd.Timestamp(self.as_of)
        return pd.Timestamp(dt.datetime.now(ZoneInfo(self.billing_timezone)).date())


def built_catalog(files: dict[str, pd.DataFrame]) -> Catalog:
    """The catalog of these files, built once per process while they stay the same: each step
    of a run reads it, and building it costs more than reading and comparing the files."""
    key = sources.catalog_digest(files)
    if key not in _BUILT:
        _BUILT.clear()  # one catalog is current at a time
        _BUILT[key] = build_catalog(files)
    return _BUILT[key]


_BUILT: dict[str, Catalog] = {}


class WarehouseResource(dg.ConfigurableResource):
    """The SQL warehouse (any SQLAlchemy URL) and its lake (a path or URL; empty: the default)."""

    url: str
    lake: str = ""
    lock_wait_seconds: float = LOCK_WAIT_SECONDS  # before a writer of a held period stops

    def open(self) -> Warehouse:
        return Warehouse(self.url, self.lake)

    @contextlib.contextmanager
    def holding(self, context: dg.AssetExecutionContext) -> Iterator[Warehouse]:
        """The warehouse, with the step's period held from its first read to its last write:
        another run's step of the same period waits (or stops, naming this run), so two runs
        never interleave their reads and writes of one period."""
        store = self.open()
        holder = f"run {context.run.run_id} (step {context.assets_def.node_def.name})"
        with store.period_lock(context.partition_key, holder, self.lock_wait_seconds):
            yield store
