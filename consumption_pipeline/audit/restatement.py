"""Restatements (docs/rules.md "Late usage and restatements"): a closed period recomputed.

A closed period's exported lines are never changed. When the period is recomputed (late events, a
corrected catalog), its new liable summaries are compared with what was billed for it: the lines
exported at its close plus every restatement booked since. Each difference becomes a restatement
line, kept with the reason (which inputs changed since the period was billed) and the events that
caused it (added, changed or removed since then), and is booked as an adjustment line into the
liable (and ratable) summaries of the next period that is still open.

Rules where docs/rules.md is silent:

- What a period was billed on (its accepted events and input fingerprints) is recorded while it is
  due to close and not closed yet, so at its close run; a restatement then moves that record to
  the recomputation it restated.
- Restatement ids are the period and a sequence number: `2026-09-R1`, `2026-09-R2`, …
- An adjustment line has `line_type = 'adjustment'`, the restatement id, the differences of
  consumption, debited, overage and amount, no net unit rate, and status `final`: it restates a
  closed period, and a later change is a new restatement. Its ratable twin (`rate_source =
  'restatement'`) keeps liable and ratable amounts equal per account and period.
- Recomputing a closed period again with nothing new books nothing: the difference is taken against
  the exported lines plus the restatements already booked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd

from consumption_pipeline.audit import runs
from consumption_pipeline.audit import store as audit_store
from consumption_pipeline.closing.outbox import LINES_CSV
from consumption_pipeline.closing.register import ClosureRegister
from consumption_pipeline.domain.quantities import from_micro, to_micro
from consumption_pipeline.storage.warehouse import Warehouse

KEY = ["account_id", "asset_key", "usage_resource_id", "currency"]
QUANTITIES = ["consumption", "debited", "overage_quantity"]
EVENT_FIELDS = ["account_id", "asset_id", "usage_resource_id", "quantity", "occurred_at"]
ADJUSTMENTS = {"liable_summaries": {"line_type": "adjustment"},
               "ratable_summaries": {"line_type": "adjustment"}}  # fmt: skip


class RestatementError(ValueError):
    """A closed period whose export cannot be read back as it was written."""


@dataclass(frozen=True)
class Restatement:
    restatement_id: str
    period: str
    booked_in: str
    lines: pd.DataFrame  # restatement_lines rows
    events: pd.DataFrame  # restatement_events rows
    reason: str


# -- pure rules ------------------------------------------------------------------------------


def read_exported(folder: Path, file_name: str, checksum: str) -> pd.DataFrame:
    """The exported liable summaries of a closed period, checked against the close's checksum."""
    path = Path(folder) / file_name
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != checksum:
        raise RestatementError(f"{path}: its SHA-256 is not the checksum recorded when the period "
                               f"closed ({checksum}); the export was changed")  # fmt: skip
    text = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    # No asset: an empty cell, or 'nan' where a missing asset was written as a float NaN.
    return pd.DataFrame({
        "account_id": text["account_id"],
        "asset_id": text["asset_id"].replace({"": pd.NA, "nan": pd.NA}),
        "usage_resource_id": text["usage_resource_id"], "currency": text["currency"],
        **{q: text[q].astype("float64") for q in QUANTITIES},
        "amount": [Decimal(a) for a in text["amount"]],
    })  # fmt: skip


def differences(
    billed: pd.DataFrame, restated: pd.DataFrame, recomputed: pd.DataFrame
) -> pd.DataFrame:
    """Per line: recomputed − (billed + Σ restated); only the lines where anything differs.

    Columns: account_id, asset_id, usage_resource_id, currency, billed_* (what was billed so far),
    and the differences consumption, debited, overage_quantity, amount."""
    so_far = _totals(pd.concat([_keyed(billed), _keyed(restated)], ignore_index=True))
    now = _totals(_keyed(recomputed))
    lines = so_far.join(now, how="outer", suffixes=("_billed", "")).fillna(
        {**{f"{q}_billed": 0 for q in QUANTITIES}, **{q: 0 for q in QUANTITIES}}
    )
    lines["amount_billed"] = lines["amount_billed"].apply(_decimal)
    lines["amount"] = lines["amount"].apply(_decimal)
    out = pd.DataFrame(index=lines.index)
    for q in QUANTITIES:
        out[f"billed_{q}"] = from_micro(lines[f"{q}_billed"].astype("int64"))
        out[q] = from_micro((lines[q] - lines[f"{q}_billed"]).astype("int64"))
    out["billed_amount"] = lines["amount_billed"]
    out["amount"] = lines["amount"] - lines["amount_billed"]
    changed = lines[QUANTITIES].to_numpy() != lines[[f"{q}_billed" for q in QUANTITIES]].to_numpy()
    out = out[changed.any(axis=1) | (out["amount"] != 0)].reset_index()
    out["asset_id"] = out["asset_key"].where(out["asset_key"].ne(""), pd.NA)
    return out.drop(columns="asset_key")


def _keyed(lines: pd.DataFrame) -> pd.DataFrame:
    frame = lines.assign(asset_key=lines["asset_id"].fillna("") if len(lines) else "")
    out = frame.reindex(columns=[*KEY, *QUANTITIES, "amount"])
    for q in QUANTITIES:
        out[q] = to_micro(out[q].astype("float64")).astype("int64")
    return out


def _totals(frame: pd.DataFrame) -> pd.DataFrame:
    grouped = frame.groupby(KEY, dropna=False)
    totals = grouped[QUANTITIES].sum()
    totals["amount"] = grouped["amount"].agg(lambda a: sum((_decimal(v) for v in a), Decimal(0)))
    return totals


def _decimal(value: object) -> Decimal:
    if value is None or (not isinstance(value, Decimal) and pd.isna(value)):
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


def event_changes(billed: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """The events added, changed or removed since the period was billed, by event_id."""
    columns = ["change", "event_id", "account_id", "asset_id", "usage_resource_id", "quantity",
               "billed_quantity", "occurred_at", "source_file", "row_number"]  # fmt: skip
    both = current.merge(billed, on="event_id", how="outer", suffixes=("", "_billed"),
                         indicator=True)  # fmt: skip
    differs = pd.Series(False, index=both.index)
    for field in EVENT_FIELDS:
        now, then = both[field], both[f"{field}_billed"]
        differs |= ~((now == then).fillna(False) | (now.isna() & then.isna())).astype(bool)
    both["change"] = "changed"
    both.loc[both["_merge"].eq("left_only"), "change"] = "added"
    both.loc[both["_merge"].eq("right_only"), "change"] = "removed"
    changed = both[both["_merge"].ne("both") | differs].copy()
    removed = changed["change"].eq("removed")
    for field in ["account_id", "asset_id", "usage_resource_id", "occurred_at", "source_file",
                  "row_number"]:  # fmt: skip
        changed[field] = changed[field].where(~removed, changed[f"{field}_billed"])
    changed["billed_quantity"] = changed["quantity_billed"]
    changed.loc[removed, "quantity"] = pd.NA
    return changed[columns].sort_values(["change", "event_id"], ignore_index=True)


def reason(basis: dict | None, current: dict, changes: pd.DataFrame) -> str:
    """Which inputs changed since the period was billed, in words."""
    if basis is None:
        return "recomputed; no record of what the period was billed on"
    parts = []
    counts = changes["change"].value_counts()
    if len(changes):
        listed = ", ".join(changes["event_id"].head(5)) + (", …" if len(changes) > 5 else "")
        kinds = ", ".join(
            f"{counts[k]} {k}" for k in ("added", "changed", "removed") if k in counts
        )
        label = "late usage" if set(counts.index) == {"added"} else "usage changed"
        parts.append(f"{label}: {kinds} ({listed})")
    inputs, billed_inputs = current.get("inputs", {}), basis.get("inputs", {})
    files = [k.split("/", 1)[1] for k in sorted(inputs) if k.startswith("catalog/")
             and inputs[k] != billed_inputs.get(k)]  # fmt: skip
    if files:
        parts.append(f"catalog corrected: {', '.join(files)}")
    settings = [k.split("/", 1)[1] for k in sorted(inputs) if k.startswith("settings/")
                and inputs[k] != billed_inputs.get(k)]  # fmt: skip
    if settings:
        parts.append(f"settings changed: {', '.join(settings)}")
    if current.get("code_version") != basis.get("code_version"):
        parts.append(f"code changed: {basis.get('code_version')} → {current.get('code_version')}")
    return "; ".join(parts) or "recomputed with the same inputs"


def next_open_period(period: str, closed: list[str]) -> str:
    """The first period after `period` that is not closed."""
    month = pd.Timestamp(period) + pd.offsets.MonthBegin(1)
    while month.strftime("%Y-%m-%d") in closed:
        month += pd.offsets.MonthBegin(1)
    return month.strftime("%Y-%m-%d")


def adjustment_lines(booked: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The adjustment lines (liable and ratable) of the restatement lines booked into a period."""
    common = {
        "account_id": booked["account_id"], "asset_id": booked["asset_id"],
        "usage_resource_id": booked["usage_resource_id"],
        "overage_quantity": booked["overage_quantity"], "net_unit_rate": None,
        "amount": booked["amount"], "currency": booked["currency"],
        "restatement_id": booked["restatement_id"],
    }  # fmt: skip
    liable = pd.DataFrame({**common, "consumption": booked["consumption"],
                           "debited": booked["debited"], "status": "final"})  # fmt: skip
    ratable = pd.DataFrame({**common, "rate_source": "restatement"})
    return {"liable_summaries": liable, "ratable_summaries": ratable}


# -- reading and writing -------------------------------------------------------------------


def keep_billed_basis(store: Warehouse, period: str, events: int, inputs: dict,
                      code_version: str, run_id: str) -> None:  # fmt: skip
    """Record what a period is billed on: its accepted events as they are now (`events` of
    them) and its input fingerprints."""
    store.lake.copy_period("usage_events", "billed_events", period)
    key = {"period": pd.Timestamp(period)}
    audit_store.replace_rows(store.engine, "billed_basis", key, pd.DataFrame([{
        **key, "run_id": run_id, "code_version": code_version,
        "inputs": json.dumps(inputs, sort_keys=True), "events": events,
        "recorded_at": pd.Timestamp(dt.datetime.now(dt.UTC)),
    }]))  # fmt: skip


def restate(store: Warehouse, period: str, run_id: str, code_version: str) -> Restatement | None:
    """Compare a closed period's recomputation with what was billed for it; book the difference.
    None when the period is not closed or nothing differs."""

    register = ClosureRegister(store)
    closure = register.closure(period)
    if closure is None:
        return None
    engine = store.engine
    billed = read_exported(Path(closure["outbox"]), LINES_CSV, closure["checksum"])
    prior = audit_store.read_rows(engine, "restatement_lines", {"period": pd.Timestamp(period)})
    recomputed = store.read_period("liable_summaries", period)
    recomputed = recomputed[recomputed["line_type"].fillna("usage").eq("usage")]
    diff = differences(billed, prior, recomputed)
    restatement = None
    if len(diff):
        restatement = _book(store, period, diff, prior, register.closed_periods(), run_id,
                            code_version)  # fmt: skip
        prior = pd.concat([prior, restatement.lines], ignore_index=True)
    for booked_in in sorted(set(prior["booked_in"].dt.strftime("%Y-%m-%d"))):
        _write_adjustments(store, booked_in)
    return restatement


def _book(store: Warehouse, period: str, diff: pd.DataFrame, prior: pd.DataFrame,
          closed: list[str], run_id: str, code_version: str) -> Restatement:  # fmt: skip
    engine = store.engine
    restatement_id = f"{period[:7]}-R{prior['restatement_id'].nunique() + 1}"
    basis_rows = audit_store.read_rows(engine, "billed_basis", {"period": pd.Timestamp(period)})
    current_events = store.read_period("usage_events", period)
    if len(basis_rows):
        basis = {"code_version": basis_rows["code_version"].iloc[0],
                 "inputs": json.loads(basis_rows["inputs"].iloc[0])}  # fmt: skip
        changes = event_changes(store.read_period("billed_events", period), current_events)
    else:
        basis, changes = None, event_changes(current_events.iloc[0:0], current_events.iloc[0:0])
    ingest = runs.for_periods(engine, [period])
    ingest = ingest[ingest["table_name"].eq("usage_events")]
    current = {"code_version": code_version,
               "inputs": json.loads(ingest["inputs"].iloc[0]) if len(ingest) else {}}  # fmt: skip
    why = reason(basis, current, changes)
    booked_in = next_open_period(period, closed)
    lines = diff.assign(
        restatement_id=restatement_id, period=pd.Timestamp(period),
        booked_in=pd.Timestamp(booked_in), reason=why, run_id=run_id, code_version=code_version,
        recorded_at=pd.Timestamp(dt.datetime.now(dt.UTC)),
    )  # fmt: skip
    events = changes.assign(restatement_id=restatement_id)
    key = {"restatement_id": restatement_id}
    audit_store.replace_rows(engine, "restatement_lines", key, lines)
    audit_store.replace_rows(engine, "restatement_events", key, events)
    # The period is now billed on this recomputation: the next restatement is measured from it.
    keep_billed_basis(store, period, len(current_events), current["inputs"], code_version,
                      run_id)  # fmt: skip
    return Restatement(restatement_id, period, booked_in, lines, events, why)


def _write_adjustments(store: Warehouse, booked_in: str) -> None:
    """All adjustment lines booked into `booked_in`, rewritten from the restatement lines."""
    booked = audit_store.read_rows(store.engine, "restatement_lines",
                                   {"booked_in": pd.Timestamp(booked_in)})  # fmt: skip
    store.replace_period(booked_in, adjustment_lines(booked), where=ADJUSTMENTS)
