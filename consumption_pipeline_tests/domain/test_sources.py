"""docs/rules.md "Inputs": reading the source directory, with real files, into stage 1."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from consumption_pipeline.domain.catalog import build_catalog
from consumption_pipeline.domain.ingest import ingest
from consumption_pipeline.storage import sources
from consumption_pipeline_tests.builders import acme_catalog

OCTOBER = pd.Timestamp("2026-10-01")
HEADER = "event_id,account_id,asset_id,usage_resource_id,quantity,occurred_at"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(path: Path, *records: dict | str) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    return write(path, "\n".join(lines) + "\n")


def record(event_id: str, quantity=1, occurred_at="2026-10-05T10:00:00Z", **fields) -> dict:
    return {"event_id": event_id, "account_id": "ACME", "usage_resource_id": "credits",
            "quantity": quantity, "occurred_at": occurred_at, **fields}  # fmt: skip


def ingest_dir(root: Path, timezone: str = "UTC"):
    frames = [sources.read_events(p, root) for p in sources.event_files(root)]
    return ingest(frames, acme_catalog(), OCTOBER, timezone)


# --- event files -----------------------------------------------------------------------------


def test_csv_row_with_the_wrong_number_of_fields_is_quarantined_as_malformed(tmp_path):
    # Row 3 has 7 fields and row 5 has 5 (the header is row 1, with 6): both quarantined
    # `malformed_row` with their row numbers; rows 2 and 4 are accepted.
    write(tmp_path / "usage" / "gateway.csv", "\n".join([
        HEADER,
        "E1,ACME,,credits,1,2026-10-05T10:00:00Z",
        "E2,ACME,,credits,1,2026-10-05T10:00:00Z,surprise",
        "E3,ACME,,credits,2,2026-10-05T10:00:00Z",
        "E4,ACME,credits,1,2026-10-05T10:00:00Z",
    ]) + "\n")  # fmt: skip
    result = ingest_dir(tmp_path)
    q = result.quarantined_events
    assert q[["reason", "source_file", "row_number"]].values.tolist() == [
        ["malformed_row", "usage/gateway.csv", 3],
        ["malformed_row", "usage/gateway.csv", 5],
    ]
    assert q["detail"].tolist()[0] == (
        "expected 6 fields, got 7: E2,ACME,,credits,1,2026-10-05T10:00:00Z,surprise"
    )
    assert result.usage_events["event_id"].tolist() == ["E1", "E3"]
    assert result.usage_events["row_number"].tolist() == [2, 4]
    assert result.reconciliation == {
        "events_read": 4, "accepted": 2, "duplicates": 0, "quarantined": 2, "other_periods": 0,
    }  # fmt: skip


def test_jsonl_line_that_does_not_parse_is_quarantined_as_malformed(tmp_path):
    # Line 2 is truncated JSON, line 3 a JSON array: both malformed, with their line numbers.
    jsonl(tmp_path / "usage" / "stream.jsonl",
          record("J1"), '{"event_id": "J2", "quantity": 1', "[1, 2]", record("J4"))  # fmt: skip
    result = ingest_dir(tmp_path)
    q = result.quarantined_events
    assert q[["reason", "row_number"]].values.tolist() == [
        ["malformed_row", 2],
        ["malformed_row", 3],
    ]
    assert q["detail"].iloc[1] == "not a JSON object: [1, 2]"
    assert result.usage_events["event_id"].tolist() == ["J1", "J4"]


def test_jsonl_key_missing_from_every_line_is_a_missing_field_not_a_broken_file(tmp_path):
    # JSON lines have no header: a line without "quantity" is one event missing a field.
    jsonl(tmp_path / "usage" / "stream.jsonl", {k: v for k, v in record("J1").items()
                                                if k != "quantity"})  # fmt: skip
    result = ingest_dir(tmp_path)
    assert result.quarantined_events["reason"].tolist() == ["missing_quantity"]


def test_exact_duplicates_across_formats_count_once(tmp_path):
    # The same event as CSV text "700", JSON number 700.0 (at 12:00+02:00) and a Parquet
    # float 700.0 with a UTC timestamp: 3 read = 1 accepted + 2 duplicates.
    write(tmp_path / "usage" / "a.csv", HEADER + "\nE1,ACME,,credits,700,2026-10-05T10:00:00Z\n")
    jsonl(tmp_path / "usage" / "b.jsonl", record("E1", 700.0, "2026-10-05T12:00:00+02:00"))
    pd.DataFrame({
        "event_id": ["E1"], "account_id": ["ACME"], "asset_id": [None],
        "usage_resource_id": ["credits"], "quantity": [700.0],
        "occurred_at": pd.to_datetime(["2026-10-05T10:00:00Z"]),
    }).to_parquet(tmp_path / "usage" / "c.parquet")  # fmt: skip
    result = ingest_dir(tmp_path)
    assert result.reconciliation == {
        "events_read": 3, "accepted": 1, "duplicates": 2, "quarantined": 0, "other_periods": 0,
    }  # fmt: skip
    assert result.usage_events["source_file"].tolist() == ["usage/a.csv"]


def test_parquet_numbers_and_naive_timestamps(tmp_path):
    # Parquet carries typed values: 0.1 and 0.2 (exactly 300,000 micro-units together),
    # a NaN (missing), -1 (negative); a naive timestamp is UTC: 31 Oct 23:30 stays October's.
    (tmp_path / "usage").mkdir()
    pd.DataFrame({
        "event_id": ["P1", "P2", "P3", "P4"], "account_id": ["ACME"] * 4,
        "usage_resource_id": ["credits"] * 4, "quantity": [0.1, 0.2, float("nan"), -1.0],
        "occurred_at": pd.to_datetime(["2026-10-31T23:30:00"] * 4),
    }).to_parquet(tmp_path / "usage" / "p.parquet")  # fmt: skip
    result = ingest_dir(tmp_path)
    assert result.usage_events["event_id"].tolist() == ["P1", "P2"]
    assert (result.usage_events["quantity"] * 1_000_000).round().sum() == 300_000
    assert result.usage_events["usage_date"].tolist() == [pd.Timestamp("2026-10-31")] * 2
    assert result.quarantined_events["reason"].tolist() == ["missing_quantity", "negative_quantity"]


def test_a_parquet_file_is_read_in_batches_numbered_from_the_files_start(tmp_path, monkeypatch):
    # Batches of 2 rows: [P1 P2] [P3 P1] [P4]. P1's copy is in another batch than P1; P4 is
    # negative. The ingest sees the batches, not the file, and still finds the copy.
    monkeypatch.setattr(sources, "BATCH_ROWS", 2)
    (tmp_path / "usage").mkdir()
    pd.DataFrame({
        "event_id": ["P1", "P2", "P3", "P1", "P4"], "account_id": ["ACME"] * 5,
        "usage_resource_id": ["credits"] * 5, "quantity": [1.0, 2.0, 3.0, 1.0, -1.0],
        "occurred_at": pd.to_datetime(["2026-10-05T10:00:00Z"] * 5),
    }).to_parquet(tmp_path / "usage" / "p.parquet")  # fmt: skip
    files = sources.EventFiles(tmp_path)
    assert [b["row_number"].tolist() for b in files] == [[1, 2], [3, 4], [5]]
    # Batches read apart keep their numbers and the rows they were numbered with.
    assert [(n, b["row_number"].tolist()) for n, b in files.parts([0, 2])] == [
        (0, [1, 2]),
        (2, [5]),
    ]
    assert [f.rows for f in files.facts()] == [2, 2, 1]
    result = ingest(files, acme_catalog(), OCTOBER, "UTC")
    assert result.usage_events["event_id"].tolist() == ["P1", "P2", "P3"]
    assert result.usage_events["row_number"].tolist() == [1, 2, 3]
    assert result.quarantined_events[["event_id", "reason", "row_number"]].values.tolist() == [
        ["P4", "negative_quantity", 5]]  # fmt: skip
    assert result.reconciliation["duplicates"] == 1


def test_csv_with_a_byte_order_mark_and_padded_cells(tmp_path):
    # Spreadsheet exports start with a BOM and may pad cells: "E1" and " 5 " still read.
    path = tmp_path / "usage" / "excel.csv"
    path.parent.mkdir()
    path.write_bytes(
        ("\ufeff" + HEADER + "\n E1 ,ACME,, credits , 5 ,2026-10-05T10:00Z\n").encode()
    )
    result = ingest_dir(tmp_path)
    assert result.usage_events[["event_id", "usage_resource_id", "quantity"]].values.tolist() == [
        ["E1", "credits", 5.0]
    ]


def test_csv_without_a_required_column_is_an_error_naming_file_and_column(tmp_path):
    path = write(tmp_path / "usage" / "x.csv", "event_id,account_id,usage_resource_id,quantity\n")
    with pytest.raises(sources.SourceError, match=r"x\.csv.*'occurred_at'"):
        sources.read_events(path)


def test_csv_without_asset_id_column_reads_as_no_asset(tmp_path):
    path = write(tmp_path / "e.csv", "event_id,account_id,usage_resource_id,quantity,occurred_at\n"
                 "E1,ACME,credits,1,2026-10-05\n")  # fmt: skip
    frame = sources.read_events(path)
    assert frame["asset_id"].isna().tolist() == [True]


def test_event_files_finds_csv_jsonl_and_parquet_under_usage_sorted(tmp_path):
    for name in ["b.csv", "a.jsonl", "sub/c.parquet", "notes.txt"]:
        write(tmp_path / "usage" / name, "")
    found = [p.relative_to(tmp_path).as_posix() for p in sources.event_files(tmp_path)]
    assert found == ["usage/a.jsonl", "usage/b.csv", "usage/sub/c.parquet"]


def test_missing_usage_folder_is_an_error(tmp_path):
    with pytest.raises(sources.SourceError, match="usage folder is missing"):
        sources.event_files(tmp_path)


# --- catalog files ---------------------------------------------------------------------------

CATALOG_FILES = {
    "accounts.csv": "account_id,account_name,currency\nACME,Acme,USD\n",
    "usage_resources.csv": "usage_resource_id,name,unit_of_measure,notes\n"
    "credits,Credits,credit,x\n",
    "products.csv": "product_id,product_name\nPRO,Pro\n",
    "product_grants.csv": "grant_id,product_id,usage_resource_id,quantity,renewal\n"
    "G,PRO,credits,1000,monthly\n",
    "assets.csv": "asset_id,account_id,product_id,quantity,start_date\nA1,ACME,PRO,1,2026-09-01\n",
    "price_book.csv": "usage_resource_id,currency,pricing_model,unit_price,effective_from\n"
    "credits,USD,per_unit,0.02,2026-01-01\n",
}


def test_token_rates_and_negotiated_rates_may_be_absent(tmp_path):
    for name, text in CATALOG_FILES.items():
        write(tmp_path / name, text)
    files = sources.read_catalog(tmp_path)
    assert set(files) == set(CATALOG_FILES)
    catalog = build_catalog(files)
    assert catalog.token_rates.empty
    assert catalog.rates["level"].tolist() == ["price_book"]


def test_required_catalog_file_missing_is_an_error_naming_it(tmp_path):
    for name, text in CATALOG_FILES.items():
        if name != "assets.csv":
            write(tmp_path / name, text)
    with pytest.raises(sources.SourceError, match=r"assets\.csv: required catalog file"):
        sources.read_catalog(tmp_path)


def test_catalog_row_with_the_wrong_number_of_fields_is_an_error_naming_the_line(tmp_path):
    for name, text in CATALOG_FILES.items():
        write(tmp_path / name, text)
    write(tmp_path / "products.csv", "product_id,product_name\nPRO,Pro\nPACK,Pack,extra\n")
    with pytest.raises(sources.SourceError, match=r"products\.csv: line 3: expected 2 fields"):
        sources.read_catalog(tmp_path)


def test_catalog_quoted_cells_keep_their_commas(tmp_path):
    for name, text in CATALOG_FILES.items():
        write(tmp_path / name, text)
    write(tmp_path / "products.csv", 'product_id,product_name\nPRO,"Pro, yearly"\n')
    assert sources.read_catalog(tmp_path)["products.csv"]["product_name"].tolist() == [
        "Pro, yearly"
    ]


def test_jsonl_line_that_is_not_utf8_is_malformed_and_the_others_still_read(tmp_path):
    # A corrupted byte on line 2 must not turn into a silently altered event id.
    path = tmp_path / "usage" / "stream.jsonl"
    path.parent.mkdir()
    good = json.dumps(record("J1")).encode()
    bad = json.dumps(record("J\u00e92")).encode().replace(b"\\u00e9", b"\xe9")
    path.write_bytes(good + b"\n" + bad + b"\n")
    result = ingest_dir(tmp_path)
    assert result.usage_events["event_id"].tolist() == ["J1"]
    q = result.quarantined_events
    assert (q["reason"].iloc[0], q["row_number"].iloc[0]) == ("malformed_row", 2)
    assert q["detail"].iloc[0].startswith("not UTF-8 text")


def test_jsonl_values_are_read_as_written(tmp_path):
    # Numbers keep their JSON spelling until the ingest compares them as values; a JSON NaN is
    # a non-finite quantity, a string quantity is parsed like CSV text.
    jsonl(tmp_path / "usage" / "s.jsonl", record("J1", 2.5), record("J2", "2.5"),
          '{"event_id": "J3", "account_id": "ACME", "usage_resource_id": "credits", '
          '"quantity": NaN, "occurred_at": "2026-10-05T10:00:00Z"}')  # fmt: skip
    frame = sources.read_events(tmp_path / "usage" / "s.jsonl")
    assert frame["quantity"].tolist() == ["2.5", "2.5", "NaN"]
    result = ingest_dir(tmp_path)
    assert result.usage_events["quantity"].tolist() == [2.5, 2.5]
    assert result.quarantined_events["reason"].tolist() == ["non_finite_quantity"]


# --- line ends, quoted line breaks and row numbers ------------------------------------------


def test_csv_rows_are_numbered_by_the_line_they_start_on(tmp_path):
    # Line 1 header; E1 spans lines 2-3 (a quoted line break); line 4 is blank; line 5 is E2,
    # cut short; E3 spans 6-7 (a quoted CRLF); line 8 holds only commas (no event, like a blank
    # line); E4 spans 9-11 (two breaks in one field); line 12 is E5, cut short; E6 spans 13-14.
    path = write(tmp_path / "q.csv", HEADER + "\n" + "\n".join([
        'E1,ACME,,"a\nb",1,2026-10-05T10:00Z', "", "E2,ACME,,c,1",
        '"E3\r\nx",ACME,,c,1,2026-10-05T10:00Z', ",,,,,", 'E4,"A\n\nB",,c,1,2026-10-05T10:00Z',
        "E5,x", '"E6\n",ACME,,c,1,t',
    ]) + "\n")  # fmt: skip
    frame = sources.read_events(path)
    read = frame[frame["malformed"].isna()]
    assert read["event_id"].tolist() == ["E1", "E3\r\nx", "E4", "E6\n"]
    assert read["row_number"].tolist() == [2, 6, 9, 13]
    assert frame.loc[frame["malformed"].notna(), "row_number"].tolist() == [5, 12]


def test_a_large_csv_with_quoted_line_breaks_is_read_whole_across_arrow_blocks(tmp_path):
    # 60,000 rows (~4.5 MB: Arrow reads 1 MiB blocks). Every third row's note holds a quoted
    # line break, so row k (from 0) starts on line 2 + k + (number of rows before it that are
    # multiples of 3) = 2 + k + ceil(k / 3). No phantom row, no error, nothing quarantined.
    notes = ["two\nlines " + "x" * 40, "one " + "x" * 40, "one " + "x" * 40]
    rows = [f'E{k},ACME,,credits,1,2026-10-05T10:00:00Z,"{notes[k % 3]}"' for k in range(60_000)]
    path = write(tmp_path / "big.csv", HEADER + ",note\n" + "\n".join(rows) + "\n")
    assert path.stat().st_size > 4 * 1024 * 1024
    frame = sources.read_events(path)
    assert frame["malformed"].isna().all() and len(frame) == 60_000
    k = np.arange(60_000)
    assert frame["row_number"].tolist() == (2 + k + (k + 2) // 3).tolist()
    assert frame["event_id"].iloc[-1] == "E59999"


def test_csv_with_cr_line_endings_is_read(tmp_path):
    # Old Mac files end lines with a lone CR: two rows, on lines 2 and 3.
    path = tmp_path / "mac.csv"
    path.write_bytes(("\r".join([HEADER, "E1,ACME,,credits,1,2026-10-05T10:00:00Z",
                                 "E2,ACME,,credits,2,2026-10-05T10:00:00Z"]) + "\r").encode())  # fmt: skip
    frame = sources.read_events(path)
    assert frame[["event_id", "quantity", "row_number"]].values.tolist() == [
        ["E1", "1", 2], ["E2", "2", 3]]  # fmt: skip


def test_jsonl_with_cr_line_endings_is_read_line_by_line(tmp_path):
    path = tmp_path / "mac.jsonl"
    path.write_bytes("\r".join(json.dumps(record(f"J{n}")) for n in (1, 2)).encode() + b"\r")
    frame = sources.read_events(path)
    assert frame[["event_id", "row_number"]].values.tolist() == [["J1", 1], ["J2", 2]]
    assert frame["malformed"].isna().all()


# --- repeated columns and keys ----------------------------------------------------------------


def test_an_event_column_named_twice_in_a_csv_header_is_an_error_naming_it(tmp_path):
    path = write(
        tmp_path / "x.csv", HEADER + ", quantity\nE1,ACME,,credits,1,2026-10-05T10:00Z,5\n"
    )
    with pytest.raises(sources.SourceError) as raised:
        sources.read_events(path)
    assert (
        str(raised.value)
        == f"{path}: line 1: column 'quantity' appears more than once in the header"
    )


def test_an_unknown_column_named_twice_is_ignored_like_any_unknown_column(tmp_path):
    path = write(
        tmp_path / "x.csv", HEADER + ",note,note\nE1,ACME,,credits,1,2026-10-05T10:00Z,a,b\n"
    )
    assert sources.read_events(path)["event_id"].tolist() == ["E1"]


def test_an_event_column_named_twice_in_a_parquet_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "x.parquet"
    arrays = [pa.array(["E1"]), pa.array(["ACME"]), pa.array(["credits"]), pa.array([1.0]),
              pa.array([5.0]), pa.array(["2026-10-05T10:00:00Z"])]  # fmt: skip
    names = ["event_id", "account_id", "usage_resource_id", "quantity", "quantity", "occurred_at"]
    pq.write_table(pa.Table.from_arrays(arrays, names=names), path)
    with pytest.raises(sources.SourceError) as raised:
        sources.read_events(path)
    assert str(raised.value) == f"{path}: column 'quantity' appears more than once in the file"


def test_a_jsonl_line_with_a_repeated_event_key_is_malformed(tmp_path):
    # json would keep the last quantity (5): which one was meant is unknown.
    path = jsonl(tmp_path / "s.jsonl", '{"event_id": "J1", "quantity": 100, "quantity": 5, '
                 '"account_id": "ACME", "usage_resource_id": "credits", "occurred_at": "x"}',
                 '{"event_id": "J2", "tags": {"a": 1, "a": 2}, "quantity": 1}')  # fmt: skip
    frame = sources.read_events(path)
    assert frame["malformed"].tolist()[0].startswith("key 'quantity' appears more than once: {")
    assert frame["quantity"].isna().tolist() == [True, False]  # neither value is shown as read
    assert pd.isna(frame["malformed"].iloc[1])  # a repeated key outside the event fields


# --- JSON values ------------------------------------------------------------------------------


def test_jsonl_numbers_keep_the_text_they_were_written_with(tmp_path):
    # As floats 1.00000000000000001 would be 1.0 (billed as 1), 1e2 100.0 and a 5,000-digit
    # integer would stop the reader (Python refuses to convert it): kept as written, the
    # quantity rules judge their exact values.
    path = jsonl(tmp_path / "s.jsonl", *(
        f'{{"event_id": "J{n}", "quantity": {q}}}'
        for n, q in enumerate(["1.00000000000000001", "1e2", "1E-7", "9" * 5000, "-0"])
    ))  # fmt: skip
    frame = sources.read_events(path)
    assert frame["quantity"].tolist() == ["1.00000000000000001", "1e2", "1E-7", "9" * 5000, "-0"]
    assert frame["malformed"].isna().all()


@pytest.mark.parametrize(
    "value, problem",
    [
        ('{"id": 7}', "'event_id' is a JSON object, expected text or an integer"),
        ("[7]", "'event_id' is a JSON array, expected text or an integer"),
        ("true", "'event_id' is a JSON boolean, expected text or an integer"),
        ("7.0", "'event_id' is the number 7.0, expected text or an integer"),
        ("7e0", "'event_id' is the number 7e0, expected text or an integer"),
        ("NaN", "'event_id' is the number NaN, expected text or an integer"),
    ],
)
def test_a_jsonl_id_that_is_not_text_or_an_integer_is_malformed(tmp_path, value, problem):
    path = jsonl(tmp_path / "s.jsonl", f'{{"event_id": {value}, "quantity": 1}}')
    frame = sources.read_events(path)
    assert frame["malformed"].iloc[0] == f'{problem}: {{"event_id": {value}, "quantity": 1}}'
    assert frame["event_id"].iloc[0] == value  # shown as the JSON text it is


def test_a_jsonl_integer_id_is_its_digits(tmp_path):
    path = jsonl(tmp_path / "s.jsonl", '{"event_id": 12345678901234567890123, "account_id": -7}')
    frame = sources.read_events(path)
    assert frame[["event_id", "account_id"]].values.tolist() == [["12345678901234567890123", "-7"]]
    assert frame["malformed"].isna().all()


def test_jsonl_lines_that_are_not_unicode_or_nested_too_deeply_are_malformed(tmp_path):
    # A lone surrogate escape is not a character; 100,000 nested arrays exhaust the parser.
    path = jsonl(tmp_path / "s.jsonl", '{"event_id": "J\\ud800"}',
                 '{"event_id": "J2", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")  # fmt: skip
    frame = sources.read_events(path)
    assert [m.split(":")[0] for m in frame["malformed"]] == [
        "'event_id' is not Unicode text (a lone surrogate)", "invalid JSON"]  # fmt: skip
    assert pd.isna(frame["event_id"].iloc[0])  # not text: not shown


# --- Parquet types ----------------------------------------------------------------------------


def parquet(path: Path, **columns: pa.Array) -> Path:
    table = {"event_id": pa.array(["P1"]), "account_id": pa.array(["ACME"]),
             "usage_resource_id": pa.array(["credits"]), "quantity": pa.array([1.0]),
             "occurred_at": pa.array([pd.Timestamp("2026-10-05T10:00Z")], pa.timestamp("us", "UTC")),
             **columns}  # fmt: skip
    pq.write_table(pa.table(table), path)
    return path


@pytest.mark.parametrize(
    "column, values, kind, expected",
    [
        ("event_id", pa.array([{"a": 1}]), "struct<a: int64>", "text"),
        ("account_id", pa.array([[1]]), "list<element: int64>", "text"),
        ("event_id", pa.array([1.5]), "double", "text"),  # a float id may have lost digits
        ("asset_id", pa.array([True]), "bool", "text"),
        ("quantity", pa.array([[1.0]]), "list<element: double>", "numbers or text"),
        ("occurred_at", pa.array([{"t": 1}]), "struct<t: int64>", "timestamps or text"),
    ],
)
def test_a_parquet_column_of_a_type_that_cannot_hold_its_field_is_an_error(
    tmp_path, column, values, kind, expected
):
    path = parquet(tmp_path / "p.parquet", **{column: values})
    with pytest.raises(sources.SourceError) as raised:
        sources.read_events(path)
    assert (
        str(raised.value) == f"{path}: column '{column}' holds {kind} values, expected {expected}"
    )


def test_parquet_values_that_are_not_instants_or_numbers_are_read_as_text_for_the_rules(tmp_path):
    # Integer ids are their digits; a date, a boolean quantity and an instant past the µs
    # range (year 301,770, which would wrap into the past) become text, which the rules refuse.
    # (Parquet has no seconds: the instant is stored as 9,460,800,000,000,000 milliseconds.)
    far = pa.array([300_000 * 365 * 86_400], pa.timestamp("s"))
    first = parquet(tmp_path / "a.parquet", event_id=pa.array([42]),
                    occurred_at=pa.array([pd.Timestamp("2026-10-05").date()], pa.date32()),
                    quantity=pa.array([True]))  # fmt: skip
    second = parquet(tmp_path / "b.parquet", occurred_at=far)
    frame = sources.read_events(first)
    assert frame[["event_id", "quantity", "occurred_at"]].values.tolist() == [
        ["42", "true", "2026-10-05"]
    ]
    assert sources.read_events(second)["occurred_at"].tolist() == [
        "<value out of range: 9460800000000000>"]  # fmt: skip


def test_a_parquet_time_zone_label_is_only_a_label_on_utc_instants(tmp_path):
    # Parquet stores zoned instants in UTC; an unknown zone name does not stop the file.
    instants = pa.array([pd.Timestamp("2026-10-05T10:00Z").value // 1000], pa.int64())
    path = parquet(
        tmp_path / "p.parquet", occurred_at=instants.view(pa.timestamp("us", "Mars/Olympus"))
    )
    assert sources.read_events(path)["occurred_at"].tolist() == [pd.Timestamp("2026-10-05T10:00Z")]


def test_a_parquet_string_that_is_not_utf8_is_an_error_naming_row_and_column(tmp_path):
    ids = pa.array([b"P1", b"P\xff"], pa.binary())
    not_utf8 = pa.Array.from_buffers(pa.string(), 2, ids.buffers())  # written unchecked
    path = parquet(tmp_path / "p.parquet", event_id=not_utf8, account_id=pa.array(["ACME"] * 2),
                   usage_resource_id=pa.array(["credits"] * 2), quantity=pa.array([1.0, 1.0]),
                   occurred_at=pa.array([pd.Timestamp("2026-10-05T10:00Z")] * 2,
                                        pa.timestamp("us", "UTC")))  # fmt: skip
    with pytest.raises(sources.SourceError) as raised:
        sources.read_events(path)
    assert str(raised.value) == (
        f"{path}: row 2, column 'event_id': not UTF-8 text: write its strings as UTF-8"
    )


def test_an_event_file_whose_name_is_not_utf8_is_an_error(tmp_path):
    folder = tmp_path / "usage"
    folder.mkdir()
    os.close(os.open(os.fsencode(folder) + b"/caf\xe9.csv", os.O_CREAT | os.O_WRONLY))
    with pytest.raises(sources.SourceError) as raised:
        sources.event_files(tmp_path)
    assert str(raised.value) == f"{folder}/caf\\xe9.csv: the file name is not UTF-8 text: rename it"
