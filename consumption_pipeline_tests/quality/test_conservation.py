"""The conservation laws of docs/rules.md as checks: each passes on books that balance and names the
row that breaks it, with hand-written frames."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from consumption_pipeline.quality.conservation import (
    bucket_balances_conserved,
    drawdown_conserved,
    events_reconcile,
    liable_equals_ratable,
)

COUNTS = {"events_read": 10, "accepted": 6, "duplicates": 1, "quarantined": 2, "other_periods": 1}


def frame(rows: int, **columns) -> pd.DataFrame:
    return pd.DataFrame(index=range(rows)).assign(**columns)


def test_events_reconcile_when_every_row_read_has_one_place():
    # 10 read = 6 accepted + 1 duplicate + 2 quarantined + 1 of another period.
    outcome = events_reconcile(10, 6, frame(2), COUNTS)
    assert outcome.passed
    assert outcome.summary == ("passed: 10 events read = 6 accepted + 1 duplicates + 2 quarantined"
                               " + 1 of other periods (= 10)")  # fmt: skip


def test_an_event_lost_between_the_files_and_the_tables_is_named():
    # 11 rows in the files, but the counts place 10: one event is unaccounted for.
    outcome = events_reconcile(11, 6, frame(2), COUNTS)
    assert not outcome.passed
    assert outcome.failing["problem"].tolist() == [
        "expected 11 events read = 6 accepted + 1 duplicates + 2 quarantined + 1 of other periods"
        " (= 10)",
        "expected 10 counted read = 11 rows in the event files",
    ]


def test_rows_written_must_match_the_counts():
    # The counts say 6 accepted, the table got 5: 5 + 1 + 2 + 1 = 9 placed out of 10 read.
    outcome = events_reconcile(10, 5, frame(2), COUNTS)
    assert outcome.failing["law"].tolist() == [
        "10 events read = 5 accepted + 1 duplicates + 2 quarantined + 1 of other periods (= 9)",
        "6 counted accepted = 5 rows written to usage_events",
    ]


SUMMARIES = pd.DataFrame({
    "summary_id": ["s1", "s2", "s3"], "drawdown_quantity": [800.0, 1300.0, 0.000001],
    "debited": [800.0, 1200.0, 0.0], "overage": [0.0, 100.0, 0.000001],
})  # fmt: skip
LEDGER = pd.DataFrame({
    "entry_id": ["1", "2", "3", "4"], "bucket_id": ["b1", "b1", "b2", "b2"],
    "entry_type": ["credit", "debit", "credit", "debit"], "quantity": [2000.0, 800.0, 1200.0, 1200.0],
    "opening_balance": [0.0, 2000.0, 0.0, 1200.0], "closing_balance": [2000.0, 1200.0, 1200.0, 0.0],
    "summary_id": [None, "s1", None, "s2"],
})  # fmt: skip


def test_drawdown_quantity_is_debited_plus_overage_in_micro_units():
    # s3: 0.000001 = 0 + 0.000001 exactly (one micro-unit, no float tolerance needed).
    assert drawdown_conserved(SUMMARIES, LEDGER).passed


def test_a_summary_whose_overage_does_not_add_up_is_named():
    # s2: 1,300 needed, 1,200 debited, 99 overage: 1 credit vanished.
    broken = SUMMARIES.assign(overage=[0.0, 99.0, 0.000001])
    outcome = drawdown_conserved(broken, LEDGER)
    assert outcome.failing["problem"].tolist() == [
        "summary 's2': drawdown 1300.0, debited 1200.0 (ledger 1200.0), overage 99.0: expected "
        "drawdown quantity = debited + overage"
    ]


def test_debited_must_match_the_ledger_debits_of_the_summary():
    # s1 says 800 debited, but the ledger has no debit for it.
    outcome = drawdown_conserved(SUMMARIES, LEDGER[LEDGER["summary_id"].ne("s1")])
    assert outcome.failing["summary_id"].tolist() == ["s1"]
    assert outcome.failing["expected"].tolist() == ["debited = the summary's debits in the ledger"]


def test_negative_overage_is_refused_even_when_the_sum_holds():
    # 1,300 = 1,400 debited - 100 overage adds up, but overage cannot be negative.
    broken = SUMMARIES.assign(debited=[800.0, 1400.0, 0.0], overage=[0.0, -100.0, 0.000001])
    ledger = LEDGER.assign(quantity=[2000.0, 800.0, 1200.0, 1400.0])
    assert drawdown_conserved(broken, ledger).failing["expected"].tolist() == ["overage >= 0"]


BALANCES = pd.DataFrame({
    "bucket_id": ["b1", "b2", "b0"], "opening": [0.0, 0.0, 300.0], "credited": [2000.0, 1200.0, 0.0],
    "debited": [800.0, 1200.0, 0.0], "expired": [0.0, 0.0, 100.0], "rolled_over": [0.0, 0.0, 200.0],
    "closing": [1200.0, 0.0, 0.0],
})  # fmt: skip
CARRIED = pd.DataFrame({"bucket_id": ["b0"], "closing": [300.0]})
LEDGER_B0 = pd.concat([LEDGER, pd.DataFrame({
    "entry_id": ["5", "6"], "bucket_id": ["b0", "b0"], "entry_type": ["rollover_out", "expired"],
    "quantity": [200.0, 100.0], "opening_balance": [300.0, 100.0], "closing_balance": [100.0, 0.0],
    "summary_id": [None, None],
})], ignore_index=True)  # fmt: skip


def test_bucket_balances_follow_the_balance_equation():
    # b1: 0 + 2,000 - 800 = 1,200. b2: 0 + 1,200 - 1,200 = 0. b0: 300 - 100 - 200 = 0, carried.
    assert bucket_balances_conserved(BALANCES, LEDGER_B0, CARRIED).passed


def test_a_bucket_whose_closing_does_not_follow_is_named():
    broken = BALANCES.assign(closing=[1100.0, 0.0, 0.0])
    outcome = bucket_balances_conserved(broken, LEDGER_B0, CARRIED)
    assert outcome.failing["problem"].tolist() == [
        "bucket 'b1': opening 0.0 + credited 2000.0 - debited 800.0 - expired 0.0 - rolled over "
        "0.0, closing 1100.0: expected opening + credited - debited - expired - rolled over = "
        "closing"
    ]


def test_a_negative_closing_balance_is_refused_even_when_the_equation_holds():
    # b2 debited 1,300 of 1,200: 0 + 1,200 - 1,300 = -100 = closing, but below zero.
    broken = BALANCES.assign(debited=[800.0, 1300.0, 0.0], closing=[1200.0, -100.0, 0.0])
    ledger = LEDGER_B0.assign(quantity=[2000.0, 800.0, 1200.0, 1300.0, 200.0, 100.0],
                              closing_balance=[2000.0, 1200.0, 1200.0, -100.0, 100.0, 0.0])  # fmt: skip
    outcome = bucket_balances_conserved(broken, ledger, CARRIED)
    assert outcome.failing["expected"].tolist() == [
        "closing >= 0",
        "no negative balance in the ledger",
    ]
    assert outcome.failing["problem"].iloc[1] == (
        "ledger entry '4' of bucket 'b2': debit 1300.0 leaves -100.0: expected no negative balance"
    )


def test_the_opening_must_be_the_previous_closing():
    # b0 closed September with 300 but opens October with 250.
    outcome = bucket_balances_conserved(BALANCES, LEDGER_B0, CARRIED.assign(closing=[250.0]))
    assert outcome.failing["expected"].tolist() == ["opening = the previous period's closing"]


def test_every_flow_must_match_the_ledger():
    # The ledger lost b0's expiry entry: expired 100 in the balances, 0 in the ledger.
    outcome = bucket_balances_conserved(BALANCES, LEDGER_B0.iloc[:-1], CARRIED)
    assert outcome.failing["expected"].tolist() == ["expired = the ledger's expired entries"]


def lines(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["account_id", "currency", "amount"])


def test_liable_totals_equal_ratable_totals_per_account():
    # ACME: liable 2.00 + 0.00 = ratable 1.50 + 0.50. BETA owes nothing: no ratable line.
    liable = lines(("ACME", "USD", Decimal("2.00")), ("ACME", "USD", Decimal("0.00")),
                   ("BETA", "EUR", Decimal("0.00")))  # fmt: skip
    ratable = lines(("ACME", "USD", Decimal("1.50")), ("ACME", "USD", Decimal("0.50")))
    assert liable_equals_ratable(liable, ratable).passed


def test_an_account_billed_other_than_its_priced_overage_is_named():
    # ACME's invoice says 2.01, its priced overage 2.00: a cent from nowhere.
    outcome = liable_equals_ratable(lines(("ACME", "USD", Decimal("2.01"))),
                                    lines(("ACME", "USD", Decimal("2.00"))))  # fmt: skip
    assert outcome.summary == (
        "1 row fails: account 'ACME' in USD: liable total 2.01, ratable total 2.00: expected "
        "them equal"
    )
