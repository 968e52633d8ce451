"""Fingerprints: the same rows give the same digest whatever their order or representation."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pyarrow as pa

from consumption_pipeline.audit.fingerprints import (
    file_digest,
    files_digest,
    frame_digest,
    row_hashes,
    rows_digest,
)
from consumption_pipeline.storage.tables import TABLES

EVENTS = TABLES["usage_events"]


def events(quantities: list[float]) -> pd.DataFrame:
    return pd.DataFrame({
        "event_id": [f"e{i}" for i in range(len(quantities))], "account_id": "ACME",
        "asset_id": [None, "A1", "A1"][: len(quantities)], "usage_resource_id": "compute_hours",
        "quantity": quantities,
        "occurred_at": pd.to_datetime(["2026-10-05T12:00:00Z"] * len(quantities)),
        "usage_date": pd.to_datetime(["2026-10-05"] * len(quantities)),
    })  # fmt: skip


def test_row_order_and_number_representation_do_not_change_the_digest():
    frame = events([50.0, 130.0, 0.000001])
    shuffled = frame.iloc[[2, 0, 1]].assign(quantity=["0.000001", 50, 130])
    assert frame_digest(frame, EVENTS) == frame_digest(shuffled, EVENTS)
    # An instant written with another offset is the same instant.
    offset = frame.assign(occurred_at=pd.to_datetime(["2026-10-05T14:00:00+02:00"] * 3))
    assert frame_digest(offset, EVENTS) == frame_digest(frame, EVENTS)


def test_a_changed_added_or_removed_row_changes_the_digest():
    base = frame_digest(events([50.0, 130.0, 1.0]), EVENTS)
    assert frame_digest(events([50.0, 130.0, 1.000001]), EVENTS) != base  # the 6th decimal
    assert frame_digest(events([50.0, 130.0]), EVENTS) != base
    assert frame_digest(events([50.0, 130.0, 1.0]).assign(asset_id="A2"), EVENTS) != base


def test_the_parts_of_a_table_digest_as_the_table():
    frame = events([50.0, 130.0, 0.000001])
    # Parts in another order than the rows, one with its ids as categories, one empty.
    parts = [frame.iloc[[2]].astype({"account_id": "category"}), frame.iloc[:0], frame.iloc[:2]]
    hashes = [row_hashes(part, EVENTS) for part in parts]
    assert {columns for columns, _ in hashes} == {",".join(frame.columns)}
    digest = rows_digest(hashes[0][0], *(h for _, h in hashes))
    assert digest == frame_digest(frame, EVENTS)
    assert rows_digest(*row_hashes(frame.iloc[:0], EVENTS)) == frame_digest(frame.iloc[:0], EVENTS)
    assert rows_digest(hashes[0][0], hashes[0][1], hashes[2][1][:1]) != digest  # a row left out


def test_money_is_compared_to_six_decimals():
    lines = TABLES["liable_summaries"]
    a = pd.DataFrame({"account_id": ["ACME"], "amount": [Decimal("2.00")]})
    b = pd.DataFrame({"account_id": ["ACME"], "amount": [Decimal("2.000000")]})
    c = pd.DataFrame({"account_id": ["ACME"], "amount": [Decimal("2.01")]})
    assert frame_digest(a, lines) == frame_digest(b, lines) != frame_digest(c, lines)


def test_file_digests_follow_content_and_names(tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "b.csv").write_text("x\n1\n")
    assert file_digest(tmp_path / "a.csv") == file_digest(tmp_path / "b.csv")
    both = files_digest([tmp_path / "a.csv", tmp_path / "b.csv"], tmp_path)
    assert both == files_digest([tmp_path / "b.csv", tmp_path / "a.csv"], tmp_path)
    (tmp_path / "b.csv").write_text("x\n2\n")
    assert files_digest([tmp_path / "a.csv", tmp_path / "b.csv"], tmp_path) != both


def test_missing_and_empty_text_differ_and_long_text_counts_every_byte():
    base = events([1.0, 2.0, 3.0])
    assert frame_digest(base.assign(asset_id=[None, "A1", "A1"]), EVENTS) != frame_digest(
        base.assign(asset_id=["", "A1", "A1"]), EVENTS
    )
    long = "x" * 100
    assert frame_digest(base.assign(asset_id=[long + "a", "A1", "A1"]), EVENTS) != frame_digest(
        base.assign(asset_id=[long + "b", "A1", "A1"]), EVENTS
    )


def test_ids_that_repeat_and_ids_that_do_not_hash_alike():
    # The first 100,000 rows decide how a text column is hashed: mostly distinct ids one by one,
    # repeating ids once per distinct value. The same rows in another order give the same digest.
    n = 150_000
    ids = [f"e{i}" for i in range(n)]
    frame = pd.DataFrame({"event_id": ids, "account_id": ["ACME"] * 60_000 + ids[60_000:]})
    flipped = frame.iloc[::-1]  # now the first rows are mostly distinct accounts
    assert frame_digest(frame, EVENTS) == frame_digest(flipped, EVENTS)


def test_text_held_as_categories_digests_as_the_text_itself():
    # The ingest hands over ids as categoricals: the same rows, the same digest.
    base = events([1.0, 2.0, 3.0])
    categorical = base.astype({"account_id": "category", "asset_id": "category"})
    assert frame_digest(categorical, EVENTS) == frame_digest(base, EVENTS)


def test_text_of_one_length_of_ascii_and_of_any_bytes_hashes_alike(monkeypatch):
    # Three ways to lay text out in fixed-width words (one length; ASCII padded by Arrow; any
    # bytes placed one by one) give the same hashes: each string's length and bytes.
    from consumption_pipeline.domain import hashing

    text = pa.array(["ab", "abcdefghij", None, "", "x" * 17, "q"], pa.large_string())
    same_length = pa.array(["abcdefghij", "klmnopqrst"], pa.large_string())
    padded, one_length = hashing.text_hashes(text), hashing.text_hashes(same_length)
    monkeypatch.setattr(hashing.pc, "string_is_ascii", lambda a: pa.array([False] * len(a)))
    assert (hashing.text_hashes(text) == padded).all()
    assert (hashing.text_hashes(pa.concat_arrays([same_length, pa.array(["é"], pa.large_string())]))[:2]
            == one_length).all()  # fmt: skip
    assert len(set(padded.tolist())) == len(padded)  # "" and missing differ too
