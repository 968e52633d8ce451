"""Stage 1 of docs/rules.md, "Ingest usage": every rule with its numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from consumption_pipeline.domain import ingest as ingest_module
from consumption_pipeline.domain.ingest import ingest
from consumption_pipeline.domain.quantities import from_micro, to_micro
from consumption_pipeline_tests.builders import catalog, event_file

OCTOBER = pd.Timestamp("2026-10-01")


def two_accounts():
    """ACME owns A1 (PRO, from 2026-09-01) and A2 (PACK, 2026-10-10 to 2026-10-20);
    GLOBEX owns G1. Resources: compute_hours and credits."""
    return catalog(
        accounts=[{"account_id": "ACME", "account_name": "Acme", "currency": "USD"},
                  {"account_id": "GLOBEX", "account_name": "Globex", "currency": "EUR"}],
        usage_resources=[
            {"usage_resource_id": "credits", "name": "Credits", "unit_of_measure": "credit",
             "category": "token"},
            {"usage_resource_id": "compute_hours", "name": "Compute", "unit_of_measure": "hour"},
        ],
        products=[{"product_id": "PRO", "product_name": "Pro"},
                  {"product_id": "PACK", "product_name": "Pack"}],
        assets=[
            {"asset_id": "A1", "account_id": "ACME", "product_id": "PRO", "quantity": "1",
             "start_date": "2026-09-01"},
            {"asset_id": "A2", "account_id": "ACME", "product_id": "PACK", "quantity": "1",
             "start_date": "2026-10-10", "end_date": "2026-10-20"},
            {"asset_id": "G1", "account_id": "GLOBEX", "product_id": "PRO", "quantity": "1",
             "start_date": "2026-09-01"},
        ],
    )  # fmt: skip


CATALOG = two_accounts()


def event(event_id: str, /, **fields: str) -> dict:
    base = {"event_id": event_id, "account_id": "ACME", "asset_id": "A1",
            "usage_resource_id": "compute_hours", "quantity": "1",
            "occurred_at": "2026-10-05T10:00:00Z"}  # fmt: skip
    return {**base, **fields}


def run(*files: list[dict], timezone: str = "UTC", period: pd.Timestamp = OCTOBER):
    frames = [event_file(rows, f"file{n}.csv") for n, rows in enumerate(files, start=1)]
    return ingest(frames, CATALOG, period, timezone)


def reasons(result) -> dict[str, str]:
    q = result.quarantined_events
    return dict(zip(q["event_id"].fillna("?") + "@" + q["source_file"], q["reason"], strict=True))


def conserved(result) -> bool:
    r = result.reconciliation
    parts = r["accepted"] + r["duplicates"] + r["quarantined"] + r["other_periods"]
    return r["events_read"] == parts


# --- idempotency: exact duplicates and conflicts ---------------------------------------------


def test_exact_duplicates_compared_as_values_count_once_across_files():
    # One event written four ways: 700 at 10:00Z; 700.0 at 12:00+02:00 (same instant);
    # 700.000 at 05:00-05:00 (same instant); 7e2 at 10:00 with no offset (UTC, same instant).
    # 4 read = 1 accepted + 3 duplicates; the one accepted is 700 hours.
    result = run(
        [event("E1", quantity="700", occurred_at="2026-10-05T10:00:00Z")],
        [event("E1", quantity="700.0", occurred_at="2026-10-05T12:00:00+02:00"),
         event("E1", quantity="700.000", occurred_at="2026-10-05T05:00:00-05:00")],
        [event("E1", quantity="7e2", occurred_at="2026-10-05T10:00:00")],
    )  # fmt: skip
    assert result.reconciliation == {
        "events_read": 4, "accepted": 1, "duplicates": 3, "quarantined": 0, "other_periods": 0,
    }  # fmt: skip
    assert result.usage_events["quantity"].tolist() == [700.0]
    # The first copy read is the one kept.
    assert result.usage_events["source_file"].tolist() == ["file1.csv"]


def test_exact_duplicates_within_one_file_count_once():
    # E1 twice and E2 once: 3 read = 2 accepted + 1 duplicate.
    result = run([event("E1"), event("E2"), event("E1")])
    assert result.reconciliation["accepted"] == 2
    assert result.reconciliation["duplicates"] == 1
    assert sorted(result.usage_events["event_id"]) == ["E1", "E2"]


def test_missing_asset_id_and_empty_asset_id_are_the_same_payload():
    # One copy without the column's value, one with an empty cell: both "no asset", one event.
    result = run([event("E1", asset_id="")], [event("E1", asset_id="  ")])
    assert result.reconciliation["duplicates"] == 1
    assert result.usage_events["asset_id"].isna().all()


@pytest.mark.parametrize(
    "field, other",
    [
        ("quantity", "701"),
        ("occurred_at", "2026-10-05T10:00:01Z"),
        ("account_id", "GLOBEX"),
        ("asset_id", "A2"),
        ("asset_id", ""),
        ("usage_resource_id", "credits"),
    ],
)
def test_same_id_with_a_different_payload_quarantines_every_copy_as_conflict(field, other):
    # E1 three times: two exact copies and one that differs in one field. All 3 are
    # quarantined `conflict` (the exact copy of a conflicting event is not a "duplicate").
    result = run([event("E1"), event("E2")], [event("E1", **{field: other}), event("E1")])
    assert result.reconciliation == {
        "events_read": 4, "accepted": 1, "duplicates": 0, "quarantined": 3, "other_periods": 0,
    }  # fmt: skip
    assert result.quarantined_events["reason"].tolist() == ["conflict"] * 3
    assert result.usage_events["event_id"].tolist() == ["E2"]


def test_conflict_with_an_unbillable_copy_quarantines_the_billable_copy_too():
    # E1 with 5 hours and E1 with "abc": the payloads differ, so neither is billed. The bad copy
    # keeps its own reason (it explains the row); the good one is a conflict.
    result = run([event("E1", quantity="5")], [event("E1", quantity="abc")])
    assert reasons(result) == {"E1@file1.csv": "conflict", "E1@file2.csv": "invalid_quantity"}
    assert result.usage_events.empty


def test_conflicting_copy_in_another_period_is_quarantined_in_its_own_period():
    # E1 on 5 October and E1 on 5 November: a conflict. October quarantines its copy and counts
    # the November one as another period's; November does the opposite.
    files = [[event("E1", occurred_at="2026-10-05T10:00:00Z")],
             [event("E1", occurred_at="2026-11-05T10:00:00Z")]]  # fmt: skip
    october = run(*files)
    november = run(*files, period=pd.Timestamp("2026-11-01"))
    assert reasons(october) == {"E1@file1.csv": "conflict"}
    assert reasons(november) == {"E1@file2.csv": "conflict"}
    assert october.reconciliation["other_periods"] == november.reconciliation["other_periods"] == 1


def test_exact_duplicates_of_an_unbillable_event_are_quarantined_once():
    # The same bad row in two files ("-3" hours): one quarantined, one duplicate (counted once).
    result = run([event("E1", quantity="-3")], [event("E1", quantity="-3")])
    assert result.reconciliation["quarantined"] == 1
    assert result.reconciliation["duplicates"] == 1
    assert reasons(result) == {"E1@file1.csv": "negative_quantity"}


# --- quarantine reasons ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"event_id": ""}, "missing_event_id"),
        ({"account_id": " "}, "missing_account_id"),
        ({"usage_resource_id": ""}, "missing_usage_resource_id"),
        ({"quantity": ""}, "missing_quantity"),
        ({"occurred_at": ""}, "missing_occurred_at"),
        ({"occurred_at": "yesterday"}, "invalid_occurred_at"),
        ({"occurred_at": "2026-13-05T10:00:00Z"}, "invalid_occurred_at"),
        ({"occurred_at": "05/10/2026 10:00"}, "invalid_occurred_at"),
        ({"quantity": "-1"}, "negative_quantity"),
        ({"quantity": "-0.5"}, "negative_quantity"),
        ({"quantity": "abc"}, "invalid_quantity"),
        ({"quantity": "1,5"}, "invalid_quantity"),
        ({"quantity": "1_000"}, "invalid_quantity"),
        ({"quantity": "12 hours"}, "invalid_quantity"),
        ({"quantity": "NaN"}, "non_finite_quantity"),
        ({"quantity": "inf"}, "non_finite_quantity"),
        ({"quantity": "-Infinity"}, "non_finite_quantity"),
        ({"quantity": "0.1234567"}, "too_many_decimals"),
        ({"quantity": "1e-7"}, "too_many_decimals"),
        ({"account_id": "NOBODY", "asset_id": ""}, "unknown_account"),
        ({"usage_resource_id": "teleport_minutes"}, "unknown_usage_resource"),
        ({"asset_id": "A9"}, "unknown_asset"),
        ({"asset_id": "G1"}, "asset_of_another_account"),
    ],
)
def test_an_event_that_cannot_be_billed_is_quarantined_with_its_reason(fields, reason):
    # One bad event next to one good one: 2 read = 1 accepted + 1 quarantined.
    result = run([event("GOOD"), event("BAD", **fields)])
    assert result.quarantined_events["reason"].tolist() == [reason]
    assert result.usage_events["event_id"].tolist() == ["GOOD"]
    assert conserved(result)


def test_too_many_decimals_is_quarantined_not_rounded():
    # 0.1234567 has 7 decimals: quarantined, not billed as 0.123457. 0.1234560 is 0.123456,
    # a value with 6 decimals, written with a trailing zero: accepted.
    result = run([event("E7", quantity="0.1234567"), event("E6", quantity="0.1234560")])
    assert reasons(result) == {"E7@file1.csv": "too_many_decimals"}
    assert to_micro(result.usage_events["quantity"]).tolist() == [123_456]


def test_quarantined_event_keeps_its_raw_fields_source_file_and_row_number():
    # The third row of file2.csv (row 4, the header is row 1) is kept as written.
    result = run(
        [event("E1")],
        [event("E2"), event("E3"), event("E4", quantity=" 12a ", occurred_at="2026-10-05")],
    )
    row = result.quarantined_events.iloc[0]
    assert (row["event_id"], row["account_id"], row["asset_id"]) == ("E4", "ACME", "A1")
    assert (row["quantity"], row["occurred_at"]) == (" 12a ", "2026-10-05")
    assert (row["source_file"], row["row_number"], row["reason"]) == (
        "file2.csv",
        4,
        "invalid_quantity",
    )


def test_malformed_row_is_quarantined_never_dropped():
    # A row the reader could not split into fields: no id, no date, quarantined in the period.
    bad = event_file([event("E1")])
    bad.loc[0, :] = pd.NA
    bad["source_file"], bad["row_number"] = "broken.csv", 7
    bad["malformed"] = "expected 6 fields, got 7: E1,ACME,A1,compute_hours,1,x,y"
    result = ingest([bad, event_file([event("E2")])], CATALOG, OCTOBER, "UTC")
    q = result.quarantined_events
    assert q[["reason", "source_file", "row_number"]].values.tolist() == [
        ["malformed_row", "broken.csv", 7]
    ]
    assert q["detail"].iloc[0].startswith("expected 6 fields, got 7")
    assert conserved(result)


def test_rows_without_a_usage_date_go_with_the_periods_of_their_file():
    # "yesterday" has no date, so no period owns it. Its file's other row is dated 5 October:
    # October reads the file and quarantines it; November does not read the file (its rows
    # count as other periods'). A file with undated rows only is read by every period. Every
    # period balances.
    files = [[event("E1", occurred_at="yesterday"), event("E2")]]
    october, november = (run(*files, period=pd.Timestamp(p)) for p in ["2026-10-01", "2026-11-01"])
    assert october.quarantined_events["reason"].tolist() == ["invalid_occurred_at"]
    assert november.quarantined_events.empty
    assert november.reconciliation == {"events_read": 2, "accepted": 0, "duplicates": 0,
                                       "quarantined": 0, "other_periods": 2}  # fmt: skip
    undated_only = [[event("E1", occurred_at="yesterday")], [event("E2")]]
    for period in ["2026-10-01", "2026-11-01"]:
        result = run(*undated_only, period=pd.Timestamp(period))
        assert result.quarantined_events["reason"].tolist() == ["invalid_occurred_at"]
        assert conserved(result)
    assert conserved(october) and conserved(november)


def test_a_zero_quantity_is_accepted():
    result = run([event("E0", quantity="0"), event("E00", quantity="0.000")])
    assert result.usage_events["quantity"].tolist() == [0.0, 0.0]
    assert result.quarantined_events.empty


def test_usage_tagged_with_an_asset_outside_its_dates_is_accepted():
    # A2 runs 10-20 October; usage on 5 and 25 October tagged A2 is billable (as overage).
    result = run([event("BEFORE", asset_id="A2", occurred_at="2026-10-05T00:00:00Z"),
                  event("AFTER", asset_id="A2", occurred_at="2026-10-25T00:00:00Z")])  # fmt: skip
    assert sorted(result.usage_events["event_id"]) == ["AFTER", "BEFORE"]
    assert result.usage_events["asset_id"].tolist() == ["A2", "A2"]


def test_usage_without_an_asset_is_accepted_for_the_account():
    result = run([event("E1", asset_id="")])
    assert result.usage_events["asset_id"].isna().tolist() == [True]


# --- time ------------------------------------------------------------------------------------


def test_a_timestamp_without_an_offset_is_utc():
    # 23:30 on 31 October with no offset is 23:30Z: 31 October in UTC, October's.
    # 00:30 on 1 November with no offset is November's. In New York (UTC-4 until 06:00Z on
    # 1 November 2026) 00:30Z on 1 November is 20:30 on 31 October: October's.
    late = event("LATE", occurred_at="2026-10-31T23:30:00")
    next_day = event("NEXT", occurred_at="2026-11-01T00:30:00")
    utc = run([late, next_day])
    assert utc.usage_events["event_id"].tolist() == ["LATE"]
    assert utc.usage_events["occurred_at"].tolist() == [pd.Timestamp("2026-10-31 23:30Z")]
    new_york = run([late, next_day], timezone="America/New_York")
    assert new_york.usage_events["event_id"].tolist() == ["LATE", "NEXT"]


def test_usage_date_is_the_date_in_the_billing_time_zone():
    # America/New_York is UTC-4 (EDT) until 2026-11-01 06:00Z, then UTC-5 (EST).
    #   2026-10-01T03:00Z -> 30 Sep 23:00 EDT: September's
    #   2026-10-31T23:30Z -> 31 Oct 19:30 EDT: October's, usage date 31 October
    #   2026-11-01T02:00Z -> 31 Oct 22:00 EDT: October's, usage date 31 October
    #   2026-11-01T05:59Z -> 1 Nov 01:59 EDT: November's
    #   2026-11-01T06:30Z -> 1 Nov 01:30 EST: November's
    rows = [event("SEP", occurred_at="2026-10-01T03:00:00Z"),
            event("OCT1", occurred_at="2026-10-31T23:30:00Z"),
            event("OCT2", occurred_at="2026-11-01T02:00:00Z"),
            event("NOV1", occurred_at="2026-11-01T05:59:00Z"),
            event("NOV2", occurred_at="2026-11-01T06:30:00Z")]  # fmt: skip
    result = run(rows, timezone="America/New_York")
    assert result.usage_events["event_id"].tolist() == ["OCT1", "OCT2"]
    assert result.usage_events["usage_date"].tolist() == [pd.Timestamp("2026-10-31")] * 2
    assert result.reconciliation["other_periods"] == 3
    # In UTC the same events split differently: SEP is 1 October and OCT1 31 October
    # (October's); OCT2, NOV1 and NOV2 are all 1 November.
    utc = run(rows, timezone="UTC")
    assert utc.usage_events["event_id"].tolist() == ["SEP", "OCT1"]
    assert utc.usage_events["usage_date"].dt.day.tolist() == [1, 31]


def test_usage_date_east_of_utc_moves_forward():
    # Asia/Tokyo is UTC+9: 2026-09-30T15:00Z is 1 October 00:00 JST (October's), while
    # 2026-10-31T15:00Z is 1 November 00:00 JST (November's).
    rows = [event("IN", occurred_at="2026-09-30T15:00:00Z"),
            event("OUT", occurred_at="2026-10-31T15:00:00Z")]  # fmt: skip
    result = run(rows, timezone="Asia/Tokyo")
    assert result.usage_events["event_id"].tolist() == ["IN"]
    assert result.usage_events["usage_date"].tolist() == [pd.Timestamp("2026-10-01")]


# --- conservation and exactness --------------------------------------------------------------


def test_conservation_events_read_equal_accepted_duplicates_quarantined_other_periods():
    # 8 rows: E1 (accepted), E1 again (duplicate), E2 (accepted), E3 negative (quarantined),
    # E4 unknown account (quarantined), E5 in November (other period), E6/E6 conflicting
    # (2 quarantined). 8 = 2 accepted + 1 duplicate + 4 quarantined + 1 other period.
    result = run(
        [event("E1"), event("E2"), event("E3", quantity="-1")],
        [event("E1"), event("E4", account_id="NOBODY", asset_id=""),
         event("E5", occurred_at="2026-11-02T00:00:00Z"),
         event("E6", quantity="2"), event("E6", quantity="3")],
    )  # fmt: skip
    assert result.reconciliation == {
        "events_read": 8, "accepted": 2, "duplicates": 1, "quarantined": 4, "other_periods": 1,
    }  # fmt: skip
    assert len(result.usage_events) == 2 and len(result.quarantined_events) == 4


def test_quantities_are_exact_no_float_drift():
    # 0.1 + 0.2 is 0.30000000000000004 in binary floats; in micro-units it is
    # 100,000 + 200,000 = 300,000, exactly 0.3. Ten events of 0.1 are exactly 1.
    result = run([event("A", quantity="0.1"), event("B", quantity="0.2")])
    total = to_micro(result.usage_events["quantity"]).sum()
    assert total == 300_000
    assert from_micro(pd.Series([total])).iloc[0] == 0.3
    tens = run([event(f"T{n}", quantity="0.1") for n in range(10)])
    assert to_micro(tens.usage_events["quantity"]).sum() == 1_000_000


def test_large_quantities_with_six_decimals_stay_exact():
    # 123,456,789.123456 hours: 123,456,789,123,456 micro-units, no digit lost.
    result = run([event("BIG", quantity="123456789.123456")])
    assert to_micro(result.usage_events["quantity"]).tolist() == [123_456_789_123_456]


def test_accepted_events_carry_the_usage_events_columns():
    result = run([event("E1", quantity="2.5")])
    row = result.usage_events.iloc[0]
    assert set(result.usage_events.columns) >= {
        "event_id", "account_id", "asset_id", "usage_resource_id", "quantity", "occurred_at",
        "usage_date",
    }  # fmt: skip
    assert (row["event_id"], row["account_id"], row["asset_id"], row["usage_resource_id"]) == (
        "E1",
        "ACME",
        "A1",
        "compute_hours",
    )
    assert row["quantity"] == 2.5
    assert row["usage_date"] == pd.Timestamp("2026-10-05")


def test_no_event_files_ingest_nothing():
    result = ingest([], CATALOG, OCTOBER, "UTC")
    assert result.usage_events.empty and result.quarantined_events.empty
    assert result.reconciliation["events_read"] == 0


def test_files_read_one_at_a_time_ingest_as_a_list_does():
    # A duplicate across the two files and a conflict: the files meet only inside the ingest.
    first = [event("E1"), event("E2", quantity="3")]
    second = [
        event("E1"),
        event("E2", quantity="4"),
        event("E3", account_id="GLOBEX", asset_id="G1"),
    ]
    read = []

    def lazily():
        for n, rows in enumerate([first, second], start=1):
            read.append(n)
            yield event_file(rows, f"file{n}.csv")

    result = ingest(lazily(), CATALOG, OCTOBER, "UTC")
    assert read == [1, 2]
    assert sorted(result.usage_events["event_id"]) == ["E1", "E3"]
    assert sorted(result.quarantined_events["reason"]) == ["conflict", "conflict"]
    assert result.reconciliation == {"events_read": 5, "accepted": 2, "duplicates": 1,
                                     "quarantined": 2, "other_periods": 0}  # fmt: skip


def test_ids_that_share_a_hash_are_still_told_apart(monkeypatch: pytest.MonkeyPatch):
    # Every id hashed alike: all rows are candidates, compared on their ids' text. As above:
    # E1 twice alike (1 duplicate), E2 twice unlike (2 conflicts), E3 once: E1 and E3 accepted.
    monkeypatch.setattr(ingest_module, "text_hashes", lambda ids: np.zeros(len(ids), np.uint64))
    result = run(
        [event("E1"), event("E2", quantity="3")],
        [event("E1"), event("E2", quantity="4"), event("E3", account_id="GLOBEX", asset_id="G1")],
    )
    assert result.usage_events["event_id"].tolist() == ["E1", "E3"]
    assert reasons(result) == {"E2@file1.csv": "conflict", "E2@file2.csv": "conflict"}
    assert result.reconciliation["duplicates"] == 1


def test_accepted_events_keep_file_and_row_order_when_ids_repeat():
    # file1: E5, E1, E2; file2: E1 again (a copy), E4. The first copy of E1 stays in place.
    result = run([event("E5"), event("E1"), event("E2")], [event("E1"), event("E4")])
    accepted = result.usage_events
    assert accepted["event_id"].tolist() == ["E5", "E1", "E2", "E4"]
    assert list(zip(accepted["source_file"], accepted["row_number"], strict=True)) == [
        ("file1.csv", 2), ("file1.csv", 3), ("file1.csv", 4), ("file2.csv", 3)]  # fmt: skip


def test_a_reiterable_source_is_read_once_per_pass_a_batch_at_a_time():
    # Pass 1 reads the ids, pass 2 the rows of E1 (read twice), pass 3 everything.
    reads = []

    class Files:
        def __iter__(self):
            for n, rows in enumerate([[event("E1")], [event("E1"), event("E2")]], start=1):
                reads.append(n)
                yield event_file(rows, f"file{n}.csv")

    result = ingest(Files(), CATALOG, OCTOBER, "UTC")
    assert reads == [1, 2, 1, 2, 1, 2]
    assert result.usage_events["event_id"].tolist() == ["E1", "E2"]
    assert result.reconciliation["duplicates"] == 1


def test_files_that_change_between_passes_stop_the_ingest():
    # A file gains a row after the ids were read: the passes would no longer see the same rows.
    files = [event_file([event("E1")], "file1.csv")]

    class Growing:
        def __iter__(self):
            yield from files
            files[0] = event_file([event("E1"), event("E2")], "file1.csv")

    with pytest.raises(ingest_module.IngestError, match="changed while they were read"):
        ingest(Growing(), CATALOG, OCTOBER, "UTC")


@pytest.mark.parametrize(
    "occurred_at",
    ["2026", "2026-10", "2026-10-05", "20261005", "2026-10-05T10", "2026-10-05T10Z",
     "2026-10-05T10+02:00"],
)  # fmt: skip
def test_a_timestamp_that_names_a_year_month_day_or_hour_is_quarantined_not_billed(occurred_at):
    # Each names a period of time: billing it as its first instant (1 January, 1 October...)
    # would be a guess. Quarantined as invalid_occurred_at, with its file's period (it has no
    # date), and in every period when its file has no dated row.
    result = run([event("GOOD"), event("VAGUE", occurred_at=occurred_at)])
    assert reasons(result) == {"VAGUE@file1.csv": "invalid_occurred_at"}
    for period in [OCTOBER, pd.Timestamp("2026-01-01")]:
        result = run([event("VAGUE", occurred_at=occurred_at)], period=period)
        assert reasons(result) == {"VAGUE@file1.csv": "invalid_occurred_at"}
        assert conserved(result)


@pytest.mark.parametrize(
    "occurred_at, instant",
    [
        ("2026-10-05T10:00Z", "2026-10-05T10:00Z"),  # to the minute
        ("2026-10-05 10:00:00", "2026-10-05T10:00Z"),  # a space for the T, no offset: UTC
        ("20261005T1000+0200", "2026-10-05T08:00Z"),  # ISO 8601 basic format
        ("2026-10-05T10:00:00.5-01:00", "2026-10-05T11:00:00.5Z"),
    ],
)
def test_a_timestamp_with_a_time_of_day_to_the_minute_is_an_instant(occurred_at, instant):
    result = run([event("E1", occurred_at=occurred_at)])
    assert result.usage_events["occurred_at"].tolist() == [pd.Timestamp(instant)]


@pytest.mark.parametrize("column", ["event_id", "account_id", "asset_id", "usage_resource_id",
                                    "quantity", "occurred_at"])  # fmt: skip
def test_a_field_holding_a_nul_is_quarantined_as_invalid_text_and_shown_escaped(column):
    # PostgreSQL text cannot hold a NUL: the row is quarantined, its NUL stored as the four
    # characters \x00. The good row next to it is billed.
    bad = event("BAD")
    bad[column] = bad[column][:1] + "\x00" + bad[column][1:]
    result = run([event("GOOD"), bad])
    q = result.quarantined_events
    assert q[["reason", "detail"]].values.tolist() == [
        ["invalid_text", f"'{column}' holds a NUL character (shown as \\x00)"]]  # fmt: skip
    assert q[column].iloc[0] == bad[column].replace("\x00", "\\x00")
    assert result.usage_events["event_id"].tolist() == ["GOOD"]
    assert conserved(result)


def test_the_detail_of_a_malformed_row_is_shown_with_its_nul_escaped():
    bad = event_file([event("E1")])
    bad.loc[0, :] = pd.NA
    bad["source_file"], bad["row_number"] = "broken.csv", 3
    bad["malformed"] = "expected 6 fields, got 2: E\x001,ACME"
    q = ingest([bad], CATALOG, OCTOBER, "UTC").quarantined_events
    assert q["detail"].tolist() == ["expected 6 fields, got 2: E\\x001,ACME"]


@pytest.mark.parametrize(
    "quantity, reason, micro",
    [
        ("1e2", None, 100_000_000),  # 100
        ("1.5E+1", None, 15_000_000),  # 15
        ("1E-7", "too_many_decimals", 0),
        ("1.00000000000000001", "too_many_decimals", 0),
        ("1e99999999999999999999", "quantity_too_large", 0),  # an exponent past int64
        ("1e-99999999999999999999", "too_many_decimals", 0),
        ("0e99999999999999999999", None, 0),  # zero, however it is scaled
        ("1e-00000000000000000000", None, 1_000_000),  # 1 × 10^0
    ],
)
def test_quantities_are_judged_on_their_exact_value_whatever_the_exponent(quantity, reason, micro):
    result = run([event("E1", quantity=quantity)])
    assert result.quarantined_events["reason"].tolist() == ([reason] if reason else [])
    assert to_micro(result.usage_events["quantity"]).tolist() == ([micro] if not reason else [])
