"""The lake: event-level tables (tables.LAKE_TABLES) as one Parquet file per table and period.

Millions of events a period are written once and read whole by the next stage, which a columnar
file does in a fraction of the time a SQL round trip takes. The root is a local directory or any
URL that Arrow's file systems open (``s3://bucket/prefix``, ``gs://...``)::

    <root>/<table>/period=2026-10-01/data.parquet

A period's file is written beside its final name and moved into place, so a reader sees the old
file or the new one, never half of one. Frames come back in the boundary types of warehouse.py.
"""

from __future__ import annotations

import functools
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import sqlalchemy as sa

from consumption_pipeline.storage.cluster import mapped
from consumption_pipeline.storage.tables import DISTINCT_COLUMNS, LAKE_TABLES, TABLES
from consumption_pipeline.storage.wire import (
    check_known,
    empty_wire,
    kind_of,
    period_day,
    projection,
    to_frame,
)

_FILE = "data.parquet"
_BATCH_ROWS = 1 << 20  # rows read at a time by read_batches


class Lake:
    """The lake tables under one root (a local path or a file-system URL)."""

    def __init__(self, root: str) -> None:
        self.root = root
        if "://" in root:
            self._fs, self._base = pafs.FileSystem.from_uri(root)
        else:
            self._fs, self._base = pafs.LocalFileSystem(), str(Path(root).resolve())

    def replace_period(
        self, name: str, period: str, wire: pa.Table, where: dict[str, str] | None = None
    ) -> None:
        """Replace the rows of `period` (only those matching `where`, if given) with `wire`
        (a frame converted by wire.to_wire)."""
        if where:
            kept = self._read(_table(name), period_day(period))
            wire = pa.concat_tables([kept.filter(pc.invert(_matching(kept, where))),
                                     _full(kept.schema, wire)])  # fmt: skip
        self.write_period(name, period, [wire])

    def write_period(self, name: str, period: str, wires: Iterable[pa.Table]) -> None:
        """Replace the rows of `period` with `wires` (frames converted by wire.to_wire), each
        written as it comes: a period of any size is written holding one part at a time."""
        day, table = period_day(period), _table(name)
        # Ids and dates repeat: dictionaries pay; for numbers, instants and unique ids they do
        # not. Dates keep their min/max, which let other readers skip row groups by date; ids
        # come in no order, so theirs would span every row group, and cost a third of the write.
        ids = [c.name for c in table.columns if kind_of(c) in ("text", "date")
               and c.name not in DISTINCT_COLUMNS]  # fmt: skip
        dates = [c.name for c in table.columns if kind_of(c) == "date"]
        # Text ids go in as Arrow dictionaries (a categorical's are written as they are, not
        # decoded and hashed again); the file keeps no Arrow schema, so readers get plain text.
        schema = pa.schema([
            pa.field(f.name, pa.dictionary(pa.int32(), f.type))
            if f.name in ids and pa.types.is_string(f.type) else f
            for f in empty_wire(table).schema
        ])  # fmt: skip

        def write(partial: str) -> None:
            with (
                self._fs.open_output_stream(partial) as sink,
                pq.ParquetWriter(sink, schema, compression="zstd", use_dictionary=ids,
                                 write_statistics=dates, store_schema=False) as writer,
                ThreadPoolExecutor(1) as background,
            ):  # fmt: skip
                # A part is encoded and compressed (without the GIL) while the next is made.
                writing = background.submit(lambda: None)
                for wire in wires:
                    writing.result()
                    writing = background.submit(writer.write_table, _full(schema, wire))
                writing.result()

        self._publish(name, day, write)

    def copy_period(self, source: str, target: str, period: str) -> None:
        """Make `target`'s rows of `period` those of `source` (the same columns): a file copy."""
        day = period_day(period)
        if [c.name for c in _table(source).columns] != [c.name for c in _table(target).columns]:
            raise ValueError(f"lake tables {source!r} and {target!r} differ in columns")
        original = self._path(source, day)
        if not self._exists(original):
            self.replace_period(target, period, empty_wire(_table(target)))
            return
        self._publish(target, day, lambda partial: self._fs.copy_file(original, partial))

    def read_period(
        self,
        name: str,
        period: str,
        where: dict[str, str] | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The rows of `period` (and matching `where`); only `columns`, if given."""
        table = _table(name)
        check_known(table, where or {})
        wire = self._read(table, period_day(period))
        if where:
            wire = wire.filter(_matching(wire, where))
        return to_frame(table if columns is None else projection(table, columns), wire)

    def read_batches(
        self, name: str, period: str, columns: Sequence[str] | None = None
    ) -> Iterator[pd.DataFrame]:
        """The rows of `period` a part at a time; only `columns`, if given. Text columns with
        repeating values (all but DISTINCT_COLUMNS) come as categoricals: ids repeat millions of
        times, and a categorical holds each once."""
        table = _table(name)
        view = table if columns is None else projection(table, columns)
        path = self._path(name, period_day(period))
        if not self._exists(path):
            return
        with self._fs.open_input_file(path) as source:
            file = pq.ParquetFile(source, read_dictionary=_repeating(view))
            for batch in file.iter_batches(_BATCH_ROWS, columns=[c.name for c in view.columns]):
                yield to_frame(view, pa.Table.from_batches([batch]))

    def mapped_parts(
        self, name: str, period: str, columns: Sequence[str], function: Callable, address: str
    ) -> list:
        """`function` of each part (row group) of the rows of `period`, with only `columns`, in
        order: as tasks on the Dask cluster at `address`, whose workers read the lake
        themselves, or here (no address)."""
        path = self._path(name, period_day(period))
        if not self._exists(path):
            return []
        with self._fs.open_input_file(path) as source:
            groups = pq.ParquetFile(source).num_row_groups
        root = self.root if "://" in self.root else self._base
        task = functools.partial(_part_of, root=root, name=name, period=period,
                                 columns=list(columns), function=function)  # fmt: skip
        return mapped(task, range(groups), address)

    def read_periods(self, name: str, periods: Sequence[str]) -> pd.DataFrame:
        table = _table(name)
        wires = [self._read(table, period_day(p)) for p in periods]
        return to_frame(table, pa.concat_tables(wires) if wires else empty_wire(table))

    def periods(self, name: str) -> list[str]:
        """The periods that have a file of `name`, sorted, as 'YYYY-MM-01'."""
        selector = pafs.FileSelector(f"{self._base}/{_table(name).name}", allow_not_found=True)
        folders = [info.base_name for info in self._fs.get_file_info(selector)]
        return sorted(f.removeprefix("period=") for f in folders if f.startswith("period="))

    def uri(self, name: str, period: str) -> str:
        """Where the file of `name` for `period` is, as a URL (file:// for a local lake)."""
        path = self._path(name, period_day(period))
        scheme = self.root.split("://", 1)[0] if "://" in self.root else "file"
        return f"{scheme}://{urllib.parse.quote(path, safe='/=')}"

    def aside(self, folder: str) -> tuple[pafs.FileSystem, str]:
        """The file system and a folder beside the tables (no table has its name), for what the
        lake keeps of its sources."""
        return self._fs, f"{self._base}/_{folder}"

    def _path(self, name: str, day: date) -> str:
        return f"{self._base}/{name}/period={day.isoformat()}/{_FILE}"

    def _exists(self, path: str) -> bool:
        return self._fs.get_file_info(path).type != pafs.FileType.NotFound

    def _publish(self, name: str, day: date, write: Callable[[str], None]) -> None:
        """Have `write` fill a hidden file beside the period's file, then move it into place."""
        final = self._path(name, day)
        folder = final.rsplit("/", 1)[0]
        self._fs.create_dir(folder, recursive=True)
        partial = f"{folder}/.{uuid.uuid4().hex}.partial"
        try:
            write(partial)
        except BaseException:
            if self._exists(partial):
                self._fs.delete_file(partial)
            raise
        self._fs.move(partial, final)

    def _read(self, table: sa.Table, day: date) -> pa.Table:
        path = self._path(table.name, day)
        if not self._exists(path):
            return empty_wire(table)
        return pq.read_table(path, filesystem=self._fs)


def _part_of(group: int, root: str, name: str, period: str, columns: list[str], function):
    """`function` of one row group of a lake file, read where this task runs."""
    lake, view = Lake(root), projection(_table(name), columns)
    with lake._fs.open_input_file(lake._path(name, period_day(period))) as source:
        file = pq.ParquetFile(source, read_dictionary=_repeating(view))
        part = file.read_row_group(group, columns)
    return function(to_frame(view, part))


def _repeating(view: sa.Table) -> list[str]:
    """The text columns whose values repeat (all but DISTINCT_COLUMNS): read as dictionaries."""
    return [c.name for c in view.columns
            if kind_of(c) == "text" and c.name not in DISTINCT_COLUMNS]  # fmt: skip


def _table(name: str) -> sa.Table:
    if name not in LAKE_TABLES:
        raise ValueError(f"unknown lake table {name!r}; known: {', '.join(sorted(LAKE_TABLES))}")
    return TABLES[name]


def _full(schema: pa.Schema, wire: pa.Table) -> pa.Table:
    """Every column of `schema`, in its order and types (a frame may omit columns: NULL)."""
    columns = [
        wire.column(f.name).cast(f.type) if f.name in wire.column_names
        else pa.nulls(wire.num_rows, f.type)
        for f in schema
    ]  # fmt: skip
    return pa.Table.from_arrays(columns, schema=schema)


def _matching(wire: pa.Table, where: dict[str, str]) -> pa.Array:
    """The rows whose columns equal every value of `where` (not empty)."""
    masks = [pc.fill_null(pc.equal(wire.column(c), v), False) for c, v in where.items()]
    return functools.reduce(pc.and_, masks)
