"""The suites on ingested events: accepted usage as the ingest must have written it, and every
quarantined event explained."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from consumption_pipeline.quality.expectations import ROW_LIMIT
from consumption_pipeline.quality.usage import AcceptedUsage, accepted_usage, quarantine_explained
from consumption_pipeline_tests.corpus.source import read_and_ingest, write_source

PERIOD = pd.Timestamp("2026-10-01")


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory):
    """The hand-billed source's catalog and accepted October events (7 of them)."""
    catalog, _, ingested = read_and_ingest(write_source(tmp_path_factory.mktemp("source")))
    return catalog, ingested.usage_events


def test_the_accepted_events_of_a_good_source_pass(good):
    catalog, events = good
    outcome = accepted_usage(events, catalog, PERIOD)
    assert outcome.passed and outcome.summary == "passed: 7 accepted events"


def test_every_rule_names_the_event_its_file_and_row(good):
    # Rows 2..8 of usage/base.csv hold e-acme-1..5 and e-beta-1..2; break one field of each.
    # (The table is sorted by account and date, not by file row.)
    catalog, events = good
    # As read back from the warehouse: ids as text (the ingest hands them over as categoricals).
    text = ["account_id", "asset_id", "usage_resource_id", "source_file"]
    bad = events.astype(dict.fromkeys(text, "str")).set_index("event_id", drop=False)
    bad.loc["e-acme-1", "quantity"] = -1.0
    bad.loc["e-acme-2", "quantity"] = 0.1 + 0.2  # 0.30000000000000004: more than 6 decimals
    bad.loc["e-acme-3", "usage_date"] = pd.Timestamp("2026-11-01")
    bad.loc["e-acme-4", "account_id"] = "WAYNE"
    bad.loc["e-beta-2", "usage_resource_id"] = None
    bad.loc["e-beta-1", "asset_id"] = "A1"  # BETA's event tagged with ACME's asset
    bad.loc["e-acme-5", "event_id"] = "e-beta-2"  # the id of row 8 (whose first problem is another)
    bad = bad.reset_index(drop=True)
    outcome = accepted_usage(bad, catalog, PERIOD)
    assert outcome.failing["problem"].tolist() == EVERY_RULE
    # Part by part, the two e-beta-2 in different parts: the same problems, found through the
    # ids' hashes and confirmed on the ids read again.
    twice = bad.index[bad["event_id"].eq("e-beta-2")].tolist()
    parts = [bad.iloc[: twice[0] + 1], bad.iloc[twice[0] + 1 : twice[1]], bad.iloc[twice[1] :]]
    by_parts = in_parts(parts, catalog)
    assert by_parts.failing["problem"].tolist() == EVERY_RULE
    assert by_parts.facts == outcome.facts == {"events": 7, "violations": 8}


def in_parts(parts: list[pd.DataFrame], catalog):
    suite = AcceptedUsage(catalog, PERIOD)
    for part in parts:
        suite.add(part)
    # Read back in parts of 2 rows, as the lake's batches need not be the parts checked.
    every = pd.concat(parts, ignore_index=True)[["source_file", "row_number", "event_id"]]
    return suite.outcome(lambda: [every.iloc[i : i + 2] for i in range(0, len(every), 2)])


EVERY_RULE = [
    "usage/base.csv row 2, event 'e-acme-1', column 'quantity': expected a quantity in "
    "[0, 1000000000000), got '-1.0'",
    "usage/base.csv row 3, event 'e-acme-2', column 'quantity': expected at most 6 decimals, "
    "got '0.30000000000000004'",
    "usage/base.csv row 4, event 'e-acme-3', column 'usage_date': expected a usage date in "
    "2026-10-01 to 2026-10-31, got '2026-11-01'",
    "usage/base.csv row 5, event 'e-acme-4', column 'account_id': expected a known account_id, "
    "got 'WAYNE'",
    "usage/base.csv row 6, event 'e-beta-2', column 'event_id': expected a unique event_id, "
    "got 'e-beta-2'",
    "usage/base.csv row 7, event 'e-beta-1', column 'asset_id': expected an asset of the "
    "event's account, got 'A1'",
    "usage/base.csv row 8, event 'e-beta-2', column 'usage_resource_id': expected a value, got ''",
]


def test_quarantined_events_carry_reason_file_and_row():
    quarantined = pd.DataFrame({
        "event_id": ["q-1", "q-2", "q-3"], "reason": ["negative_quantity", None, "conflict"],
        "source_file": ["usage/a.csv", "usage/a.csv", "usage/b.jsonl"], "row_number": [2, 3, 7],
    })  # fmt: skip
    outcome = quarantine_explained(quarantined)
    assert outcome.failing["problem"].tolist() == [
        "usage/a.csv row 3, event 'q-2', column 'reason': expected a value, got ''"
    ]
    # The counts per reason travel with the check.
    assert outcome.facts == {"reason/conflict": 1, "reason/negative_quantity": 1}


def test_event_ids_that_share_a_hash_are_not_taken_for_copies(good, monkeypatch):
    # Every id hashed alike: uniqueness is still told on the ids' text (7 distinct ids pass).
    from consumption_pipeline.quality import usage

    monkeypatch.setattr(usage, "text_hashes", lambda ids: np.zeros(len(ids), np.uint64))
    catalog, events = good
    assert accepted_usage(events, catalog, PERIOD).passed
    copied = pd.concat([events, events.iloc[[0]]], ignore_index=True)
    outcome = accepted_usage(copied, catalog, PERIOD)
    assert outcome.failing["column"].tolist() == ["event_id"]  # the first copy, once per event


def test_a_rule_broken_in_every_part_counts_them_all_and_lists_the_first(good):
    # 3 parts of 700 events, each with a negative quantity: 2,100 broken, the first ROW_LIMIT
    # (1,000) of them listed, in file order, as for one frame of 2,100 events.
    catalog, events = good
    parts = []
    for n in range(3):
        part = events.iloc[np.zeros(700, int)].reset_index(drop=True)
        part["event_id"] = [f"e-{n}-{i}" for i in range(700)]
        part["row_number"] = np.arange(700) + 700 * n + 2
        part["quantity"] = -1.0
        parts.append(part)
    outcome = in_parts(parts, catalog)
    assert outcome.facts == {"events": 2100, "violations": 2100}
    assert len(outcome.failing) == ROW_LIMIT == 1000
    assert outcome.failing["row_number"].tolist() == list(range(2, 1002))
    whole = accepted_usage(pd.concat(parts, ignore_index=True), catalog, PERIOD)
    pd.testing.assert_frame_equal(outcome.failing, whole.failing)


def test_ids_that_share_a_hash_across_parts_are_told_apart_on_their_text(good, monkeypatch):
    from consumption_pipeline.quality import usage

    monkeypatch.setattr(usage, "text_hashes", lambda ids: np.zeros(len(ids), np.uint64))
    catalog, events = good
    assert in_parts([events.iloc[:3], events.iloc[3:]], catalog).passed
    copy = events.iloc[[1]].assign(row_number=99)  # the event of position 1 again, on row 99
    copied = in_parts([events.iloc[:3], events.iloc[3:], copy], catalog)
    assert copied.facts["violations"] == 2  # both rows of the id fail, one problem each
    assert copied.failing["row_number"].tolist() == [events["row_number"].iloc[1], 99]
    assert copied.failing["event_id"].tolist() == [events["event_id"].iloc[1]] * 2
