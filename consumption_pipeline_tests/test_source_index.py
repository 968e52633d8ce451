"""A period reads only what can belong to it: the source index keeps the facts of every event
file beside the lake, a period reads whole only the batches that can hold its dates, and copies
and conflicts are still found across every file (docs/rules.md, "Ingest usage")."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from consumption_pipeline.audit import fingerprints
from consumption_pipeline.domain import ingest as ingest_module
from consumption_pipeline.domain.ingest import IngestError, Ingestion, PartFacts, concat_events
from consumption_pipeline.storage import source_index, sources
from consumption_pipeline.storage.lake import Lake
from consumption_pipeline.storage.source_index import SourceIndex
from consumption_pipeline_tests.builders import acme_catalog

HEADER = "event_id,account_id,asset_id,usage_resource_id,quantity,occurred_at\n"
OCTOBER, SEPTEMBER = pd.Timestamp("2026-10-01"), pd.Timestamp("2026-09-01")


def row(event_id: str, day: str, quantity: str = "1") -> str:
    return f"{event_id},ACME,,credits,{quantity},{day}T10:00:00Z\n"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """Three months of files, C1 twice with different quantities (a conflict across files), and
    a file whose one line cannot be read (no date: it belongs to every period)."""
    usage = tmp_path / "source" / "usage"
    usage.mkdir(parents=True)
    (usage / "2026-09.csv").write_text(HEADER + row("S1", "2026-09-05") + row("C1", "2026-09-06"))
    (usage / "2026-10.csv").write_text(
        HEADER
        + row("O1", "2026-10-05")
        + row("O2", "2026-10-06", "2")
        + row("C1", "2026-10-07", "2")
    )
    (usage / "2026-11.csv").write_text(HEADER + row("N1", "2026-11-05"))
    (usage / "late.jsonl").write_text("{not json\n")
    return tmp_path / "source"


class Recorded(sources.EventFiles):
    """Event files that note which batches are read whole, pass by pass, and which are indexed."""

    def __init__(self, root: Path, index: SourceIndex | None):
        super().__init__(root, index=index)
        self.reads: list[list[int]] = []

    def parts(self, numbers, columns=None):
        self.reads.append((list(numbers), columns))
        return super().parts(numbers, columns)


def ingested(files, period=OCTOBER, timezone="UTC"):
    run = Ingestion(files, acme_catalog(), period, timezone)
    events = concat_events(list(run))
    return events, run.quarantined_events, run.reconciliation


def test_october_reads_whole_only_its_own_file_and_the_undated_one(source, tmp_path):
    files = Recorded(source, SourceIndex(Lake(str(tmp_path / "lake"))))
    events, quarantined, counts = ingested(files)
    # Files in order: 2026-09.csv (0), 2026-10.csv (1), 2026-11.csv (2), late.jsonl (3). C1 is
    # in September's file and October's: pass 2 reads October's rows of C1 and September's ids
    # alone (its copy there is dated in September: it differs, a conflict); pass 3 October's
    # file and the file whose only line has no date. November's file is never read.
    assert files.reads == [([1], None), ([0], ["event_id"]), ([1, 3], None)]
    assert events["event_id"].tolist() == ["O1", "O2"]
    assert dict(zip(quarantined["source_file"], quarantined["reason"], strict=True)) == {
        "usage/2026-10.csv": "conflict", "usage/late.jsonl": "malformed_row"}  # fmt: skip
    # Every row of the files is counted: those of the batches not read (S1 and C1 of September,
    # N1 of November) as other periods' events, by the facts the index holds of them.
    assert counts == {"events_read": 7, "accepted": 2, "duplicates": 0, "quarantined": 2,
                      "other_periods": 3}  # fmt: skip
    # The same outcome as reading every file whole.
    frames = [sources.read_events(p, source) for p in sources.event_files(source)]
    whole, whole_quarantined, whole_counts = ingested(frames)
    pd.testing.assert_frame_equal(events, whole)
    pd.testing.assert_frame_equal(quarantined, whole_quarantined)
    assert counts == whole_counts


def test_each_file_is_indexed_once_and_again_when_it_changes(source, tmp_path, monkeypatch):
    built = []
    original = sources.file_entry
    monkeypatch.setattr(sources, "file_entry", lambda p, r: built.append(p.name) or original(p, r))
    index = SourceIndex(Lake(str(tmp_path / "lake")))
    ingested(sources.EventFiles(source, index=index))
    assert sorted(built) == ["2026-09.csv", "2026-10.csv", "2026-11.csv", "late.jsonl"]
    events, _, _ = ingested(sources.EventFiles(source, index=index), SEPTEMBER)
    assert len(built) == 4  # September's run read the entries, not the files
    assert events["event_id"].tolist() == ["S1"]
    october = source / "usage" / "2026-10.csv"
    october.write_text(october.read_text() + row("O3", "2026-10-08"))
    events, _, counts = ingested(sources.EventFiles(source, index=index))
    assert built[4:] == ["2026-10.csv"]
    assert events["event_id"].tolist() == ["O1", "O2", "O3"]
    assert counts["events_read"] == 8
    entries = list((tmp_path / "lake" / "_source_index").glob("*.parquet"))
    assert len(entries) == 4


def test_a_kept_entry_holds_the_files_digest_and_its_dates(source, tmp_path):
    index = SourceIndex(Lake(str(tmp_path / "lake")))
    files = sources.EventFiles(source, index=index)
    digests = files.digests()
    again = sources.EventFiles(source, index=index)
    assert again.digests() == digests
    october = source / "usage" / "2026-10.csv"
    assert digests["usage/2026-10.csv"] == fingerprints.digest_bytes(october.read_bytes())
    facts = again.facts()
    first = pd.Timestamp("2026-10-05T10:00:00Z").value // 1000
    last = pd.Timestamp("2026-10-07T10:00:00Z").value // 1000
    assert (facts[1].rows, facts[1].first_us, facts[1].last_us, facts[1].undated) == (
        3,
        first,
        last,
        0,
    )
    assert (facts[3].rows, facts[3].undated) == (1, 1)


def test_a_file_that_changes_after_its_facts_were_read_stops_the_ingest(source, tmp_path):
    files = sources.EventFiles(source, index=SourceIndex(Lake(str(tmp_path / "lake"))))
    run = Ingestion(files, acme_catalog(), OCTOBER, "UTC")
    october = source / "usage" / "2026-10.csv"
    october.write_text(october.read_text() + row("O3", "2026-10-08"))
    with pytest.raises(IngestError, match="changed while"):
        list(run)


def test_an_entry_written_by_other_code_is_not_trusted(source, tmp_path, monkeypatch):
    index = SourceIndex(Lake(str(tmp_path / "lake")))
    ingested(sources.EventFiles(source, index=index))
    entry = next((tmp_path / "lake" / "_source_index").glob("*.parquet"))
    about = json.loads(pq.read_schema(entry).metadata[b"source_index"])
    assert about["code"] and about["size"] > 0
    built = []
    original = sources.file_entry
    monkeypatch.setattr(sources, "file_entry", lambda p, r: built.append(p.name) or original(p, r))
    monkeypatch.setattr(source_index, "_code_version", lambda: "other code")
    ingested(sources.EventFiles(source, index=index))
    assert len(built) == 4


def micros(instant: str) -> int:
    return pd.Timestamp(instant).value // 1000


def facts(first: str, last: str, undated: int = 0) -> PartFacts:
    return PartFacts(2, np.zeros(2, np.uint64), micros(first), micros(last), undated)


def test_a_batch_may_hold_a_period_by_the_dates_of_the_billing_time_zone():
    # 30 September 23:30 UTC is 1 October 01:30 in Berlin: October's in Berlin, not in UTC.
    late_september = facts("2026-09-29T08:00Z", "2026-09-30T23:30Z")
    october = np.datetime64("2026-10", "M")
    assert not late_september.may_hold(october, "UTC")
    assert late_september.may_hold(october, "Europe/Berlin")
    assert late_september.may_hold(np.datetime64("2026-09", "M"), "Europe/Berlin")
    # Undated rows go with their batch's dates; a batch with no dated row is read by every
    # period, an empty one by none.
    march = facts("2026-03-01T00:00Z", "2026-03-02T00:00Z", undated=1)
    assert march.may_hold(np.datetime64("2026-03", "M"), "UTC")
    assert not march.may_hold(october, "UTC")
    assert PartFacts(2, np.zeros(2, np.uint64), 1, 0, 2).may_hold(october, "UTC")
    assert not PartFacts(0, np.zeros(0, np.uint64), 1, 0, 0).may_hold(october, "UTC")


def test_a_clock_set_back_at_midnight_makes_a_batch_possible_in_more_periods():
    # Santiago sets its clock back from 24:00 to 23:00 on 4 April 2026 (03:00 UTC on 5 April):
    # within an hour of midnight, so the batch's dates are not taken as bounded by its ends.
    # Berlin's step back (03:00 to 02:00 on 25 October) moves no date.
    span = np.array([micros("2026-04-05T01:00Z"), micros("2026-04-05T05:00Z")])
    assert ingest_module._dates_go_back(span, "America/Santiago")
    berlin = np.array([micros("2026-10-24T20:00Z"), micros("2026-10-25T05:00Z")])
    assert not ingest_module._dates_go_back(berlin, "Europe/Berlin")
    assert facts("2026-04-05T01:00Z", "2026-04-05T05:00Z").may_hold(
        np.datetime64("2026-03", "M"), "America/Santiago"
    )
