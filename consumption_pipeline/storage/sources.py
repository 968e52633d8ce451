"""Reading the source directory of docs/rules.md "Inputs": catalog CSVs and usage event files.

Files become text frames; the domain decides what the text means. A file that cannot be read
at all stops with a `SourceError` naming it; a row that cannot be read is kept as a malformed
row (the ingest stage quarantines it).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import itertools
import json
import mmap
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from consumption_pipeline.domain.catalog import OPTIONAL_FILES, REQUIRED
from consumption_pipeline.domain.ingest import IngestError, PartFacts, part_facts
from consumption_pipeline.storage import objects
from consumption_pipeline.storage.cluster import mapped, ordered

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


def read_catalog_file(path: Path) -> pd.DataFrame:
    """One catalog file's cells as text (see `read_catalog`)."""
    return _read_csv_text(Path(path))


def catalog_digest(files: dict[str, pd.DataFrame], *extra: bytes) -> str:
    """A digest of catalog files as read (names, columns and every cell, in order; a missing
    cell is told from any text)."""
    digest = hashlib.sha256(b"".join(extra))
    for name in sorted(files):
        frame = files[name]
        cells = [[None if pd.isna(v) else str(v) for v in frame[c].tolist()] for c in frame]
        digest.update(json.dumps([name, list(frame.columns), cells]).encode())
    return digest.hexdigest()


def _read_csv_text(path: Path) -> pd.DataFrame:
    """A catalog file's cells as text. Rows end at LF, CRLF or a lone CR only (a quoted name may
    hold U+2028 or a vertical tab); each row's first line is kept in `attrs["lines"]` for
    messages, since a quoted line break makes a row span lines."""
    rows, lines = _csv_rows(path, _catalog_text(path))
    if not rows:
        raise SourceError(f"{path}: empty file, expected a header row")
    header = [h.strip() for h in rows[0]]
    if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
        raise SourceError(f"{path}: line 1: expected comma-separated columns, got {rows[0][0]!r}")
    twice = next((h for h in header if header.count(h) > 1), None)
    if twice is not None:
        raise SourceError(
            f"{path}: line {lines[0]}: column {twice!r} appears more than once in the header"
        )
    for row, line in zip(rows[1:], lines[1:], strict=True):
        if len(row) != len(header):
            raise SourceError(
                f"{path}: line {line}: expected {len(header)} fields as in the header, "
                f"got {len(row)}"
            )
        _check_no_nul(path, header, row, line)
    body = rows[1:]
    frame = (
        pd.DataFrame(body, columns=header, dtype="str") if body else pd.DataFrame(columns=header)
    )
    frame.attrs["lines"] = lines[1:]
    return frame


def _catalog_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        before = data[: error.start].decode("utf-8-sig")
        line = len(_LINE_BREAK.findall(before)) + 1
        line_break = max(data.rfind(b"\n", 0, error.start), data.rfind(b"\r", 0, error.start))
        column = error.start - line_break  # from 1
        raise SourceError(f"{path}: line {line}: {_NOT_UTF8.format(column)}") from None


def _csv_rows(path: Path, text: str) -> tuple[list[list[str]], list[int]]:
    """The non-blank rows of a CSV text and the line each starts on."""
    reader = csv.reader(io.StringIO(text, newline=""))
    rows, lines, start = [], [], 1
    try:
        for row in reader:
            if row:
                rows.append(row)
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as error:  # a field beyond the csv module's size limit
        raise SourceError(f"{path}: line {start}: {error}") from None
    return rows, lines


def _check_no_nul(path: Path, header: list[str], row: list[str], line: int) -> None:
    """A NUL is not text: no database stores it in a name or an id."""
    for column, cell in zip(header, row, strict=True):
        if "\x00" in cell:
            raise SourceError(
                f"{path}: line {line}, column {column!r}: holds a NUL character (byte 0), "
                "which is not text: remove it"
            )


def event_files(source: Path) -> list[Path]:
    folder = Path(source) / "usage"
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "usage folder is missing"
        raise SourceError(f"{folder}: {what}")
    named = sorted(p for p in folder.rglob("*") if p.suffix in EVENT_SUFFIXES)
    for path in named:
        if path.is_symlink() and not path.exists():  # a file that is gone, not a file to skip
            raise SourceError(f"{path}: a link to {os.readlink(path)}, which does not exist")
    files = [p for p in named if p.is_file()]
    if not files:
        raise SourceError(f"{folder}: no event files (*.csv, *.jsonl, *.parquet)")
    for path in files:
        try:  # the name is stored with the file's quarantined rows: it must be text
            str(path).encode("utf-8")
        except UnicodeEncodeError:
            shown = os.fsencode(path).decode("utf-8", "backslashreplace")
            raise SourceError(f"{shown}: the file name is not UTF-8 text: rename it") from None
    return files


class EventFiles:
    """A source's event files, read batch by batch, one held at a time: the ingest reads them
    more than once. The facts of each file's batches (domain/ingest.PartFacts) come from the
    `index` (storage/source_index.py) when given, else from reading the file; `parts` then
    reads the chosen batches alone. The source is a path or an object-store URL
    (storage/objects.py); tasks on a cluster read a file by its name under the source."""

    def __init__(
        self, source: Path | str, columns: list[str] | None = None, index=None, cluster: str = ""
    ):
        self.folder = objects.folder(str(source))
        self.root, self.columns, self.index = self.folder.copied(), columns or EVENT_COLUMNS, index
        self.cluster = cluster  # a Dask scheduler's address: the files are indexed there
        self.paths = event_files(self.root)
        self._entries: list[FileEntry] | None = None

    def __iter__(self) -> Iterator[pd.DataFrame]:
        return _read_ahead(
            b for p in self.paths for b in read_event_batches(p, self.root, self.columns)
        )

    def entries(self) -> list[FileEntry]:
        """Each file's digest and the facts of its batches (read once per instance)."""
        if self._entries is None:
            names = [_name(p, self.root) for p in self.paths]
            task = functools.partial(_entry, folder=self.folder, index=self.index)
            self._entries = mapped(task, names, self.cluster)
        return self._entries

    def facts(self) -> list[PartFacts]:
        """The facts of every batch, in file and batch order (the numbers `parts` takes)."""
        return [f for entry in self.entries() for f in entry.facts]

    def digests(self) -> dict[str, str]:
        """Each file's content digest (file_digest), by its path under the source."""
        return {
            _name(p, self.root): e.digest for p, e in zip(self.paths, self.entries(), strict=True)
        }

    def parts(
        self, numbers: list[int], columns: list[str] | None = None
    ) -> Iterator[tuple[int, pd.DataFrame]]:
        """The batches of these numbers (sorted), in order, with only `columns` of the event
        columns if given; no other batch is read whole."""
        where = self._where()

        def chosen() -> Iterator[tuple[int, pd.DataFrame]]:
            for name, group in itertools.groupby(numbers, key=lambda n: where[n][0]):
                mine, path = list(group), self.root / name
                read = read_event_batches(path, self.root, columns or self.columns,
                                          {where[n][1] for n in mine})  # fmt: skip
                for number, frame in itertools.zip_longest(mine, read):
                    if number is None or frame is None:
                        raise _changed(path)
                    yield number, frame

        return _read_ahead(chosen())

    def placed(
        self, numbers: list[int], place: Callable[[int, pd.DataFrame], T]
    ) -> Iterator[tuple[int, T]]:
        """The rows read and `place(number, batch)` of the batches of these numbers (sorted), in
        order, each read where it is placed: on the cluster, if there is one."""
        if not self.cluster:
            return ((len(frame), place(n, frame)) for n, frame in self.parts(numbers))
        where = self._where()
        items = [(n, *where[n]) for n in numbers]
        task = functools.partial(
            _read_and_place, folder=self.folder, columns=self.columns, place=place
        )
        return ordered(task, items, self.cluster)

    def _where(self) -> list[tuple[str, int]]:
        """The file (its name under the source) of each batch number, and the batch's number
        within it."""
        return [(_name(path, self.root), batch)
                for path, entry in zip(self.paths, self.entries(), strict=True)
                for batch in range(len(entry.facts))]  # fmt: skip


def _entry(name: str, folder: objects.LocalFolder | objects.ObjectFolder, index) -> FileEntry:
    """The entry of the file `name` under `folder`, where this task runs."""
    path = folder.fetched(name)
    if index is None:
        return file_entry(path, folder.root)
    return index.entry(path, folder.root, folder.key(name))


def _read_and_place(item: tuple[int, str, int], folder, columns: list[str], place):
    number, name, batch = item
    path = folder.fetched(name)
    frames = list(read_event_batches(path, folder.root, columns, {batch}))
    if len(frames) != 1:
        raise _changed(path)
    return len(frames[0]), place(number, frames[0])


def _changed(path: Path) -> IngestError:
    return IngestError(f"{path}: the file changed while it was read: ingest again")


def _read_ahead(batches: Iterator) -> Iterator:
    """The next batch is read while this one is worked on (Arrow decodes without the GIL)."""
    with ThreadPoolExecutor(1) as reader:
        upcoming = reader.submit(next, batches, None)
        while (batch := upcoming.result()) is not None:
            upcoming = reader.submit(next, batches, None)
            yield batch


@dataclass(frozen=True)
class FileEntry:
    """What the ingest knows of one event file before it reads its batches whole."""

    size: int
    mtime_ns: int
    digest: str  # file_digest of its content
    facts: list[PartFacts]


def file_entry(path: Path, root: Path) -> FileEntry:
    """Read `path` for its digest and the facts of its batches; a file that changes meanwhile
    stops the ingest."""
    before = os.stat(path)
    digest = file_digest(path)
    columns = ["event_id", "occurred_at"]
    facts = [part_facts(batch) for batch in read_event_batches(path, root, columns)]
    after = os.stat(path)
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        raise _changed(path)
    return FileEntry(after.st_size, after.st_mtime_ns, digest, facts)


def file_digest(path: Path) -> str:
    """SHA-256 of the content's length (8 bytes, big-endian) and the content, 32 hex digits:
    the lineage's digest of a file, read a block at a time."""
    sha = hashlib.sha256(os.stat(path).st_size.to_bytes(8, "big"))
    with open(path, "rb") as handle:
        while block := handle.read(1 << 24):
            sha.update(block)
    return sha.hexdigest()[:32]


def _name(path: Path, root: Path) -> str:
    return Path(path).relative_to(root).as_posix()


def read_events(path: Path, relative_to: Path | None = None) -> pd.DataFrame:
    """One event file as a frame: the event columns (text, or numbers/instants from Parquet),
    `source_file`, `row_number` and `malformed` (why the row could not be read, else NA)."""
    batches = list(read_event_batches(path, relative_to))
    if len(batches) == 1:
        return batches[0]
    files = pd.api.types.union_categoricals([b["source_file"] for b in batches])
    return pd.concat(batches, ignore_index=True).assign(source_file=files)


def read_event_batches(
    path: Path,
    relative_to: Path | None = None,
    columns: list[str] = EVENT_COLUMNS,
    batches: set[int] | None = None,
) -> Iterator[pd.DataFrame]:
    """An event file as frames of at most BATCH_ROWS rows (Parquet) or one frame (CSV, JSONL),
    each as `read_events` describes but with only `columns` of the event columns; row numbers
    are the file's lines (CSV: the line a row starts on; JSONL: the line) or rows (Parquet).
    Only the `batches` of these numbers, if given."""
    name = str(path.relative_to(relative_to)) if relative_to else path.name
    if path.suffix == ".parquet":
        frames = _events_parquet(path, columns, batches)
    elif batches is not None and 0 not in batches:
        return
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


def _repeated(names: list[str]) -> str | None:
    """An event column named more than once: which one holds the event's value is unknown."""
    return next((c for c in EVENT_COLUMNS if names.count(c) > 1), None)


# --- CSV ---------------------------------------------------------------------------------------

T = TypeVar("T")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what ends a line: LF, CRLF or a lone CR (old Macs)


def _events_csv(path: Path) -> Iterator[pd.DataFrame]:
    header, quoted = _csv_header(path)
    bad: list[tuple[int, str, str]] = []

    def keep_bad(row) -> str:
        problem = f"expected {row.expected_columns} fields, got {row.actual_columns}"
        bad.append((row.number, problem, row.text))
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=False),
            # Blank lines are read, as rows of empty fields, so that every line is counted. A
            # line break can only sit in a quoted field: only a file with quotes needs the
            # slower chunking that keeps such a field in one row.
            parse_options=pacsv.ParseOptions(
                invalid_row_handler=keep_bad, newlines_in_values=quoted, ignore_empty_lines=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid as error:
        raise SourceError(
            _not_utf8(path, header) or f"{path}: cannot be read as CSV: {error}"
        ) from None
    if table.column_names != header:
        raise SourceError(f"{path}: line 1: the header cannot be read as CSV column names")
    lines, bad_lines = _line_numbers(table, [(n, t) for n, _, t in bad], quoted)
    kept = ~_blank_rows(table)
    events = table.select([i for i, h in enumerate(header) if h.strip() in EVENT_COLUMNS])
    good = (events if kept.all() else events.filter(pa.array(kept))).to_pandas()
    good.columns = [c.strip() for c in good.columns]
    good["row_number"] = lines[kept]
    good["malformed"] = pd.Series(pd.NA, index=good.index, dtype="str")
    details = [f"{problem}: {text[:RAW_TEXT_LIMIT]}" for _, problem, text in bad]
    malformed = pd.DataFrame({"row_number": bad_lines, "malformed": details})
    yield pd.concat([good, malformed], ignore_index=True)


def _csv_header(path: Path) -> tuple[list[str], bool]:
    """The header's fields as written (without a BOM), and whether the file holds a quote."""
    with path.open("rb") as handle:
        if not os.fstat(handle.fileno()).st_size:
            raise SourceError(f"{path}: empty file, expected a header row")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            quoted = data.find(b'"') >= 0
            newline = data.find(b"\n")
            stop = newline if newline >= 0 else len(data)
            cr = data.find(b"\r", 0, stop)  # a file of CR-ended lines has no LF
            first = data[: cr if cr >= 0 else stop]
    try:
        header = next(csv.reader([first.decode("utf-8-sig")]), [])
    except UnicodeDecodeError as error:
        raise SourceError(f"{path}: line 1: {_NOT_UTF8.format(error.start + 1)}") from None
    if not header:
        raise SourceError(f"{path}: line 1: expected a header row, got a blank line")
    if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
        raise SourceError(f"{path}: line 1: expected comma-separated columns, got {header[0]!r}")
    if (name := _repeated([h.strip() for h in header])) is not None:
        raise SourceError(f"{path}: line 1: column '{name}' appears more than once in the header")
    return header, quoted


def _line_numbers(
    table: pa.Table, bad: list[tuple[int, str]], quoted: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The line each row starts on, for the table's rows and for the bad (number, text) rows.
    Records are numbered from the header's 1, bad ones included; a record spans one line plus
    the line breaks inside its quoted fields."""
    records = 1 + table.num_rows + len(bad)
    numbers = np.array([n for n, _ in bad], np.int64)
    good = np.ones(records + 1, bool)
    good[:2], good[numbers] = False, False
    span = np.ones(records + 1, np.int64)
    span[0] = 0
    if quoted:
        span[good] += _line_breaks(table)
        span[numbers] += np.array([len(_LINE_BREAK.findall(t)) for _, t in bad], np.int64)
    first = 1 + np.cumsum(span) - span
    return first[good], first[numbers]


def _line_breaks(table: pa.Table) -> np.ndarray:
    """The line breaks inside each row's fields."""
    breaks = np.zeros(table.num_rows, np.int64)
    for column in table.columns:
        if pc.any(pc.match_substring_regex(column, "[\r\n]")).as_py():
            breaks += np.asarray(pc.count_substring_regex(column, _LINE_BREAK.pattern))
    return breaks


def _blank_rows(table: pa.Table) -> np.ndarray:
    """Rows without a character in any field: blank lines (or lines of bare commas)."""
    blank = np.ones(table.num_rows, bool)
    for column in table.columns:
        if not blank.any():
            break
        blank &= np.asarray(pc.equal(pc.binary_length(column), 0))
    return blank


def _not_utf8(path: Path, header: list[str]) -> str | None:
    """Where a CSV file stops being UTF-8 text (line and column), if it does."""
    with path.open("rb") as handle:
        for number, raw in enumerate(_lines(handle), start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as error:
                cells = next(csv.reader([raw.decode("utf-8", errors="replace")]), [])
                bad = [h for h, cell in zip(header, cells, strict=False) if "\ufffd" in cell]
                where = f"line {number}" + (f", column '{bad[0].strip()}'" if bad else "")
                return f"{path}: {where}: {_NOT_UTF8.format(error.start + 1)}"
    return None


def _lines(handle: BinaryIO) -> Iterator[bytes]:
    """A file's lines without their ends, whichever of LF, CRLF or CR ends them."""
    for raw in handle:
        yield from raw.splitlines()


# --- JSON lines --------------------------------------------------------------------------------

ID_FIELDS = frozenset(["event_id", "account_id", "asset_id", "usage_resource_id"])


class _Number(str):
    """A JSON number as written: parsed as a float it could lose digits before the quantity
    rules see it (1.2345678 with 7 decimals, integers past 2**53)."""


class _RepeatedKeys(dict):
    """A JSON object with a key given more than once (json would keep its last value)."""

    def __init__(self, pairs: list[tuple[str, object]]):
        super().__init__(pairs)
        keys = [k for k, _ in pairs]
        self.repeated = [k for k in dict.fromkeys(keys) if keys.count(k) > 1]


def _json_dict(pairs: list[tuple[str, object]]) -> dict:
    record = dict(pairs)
    return record if len(record) == len(pairs) else _RepeatedKeys(pairs)


_JSON = json.JSONDecoder(
    parse_float=_Number, parse_int=_Number, parse_constant=_Number, object_pairs_hook=_json_dict
)


def _events_jsonl(path: Path) -> Iterator[pd.DataFrame]:
    fields: dict[str, list[str | None]] = {c: [] for c in EVENT_COLUMNS}
    numbers, problems = [], []
    with path.open("rb") as handle:
        for number, raw in enumerate(_lines(handle), start=1):
            if not raw.strip():
                continue
            record, problem = _json_object(raw, first=number == 1)
            if problem is not None:
                text = raw.decode("utf-8", errors="replace").strip()
                problem = f"{problem}: {text[:RAW_TEXT_LIMIT]}"
            # A JSON line has no header: a key missing from a line is a missing field.
            for column, values in fields.items():
                values.append(_as_text(record.get(column)))
            numbers.append(number)
            problems.append(problem)
    frame = pd.DataFrame({c: pd.Series(v, dtype="str") for c, v in fields.items()})
    frame["row_number"] = np.array(numbers, np.int64)
    frame["malformed"] = pd.Series(problems, dtype="str")
    yield frame


def _json_object(raw: bytes, first: bool) -> tuple[dict, str | None]:
    """One JSON line as a dict, or why it is not one (a bad line must not hide the others)."""
    try:
        record = _JSON.decode(raw.decode("utf-8-sig" if first else "utf-8"))
    except UnicodeDecodeError:
        return {}, "not UTF-8 text"
    except json.JSONDecodeError as error:
        return {}, f"invalid JSON: {error.msg}"
    except RecursionError:
        return {}, "invalid JSON: nested too deeply"
    if not isinstance(record, dict):
        return {}, "not a JSON object"
    return _event_fields(record)


def _event_fields(record: dict) -> tuple[dict, str | None]:
    """The record, and why its event fields cannot be read (their values are kept where they
    are not ambiguous, to be shown with the quarantined row)."""
    repeated = [k for k in getattr(record, "repeated", []) if k in EVENT_COLUMNS]
    if repeated:
        kept = {k: v for k, v in record.items() if k not in repeated}
        return kept, f"key '{repeated[0]}' appears more than once"
    for column in EVENT_COLUMNS:
        value = record.get(column)
        if isinstance(value, str) and not value.isascii() and _lone_surrogate(value):
            return {**record, column: None}, f"'{column}' is not Unicode text (a lone surrogate)"
        if column in ID_FIELDS and (kind := _not_an_id(value)):
            return record, f"'{column}' is {kind}, expected text or an integer"
    return record, None


def _lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _not_an_id(value) -> str | None:
    """What a JSON id value is when it is not text or an integer (1e2, 7.0: which id?)."""
    if value is None or (isinstance(value, str) and not isinstance(value, _Number)):
        return None
    if isinstance(value, _Number):
        return None if value.lstrip("-").isdigit() else f"the number {value}"
    return {dict: "a JSON object", list: "a JSON array"}.get(type(value), "a JSON boolean")


def _as_text(value) -> str | None:
    """A JSON value as text: a string as it is, a number as written, anything else as JSON."""
    return None if value is None else str(value) if isinstance(value, str) else _json_text(value)


def _json_text(value) -> str:
    if isinstance(value, _Number):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(map(_json_text, value)) + "]"
    return json.dumps(value)


# --- Parquet -----------------------------------------------------------------------------------


def _events_parquet(
    path: Path, columns: list[str], wanted: set[int] | None
) -> Iterator[pd.DataFrame]:
    try:
        schema = pq.read_schema(path)
        if (repeated := _repeated(schema.names)) is not None:
            raise SourceError(f"{path}: column '{repeated}' appears more than once in the file")
        present = [c for c in columns if c in schema.names]
        # Ids repeat across millions of events: read them dictionary-encoded (categoricals).
        text = [c for c in DICTIONARY_COLUMNS if c in present and _is_text(schema.field(c).type)]
        file = pq.ParquetFile(path, read_dictionary=text)
        if not file.metadata.num_rows:
            if wanted is None or 0 in wanted:
                yield _parquet_frame(path, file.schema_arrow.empty_table().select(present), 1)
            return
        for first, batch in _parquet_batches(file, present, wanted):
            yield _parquet_frame(path, pa.Table.from_batches([batch]), first)
    except (pa.ArrowInvalid, OSError) as error:
        raise SourceError(f"{path}: cannot be read as Parquet: {error}") from None


def _parquet_batches(
    file: pq.ParquetFile, columns: list[str], wanted: set[int] | None
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """The (wanted) batches with the row number of their first row. Batches lie within a row
    group, BATCH_ROWS rows each but the group's last: the same rows whichever columns are read,
    and a group without a wanted batch is not read."""
    number, first = 0, 1
    for group in range(file.num_row_groups):
        rows = file.metadata.row_group(group).num_rows
        count = -(-rows // BATCH_ROWS)
        if wanted is None or wanted.intersection(range(number, number + count)):
            for batch in file.iter_batches(BATCH_ROWS, row_groups=[group], columns=columns):
                if wanted is None or number in wanted:
                    yield first, batch
                number, first = number + 1, first + batch.num_rows
        else:
            number, first = number + count, first + rows


def _parquet_frame(path: Path, table: pa.Table, first: int) -> pd.DataFrame:
    for name in table.column_names:
        index = table.column_names.index(name)
        table = table.set_column(index, name, _event_column(path, name, table[name]))
    _check_utf8(path, table, first)
    frame = _nan_as_text(table, "quantity").to_pandas()
    frame["row_number"] = np.arange(first, first + len(frame))
    frame["malformed"] = pd.Series(pd.NA, index=frame.index, dtype="str")
    return frame


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return (
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )


def _event_column(path: Path, name: str, column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A Parquet column in a type the event rules read: ids as text (integers are spelled
    out), quantities as numbers or text, instants in µs; other values of a quantity or an
    instant as text, which the rules judge (a date is not an instant); nested values, or ids
    of any other type (a float may have lost digits), are refused."""
    if pa.types.is_dictionary(column.type) and not _is_text(column.type):
        column = column.cast(column.type.value_type)
    kind = column.type
    if _is_text(kind) or pa.types.is_null(kind):
        return column
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    if name == "quantity" and numeric:
        return column
    if name == "occurred_at" and pa.types.is_timestamp(kind):
        return _in_microseconds(column)
    binary = pa.types.is_binary(kind) or pa.types.is_large_binary(kind)
    if pa.types.is_nested(kind) or (name in ID_FIELDS and not pa.types.is_integer(kind) | binary):
        raise _holds(path, name, kind)
    try:
        return column.cast(pa.string())
    except pa.ArrowInvalid:
        raise SourceError(f"{path}: column '{name}': {_NOT_UTF8_STRINGS}") from None
    except pa.ArrowNotImplementedError:
        raise _holds(path, name, kind) from None


def _holds(path: Path, name: str, kind: pa.DataType) -> SourceError:
    expected = {"quantity": "numbers or text", "occurred_at": "timestamps or text"}
    return SourceError(
        f"{path}: column '{name}' holds {kind} values, expected {expected.get(name, 'text')}"
    )


_NOT_UTF8_STRINGS = "not UTF-8 text: write its strings as UTF-8"


def _in_microseconds(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Instants as µs since the epoch, labelled UTC when zoned (Parquet stores zoned instants
    in UTC: the zone name is only a label). An instant beyond the µs range (about ±290,000
    years) would wrap: such a column is read as text, whose rules refuse those values."""
    target = pa.timestamp("us", "UTC" if column.type.tz else None)
    try:
        # Nanoseconds lose their last digits (never more than the µs the ingest keeps).
        return column.cast(target, safe=column.type.unit != "ns")
    except pa.ArrowInvalid:
        return column.cast(pa.string())


def _check_utf8(path: Path, table: pa.Table, first: int) -> None:
    """Parquet strings are not checked on reading (pandas takes them as they are, and a byte
    that is not UTF-8 fails whatever later reads it): a string that is not UTF-8 stops the
    file, naming its row and column."""
    for name in (n for n in table.column_names if _is_text(table[n].type)):
        try:
            table[name].validate(full=True)
        except pa.ArrowInvalid:
            for row, value in enumerate(_raw_bytes(table[name]), start=first):
                if value is not None and not _is_utf8(value):
                    raise SourceError(
                        f"{path}: row {row}, column '{name}': {_NOT_UTF8_STRINGS}"
                    ) from None
            raise


def _raw_bytes(column: pa.ChunkedArray) -> Iterator[bytes | None]:
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            chunk = chunk.dictionary_decode()
        yield from chunk.cast(pa.large_binary()).to_pylist()


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _nan_as_text(table: pa.Table, column: str) -> pa.Table:
    """pandas reads a float NaN as a missing value: a column holding NaN becomes text ("nan"),
    so that the event is quarantined as non-finite, not as missing."""
    if column not in table.column_names or not pa.types.is_floating(table[column].type):
        return table
    if not pc.any(pc.is_nan(table[column])).as_py():
        return table
    index = table.column_names.index(column)
    return table.set_column(index, column, pc.cast(table[column], pa.string()))
