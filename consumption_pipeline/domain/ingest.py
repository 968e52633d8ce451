"""Stage 1 of docs/rules.md: ingest usage events for one billing period.

Every event read ends in exactly one place: accepted, a removed duplicate, quarantined with a
reason, or left to the period of its usage date. Events whose usage date cannot be known
(malformed rows, unreadable timestamps) are quarantined in every period that reads them.

`event_id` is the idempotency key. Copies of an id are compared as values (quantities in
micro-units, instants in UTC) where their fields parse, and as raw text where they do not:
exact copies count once, whether or not the event is billable (the kept copy is accepted or
quarantined), and an id whose copies differ in anything is a conflict, so no copy is billed.
A conflicting copy that is unbillable on its own keeps its own reason; the others get `conflict`.

The files are read in batches, one held at a time, up to three times: first what the ingest must
know of every batch (`PartFacts`: its event ids as 64-bit hashes, which find the few ids that may
repeat, and the span of its dates), then the batches holding those ids (to tell exact copies from
conflicts), then the batches that can hold events of the period, to place their rows. A source
may keep the facts of its files (storage/source_index.py), so that a period reads the rows of
its own dates only, and copies and conflicts are still found across every file. Memory follows
the batch and the repeated ids, not the period, and the accepted events come out in file and row
order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from consumption_pipeline.domain.catalog import Catalog, CatalogIds, distinct_codes
from consumption_pipeline.domain.hashing import NULL_HASH, Among, repeated_hashes, text_hashes
from consumption_pipeline.domain.quantities import QUANTITY_REASONS, micro_to_floats, quantity_codes

ID_COLUMNS = ["event_id", "account_id", "asset_id", "usage_resource_id"]
REFERENCES = ["account_id", "asset_id", "usage_resource_id"]
RAW_COLUMNS = [*ID_COLUMNS, "quantity", "occurred_at"]
ACCEPTED = [*ID_COLUMNS, "quantity", "occurred_at", "usage_date", "source_file", "row_number"]
COUNTS = ["events_read", "accepted", "duplicates", "quarantined", "other_periods"]
# Reasons by code; a row takes the first that applies, in this order (0: none).
_BEFORE_QUANTITY = [None, "malformed_row", "invalid_text", "missing_event_id",
                    "missing_account_id", "missing_usage_resource_id"]  # fmt: skip
REASONS = np.array([*_BEFORE_QUANTITY, *QUANTITY_REASONS[1:], "missing_occurred_at",
                    "invalid_occurred_at", "conflict", "unknown_account", "unknown_usage_resource",
                    "unknown_asset", "asset_of_another_account"], dtype=object)  # fmt: skip
_CODE = {name: code for code, name in enumerate(REASONS) if name}
_QUANTITY_CODE = len(_BEFORE_QUANTITY) - 1  # a quantity reason's code is this + its own
MISSING, UNKNOWN = -2, -1  # reference codes that are not an index into the catalog
_DAY_US = 86_400_000_000
_MINUTE_US = 60_000_000
# An instant names a date and a time of day to the minute at least (ISO 8601, extended or basic).
_INSTANT = r"^[0-9]{4}-?[0-9]{2}-?[0-9]{2}[T ][0-9]{2}:?[0-9]{2}"


@dataclass(frozen=True)
class Ingested:
    usage_events: pd.DataFrame
    quarantined_events: pd.DataFrame
    reconciliation: dict[str, int]


def ingest(
    files: Iterable[pd.DataFrame], catalog: Catalog, period: pd.Timestamp, timezone: str
) -> Ingested:
    """Accept, deduplicate and quarantine the events of `period` (its month) from raw files."""
    run = Ingestion(files, catalog, period, timezone)
    usage_events = concat_events(list(run))
    return Ingested(usage_events, run.quarantined_events, run.reconciliation)


def concat_events(batches: list[pd.DataFrame]) -> pd.DataFrame:
    """Accepted batches as one frame; categorical columns stay categorical."""
    if not batches:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _EMPTY.items()})
    files = pd.api.types.union_categoricals([b["source_file"] for b in batches])
    frame = pd.concat([b.drop(columns="source_file") for b in batches], ignore_index=True)
    frame.insert(ACCEPTED.index("source_file"), "source_file", files)
    return frame


_EMPTY = {"event_id": "str", "account_id": "str", "asset_id": "str", "usage_resource_id": "str",
          "quantity": "float64", "occurred_at": "datetime64[us, UTC]",
          "usage_date": "datetime64[us]", "source_file": "category", "row_number": "int64"}  # fmt: skip


class IngestError(RuntimeError):
    """The event files changed between the passes of one ingest."""


@dataclass(frozen=True)
class PartFacts:
    """What the ingest knows of one batch before it reads it whole: its rows, its event ids as
    hashes (NULL_HASH for a malformed row), the span of its dated rows and how many are undated
    (malformed, or a timestamp that cannot be read)."""

    rows: int
    id_hashes: np.ndarray
    first_us: int  # earliest and latest instant of a dated row, µs since the epoch (UTC)
    last_us: int
    undated: int

    def may_hold(self, period: np.datetime64, timezone: str) -> bool:
        """Whether this batch is read by `period` (a month) in `timezone`: a row of it can be
        the period's. Its undated rows go with the periods of its dates, or with every period
        when it has no dated row."""
        if self.first_us > self.last_us:  # no dated row
            return self.undated > 0
        span = np.array([self.first_us, self.last_us])
        first, last = _local_days(span, timezone).astype("datetime64[D]").astype("datetime64[M]")
        return bool(first <= period <= last) or _dates_go_back(span, timezone)


def part_facts(raw: pd.DataFrame) -> PartFacts:
    """The facts of one batch as read (the columns event_id, occurred_at and malformed)."""
    instants = _instants(raw["occurred_at"].reset_index(drop=True))
    undated = np.isnat(instants) | raw["malformed"].notna().to_numpy()
    dated = instants[~undated].view("int64")
    first, last = (int(dated.min()), int(dated.max())) if len(dated) else (1, 0)
    return PartFacts(len(raw), _id_hashes(raw), first, last, int(undated.sum()))


def _dates_go_back(span: np.ndarray, timezone: str) -> bool:
    """Whether the local date may step back between the two instants: a clock set back across
    midnight (the date of its rows is then not bounded by the dates of the first and the last).
    Offsets are sampled hourly; a step back within an hour of midnight counts."""
    if timezone == "UTC":
        return False
    hours = np.arange(span[0] - 3_600_000_000, span[1] + 7_200_000_000, 3_600_000_000)
    local = _local_micros(hours, timezone)
    offset = local - hours
    back = np.flatnonzero(np.diff(offset) < 0)
    before = (local[back] + 3_600_000_000) // _DAY_US  # latest the clock read before the step
    after = (local[back + 1] - 3_600_000_000) // _DAY_US  # earliest it read after
    return bool((after < before).any())


class Ingestion:
    """One period's ingest. Iterating it yields the accepted events batch by batch (ids as
    categoricals over the catalog); once exhausted, `quarantined_events` and `reconciliation`
    hold the rest. `files` is iterated once per pass; a one-shot iterator is read into memory."""

    def __init__(
        self, files: Iterable[pd.DataFrame], catalog: Catalog, period: pd.Timestamp, timezone: str
    ):
        one_shot = not hasattr(files, "facts") and iter(files) is files
        self._files = list(files) if one_shot else files
        self._catalog = CatalogIds(catalog)
        self._period = np.datetime64(pd.Timestamp(period).to_period("M").to_timestamp(), "M")
        self._timezone = timezone
        facts = self._facts()
        self._rows = [f.rows for f in facts]  # per batch: later passes must read the same
        self._mine = [n for n, f in enumerate(facts) if f.may_hold(self._period, timezone)]
        self._fates = self._copies_and_conflicts(facts)
        self.quarantined_events = _quarantined(pd.DataFrame())
        self.reconciliation = dict.fromkeys(COUNTS, 0)

    def __iter__(self) -> Iterator[pd.DataFrame]:
        # A batch that cannot hold the period is not read: its rows are other periods' events.
        unread = sum(self._rows) - sum(self._rows[n] for n in self._mine)
        counts = {**dict.fromkeys(COUNTS, 0), "events_read": unread, "other_periods": unread}
        held = []
        place = _Placer(self._catalog, self._fates, self._period, self._timezone, self._rows)
        if hasattr(self._files, "placed"):  # the source reads and places its batches
            placed_batches = (p for _, p in self._files.placed(self._mine, place))
        else:
            placed_batches = (place(n, raw) for n, raw in self._same_batches(self._mine))
        for placed in placed_batches:
            counts = {name: counts[name] + placed.counts[name] for name in COUNTS}
            if len(placed.quarantined):
                held.append(placed.quarantined)
            if len(placed.accepted):
                yield placed.accepted
        self.quarantined_events = _quarantined(pd.concat(held) if held else pd.DataFrame())
        self.reconciliation = counts

    def _facts(self) -> list[PartFacts]:
        """Pass 1: the facts of each batch. A source that knows them (`facts()`, as
        sources.EventFiles) gives them without reading every batch whole."""
        if hasattr(self._files, "facts"):
            return self._files.facts()
        return [part_facts(raw) for raw in self._files]

    def _copies_and_conflicts(self, facts: list[PartFacts]) -> _Fates:
        """Pass 2: the rows whose id may repeat, compared on their payloads. A copy in a batch
        this period does not read is dated outside it, so it differs from any copy the period
        places: of such a batch only the ids are read, and the period's copies of its ids are
        conflicts. A batch with an undated row is read whole (its copy may equal one here)."""
        hashes = [f.id_hashes for f in facts]
        repeated = repeated_hashes(hashes)
        if not len(repeated):
            return _Fates({})
        among = Among(repeated)
        chosen = {n: rows for n, h in enumerate(hashes) if len(rows := among.rows(h))}
        mine = set(self._mine)
        near = [n for n in chosen if n in mine or facts[n].undated]
        payloads = []
        for number, raw in self._same_batches(near):
            events = _parse(raw.iloc[chosen[number]], self._timezone, self._catalog)
            payloads.append(events.payloads().assign(batch=number, row=chosen[number]))
        if not payloads:  # every copy is dated outside the period: none of its business
            return _Fates({})
        far = [n for n in chosen if n not in near]
        elsewhere = [_stripped(raw["event_id"].iloc[chosen[n]])
                     for n, raw in self._same_batches(far, ["event_id"])]  # fmt: skip
        return _Fates.resolve(pd.concat(payloads, ignore_index=True),
                              pa.chunked_array(elsewhere, pa.large_string()))  # fmt: skip

    def _same_batches(
        self, numbers: list[int], columns: list[str] | None = None
    ) -> Iterator[tuple[int, pd.DataFrame]]:
        """The chosen batches again (sorted numbers), in order, with these event columns at
        least; a file that changed since pass 1 stops the ingest. A source that reads batches
        apart (`parts(numbers, columns)`) reads no other."""
        if not numbers:
            return
        if hasattr(self._files, "parts"):
            batches = self._files.parts(numbers, columns)
        else:
            batches = self._counted(enumerate(self._files), set(numbers))
        for number, raw in batches:
            if len(raw) != self._rows[number]:
                raise IngestError("the event files changed while they were read: ingest again")
            yield number, raw

    def _counted(self, batches, wanted: set[int]) -> Iterator[tuple[int, pd.DataFrame]]:
        """The wanted batches of a source read whole; it must still hold as many batches."""
        number = -1
        for number, raw in batches:
            if number >= len(self._rows):
                break
            if number in wanted:
                yield number, raw
        if number + 1 != len(self._rows):
            raise IngestError("the event files changed while they were read: ingest again")


@dataclass
class _Events:
    """One parsed batch: numpy columns, reference codes into the catalog and reason codes."""

    raw: pd.DataFrame
    event_id: pa.Array
    references: dict[str, tuple[np.ndarray, pd.Index, np.ndarray]]  # code, text values, per row
    micro: np.ndarray
    quantity_bad: np.ndarray
    instants: np.ndarray  # µs since the epoch, UTC; 0 where unparsed
    time_bad: np.ndarray
    days: np.ndarray  # usage date as days since the epoch
    period: np.ndarray  # month of the usage date; NaT for rows that belong to every period
    reason: np.ndarray
    detail: np.ndarray

    def __len__(self) -> int:
        return len(self.micro)

    def mark(self, rows: np.ndarray, reason: str) -> None:
        """Give `reason` to the chosen rows that have none yet."""
        self.reason[rows & (self.reason == 0)] = _CODE[reason]

    def check_references(self, catalog: CatalogIds) -> None:
        account, asset, resource = (self.references[c][0] for c in REFERENCES)
        owner = np.append(catalog.owner, -1)[np.maximum(asset, -1)]  # -1: no asset
        self.mark(account == UNKNOWN, "unknown_account")
        self.mark(resource == UNKNOWN, "unknown_usage_resource")
        self.mark(asset == UNKNOWN, "unknown_asset")
        self.mark((asset >= 0) & (owner != account), "asset_of_another_account")

    def text(self, column: str, rows: np.ndarray) -> pd.Series:
        """The stripped text of an id column on the chosen rows (NA where missing)."""
        if column == "event_id":
            return pd.Series(self.event_id.filter(pa.array(rows)), dtype="str")
        _, values, places = self.references[column]
        return pd.Series(values.array.take(places[rows], allow_fill=True), dtype="str")

    def payloads(self) -> pd.DataFrame:
        """What copies of an id are compared on: values where they parse, raw text where not."""
        every = np.ones(len(self), bool)
        frame = pd.DataFrame({c: self.text(c, every) for c in ID_COLUMNS})
        frame["quantity_micro"], frame["occurred_us"] = self.micro, self.instants
        frame["quantity_unparsed"] = _raw_text(self.raw["quantity"], self.quantity_bad)
        frame["occurred_unparsed"] = _raw_text(self.raw["occurred_at"], self.time_bad)
        frame["malformed"] = self.reason == _CODE["malformed_row"]
        return frame.fillna({"quantity_unparsed": "", "occurred_unparsed": ""})

    def accepted(self, rows: np.ndarray, catalog: CatalogIds) -> pd.DataFrame:
        out = {"event_id": self.text("event_id", rows)}
        for column in REFERENCES:
            codes = np.maximum(self.references[column][0][rows], -1)  # missing: NA
            out[column] = pd.Categorical.from_codes(codes, categories=catalog.of_column[column])
        out["quantity"] = micro_to_floats(self.micro[rows])
        out["occurred_at"] = pd.Series(self.instants[rows].view("datetime64[us]")).dt.tz_localize(
            "UTC"
        )
        out["usage_date"] = (self.days[rows] * _DAY_US).astype("datetime64[us]")
        out["source_file"] = _take(self.raw["source_file"], rows)
        out["row_number"] = self.raw["row_number"].to_numpy()[rows].astype("int64")
        return pd.DataFrame(out)

    def quarantined(self, rows: np.ndarray) -> pd.DataFrame:
        out = {c: self.text(c, rows) for c in ID_COLUMNS}
        out["quantity"] = _as_text(self.raw["quantity"][rows]).array
        out["occurred_at"] = _as_text(self.raw["occurred_at"][rows]).array
        out["reason"] = REASONS[self.reason[rows]]
        out["detail"] = self.detail[rows]
        out["source_file"] = _take(self.raw["source_file"], rows).astype("str")
        out["row_number"] = self.raw["row_number"].to_numpy()[rows]
        return pd.DataFrame(out)


@dataclass(frozen=True)
class _Placer:
    """Pass 3 for one batch, a value that can be sent to a cluster's worker: each row accepted,
    a removed copy, quarantined or another period's."""

    catalog: CatalogIds
    fates: _Fates
    period: np.datetime64
    timezone: str
    rows: list[int]  # of every batch, as pass 1 found them

    def __call__(self, number: int, raw: pd.DataFrame) -> _Placed:
        if len(raw) != self.rows[number]:
            raise IngestError("the event files changed while they were read: ingest again")
        events = _parse(raw, self.timezone, self.catalog)
        duplicate = self.fates.apply(number, events)
        events.check_references(self.catalog)
        mine = np.isnat(events.period) | (events.period == self.period)
        kept = mine & ~duplicate
        accepted, quarantined = kept & (events.reason == 0), kept & (events.reason > 0)
        counts = {"events_read": len(raw), "accepted": int(accepted.sum()),
                  "duplicates": int((mine & duplicate).sum()),
                  "quarantined": int(quarantined.sum()), "other_periods": int((~mine).sum())}  # fmt: skip
        return _Placed(events.accepted(accepted, self.catalog),
                       events.quarantined(quarantined), counts)  # fmt: skip


@dataclass(frozen=True)
class _Placed:
    accepted: pd.DataFrame
    quarantined: pd.DataFrame
    counts: dict[str, int]


class _Fates:
    """Per batch: the rows that are removed copies, and the rows of conflicting ids."""

    def __init__(self, rows: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]):
        self._rows = rows

    @classmethod
    def resolve(cls, copies: pd.DataFrame, elsewhere: pa.ChunkedArray) -> _Fates:
        """Exact repeats of an event_id are duplicates (the first copy stays); every copy of an
        id whose copies differ, or that has a copy `elsewhere` (ids of copies known to differ),
        is a conflict."""
        ids = pd.factorize(copies["event_id"])[0]
        ids[copies["malformed"].to_numpy()] = -1
        payload = copies.drop(columns=["event_id", "malformed", "batch", "row"]).assign(id=ids)
        repeat = payload.duplicated(keep="first").to_numpy() & (ids >= 0)
        distinct = np.bincount(ids[(ids >= 0) & ~repeat], minlength=max(ids.max() + 1, 1))
        far = pc.is_in(pa.array(copies["event_id"], pa.large_string()), elsewhere.combine_chunks())
        conflict = (ids >= 0) & (
            (distinct[np.maximum(ids, 0)] > 1) | far.to_numpy(zero_copy_only=False)
        )
        duplicate = repeat & ~conflict
        fates = {}
        for number, group in copies.groupby("batch").indices.items():
            fates[number] = (copies["row"].to_numpy()[group], duplicate[group], conflict[group])
        return cls(fates)

    def apply(self, number: int, events: _Events) -> np.ndarray:
        """Mark the batch's conflicts; return its removed copies."""
        duplicate = np.zeros(len(events), bool)
        if number in self._rows:
            rows, copies, conflicts = self._rows[number]
            duplicate[rows] = copies
            conflict = np.zeros(len(events), bool)
            conflict[rows] = conflicts
            fresh = conflict & (events.reason == 0)
            events.detail[fresh] = "same event_id with a different payload"
            events.mark(conflict, "conflict")
        return duplicate


def _id_hashes(raw: pd.DataFrame) -> np.ndarray:
    hashes = text_hashes(_stripped(raw["event_id"]))
    hashes[raw["malformed"].notna().to_numpy()] = NULL_HASH
    return hashes


def _parse(raw: pd.DataFrame, timezone: str, catalog: CatalogIds) -> _Events:
    raw = raw.reset_index(drop=True)
    micro, quantity_code = quantity_codes(raw["quantity"])
    instants = _instants(raw["occurred_at"])
    time_bad = np.isnat(instants)
    micros = np.where(time_bad, 0, instants.view("int64"))
    days = _local_days(micros, timezone)
    period = days.astype("datetime64[D]").astype("datetime64[M]")
    malformed = raw["malformed"].notna().to_numpy()
    # Rows that could not be read have no trustworthy date: they belong to no single period.
    period[time_bad | malformed] = np.datetime64("NaT")
    event_id = _stripped(raw["event_id"])
    references = {c: _codes(raw[c], catalog.of_column[c]) for c in REFERENCES}
    with_nul = _with_nul(raw, event_id, references)
    missing_time = time_bad & _blank(raw["occurred_at"], time_bad)
    quantity_bad = quantity_code > 0
    reasons = [
        (malformed, "malformed_row"),
        (np.logical_or.reduce([*with_nul.values(), np.zeros(len(raw), bool)]), "invalid_text"),
        (event_id.is_null().to_numpy(zero_copy_only=False), "missing_event_id"),
        (references["account_id"][0] == MISSING, "missing_account_id"),
        (references["usage_resource_id"][0] == MISSING, "missing_usage_resource_id"),
    ]
    code = np.select([r for r, _ in reasons], [_CODE[n] for _, n in reasons], 0).astype(np.int8)
    later = (code == 0) & quantity_bad
    code[later] = quantity_code[later] + _QUANTITY_CODE
    code[(code == 0) & missing_time] = _CODE["missing_occurred_at"]
    code[(code == 0) & time_bad] = _CODE["invalid_occurred_at"]
    detail = np.where(malformed, raw["malformed"].to_numpy(dtype=object, na_value=None), None)
    for column, rows in reversed(with_nul.items()):  # the first field holding one is named
        detail[rows & (code == _CODE["invalid_text"])] = (
            f"'{column}' holds a NUL character (shown as \\x00)"
        )
    return _Events(raw, event_id, references, micro, quantity_bad, micros, time_bad,
                   days, period, code, detail)  # fmt: skip


def _with_nul(raw: pd.DataFrame, event_id: pa.Array, references: dict) -> dict[str, np.ndarray]:
    """The rows whose text holds a NUL character (PostgreSQL text cannot store it), by field,
    for the fields that hold one. A column is searched value by value only when it has a zero
    byte somewhere (UTF-8 has no other): most batches cost one scan of their bytes."""
    found = {"event_id": _nul(event_id)}
    for column in REFERENCES:  # their distinct values: a few thousand, not a row each
        _, distinct, places = references[column]
        if (rows := _nul(pa.array(distinct.array))) is not None:
            found[column] = np.append(rows, False)[places]
    found |= {c: _nul(_arrow_text(raw[c])) for c in ["quantity", "occurred_at"]}
    return {c: found[c] for c in RAW_COLUMNS if found.get(c) is not None}


def _arrow_text(values: pd.Series) -> pa.Array | None:
    """A text column as Arrow; None for a column of numbers or instants."""
    if isinstance(values.dtype, pd.StringDtype | pd.CategoricalDtype) or values.dtype == object:
        return pa.array(values.astype("str"), pa.large_string(), from_pandas=True)
    return None


def _nul(text: pa.Array | pa.ChunkedArray | None) -> np.ndarray | None:
    """Which values hold a NUL; None when none does."""
    chunks = [] if text is None else text.chunks if isinstance(text, pa.ChunkedArray) else [text]
    if all(c.buffers()[2] is None or np.frombuffer(c.buffers()[2], np.uint8).all() for c in chunks):
        return None
    return np.asarray(pc.fill_null(pc.match_substring(text, "\x00"), False))


def _stripped(values: pd.Series) -> pa.Array:
    """Stripped text, null where missing or blank. Only values that start or end with a space
    (or a non-ASCII byte, possibly a Unicode space) are stripped: most ids need no copy."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = _clean(pd.Series(values.cat.categories)).array
        text = categories.take(values.cat.codes.to_numpy(), allow_fill=True)
        return pa.array(text, pa.large_string(), from_pandas=True)
    text = pa.array(values.astype("str"), pa.large_string(), from_pandas=True)
    if isinstance(text, pa.ChunkedArray):  # pandas keeps concatenated text in chunks
        text = text.combine_chunks()
    offsets = np.frombuffer(text.buffers()[1], np.int64)[text.offset : text.offset + len(text) + 1]
    lengths = np.diff(offsets)
    spaced = np.zeros(len(text), bool)
    if text.buffers()[2] is not None and lengths.any():
        data, nonempty = np.frombuffer(text.buffers()[2], np.uint8), lengths > 0
        first, last = data[offsets[:-1][nonempty]], data[offsets[1:][nonempty] - 1]
        spaced[nonempty] = _maybe_space(first) | _maybe_space(last)
    if spaced.any():
        cleaned = _clean(values[spaced])
        text = pc.replace_with_mask(text, pa.array(spaced), pa.array(cleaned, pa.large_string()))
    empty = (lengths == 0) & text.is_valid().to_numpy(zero_copy_only=False)
    if empty.any():
        text = pc.if_else(pa.array(empty), pa.scalar(None, pa.large_string()), text)
    return text


def _take(values: pd.Series, rows: np.ndarray) -> pd.Categorical:
    """The chosen rows as a categorical (a file name repeats on every row of its file)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return pd.Categorical.from_codes(values.cat.codes.to_numpy()[rows], values.cat.categories)
    return pd.Categorical(values.to_numpy()[rows])


def _maybe_space(byte: np.ndarray) -> np.ndarray:
    return (
        (byte == 32) | ((byte >= 9) & (byte <= 13)) | ((byte >= 28) & (byte <= 31)) | (byte >= 128)
    )


def _clean(values: pd.Series) -> pd.Series:
    """Stripped text, NA where missing or blank."""
    stripped = values.astype("str").str.strip()
    return stripped.where(values.notna() & stripped.ne(""), pd.NA)


def _codes(values: pd.Series, known: pd.Index) -> tuple[np.ndarray, pd.Index, np.ndarray]:
    """An id column as codes into `known` (UNKNOWN if not there, MISSING if blank), with its
    distinct stripped values and each row's place among them (for the text of a few rows)."""
    places, distinct = distinct_codes(values)
    cleaned = _clean(pd.Series(distinct))
    lut = np.append(known.get_indexer(cleaned), MISSING).astype(np.int32)
    lut[:-1][cleaned.isna().to_numpy()] = MISSING
    return lut[places], pd.Index(cleaned, dtype="str"), places


def _instants(values: pd.Series) -> np.ndarray:
    """Instants in UTC as datetime64[us] (NaT where unreadable); a timestamp written without an
    offset is UTC."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    elif not pd.api.types.is_datetime64_dtype(values.dtype):
        text = _clean(values)
        values = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
        instants = values.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
        periods = _not_instants(text, instants)
        return np.where(periods, np.datetime64("NaT"), instants) if periods.any() else instants
    return values.to_numpy(dtype="datetime64[us]")


def _not_instants(text: pd.Series, instants: np.ndarray) -> np.ndarray:
    """Timestamps that name a year, month, day or hour (`2026`, `2026-10`, `2026-10-15`): ISO
    8601 reads them as periods, not instants, and one cannot say when in it the event was.
    Offsets are whole minutes, so only whole minutes need their text checked."""
    found = np.zeros(len(instants), bool)
    whole = ~np.isnat(instants) & (instants.view("int64") % _MINUTE_US == 0)
    if whole.any():
        candidates = pa.array(text[whole], pa.string(), from_pandas=True)
        matched = pc.match_substring_regex(candidates, _INSTANT)
        found[whole] = ~matched.to_numpy(zero_copy_only=False)
    return found


def _local_days(micros: np.ndarray, timezone: str) -> np.ndarray:
    """The date in `timezone` of each instant, as days since the epoch."""
    return np.floor_divide(_local_micros(micros, timezone), _DAY_US)


def _local_micros(micros: np.ndarray, timezone: str) -> np.ndarray:
    """Each instant as the wall clock of `timezone` reads it, µs since the epoch."""
    if timezone == "UTC":
        return micros
    local = pd.DatetimeIndex(micros.view("datetime64[us]")).tz_localize("UTC")
    return local.tz_convert(timezone).tz_localize(None).asi8


def _blank(values: pd.Series, rows: np.ndarray) -> np.ndarray:
    """Which of the chosen rows are missing or blank (only those are rendered as text)."""
    blank = np.zeros(len(values), bool)
    if rows.any():
        blank[rows] = _clean(values[rows]).isna().to_numpy()
    return blank


def _raw_text(values: pd.Series, rows: np.ndarray) -> pd.Series:
    """The stripped raw text of the chosen rows, NA elsewhere."""
    out = pd.Series(pd.NA, index=values.index, dtype="str")
    if rows.any():
        out[rows] = _clean(values[rows])
    return out


def _as_text(values: pd.Series) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
        return values.map(lambda v: v.isoformat(), na_action="ignore").astype("str")
    return values.astype("str").where(values.notna(), pd.NA)


def _quarantined(frame: pd.DataFrame) -> pd.DataFrame:
    columns = [*RAW_COLUMNS, "reason", "detail", "source_file", "row_number"]
    out = frame.reindex(columns=columns).astype(
        dict.fromkeys([*RAW_COLUMNS, "reason", "detail", "source_file"], "str")
    )
    for column in [*RAW_COLUMNS, "detail"]:  # as the warehouse can store them
        out[column] = out[column].str.replace("\x00", "\\x00", regex=False)
    out["row_number"] = out["row_number"].astype("int64")
    return out.sort_values(["source_file", "row_number"], ignore_index=True)
