"""The bad-input corpus: each case breaks the hand-billed source of `source.py` in one way and
states its exact outcome.

- `Quarantined`: the row (file, line) is quarantined with that reason, and every good row is
  still billed: the October bill is exactly `BILL` (or the bill given, worked out in the case).
- `Accepted`: an odd but valid row is billed; the bill given is worked out in the case.
- `Raises`: a broken input stops the period with this exact message (naming file, row, column).
- `Blocked`: the catalog builds, but its input check fails with exactly these problems, so the
  pipeline refuses to bill the period (see e2e/test_checks.py for the run being stopped).

Every run goes through the real readers and all stages, and asserts the conservation laws.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from consumption_pipeline.domain.catalog import Catalog, CatalogError
from consumption_pipeline.domain.rating import RatingError
from consumption_pipeline.domain.summaries import PricingError
from consumption_pipeline.quality.inputs import check_file
from consumption_pipeline.storage import sources
from consumption_pipeline.storage.sources import SourceError
from consumption_pipeline_tests.corpus.source import (
    BILL,
    CATALOG,
    EVENT_COLUMNS,
    EVENTS,
    bill,
    read_and_ingest,
    write_csv,
    write_source,
)

# ACME's api_calls line with 100 more calls: 1,000 × 0.001 + 600 × 0.0005 = 1.30 USD.
ACME_1600_CALLS = {**BILL, ("ACME", "", "api_calls"): (1600, 0, 1600, Decimal("1.30"), "USD")}


@dataclass(frozen=True)
class Quarantined:
    file: str  # under usage/
    line: int  # the file's line (CSV: header = 1; JSONL: line; Parquet: row from 1)
    reason: str
    bill: dict = field(default_factory=lambda: BILL)


@dataclass(frozen=True)
class Accepted:
    event_id: str
    usage_date: str
    bill: dict = field(default_factory=lambda: BILL)


@dataclass(frozen=True)
class Raises:
    error: type[Exception]
    message: str  # exact; {root} stands for the source directory


@dataclass(frozen=True)
class Blocked:
    file: str
    problems: list[str]


@dataclass(frozen=True)
class Case:
    id: str
    breaks: Callable[[Path], None]
    expect: Quarantined | Accepted | Raises | Blocked
    timezone: str = "UTC"


# -- ways to break the source ------------------------------------------------------------------


def event(event_id="x-1", account="ACME", asset="", resource="api_calls", quantity="100",
          at="2026-10-15T12:00:00Z") -> list[str]:  # fmt: skip
    return [event_id, account, asset, resource, quantity, at]


def extra_csv(*rows: list[str]) -> Callable[[Path], None]:
    """Rows in a second event file, usage/extra.csv (line 2 is the first row)."""
    return lambda root: write_csv(root / "usage" / "extra.csv", [EVENT_COLUMNS, *rows])


def extra_text(name: str, text: str | bytes) -> Callable[[Path], None]:
    def write(root: Path) -> None:
        path = root / "usage" / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))

    return write


def jsonl(*lines: str | dict) -> Callable[[Path], None]:
    """Lines of usage/extra.jsonl (line 1 is the first)."""
    text = "\n".join(json.dumps(x) if isinstance(x, dict) else x for x in lines) + "\n"
    return extra_text("extra.jsonl", text)


def quantity_as_written(literal: str) -> Callable[[Path], None]:
    """A JSON line whose quantity is `literal`, exactly as written (JSON or not)."""
    return jsonl('{"event_id": "j-1", "account_id": "ACME", "usage_resource_id": "api_calls", '
                 f'"quantity": {literal}, "occurred_at": "2026-10-15T12:00:00Z"}}')  # fmt: skip


def record(**fields) -> dict:
    base = dict(zip(EVENT_COLUMNS, event(), strict=True))
    return {k: v for k, v in {**base, **fields}.items() if v is not ...}


def parquet(**columns) -> Callable[[Path], None]:
    """One event in usage/extra.parquet (row 1); `columns` replace the default arrays."""
    defaults = {name: pa.array([value]) for name, value in zip(EVENT_COLUMNS, event(), strict=True)}
    defaults["quantity"] = pa.array([100.0])
    defaults["occurred_at"] = pa.array([pd.Timestamp("2026-10-15T12:00:00Z")],
                                       pa.timestamp("us", tz="UTC"))  # fmt: skip
    table = {k: v for k, v in {**defaults, **columns}.items() if v is not None}
    return lambda root: pq.write_table(pa.table(table), root / "usage" / "extra.parquet")


def in_base(line: int, row: list[str] | str) -> Callable[[Path], None]:
    """A row written into usage/base.csv at `line`, between the good rows."""

    def write(root: Path) -> None:
        path = root / "usage" / "base.csv"
        lines = path.read_text().splitlines()
        lines.insert(line - 1, row if isinstance(row, str) else ",".join(row))
        path.write_text("\n".join(lines) + "\n")

    return write


def catalog_cell(file: str, row: int, column: str, value: str) -> Callable[[Path], None]:
    """Cell (data row from 1, column) of a catalog file set to `value`."""

    def write(root: Path) -> None:
        rows = [list(r) for r in CATALOG[file]]
        rows[row][rows[0].index(column)] = value
        write_csv(root / file, rows)

    return write


def catalog_rows(file: str, *rows: list[str], drop: tuple[int, ...] = ()) -> Callable:
    """Data rows appended to a catalog file (and data rows `drop` removed, counted from 1)."""

    def write(root: Path) -> None:
        kept = [r for i, r in enumerate(CATALOG[file]) if i not in drop]
        write_csv(root / file, [*kept, *rows])

    return write


def catalog_text(file: str, text: bytes) -> Callable[[Path], None]:
    return lambda root: (root / file).write_bytes(text)


def both(*changes: Callable[[Path], None]) -> Callable[[Path], None]:
    def write(root: Path) -> None:
        for change in changes:
            change(root)

    return write


def without_bill(*keys: tuple) -> dict:
    return {k: v for k, v in BILL.items() if k not in keys}


ACME_CALLS = ("ACME", "", "api_calls")


def price(resource, currency, model, lower, unit, start, end="", size="") -> list[str]:
    return [resource, currency, model, lower, unit, size, "", start, end]


def changes(*rows: str) -> Callable[[Path], None]:
    text = "change_id,asset_id,effective_date,quantity,end_date\n" + "".join(r + "\n" for r in rows)
    return catalog_text("asset_changes.csv", text.encode())


def credits(*rows: str) -> Callable[[Path], None]:
    header = "credit_id,account_id,asset_id,usage_resource_id,quantity,effective_date,valid_to,priority,reason\n"
    return catalog_text("credit_grants.csv", (header + "".join(r + "\n" for r in rows)).encode())


def alert_rules(*rows: str) -> Callable[[Path], None]:
    header = "rule_id,account_id,kind,threshold,usage_resource_id,scope,channel,recipient\n"
    return catalog_text("alert_rules.csv", (header + "".join(r + "\n" for r in rows)).encode())


CASES = [
    # CSV rows that cannot be read as a row: the other rows of the same file are billed.
    Case("csv-too-many-fields", extra_csv(event() + ["surplus"]),
         Quarantined("extra.csv", 2, "malformed_row")),
    Case("csv-too-few-fields", extra_csv(event()[:4]), Quarantined("extra.csv", 2, "malformed_row")),
    Case("csv-malformed-row-between-good-rows", in_base(4, "e-bad,ACME,,api_calls"),
         Quarantined("base.csv", 4, "malformed_row")),
    Case("csv-truncated-last-line", extra_text("extra.csv", ",".join(EVENT_COLUMNS)
                                               + "\n" + ",".join(event())[:20]),
         Quarantined("extra.csv", 2, "malformed_row")),
    Case("csv-unclosed-quote-swallows-the-row", extra_text(
        "extra.csv", ",".join(EVENT_COLUMNS) + '\nx-1,ACME,,api_calls,"100,2026-10-15T12:00:00Z\n'),
         Quarantined("extra.csv", 2, "malformed_row")),
    # Missing and unreadable fields.
    Case("missing-event-id", extra_csv(event(event_id="")), Quarantined("extra.csv", 2, "missing_event_id")),
    Case("missing-account-id", extra_csv(event(account="")), Quarantined("extra.csv", 2, "missing_account_id")),
    Case("missing-usage-resource-id", extra_csv(event(resource=" ")),
         Quarantined("extra.csv", 2, "missing_usage_resource_id")),
    Case("missing-quantity", extra_csv(event(quantity="")), Quarantined("extra.csv", 2, "missing_quantity")),
    Case("quantity-not-a-number", extra_csv(event(quantity="n/a")),
         Quarantined("extra.csv", 2, "invalid_quantity")),
    Case("quantity-with-decimal-comma", extra_csv(event(quantity="1,5")),
         Quarantined("extra.csv", 2, "invalid_quantity")),
    Case("quantity-hexadecimal", extra_csv(event(quantity="0x10")), Quarantined("extra.csv", 2, "invalid_quantity")),
    Case("quantity-with-underscores", extra_csv(event(quantity="1_000")),
         Quarantined("extra.csv", 2, "invalid_quantity")),
    Case("quantity-nan", extra_csv(event(quantity="NaN")), Quarantined("extra.csv", 2, "non_finite_quantity")),
    Case("quantity-inf", extra_csv(event(quantity="inf")), Quarantined("extra.csv", 2, "non_finite_quantity")),
    Case("quantity-minus-infinity", extra_csv(event(quantity="-Infinity")),
         Quarantined("extra.csv", 2, "non_finite_quantity")),
    Case("quantity-negative", extra_csv(event(quantity="-5")), Quarantined("extra.csv", 2, "negative_quantity")),
    Case("quantity-seven-decimals", extra_csv(event(quantity="1.2345678")),
         Quarantined("extra.csv", 2, "too_many_decimals")),
    Case("quantity-tiny-exponent", extra_csv(event(quantity="1e-7")),
         Quarantined("extra.csv", 2, "too_many_decimals")),
    Case("quantity-huge", extra_csv(event(quantity="99999999999999999999")),
         Quarantined("extra.csv", 2, "quantity_too_large")),
    Case("quantity-huge-exponent", extra_csv(event(quantity="1e13")),
         Quarantined("extra.csv", 2, "quantity_too_large")),
    Case("timestamp-missing", extra_csv(event(at="")), Quarantined("extra.csv", 2, "missing_occurred_at")),
    Case("timestamp-words", extra_csv(event(at="yesterday")),
         Quarantined("extra.csv", 2, "invalid_occurred_at")),
    Case("timestamp-day-32", extra_csv(event(at="2026-10-32T00:00:00Z")),
         Quarantined("extra.csv", 2, "invalid_occurred_at")),
    Case("timestamp-offset-beyond-24h", extra_csv(event(at="2026-10-05T10:00:00+25:00")),
         Quarantined("extra.csv", 2, "invalid_occurred_at")),
    Case("timestamp-offset-with-seconds", extra_csv(event(at="2026-10-15T10:00:00+01:00:30")),
         Quarantined("extra.csv", 2, "invalid_occurred_at")),
    Case("timestamp-leap-second", extra_csv(event(at="2026-06-30T23:59:60Z")),
         Quarantined("extra.csv", 2, "invalid_occurred_at")),
    # A year, a month, a day or an hour is a period of time, not an instant: when in it?
    Case("timestamp-bare-year", extra_csv(event(at="2026")), Quarantined("extra.csv", 2, "invalid_occurred_at")),
    Case("timestamp-bare-month", extra_csv(event(at="2026-10")), Quarantined("extra.csv", 2, "invalid_occurred_at")),
    Case("timestamp-date-without-time", extra_csv(event(at="2026-10-15")),
         Quarantined("extra.csv", 2, "invalid_occurred_at")),
    Case("timestamp-hour-without-minutes", extra_csv(event(at="2026-10-15T12Z")),
         Quarantined("extra.csv", 2, "invalid_occurred_at")),
    Case("jsonl-bare-month", jsonl(record(occurred_at="2026-10")),
         Quarantined("extra.jsonl", 1, "invalid_occurred_at")),
    Case("timestamp-basic-format-to-the-minute", extra_csv(event(at="20261015T1200Z")),
         Accepted("x-1", "2026-10-15", ACME_1600_CALLS)),
    # References the catalog does not know.
    Case("unknown-account", extra_csv(event(account="WAYNE")), Quarantined("extra.csv", 2, "unknown_account")),
    Case("account-in-other-case", extra_csv(event(account="acme")),
         Quarantined("extra.csv", 2, "unknown_account")),
    Case("unicode-lookalike-account", extra_csv(event(account="ΑCME")),  # Greek capital alpha
         Quarantined("extra.csv", 2, "unknown_account")),
    Case("zero-width-space-in-account", extra_csv(event(account="AC\u200bME")),
         Quarantined("extra.csv", 2, "unknown_account")),
    Case("unknown-resource", extra_csv(event(resource="quantum_minutes")),
         Quarantined("extra.csv", 2, "unknown_usage_resource")),
    Case("unknown-asset", extra_csv(event(asset="Z9")), Quarantined("extra.csv", 2, "unknown_asset")),
    Case("asset-of-another-account", extra_csv(event(account="BETA", asset="A1")),
         Quarantined("extra.csv", 2, "asset_of_another_account")),
    # Duplicates and conflicts across files: a conflict bills no copy (ACME's calls drop out).
    Case("exact-duplicate-in-another-format", jsonl(record(
        event_id="e-acme-3", asset_id=..., quantity=1500.0, occurred_at="2026-10-07T02:00:00+02:00")),
         Accepted("e-acme-3", "2026-10-07")),
    Case("conflicting-copy-in-another-file", extra_csv(
        ["e-acme-3", "ACME", "", "api_calls", "1501", "2026-10-07T00:00:00Z"]),
         Quarantined("extra.csv", 2, "conflict", without_bill(ACME_CALLS))),
    Case("conflict-on-the-asset-tag", extra_csv(
        ["e-acme-3", "ACME", "A1", "api_calls", "1500", "2026-10-07T00:00:00Z"]),
         Quarantined("base.csv", 4, "conflict", without_bill(ACME_CALLS))),
    Case("conflict-on-the-instant", jsonl(record(
        event_id="e-acme-3", quantity="1500", occurred_at="2026-10-07T00:00:00+02:00")),
         Quarantined("extra.jsonl", 1, "conflict", without_bill(ACME_CALLS))),
    Case("conflict-with-a-malformed-quantity-keeps-its-reason", extra_csv(
        ["e-acme-3", "ACME", "", "api_calls", "abc", "2026-10-07T00:00:00Z"]),
         Quarantined("extra.csv", 2, "invalid_quantity", without_bill(ACME_CALLS))),
    # JSON lines.
    Case("jsonl-truncated-line", jsonl('{"event_id": "j-1", "account_id": "AC'),
         Quarantined("extra.jsonl", 1, "malformed_row")),
    Case("jsonl-array-not-object", jsonl("[1, 2, 3]"), Quarantined("extra.jsonl", 1, "malformed_row")),
    Case("jsonl-invalid-utf8", extra_text("extra.jsonl", b'{"event_id": "j-\xff"}\n'),
         Quarantined("extra.jsonl", 1, "malformed_row")),
    Case("jsonl-nan-literal", quantity_as_written("NaN"),
         Quarantined("extra.jsonl", 1, "non_finite_quantity")),
    # 1e400 is past float range, but a number, judged on its exact value: too large.
    Case("jsonl-number-beyond-float-range-is-judged-exactly", quantity_as_written("1e400"),
         Quarantined("extra.jsonl", 1, "quantity_too_large")),
    Case("jsonl-huge-float", jsonl(record(quantity=1e308)), Quarantined("extra.jsonl", 1, "quantity_too_large")),
    Case("jsonl-boolean-quantity", jsonl(record(quantity=True)), Quarantined("extra.jsonl", 1, "invalid_quantity")),
    Case("jsonl-null-quantity", jsonl(record(quantity=None)), Quarantined("extra.jsonl", 1, "missing_quantity")),
    Case("jsonl-key-missing", jsonl(record(occurred_at=...)), Quarantined("extra.jsonl", 1, "missing_occurred_at")),
    Case("jsonl-numeric-event-id-and-string-quantity", jsonl(record(event_id=42, quantity="100")),
         Accepted("42", "2026-10-15", ACME_1600_CALLS)),
    Case("jsonl-bom-blank-lines-and-nested-fields", extra_text("extra.jsonl", "\ufeff" + json.dumps(
        record(tags={"team": "a"})) + "\n\n\n"), Accepted("x-1", "2026-10-15", ACME_1600_CALLS)),
    Case("jsonl-object-event-id", jsonl(record(event_id={"id": "x-1"})),
         Quarantined("extra.jsonl", 1, "malformed_row")),
    Case("jsonl-array-account-id", jsonl(record(account_id=["ACME"])),
         Quarantined("extra.jsonl", 1, "malformed_row")),
    # A repeated key: which value is the event's is unknown, so neither is billed.
    Case("jsonl-repeated-quantity-key", quantity_as_written('1, "quantity": 100'),
         Quarantined("extra.jsonl", 1, "malformed_row")),
    # JSON numbers are judged as written, like CSV text, not as the float nearest to them.
    Case("jsonl-number-with-seven-decimals", quantity_as_written("100.0000001"),
         Quarantined("extra.jsonl", 1, "too_many_decimals")),
    Case("jsonl-number-whose-float-is-whole", quantity_as_written("100.00000000000000001"),
         Quarantined("extra.jsonl", 1, "too_many_decimals")),
    Case("jsonl-exponent-number", quantity_as_written("1E2"),
         Accepted("j-1", "2026-10-15", ACME_1600_CALLS)),
    # A NUL is not text (PostgreSQL cannot store it): the row is quarantined, never the period.
    Case("jsonl-nul-in-event-id", jsonl(record(event_id="x\u00001")),
         Quarantined("extra.jsonl", 1, "invalid_text")),
    # Parquet.
    Case("parquet-nan-quantity", parquet(quantity=pa.array([float("nan")])),
         Quarantined("extra.parquet", 1, "non_finite_quantity")),
    Case("parquet-null-quantity", parquet(quantity=pa.array([None], pa.float64())),
         Quarantined("extra.parquet", 1, "missing_quantity")),
    Case("parquet-infinite-quantity", parquet(quantity=pa.array([float("inf")])),
         Quarantined("extra.parquet", 1, "non_finite_quantity")),
    Case("parquet-negative-quantity", parquet(quantity=pa.array([-1.0])),
         Quarantined("extra.parquet", 1, "negative_quantity")),
    Case("parquet-binary-float-noise", parquet(quantity=pa.array([0.1 + 0.2])),
         Quarantined("extra.parquet", 1, "too_many_decimals")),
    Case("parquet-null-account", parquet(account_id=pa.array([None], pa.string())),
         Quarantined("extra.parquet", 1, "missing_account_id")),
    Case("parquet-integer-quantity-and-new-york-instants", parquet(
        quantity=pa.array([100], pa.int64()),
        occurred_at=pa.array([pd.Timestamp("2026-10-15T08:00:00-04:00")],
                             pa.timestamp("us", tz="America/New_York"))),
         Accepted("x-1", "2026-10-15", ACME_1600_CALLS)),
    Case("parquet-naive-timestamp-is-utc", parquet(occurred_at=pa.array(
        [pd.Timestamp("2026-10-31T23:30:00")], pa.timestamp("us"))),
         Accepted("x-1", "2026-10-31", ACME_1600_CALLS)),
    Case("parquet-truncated-file", extra_text("extra.parquet", b"PAR1\x15\x04\x15"),
         Raises(SourceError, "{root}/usage/extra.parquet: cannot be read as Parquet: Parquet "
                "file size is 7 bytes, smaller than the minimum file footer (8 bytes)")),
    Case("parquet-without-a-required-column", parquet(occurred_at=None),
         Raises(SourceError, "{root}/usage/extra.parquet: missing required column 'occurred_at'")),
    Case("parquet-column-named-twice", lambda root: pq.write_table(pa.Table.from_arrays(
        [pa.array([v]) for v in event()] + [pa.array(["7"])], [*EVENT_COLUMNS, "quantity"]),
        root / "usage" / "extra.parquet"),
         Raises(SourceError, "{root}/usage/extra.parquet: column 'quantity' appears more than once "
                "in the file")),
    # Time zones, odd offsets and DST: the usage date is the date in the billing time zone.
    Case("no-offset-is-utc-and-belongs-to-november-in-paris", extra_csv(event(at="2026-10-31T23:30:00")),
         Accepted("x-1", "2026-11-01"), timezone="Europe/Paris"),
    Case("offset-moves-the-event-into-october", extra_csv(event(at="2026-11-01T00:30:00+01:00")),
         Accepted("x-1", "2026-10-31", ACME_1600_CALLS)),
    Case("nepal-offset-moves-the-event-into-september", extra_csv(event(at="2026-10-01T05:00:00+05:45")),
         Accepted("x-1", "2026-09-30")),
    Case("kiribati-offset-keeps-the-event-in-october", extra_csv(event(at="2026-11-01T09:59:00+14:00")),
         Accepted("x-1", "2026-10-31", ACME_1600_CALLS)),
    Case("offset-without-colon", extra_csv(event(at="2026-10-15T01:00:00+0200")),
         Accepted("x-1", "2026-10-14", ACME_1600_CALLS)),
    Case("last-second-of-october-before-the-new-york-fall-back", extra_csv(
        event(at="2026-11-01T03:59:59Z")), Accepted("x-1", "2026-10-31", ACME_1600_CALLS),
         timezone="America/New_York"),
    Case("first-second-of-november-in-new-york-edt", extra_csv(event(at="2026-11-01T04:00:00Z")),
         Accepted("x-1", "2026-11-01"), timezone="America/New_York"),
    Case("repeated-hour-of-the-fall-back-is-two-instants", extra_csv(
        event(event_id="x-1", at="2026-11-01T01:30:00-04:00"),
        event(event_id="x-2", at="2026-11-01T01:30:00-05:00")),
         Accepted("x-2", "2026-11-01"), timezone="America/New_York"),
    Case("paris-spring-forward-gap-written-in-utc", extra_csv(event(at="2026-03-29T01:30:00Z")),
         Accepted("x-1", "2026-03-29"), timezone="Europe/Paris"),
    # Unicode and encodings.
    Case("unicode-event-id", extra_csv(event(event_id="événement-✓")),
         Accepted("événement-✓", "2026-10-15", ACME_1600_CALLS)),
    Case("bom-and-crlf-in-an-event-file", extra_text("extra.csv", "\ufeff" + "\r\n".join(
        [",".join(EVENT_COLUMNS), ",".join(event())]) + "\r\n"),
         Accepted("x-1", "2026-10-15", ACME_1600_CALLS)),
    Case("cr-only-line-endings-in-an-event-file", extra_text("extra.csv", "\r".join(
        [",".join(EVENT_COLUMNS), ",".join(event())]) + "\r"),
         Accepted("x-1", "2026-10-15", ACME_1600_CALLS)),
    Case("quoted-line-break-in-an-event-id", extra_text("extra.csv", ",".join(EVENT_COLUMNS) + "\n"
         + ",".join(['"x\n1"', *event()[1:]]) + "\n"), Accepted("x\n1", "2026-10-15", ACME_1600_CALLS)),
    Case("row-after-a-quoted-line-break-is-numbered-by-its-line", extra_text("extra.csv", ",".join(
        EVENT_COLUMNS) + "\n" + ",".join(['"x\n1"', *event()[1:]]) + "\n" + ",".join(event(
        event_id="x-2", quantity="abc")) + "\n"),
         Quarantined("extra.csv", 4, "invalid_quantity", ACME_1600_CALLS)),
    Case("csv-nul-in-account-id", extra_csv(event(account="AC\x00ME")),
         Quarantined("extra.csv", 2, "invalid_text")),
    Case("csv-column-named-twice", extra_text("extra.csv", ",".join([*EVENT_COLUMNS, "quantity"]) + "\n"),
         Raises(SourceError, "{root}/usage/extra.csv: line 1: column 'quantity' appears more than "
                "once in the header")),
    Case("padded-cells-are-trimmed", extra_csv(event(account=" ACME ", quantity=" 100 ")),
         Accepted("x-1", "2026-10-15", ACME_1600_CALLS)),
    Case("event-file-in-latin-1", extra_text("extra.csv", (",".join(EVENT_COLUMNS) + "\n"
         + ",".join(event()) + "\n" + ",".join(event(event_id="x-2", account="ACMÉ")) + "\n")
         .encode("latin-1")),
         # "x-2,ACM" is 7 bytes: É is the 8th.
         Raises(SourceError, "{root}/usage/extra.csv: line 3, column 'account_id': not UTF-8 text "
                "at byte 8 of the line: save the file as UTF-8")),
    Case("event-file-in-utf-16", extra_text("extra.csv", (",".join(EVENT_COLUMNS) + "\n").encode("utf-16")),
         Raises(SourceError, "{root}/usage/extra.csv: line 1: not UTF-8 text at byte 1 of the line: "
                "save the file as UTF-8")),
    # Whole event files that cannot be read.
    Case("event-file-with-semicolons", extra_text("extra.csv", ";".join(EVENT_COLUMNS) + "\n"),
         Raises(SourceError, "{root}/usage/extra.csv: line 1: expected comma-separated columns, got "
                "'event_id;account_id;asset_id;usage_resource_id;quantity;occurred_at'")),
    Case("event-file-without-quantity", extra_text("extra.csv", "event_id,account_id,usage_resource_id,"
                                                   "occurred_at\n"),
         Raises(SourceError, "{root}/usage/extra.csv: missing required column 'quantity'")),
    Case("empty-event-file", extra_text("extra.csv", b""),
         Raises(SourceError, "{root}/usage/extra.csv: empty file, expected a header row")),
    Case("header-only-event-file", extra_text("extra.csv", ",".join(EVENT_COLUMNS) + "\n"),
         Accepted("e-acme-1", "2026-10-05")),
    Case("empty-usage-folder", lambda root: (root / "usage" / "base.csv").unlink(),
         Raises(SourceError, "{root}/usage: no event files (*.csv, *.jsonl, *.parquet)")),
    # Catalog files that cannot be read, or billed from.
    Case("missing-catalog-file", lambda root: (root / "products.csv").unlink(),
         Raises(SourceError, "{root}/products.csv: required catalog file is missing")),
    Case("catalog-with-semicolons", catalog_text("accounts.csv", b"account_id;account_name;currency\n"),
         Raises(SourceError, "{root}/accounts.csv: line 1: expected comma-separated columns, got "
                "'account_id;account_name;currency'")),
    Case("catalog-in-latin-1", catalog_text("accounts.csv", "account_id,account_name,currency\n"
                                            "ACME,Acme,USD\nBETA,Bêta,EUR\n".encode("latin-1")),
         # "BETA,B" is 6 bytes: ê is the 7th.
         Raises(SourceError, "{root}/accounts.csv: line 3: not UTF-8 text at byte 7 of the line: "
                "save the file as UTF-8")),
    Case("catalog-row-cut-short", catalog_text("accounts.csv", b"account_id,account_name,currency\n"
                                               b"ACME,Acme,USD\nBETA,Beta\n"),
         Raises(SourceError, "{root}/accounts.csv: line 3: expected 3 fields as in the header, got 2")),
    Case("empty-catalog-file", catalog_text("products.csv", b""),
         Raises(SourceError, "{root}/products.csv: empty file, expected a header row")),
    Case("catalog-with-a-bom", catalog_text("accounts.csv", "\ufeffaccount_id,account_name,currency\n"
                                            "ACME,Acme,USD\nBETA,Beta,EUR\n".encode()),
         Accepted("e-beta-1", "2026-10-10")),
    Case("catalog-with-cr-only-line-endings", catalog_text(
        "accounts.csv", b"account_id,account_name,currency\rACME,Acme,USD\rBETA,Beta,EUR\r"),
         Accepted("e-beta-1", "2026-10-10")),
    # Only LF, CRLF and CR end a row: U+2028, U+0085 and a vertical tab are characters of a name.
    Case("catalog-unicode-line-separators-in-a-quoted-name", catalog_text(
        "accounts.csv", 'account_id,account_name,currency\nACME,Acme\u2028Inc\u0085,USD\n'
        'BETA,"Beta\x0bGmbH",EUR\n'.encode()), Accepted("e-beta-1", "2026-10-10")),
    Case("catalog-error-after-a-quoted-line-break-names-its-line", catalog_text(
        "accounts.csv", b'account_id,account_name,currency\nACME,"Acme\nInc",USD\nBETA,Beta,EURO\n'),
         Raises(CatalogError, "accounts.csv: row 2 (line 4), column 'currency': expected an ISO 4217 "
                "code like USD, got 'EURO'")),
    Case("catalog-column-named-twice", catalog_text(
        "accounts.csv", b"account_id,account_name,currency,currency\nACME,Acme,USD,USD\n"),
         Raises(SourceError, "{root}/accounts.csv: line 1: column 'currency' appears more than once "
                "in the header")),
    Case("catalog-nul-in-a-name", catalog_cell("accounts.csv", 1, "account_name", "Ac\x00me"),
         Raises(SourceError, "{root}/accounts.csv: line 2, column 'account_name': holds a NUL "
                "character (byte 0), which is not text: remove it")),
    Case("currency-not-in-iso-4217", catalog_cell("accounts.csv", 2, "currency", "ZZZ"),
         Raises(CatalogError, "accounts.csv: row 2 (line 3), column 'currency': expected an ISO 4217 "
                "code like USD, got 'ZZZ'")),
    Case("price-currency-not-in-iso-4217", catalog_cell("price_book.csv", 2, "currency", "EUX"),
         Raises(CatalogError, "price_book.csv: row 2 (line 3), column 'currency': expected an ISO "
                "4217 code like USD, got 'EUX'")),
    Case("catalog-missing-column", catalog_text("accounts.csv", b"account_id,account_name\nACME,Acme\n"),
         Raises(CatalogError, "accounts.csv: missing required column 'currency'")),
    Case("duplicate-account", catalog_rows("accounts.csv", ["ACME", "Acme again", "USD"]),
         Raises(CatalogError, "accounts.csv: row 3 (line 4), column 'account_id': expected a unique "
                "account_id, got 'ACME'")),
    Case("asset-of-an-unknown-account", catalog_cell("assets.csv", 2, "account_id", "NOBODY"),
         Raises(CatalogError, "assets.csv: row 2 (line 3), column 'account_id': expected a known "
                "account_id, got 'NOBODY'")),
    Case("negotiated-rate-for-an-asset-of-another-account", catalog_cell(
        "negotiated_rates.csv", 1, "asset_id", "A1"),
         Raises(CatalogError, "negotiated_rates.csv: row 1 (line 2), column 'asset_id': expected an "
                "asset of the row's account, got 'A1'")),
    Case("grant-quantity-not-a-number", catalog_cell("product_grants.csv", 1, "quantity", "1 000"),
         Raises(CatalogError, "product_grants.csv: row 1 (line 2), column 'quantity': expected a "
                "non-negative number with at most 6 decimals, got '1 000'")),
    Case("missing-price-for-a-currency", both(
        catalog_rows("price_book.csv", drop=(5,)), catalog_rows("negotiated_rates.csv", drop=(1,))),
         Raises(PricingError, "no price for usage resource 'api_calls' in EUR for account 'BETA': "
                "overage of 2000 cannot be billed (price_book.csv / negotiated_rates.csv)")),
    Case("price-only-in-another-currency-falls-back-to-the-price-book", catalog_cell(
        "negotiated_rates.csv", 1, "currency", "USD"),
         # BETA (EUR) pays the EUR price book: 2,000 × 0.001 = 2.00 EUR.
         Accepted("e-beta-1", "2026-10-10", {**BILL, ("BETA", "", "api_calls"): (
             2000, 0, 2000, Decimal("2.00"), "EUR")})),
    Case("no-token-rate-in-effect", catalog_cell("token_rates.csv", 1, "effective_from", "2026-11-01"),
         Raises(RatingError, "no token rate for usage resource 'compute_hours' in effect on "
                "2026-10-05 (token_rates.csv); 3 summaries affected")),
    # Catalogs that build but are ambiguous: the input check blocks the period.
    Case("overlapping-price-book-rates", catalog_rows(
        "price_book.csv", price("credits", "USD", "per_unit", "", "0.03", "2026-06-01")),
         Blocked("price_book.csv", ["price_book.csv: row 9 (line 10), column 'effective_from': "
                 "expected no overlap with the rate of row 1 (line 2) for the same key (credits, "
                 "USD), got '2026-06-01'"])),
    Case("overlapping-token-rates", catalog_rows("token_rates.csv", ["compute_hours", "12", "2026-10-01", ""]),
         Blocked("token_rates.csv", ["token_rates.csv: row 2 (line 3), column 'effective_from': "
                 "expected no overlap with the rate of row 1 (line 2) for the same key "
                 "(compute_hours), got '2026-10-01'"])),
    Case("overlapping-negotiated-rates", catalog_rows(
        "negotiated_rates.csv", ["BETA", "", "api_calls", "EUR", "per_unit", "", "0.0007", "", "",
                                 "2025-01-01", "2026-02-01"]),
         Blocked("negotiated_rates.csv", ["negotiated_rates.csv: row 1 (line 2), column "
                 "'effective_from': expected no overlap with the rate of row 2 (line 3) for the "
                 "same key (BETA, , api_calls, EUR), got '2026-01-01'"])),
    Case("unsorted-tiers", catalog_rows(
        "price_book.csv", price("api_calls", "JPY", "graduated", "1000", "0.05", "2026-01-01"),
        price("api_calls", "JPY", "graduated", "0", "0.1", "2026-01-01")),
         Blocked("price_book.csv", [
             "price_book.csv: row 9 (line 10), column 'tier_lower': expected the first tier of a "
             "rate at 0, got '1000'",
             "price_book.csv: row 10 (line 11), column 'tier_lower': expected tiers in ascending "
             "order: above 1000, got '0'"])),
    Case("duplicate-tier", catalog_cell("price_book.csv", 4, "tier_lower", "0"),
         Blocked("price_book.csv", ["price_book.csv: row 4 (line 5), column 'tier_lower': expected "
                 "tiers in ascending order: above 0, got '0'"])),
    Case("two-pricing-models-in-one-rate", catalog_cell("price_book.csv", 7, "pricing_model", "graduated"),
         Blocked("price_book.csv", ["price_book.csv: row 7 (line 8), column 'pricing_model': expected "
                 "'volume' as in row 6 (line 7) of the same rate, got 'graduated'"])),
    Case("per-unit-rate-with-two-rows", catalog_rows(
        "price_book.csv", price("credits", "USD", "per_unit", "500", "0.01", "2026-01-01")),
         Blocked("price_book.csv", ["price_book.csv: row 9 (line 10), column 'tier_lower': expected "
                 "a single row for a per_unit rate, got '500'"])),
    Case("header-only-accounts", catalog_text("accounts.csv", b"account_id,account_name,currency\n"),
         Blocked("accounts.csv", ["accounts.csv: expected at least one row"])),
    # Contracts that change: asset changes, credit grants, commitments.
    *[Case(name, changes(*rows), Raises(CatalogError, f"asset_changes.csv: row {len(rows)} (line "
                                        f"{len(rows) + 1}), column {message}"))
      for name, rows, message in [
          ("change-without-quantity-or-end", ["c1,A1,2026-10-11,,"],
           "'quantity': expected a quantity or an end_date (or both), got ''"),
          ("change-id-repeated", ["c1,A1,2026-10-11,2,", "c1,A1,2026-10-12,3,"],
           "'change_id': expected a unique change_id, got 'c1'"),
          ("change-of-an-unknown-asset", ["c1,Z9,2026-10-11,2,"],
           "'asset_id': expected a known asset_id, got 'Z9'"),
          ("two-changes-of-one-asset-on-one-date", ["c1,A1,2026-10-11,2,", "c2,A1,2026-10-11,3,"],
           "'effective_date': expected one change of asset A1 per date (2026-10-11 has one "
           "already), got '2026-10-11'"),
          ("change-to-a-negative-quantity", ["c1,A1,2026-10-11,-2,"],
           "'quantity': expected a non-negative number with at most 6 decimals, got '-2'"),
          ("change-ending-before-its-date", ["c1,A1,2026-10-11,,2026-10-10"],
           "'end_date': expected a date not before effective_date, got '2026-10-10'"),
          ("change-extending-the-asset", ["c1,A1,2026-10-05,,2026-10-20", "c2,A1,2026-10-10,,2026-10-25"],
           "'end_date': expected an end not later than the asset's end then (2026-10-20): an "
           "extension is a new asset row, got '2026-10-25'"),
          ("change-before-the-asset-starts", ["c1,A1,2026-08-31,2,"],
           "'effective_date': expected a date within asset A1 (from 2026-09-01, no end), got "
           "'2026-08-31'"),
          ("change-after-the-asset-ended", ["c1,A1,2026-10-05,,2026-10-20", "c2,A1,2026-10-20,2,"],
           "'effective_date': expected a date within asset A1 (from 2026-09-01, before its end "
           "2026-10-20), got '2026-10-20'"),
      ]],
    *[Case(name, credits(*rows), Raises(CatalogError, f"credit_grants.csv: row {len(rows)} (line "
                                        f"{len(rows) + 1}), column {message}"))
      for name, rows, message in [
          ("credit-id-repeated", ["k1,ACME,,credits,5,2026-10-02,,,", "k1,ACME,,credits,5,2026-10-03,,,"],
           "'credit_id': expected a unique credit_id, got 'k1'"),
          ("credit-of-zero", ["k1,ACME,,credits,0,2026-10-02,,,"],
           "'quantity': expected a positive quantity, got '0'"),
          ("credit-with-seven-decimals", ["k1,ACME,,credits,1.0000001,2026-10-02,,,"],
           "'quantity': expected a non-negative number with at most 6 decimals, got '1.0000001'"),
          ("credit-for-an-unknown-account", ["k1,NOBODY,,credits,5,2026-10-02,,,"],
           "'account_id': expected a known account_id, got 'NOBODY'"),
          ("credit-for-an-unknown-asset", ["k1,ACME,Z9,credits,5,2026-10-02,,,"],
           "'asset_id': expected a known asset_id, got 'Z9'"),
          ("credit-of-an-unknown-resource", ["k1,ACME,,gpu,5,2026-10-02,,,"],
           "'usage_resource_id': expected a known usage_resource_id, got 'gpu'"),
          ("credit-on-an-asset-of-another-account", ["k1,BETA,A1,credits,5,2026-10-02,,,"],
           "'asset_id': expected an asset of the row's account, got 'A1'"),
          ("credit-of-a-converted-resource", ["k1,ACME,,compute_hours,5,2026-10-02,,,"],
           "'usage_resource_id': expected a resource drawn from itself, not converted into a "
           "token, got 'compute_hours'"),
          ("credit-priority-not-an-integer", ["k1,ACME,,credits,5,2026-10-02,,1.5,"],
           "'priority': expected an integer, got '1.5'"),
          ("credit-ending-on-its-first-day", ["k1,ACME,,credits,5,2026-10-02,2026-10-02,,"],
           "'valid_to': expected a date after effective_date, got '2026-10-02'"),
      ]],
    *[Case(name, alert_rules(*rows), Raises(CatalogError, f"alert_rules.csv: row {len(rows)} "
                                            f"(line {len(rows) + 1}), column {message}"))
      for name, rows, message in [
          ("alert-rule-id-repeated", ["r1,,consumed_share,80,,,,", "r1,,balance_below,5,,,,"],
           "'rule_id': expected a unique rule_id, got 'r1'"),
          ("alert-kind-unknown", ["r1,,spend_spike,80,,,,"],
           "'kind': expected one of consumed_share|exhaustion_within_days|overage_amount|"
           "balance_below, got 'spend_spike'"),
          ("alert-for-an-unknown-account", ["r1,NOBODY,consumed_share,80,,,,"],
           "'account_id': expected a known account_id, got 'NOBODY'"),
          ("alert-threshold-not-a-number", ["r1,,overage_amount,ten,,,,"],
           "'threshold': expected a non-negative decimal number, got 'ten'"),
          ("alert-share-above-100-percent", ["r1,ACME,consumed_share,120,credits,,,"],
           "'threshold': expected a percentage above 0 and at most 100, got '120'"),
          ("alert-days-not-whole", ["r1,,exhaustion_within_days,2.5,,,,"],
           "'threshold': expected a whole number of days from 0 to 366, got '2.5'"),
          ("alert-on-a-converted-resource", ["r1,,balance_below,5,compute_hours,,,"],
           "'usage_resource_id': expected a resource drawn from its own buckets (not one "
           "converted into a token), got 'compute_hours'"),
          ("alert-scope-on-the-forecast", ["r1,,exhaustion_within_days,7,,wallet,,"],
           "'scope': expected no scope for kind exhaustion_within_days (its subject is fixed), "
           "got 'wallet'"),
          ("alert-email-without-address", ["r1,,overage_amount,10,,,email,"],
           "'recipient': expected an email address for the email channel, got ''"),
          ("alert-webhook-not-http", ["r1,,overage_amount,10,,,webhook,ftp://hooks.example"],
           "'recipient': expected an http:// or https:// URL for the webhook channel, got "
           "'ftp://hooks.example'"),
          ("alert-channel-unknown", ["r1,,overage_amount,10,,,pager,"],
           "'channel': expected one of webhook|email, got 'pager'"),
      ]],
    *[Case(f"grant-{column.replace('_', '-')}-unknown", catalog_text("product_grants.csv", (
        f"grant_id,product_id,usage_resource_id,quantity,renewal,binding,{column}\n"
        f"PRO_CREDITS,PRO,credits,1000,monthly,account,sometimes\n").encode()),
           Raises(CatalogError, f"product_grants.csv: row 1 (line 2), column '{column}': expected "
                  f"one of {allowed}, got 'sometimes'"))
      for column, allowed in [("grant_type", "grant|commit"), ("commitment_rate", "bounded|lowest")]],
]  # fmt: skip


def test_the_corpus_has_at_least_fifty_cases_with_distinct_names():
    assert len(CASES) >= 50 and len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory):
    """The good source: its catalog files, its catalog and its accepted October events."""
    root = write_source(tmp_path_factory.mktemp("base"))
    catalog, _, ingested = read_and_ingest(root)
    return sources.read_catalog(root), catalog, ingested.usage_events


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_bad_input(case: Case, base, tmp_path: Path):
    root = write_source(tmp_path / "source")
    case.breaks(root)
    expect = case.expect
    if isinstance(expect, Raises):
        with pytest.raises(expect.error) as raised:
            bill(root, timezone=case.timezone)
        assert str(raised.value) == expect.message.format(root=root)
        if isinstance(raised.value, CatalogError):
            assert_check_fails(root, raised.value)
    elif isinstance(expect, Blocked):
        outcome = check_file(expect.file, sources.read_catalog(root))
        assert not outcome.passed
        assert outcome.failing["problem"].tolist() == expect.problems
    elif isinstance(expect, Quarantined):
        catalog = unchanged_catalog(root, base)
        _, _, ingested = read_and_ingest(root, timezone=case.timezone, catalog=catalog)
        q = ingested.quarantined_events.set_index(["source_file", "row_number"])
        assert q.loc[(f"usage/{expect.file}", expect.line), "reason"] == expect.reason
        if expect.bill == BILL:
            # The later stages read nothing but the catalog and the accepted events: the same
            # accepted events as the good source's are billed as BILL (test_the_good_source...).
            # Only their line numbers may move, when a bad row sits between them.
            pd.testing.assert_frame_equal(ingested.usage_events.drop(columns="row_number"),
                                          base[2].drop(columns="row_number"))  # fmt: skip
        else:
            assert bill(root, timezone=case.timezone, catalog=catalog).lines() == expect.bill
    else:
        billed = bill(root, timezone=case.timezone, catalog=unchanged_catalog(root, base))
        assert billed.lines() == expect.bill
        assert_accepted_in_its_period(root, expect, case.timezone, billed)


def unchanged_catalog(root: Path, base) -> Catalog | None:
    """The good source's catalog when the case left the catalog files alone (else rebuild)."""
    files = sources.read_catalog(root)
    same = files.keys() == base[0].keys() and all(files[n].equals(base[0][n]) for n in files)
    return base[1] if same else None


def assert_check_fails(root: Path, error: CatalogError) -> None:
    """A catalog the builder refuses fails its input check with the same cell."""
    outcome = check_file(error.file, sources.read_catalog(root), error)
    assert not outcome.passed and str(error) in outcome.failing["problem"].tolist()


def assert_accepted_in_its_period(root: Path, expect: Accepted, timezone: str, billed) -> None:
    """The event is accepted in the period of its usage date (October, or the one it names)."""
    period = pd.Timestamp(expect.usage_date).to_period("M").to_timestamp()
    usage = billed.ingested.usage_events
    if period != pd.Timestamp("2026-10-01"):
        assert expect.event_id not in set(usage["event_id"])
        usage = read_and_ingest(root, period, timezone, billed.catalog)[2].usage_events
    row = usage.set_index("event_id").loc[expect.event_id]
    assert row["usage_date"] == pd.Timestamp(expect.usage_date)


def test_a_large_event_file_with_quoted_line_breaks_is_billed_row_for_row(tmp_path: Path):
    """40,000 rows of about 60 bytes span several of the CSV reader's 1 MB blocks, and every
    event id holds a line break inside its quotes: each row is one event, none is lost or made
    up. ACME's api_calls: 1,500 + 40,000 calls = 1,000 x 0.001 + 40,500 x 0.0005 = 21.25 USD."""
    root = write_source(tmp_path)
    rows = [f'"big-{i}\nsecond line",ACME,,api_calls,1,2026-10-15T12:00:00Z' for i in range(40_000)]
    (root / "usage" / "big.csv").write_text(",".join(EVENT_COLUMNS) + "\n" + "\n".join(rows) + "\n")
    billed = bill(root)
    assert billed.lines() == {**BILL, ACME_CALLS: (41_500, 0, 41_500, Decimal("21.25"), "USD")}
    assert billed.ingested.reconciliation == {"events_read": 40_007, "accepted": 40_007,
                                              "duplicates": 0, "quarantined": 0, "other_periods": 0}  # fmt: skip
    big = billed.ingested.usage_events.query("source_file == 'usage/big.csv'")
    assert big["row_number"].max() == 2 + 2 * 39_999  # each row starts a line after two


def test_the_good_source_is_billed_as_worked_out_by_hand(tmp_path: Path):
    billed = bill(write_source(tmp_path))
    assert billed.lines() == BILL
    assert billed.ingested.reconciliation == {"events_read": len(EVENTS), "accepted": len(EVENTS),
                                              "duplicates": 0, "quarantined": 0, "other_periods": 0}  # fmt: skip


def test_every_catalog_file_of_the_good_source_meets_its_contract(base):
    outcomes = {name: check_file(name, base[0]).summary for name in CATALOG}
    assert all(summary.startswith("passed") for summary in outcomes.values()), outcomes
