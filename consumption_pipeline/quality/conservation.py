"""The conservation laws of docs/rules.md, checked on what each stage wrote.

- events read = accepted + duplicates + quarantined + other periods (the rows read are counted
  from the files, the accepted and quarantined ones from the frames written);
- per summary: drawdown quantity = debited + overage, neither negative, and debited equals the
  summary's debits in the ledger;
- per bucket: opening + credited - debited - expired - rolled over = closing >= 0, each flow equal
  to the ledger's entries of its type, the opening equal to the previous period's closing, and no
  ledger entry leaving a negative balance;
- per account and period: the sum of liable amounts = the sum of ratable amounts.

Quantities are compared exactly, in integer micro-units; money as decimals.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd

from consumption_pipeline.domain.quantities import to_micro
from consumption_pipeline.quality.outcome import Outcome, verdict

LEDGER_FLOWS = {"credit": "credited", "debit": "debited", "expired": "expired",
                "rollover_out": "rolled_over"}  # fmt: skip


def events_reconcile(
    rows_read: int, accepted: int, quarantined: pd.DataFrame, counts: dict[str, int]
) -> Outcome:
    """Every row read is accepted (`accepted` rows written to usage_events), a removed
    duplicate, quarantined or another period's."""
    held = len(quarantined)
    placed = accepted + counts["duplicates"] + held + counts["other_periods"]
    laws = [
        (rows_read == placed, f"{rows_read} events read = {accepted} accepted + "
         f"{counts['duplicates']} duplicates + {held} quarantined + {counts['other_periods']} "
         f"of other periods (= {placed})"),
        (counts["accepted"] == accepted, f"{counts['accepted']} counted accepted = {accepted} "
         "rows written to usage_events"),
        (counts["quarantined"] == held, f"{counts['quarantined']} counted quarantined = {held} "
         "rows written to quarantined_events"),
        (counts["events_read"] == rows_read, f"{counts['events_read']} counted read = "
         f"{rows_read} rows in the event files"),
    ]  # fmt: skip
    broken = [text for holds, text in laws if not holds]
    failing = pd.DataFrame({"law": broken, "problem": [f"expected {t}" for t in broken]})
    return verdict("events_reconcile", failing, laws[0][1], events_read=rows_read,
                   accepted=accepted, quarantined=held)  # fmt: skip


def drawdown_conserved(usage_summaries: pd.DataFrame, ledger: pd.DataFrame) -> Outcome:
    """Per summary: drawdown quantity = debited + overage, as the ledger's debits say."""
    s = usage_summaries.reset_index(drop=True)
    drawdown, debited, overage = (to_micro(s[c].fillna(0)).astype("int64")
                                  for c in ["drawdown_quantity", "debited", "overage"])  # fmt: skip
    debits = ledger[ledger["entry_type"].eq("debit")]
    # Summary ids numbered once for both tables: the debits are summed per number.
    codes = pd.factorize(pd.concat([s["summary_id"], debits["summary_id"]], ignore_index=True))[0]
    per_summary = np.zeros(codes.max() + 2 if len(codes) else 1, "int64")  # last: no id
    np.add.at(per_summary, codes[len(s) :], to_micro(debits["quantity"]).to_numpy(dtype="int64"))
    booked = pd.Series(per_summary[codes[: len(s)]])
    checks = [
        (drawdown != debited + overage, "drawdown quantity = debited + overage"),
        (debited < 0, "debited >= 0"),
        (overage < 0, "overage >= 0"),
        (booked != debited, "debited = the summary's debits in the ledger"),
    ]
    failing = _failing(s, ["summary_id"], checks, lambda r: f"summary {r.summary_id!r}: drawdown "
                       f"{r.drawdown_quantity}, debited {r.debited} (ledger {r.ledger_debits}), "
                       f"overage {r.overage}", ledger_debits=booked / 1e6)  # fmt: skip
    return verdict("drawdown_conserved", failing, f"{len(s)} usage summaries", summaries=len(s))


def bucket_balances_conserved(
    balances: pd.DataFrame, ledger: pd.DataFrame, carried: pd.DataFrame
) -> Outcome:
    """Per bucket: the balance equation, a closing never negative, flows as in the ledger, and
    the opening carried from the previous period's closing (`carried`: bucket_id, closing)."""
    b = balances.reset_index(drop=True)
    micro = {c: to_micro(b[c].fillna(0)).astype("int64")
             for c in ["opening", "credited", "debited", "expired", "rolled_over", "closing"]}  # fmt: skip
    equation = micro["opening"] + micro["credited"] - micro["debited"] - micro["expired"]
    equation -= micro["rolled_over"]
    by_type = ledger.assign(micro=to_micro(ledger["quantity"])).pivot_table(
        index="bucket_id", columns="entry_type", values="micro", aggfunc="sum", fill_value=0
    )
    carried_closing = b["bucket_id"].map(carried.set_index("bucket_id")["closing"]).fillna(0)
    checks = [
        (equation != micro["closing"],
         "opening + credited - debited - expired - rolled over = closing"),
        (micro["closing"] < 0, "closing >= 0"),
        (to_micro(carried_closing).astype("int64") != micro["opening"],
         "opening = the previous period's closing"),
        *((b["bucket_id"].map(by_type[kind]).fillna(0).astype("int64") != micro[flow]
           if kind in by_type else micro[flow] != 0, f"{flow} = the ledger's {kind} entries")
          for kind, flow in LEDGER_FLOWS.items()),
    ]  # fmt: skip
    failing = _failing(b, ["bucket_id"], checks, lambda r: f"bucket {r.bucket_id!r}: opening "
                       f"{r.opening} + credited {r.credited} - debited {r.debited} - expired "
                       f"{r.expired} - rolled over {r.rolled_over}, closing {r.closing}")  # fmt: skip
    negative = ledger[(ledger["closing_balance"] < 0) | (ledger["opening_balance"] < 0)]
    entries = pd.DataFrame({
        "bucket_id": negative["bucket_id"], "expected": "no negative balance in the ledger",
        "problem": [f"ledger entry {e.entry_id!r} of bucket {e.bucket_id!r}: {e.entry_type} "
                    f"{e.quantity} leaves {e.closing_balance}: expected no negative balance"
                    for e in negative.itertuples()],
    })  # fmt: skip
    failing = pd.concat([failing, entries], ignore_index=True)
    return verdict("bucket_balances_conserved", failing, f"{len(b)} buckets", buckets=len(b))


def liable_equals_ratable(liable: pd.DataFrame, ratable: pd.DataFrame) -> Outcome:
    """Per account and currency: the sum of liable amounts = the sum of ratable amounts."""
    keys = ["account_id", "currency"]
    totals = pd.concat([
        _amounts(liable, keys).rename("liable"), _amounts(ratable, keys).rename("ratable"),
    ], axis=1)  # fmt: skip
    totals = totals.map(lambda v: Decimal(0) if pd.isna(v) else v).reset_index()
    wrong = totals[totals["liable"] != totals["ratable"]]
    failing = wrong.assign(
        problem=[f"account {r.account_id!r} in {r.currency}: liable total {r.liable}, ratable "
                 f"total {r.ratable}: expected them equal" for r in wrong.itertuples()],
    )  # fmt: skip
    return verdict("liable_equals_ratable", failing, f"{len(totals)} account totals",
                   accounts=int(totals["account_id"].nunique()))  # fmt: skip


def _amounts(frame: pd.DataFrame, keys: list[str]) -> pd.Series:
    amounts = frame.assign(
        amount=frame["amount"].map(lambda v: Decimal(str(v)), na_action="ignore")
    )
    return amounts.groupby(keys)["amount"].sum()


def _failing(frame: pd.DataFrame, keys: list[str], checks: list, describe, **extra) -> pd.DataFrame:
    """Rows failing any of `checks` ((mask, law) pairs): the first law broken, and the row."""
    law = pd.Series(pd.NA, index=frame.index, dtype="object")
    for broken, text in checks:
        law = law.mask(law.isna() & pd.Series(broken, index=frame.index), text)
    rows = frame.assign(**extra)[law.notna()]
    return rows.assign(
        expected=law[law.notna()],
        problem=[f"{describe(r)}: expected {e}" for r, e in
                 zip(rows.itertuples(index=False), law[law.notna()], strict=True)],
    )[[*keys, *extra, "expected", "problem"]]  # fmt: skip
