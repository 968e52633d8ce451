"""Contracts that change: the timeline of each asset's changes (`asset_changes.csv`) and the
rules its rows and the credit grants (`credit_grants.csv`) must keep.

An asset's changes apply in `effective_date` order: from a change's date on, its `quantity` (if
set) is the asset's quantity and its `end_date` (if set) the asset's end. A bucket is granted on
what is in force on its first day; every bucket of an asset ends by the asset's final end.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

Problem = tuple[object, str, str]  # (row label, column, what was expected)


def change_problems(changes: pd.DataFrame, assets: pd.DataFrame) -> list[Problem]:
    """The changes that break their asset's timeline, in file order: two on one date, a date
    outside the asset, an end before the change's date or later than the asset's end then (an
    extension is a renewal: a new asset row). Rows with an unknown asset or date are skipped."""
    # Plain dicts: a frame's scalar lookups cost milliseconds each, thousands of assets minutes.
    starts = dict(zip(assets["asset_id"], assets["start_date"], strict=True))
    ends = dict(zip(assets["asset_id"], assets["end_date"], strict=True))
    known = changes[
        changes["asset_id"].isin(assets["asset_id"]) & changes["effective_date"].notna()
    ]
    found: list[Problem] = []
    ordered = known.sort_values(["asset_id", "effective_date"], kind="stable")
    asset = last = start = end = None
    for r in ordered.itertuples():
        if r.asset_id != asset:  # the first change of the next asset
            asset, last, start, end = r.asset_id, None, starts[r.asset_id], ends[r.asset_id]
        problem = _change_problem(r, asset, start, end, last)
        if problem:
            found.append((r.Index, *problem))
            continue
        last = r.effective_date
        if pd.notna(r.end_date):
            end = r.end_date
    position = {label: i for i, label in enumerate(changes.index)}
    return sorted(found, key=lambda p: position[p[0]])


def _change_problem(r, asset: str, start, end, last) -> tuple[str, str] | None:
    day = f"{r.effective_date:%Y-%m-%d}"
    if last is not None and r.effective_date == last:
        return "effective_date", f"one change of asset {asset} per date ({day} has one already)"
    ends = "no end" if pd.isna(end) else f"before its end {end:%Y-%m-%d}"
    if r.effective_date < start or (pd.notna(end) and r.effective_date >= end):
        return "effective_date", f"a date within asset {asset} (from {start:%Y-%m-%d}, {ends})"
    if pd.notna(r.end_date) and r.end_date < r.effective_date:
        return "end_date", "a date not before effective_date"
    if pd.notna(r.end_date) and pd.notna(end) and r.end_date > end:
        return "end_date", (f"an end not later than the asset's end then ({end:%Y-%m-%d}): an "
                            "extension is a new asset row")  # fmt: skip
    return None


def credit_problems(
    credits: pd.DataFrame, assets: pd.DataFrame, resources: pd.DataFrame, changes: pd.DataFrame
) -> list[Problem]:
    """The credits that cannot be granted, in file order: an asset of another account, a
    resource converted into a token, a `valid_to` not after `effective_date`, and (where the page
    is silent) an asset-bound credit that could never open: dated on or after its asset's end,
    or ending by its start. Rows with an unknown id or date are skipped."""
    owner = assets.set_index("asset_id")["account_id"]
    start = assets.set_index("asset_id")["start_date"]
    end = asset_ends(assets, changes)["end_date"]
    token = resources.set_index("usage_resource_id")["token_resource_id"]
    found: list[Problem] = []
    for r in credits.itertuples():
        bound = pd.notna(r.asset_id) and r.asset_id in owner.index
        if bound and owner[r.asset_id] != r.account_id:
            found.append((r.Index, "asset_id", "an asset of the row's account"))
        elif r.usage_resource_id in token.index and pd.notna(token[r.usage_resource_id]):
            found.append((r.Index, "usage_resource_id",
                          "a resource drawn from itself, not converted into a token"))  # fmt: skip
        elif pd.notna(r.valid_to) and pd.notna(r.effective_date) and r.valid_to <= r.effective_date:
            found.append((r.Index, "valid_to", "a date after effective_date"))
        elif bound and pd.notna(end[r.asset_id]) and r.effective_date >= end[r.asset_id]:
            found.append((r.Index, "effective_date",
                          f"a date before the end of asset {r.asset_id} "
                          f"({end[r.asset_id]:%Y-%m-%d})"))  # fmt: skip
        elif bound and pd.notna(r.valid_to) and r.valid_to <= start[r.asset_id]:
            found.append((r.Index, "valid_to",
                          f"a date after the start of asset {r.asset_id} "
                          f"({start[r.asset_id]:%Y-%m-%d})"))  # fmt: skip
    return found


def _states(assets: pd.DataFrame, changes: pd.DataFrame) -> pd.DataFrame:
    """One row per asset and date from which its quantity or end changes: what is in force from
    then on, and the change behind it (none for the asset's own row)."""
    base = pd.DataFrame({
        "asset_id": assets["asset_id"], "from": assets["start_date"],
        "quantity": assets["quantity"], "end_date": assets["end_date"], "change_id": None,
        "order": 0,
    })  # fmt: skip
    rows = pd.DataFrame({
        "asset_id": changes["asset_id"], "from": changes["effective_date"],
        "quantity": changes["quantity"], "end_date": changes["end_date"],
        "change_id": changes["change_id"], "order": 1,
    })  # fmt: skip
    states = pd.concat([base, rows], ignore_index=True)
    states = states.sort_values(["asset_id", "from", "order"], ignore_index=True)
    filled = states.groupby("asset_id")[["quantity", "end_date"]].ffill()
    states["quantity"], states["end_date"] = filled["quantity"], filled["end_date"]
    return states.drop_duplicates(["asset_id", "from"], keep="last").drop(columns="order")


class Timeline:
    """What is in force for each asset on any day: its quantity, its end and the latest change
    behind them, and its final end. Assets without changes are looked up, not merged."""

    def __init__(self, assets: pd.DataFrame, changes: pd.DataFrame):
        self.own = assets.set_index("asset_id")[["quantity", "end_date"]]
        changed = assets[_is_in(assets["asset_id"], changes["asset_id"])]
        self.states = _states(changed, changes).astype({"from": "datetime64[s]", "asset_id": "str"})
        last = self.states.drop_duplicates("asset_id", keep="last").set_index("asset_id")
        cancelled = changes[changes["end_date"].notna()].sort_values(
            "effective_date", kind="stable"
        )
        by = cancelled.drop_duplicates("asset_id", keep="last").set_index("asset_id")["change_id"]
        ends = self.own["end_date"].to_numpy("datetime64[s]", copy=True)
        ends[self.own.index.get_indexer(last.index)] = last["end_date"].to_numpy("datetime64[s]")
        self.ends = pd.DataFrame({"end_date": pd.Series(ends, index=self.own.index),
                                  "change_id": by.reindex(self.own.index)})  # fmt: skip
        self._search = _StateSearch(self.own.index.get_indexer(self.states["asset_id"]),
                                    self.states["from"].to_numpy(), len(self.own))  # fmt: skip

    def changed(self, asset_ids: pd.Series) -> np.ndarray:
        """Which of `asset_ids` have changes."""
        return _is_in(asset_ids, self.states["asset_id"].unique())

    def in_force(self, asset_ids: pd.Series, days: pd.Series) -> pd.DataFrame:
        """Quantity (micro-units), end and latest change in force on each (asset, day), aligned
        with `asset_ids`; a day before its asset's start gets the asset's own row."""
        at = self.own.index.get_indexer(asset_ids)
        quantity = self.own["quantity"].to_numpy("int64", na_value=0)[at]
        end = self.own["end_date"].to_numpy("datetime64[s]")[at]
        change = np.full(len(at), None, dtype=object)
        row = self._search.state_on(at, days.to_numpy("datetime64[s]"))
        found = row >= 0
        if found.any():
            row = row[found]
            quantity[found] = self.states["quantity"].to_numpy("int64")[row]
            end[found] = self.states["end_date"].to_numpy("datetime64[s]")[row]
            change[found] = self.states["change_id"].to_numpy(object)[row]
        return pd.DataFrame({"quantity": quantity, "end_date": end, "change_id": change},
                            index=asset_ids.index)  # fmt: skip


class _StateSearch:
    """The state row in force for (asset position, day) pairs, by one bisection over the states
    sorted by asset and date: each asset's dates get a range of their own in one int64 key."""

    def __init__(self, asset: np.ndarray, since: np.ndarray, assets: int):
        seconds = since.astype("int64")
        self.first = seconds.min(initial=0)
        self.span = seconds.max(initial=0) - self.first + 2  # room for "before the first date"
        known = asset >= 0  # a change of an unknown asset is refused by the catalog
        self.order = np.flatnonzero(known)[np.lexsort((seconds[known], asset[known]))]
        self.asset = asset[self.order]
        self.keys = self.asset * self.span + (seconds[self.order] - self.first)
        self.has_states = np.zeros(assets + 1, bool)  # the last slot: an unknown asset (-1)
        self.has_states[self.asset] = True

    def state_on(self, asset: np.ndarray, days: np.ndarray) -> np.ndarray:
        """The state row in force for each (asset, day), -1 where the asset has none then."""
        out = np.full(len(asset), -1)
        asks = np.flatnonzero(self.has_states[asset])
        if not len(asks):
            return out
        offset = np.clip(days[asks].astype("int64") - self.first, -1, self.span - 2)
        i = np.searchsorted(self.keys, asset[asks] * self.span + offset, "right") - 1
        same = (i >= 0) & (self.asset[np.maximum(i, 0)] == asset[asks])
        out[asks[same]] = self.order[i[same]]
        return out


def _is_in(values: pd.Series, known) -> np.ndarray:
    """Which text values are among `known` (Arrow's is_in: no pandas hashing of every id)."""
    found = pc.is_in(pa.array(values.astype("str"), pa.string(), from_pandas=True),
                     value_set=pa.array(known, pa.string(), from_pandas=True))  # fmt: skip
    return found.fill_null(False).to_numpy(zero_copy_only=False)


def asset_ends(assets: pd.DataFrame, changes: pd.DataFrame) -> pd.DataFrame:
    """Each asset's final end (NaT: never) and the cancellation that set it, by asset id."""
    return Timeline(assets, changes).ends
