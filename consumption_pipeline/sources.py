"""Reading the source directory of DOMAIN.md "Inputs": catalog CSVs and usage event files.

Files become text frames; the domain decides what the text means. A file that cannot be read
at all stops with a `SourceError` naming it; a row that cannot be read is kept as a malformed
row (the ingest stage quarantines it).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from consumption_pipeline.domain.catalog import OPTIONAL_FILES, REQUIRED

EVENT_COLUMNS = [
    "event_id",
    "account_id",
    "asset_id",
    "usage_resource_id",
    "quantity",
    "occurred_at",
]
DICTIONARY_COLUMNS = ["account_id", "asset_id", "usage_resource_id"]
EVENT_SUFFIXES = (".csv", ".jsonl", ".parquet")
BATCH_ROWS = 1 << 20  # Parquet rows read at a time
RAW_TEXT_LIMIT = 500  # characters of an unreadable row kept for the quarantine
_NOT_UTF8 = "not UTF-8 text at byte {} of the line: save the file as UTF-8"


class SourceError(ValueError):
    """A source file that cannot be read; the message names the file and what was expected."""


def read_catalog(source: Path) -> dict[str, pd.DataFrame]:
    files = {}
    for name in REQUIRED:
        path = Path(source) / name
        if not path.exists():
            if name in OPTIONAL_FILES:
                continue
            raise SourceError(f"{path}: required catalog file is missing")
        files[name] = _read_csv_text(path)
    return files


def catalog_digest(files: dict[str, pd.DataFrame], *extra: bytes) -> str:
    """A digest of catalog files as read (names, columns and every cell, in order)."""
    digest = hashlib.sha256(b"".join(extra))
    for name in sorted(files):
        frame = files[name]
        digest.update(f"{name}|{list(frame.columns)}|{len(frame)}".encode())
        digest.update(pd.util.hash_pandas_object(frame.astype("str"), index=True).to_numpy())
    return digest.hexdigest()


def _read_csv_text(path: Path) -> pd.DataFrame:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        column = error.start - data.rfind(b"\n", 0, error.start)  # from 1
        raise SourceError(f"{path}: line {line}: {_NOT_UTF8.format(column)}") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise SourceError(f"{path}: empty file, expected a header row")
    header = [h.strip() for h in rows[0]]
    if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
        raise SourceError(f"{path}: line 1: expected comma-separated columns, got {rows[0][0]!r}")
    for number, row in enumerate(rows[1:], start=2):
        if row and len(row) != len(header):
            raise SourceError(
                f"{path}: line {number}: expected {len(header)} fields as in the header, "
                f"got {len(row)}"
            )
    body = [r for r in rows[1:] if r]
    return pd.DataFrame(body, columns=header, dtype="str") if body else pd.DataFrame(columns=header)


def event_files(source: Path) -> list[Path]:
    folder = Path(source) / "usage"
    if not folder.is_dir():
        raise SourceError(f"{folder}: usage folder is missing")
    files = sorted(p for p in folder.rglob("*") if p.suffix in EVENT_SUFFIXES and p.is_file())
    if not files:
        raise SourceError(f"{folder}: no event files (*.csv, *.jsonl, *.parquet)")
    return files


class EventFiles:
    """A source's event files, read again, batch by batch, each time they are iterated: the
    ingest reads them more than once and holds one batch at a time."""

    def __init__(self, source: Path, columns: list[str] | None = None):
        self.root, self.columns = Path(source), columns or EVENT_COLUMNS
        self.paths = event_files(self.root)

    def __iter__(self) -> Iterator[pd.DataFrame]:
        batches = (b for p in self.paths for b in read_event_batches(p, self.root, self.columns))
        # The next batch is read while this one is worked on (Arrow decodes without the GIL).
        with ThreadPoolExecutor(1) as reader:
            upcoming = reader.submit(next, batches, None)
            while (batch := upcoming.result()) is not None:
                upcoming = reader.submit(next, batches, None)
                yield batch

    def only(self, columns: list[str]) -> EventFiles:
        """The same files and batches with only these event columns (Parquet reads no others)."""
        return EventFiles(self.root, columns)


def read_events(path: Path, relative_to: Path | None = None) -> pd.DataFrame:
    """One event file as a frame: the event columns (text, or numbers/instants from Parquet),
    `source_file`, `row_number` and `malformed` (why the row could not be read, else NA)."""
    batches = list(read_event_batches(path, relative_to))
    if len(batches) == 1:
        return batches[0]
    files = pd.api.types.union_categoricals([b["source_file"] for b in batches])
    return pd.concat(batches, ignore_index=True).assign(source_file=files)


def read_event_batches(
    path: Path, relative_to: Path | None = None, columns: list[str] = EVENT_COLUMNS
) -> Iterator[pd.DataFrame]:
    """An event file as frames of at most BATCH_ROWS rows (Parquet) or one frame (CSV, JSONL),
    each as `read_events` describes but with only `columns` of the event columns; row numbers
    count from the file's start."""
    name = str(path.relative_to(relative_to)) if relative_to else path.name
    if path.suffix == ".parquet":
        frames = _events_parquet(path, columns)
    else:
        frames = {".csv": _events_csv, ".jsonl": _events_jsonl}[path.suffix](path)
    for frame in frames:
        for column in columns:
            if column not in frame.columns:
                if column != "asset_id":
                    raise SourceError(f"{path}: missing required column '{column}'")
                frame[column] = pd.Series(pd.NA, index=frame.index, dtype="str")
        # One file name for every row: a categorical holds it once.
        frame["source_file"] = pd.Categorical.from_codes(np.zeros(len(frame), np.int8), [name])
        yield frame[[*columns, "source_file", "row_number", "malformed"]]


def _events_csv(path: Path) -> Iterator[pd.DataFrame]:
    with path.open("rb") as handle:
        first = handle.readline()
    try:
        header = next(csv.reader([first.decode("utf-8-sig").strip()]), [])
    except UnicodeDecodeError as error:
        raise SourceError(f"{path}: line 1: {_NOT_UTF8.format(error.start + 1)}") from None
    if not header:
        raise SourceError(f"{path}: empty file, expected a header row")
    if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
        raise SourceError(f"{path}: line 1: expected comma-separated columns, got {header[0]!r}")
    bad: list[tuple[int, str]] = []

    def keep_bad(row) -> str:
        # row.number counts records, the header being 1 (blank lines are not records).
        problem = f"expected {row.expected_columns} fields, got {row.actual_columns}"
        bad.append((row.number, f"{problem}: {row.text[:RAW_TEXT_LIMIT]}"))
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=keep_bad),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header}, strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid as error:
        raise SourceError(
            _not_utf8(path, header) or f"{path}: cannot be read as CSV: {error}"
        ) from None
    good = table.to_pandas()
    good.columns = [c.strip().lstrip("\ufeff") for c in good.columns]
    bad_lines = {n for n, _ in bad}
    lines = [n for n in range(2, len(good) + len(bad) + 2) if n not in bad_lines]
    good["row_number"] = lines[: len(good)]
    good["malformed"] = pd.Series(pd.NA, index=good.index, dtype="str")
    malformed = pd.DataFrame({"row_number": [n for n, _ in bad], "malformed": [w for _, w in bad]})
    yield pd.concat([good, malformed], ignore_index=True)


def _not_utf8(path: Path, header: list[str]) -> str | None:
    """Where a CSV file stops being UTF-8 text (line and column), if it does."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as error:
                cells = next(csv.reader([raw.decode("utf-8", errors="replace")]), [])
                bad = [h for h, cell in zip(header, cells, strict=False) if "\ufffd" in cell]
                where = f"line {number}" + (f", column '{bad[0]}'" if bad else "")
                return f"{path}: {where}: {_NOT_UTF8.format(error.start + 1)}"
    return None


def _events_jsonl(path: Path) -> Iterator[pd.DataFrame]:
    records, numbers, problems = [], [], []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            record, problem = _json_object(raw, first=number == 1)
            if problem is not None:
                text = raw.decode("utf-8", errors="replace").strip()
                problem = f"{problem}: {text[:RAW_TEXT_LIMIT]}"
            records.append(record)
            numbers.append(number)
            problems.append(problem)
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    # A JSON line has no header: a key missing from every line is a missing field of each event.
    columns = [*frame.columns, *(c for c in EVENT_COLUMNS if c not in frame.columns)]
    frame = frame.reindex(index=range(len(records)), columns=columns)
    for column in frame.columns:
        frame[column] = _as_text(frame[column])
    frame["row_number"] = numbers
    frame["malformed"] = pd.Series(problems, dtype="str")
    yield frame


def _json_object(raw: bytes, first: bool) -> tuple[dict, str | None]:
    """One JSON line as a dict, or why it is not one (a bad line must not hide the others)."""
    try:
        # NaN and Infinity stay text: as floats, pandas would take NaN for a missing value.
        record = json.loads(raw.decode("utf-8-sig" if first else "utf-8"), parse_constant=str)
    except UnicodeDecodeError:
        return {}, "not UTF-8 text"
    except json.JSONDecodeError as error:
        return {}, f"invalid JSON: {error.msg}"
    return (record, None) if isinstance(record, dict) else ({}, "not a JSON object")


def _as_text(values: pd.Series) -> pd.Series:
    """JSON values as text, numbers spelled as written by json (700 and 700.0 stay distinct
    text; the ingest compares them as values)."""
    return values.map(
        lambda v: v if v is None or isinstance(v, str) else json.dumps(v), na_action="ignore"
    ).astype("str")


def _events_parquet(path: Path, columns: list[str]) -> Iterator[pd.DataFrame]:
    try:
        names = pq.read_schema(path).names
        # Ids repeat across millions of events: read them dictionary-encoded (categoricals).
        file = pq.ParquetFile(path, read_dictionary=[c for c in DICTIONARY_COLUMNS if c in names])
        present = [c for c in columns if c in names]
        # Batches within each row group: the same rows whichever columns are read.
        batches = (
            batch
            for group in range(file.num_row_groups)
            for batch in file.iter_batches(BATCH_ROWS, row_groups=[group], columns=present)
        ) if file.metadata.num_rows else None  # fmt: skip
        first = 1
        for batch in batches or [file.schema_arrow.empty_table().select(present)]:
            frame = _nan_as_text(pa.Table.from_batches([batch]) if batches else batch,
                                 "quantity").to_pandas()  # fmt: skip
            frame["row_number"] = np.arange(first, first + len(frame))
            frame["malformed"] = pd.Series(pd.NA, index=frame.index, dtype="str")
            first += len(frame)
            yield frame
    except (pa.ArrowInvalid, OSError) as error:
        raise SourceError(f"{path}: cannot be read as Parquet: {error}") from None


def _nan_as_text(table: pa.Table, column: str) -> pa.Table:
    """pandas reads a float NaN as a missing value: a column holding NaN becomes text ("nan"),
    so that the event is quarantined as non-finite, not as missing."""
    if column not in table.column_names or not pa.types.is_floating(table[column].type):
        return table
    if not pc.any(pc.is_nan(table[column])).as_py():
        return table
    index = table.column_names.index(column)
    return table.set_column(index, column, pc.cast(table[column], pa.string()))
