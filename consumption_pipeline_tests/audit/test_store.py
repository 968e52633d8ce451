"""The audit tables on both backends: rows replaced by their own keys and read back in boundary
types (money exact, dates at midnight, instants in UTC)."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from consumption_pipeline.audit import runs
from consumption_pipeline.audit import store as audit_store


def adhoc_rows(request_id: str, amount: str) -> pd.DataFrame:
    return pd.DataFrame({
        "request_id": request_id, "granule_start": pd.to_datetime(["2026-10-05", "2026-10-19"]),
        "account_id": "ACME", "asset_id": ["A1", None], "consumption": [50.0, 130.000001],
        "net_unit_rate": [None, Decimal("0.02")], "amount": [Decimal("0"), Decimal(amount)],
    })  # fmt: skip


def test_rows_are_replaced_by_their_key_and_read_back_typed(engine):
    audit_store.replace_rows(
        engine, "adhoc_summaries", {"request_id": "a"}, adhoc_rows("a", "2.00")
    )
    audit_store.replace_rows(
        engine, "adhoc_summaries", {"request_id": "b"}, adhoc_rows("b", "1.10")
    )
    audit_store.replace_rows(
        engine, "adhoc_summaries", {"request_id": "a"}, adhoc_rows("a", "2.01")
    )
    rows = audit_store.read_rows(engine, "adhoc_summaries", {"request_id": ["a", "b"]})
    rows = rows.sort_values(["request_id", "granule_start"], ignore_index=True)
    assert rows["request_id"].tolist() == ["a", "a", "b", "b"]  # "a" replaced, not added to
    assert rows["amount"].tolist() == [Decimal("0"), Decimal("2.01"), Decimal("0"), Decimal("1.1")]
    assert rows["consumption"].tolist() == [50.0, 130.000001, 50.0, 130.000001]
    assert rows["granule_start"].tolist()[:2] == [
        pd.Timestamp("2026-10-05"),
        pd.Timestamp("2026-10-19"),
    ]
    assert rows["asset_id"].isna().tolist() == [False, True, False, True]


def test_a_stage_record_names_its_run_and_output_digest(engine):
    record = pd.DataFrame({
        "period": pd.Timestamp("2026-10-01"), "step": "ingest",
        "table_name": ["usage_events", "quarantined_events"], "run_id": "run-1",
        "code_version": "0.1.0+abc", "fingerprint": "f", "inputs": "{}",
        "output_digest": ["d1", "d2"], "row_count": [102, 10],
        "recorded_at": pd.Timestamp("2026-11-25T10:00:00Z"),
    })  # fmt: skip
    runs.record(engine, record)
    runs.record(engine, record.assign(run_id="run-2", output_digest=["d3", "d2"]))
    assert runs.output_digest(engine, "2026-10-01", "ingest", "usage_events") == "d3"
    assert runs.output_digest(engine, "2026-09-01", "ingest", "usage_events") == "absent"
    rows = runs.for_periods(engine, ["2026-10-01"])
    assert set(rows["run_id"]) == {"run-2"} and len(rows) == 2
    assert rows["recorded_at"].iloc[0] == pd.Timestamp("2026-11-25T10:00:00Z")
