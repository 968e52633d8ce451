"""Stage 4 of DOMAIN.md: draw the period's usage down against the entitlement buckets.

Day by day: open the buckets starting that day, close those ending that day (expiry or
rollover), then draw the day's summaries. Within a day the work is vectorized across accounts:
summaries competing for the same buckets (same account and drawdown resource) are taken one
rank at a time, in the order DOMAIN.md gives. Within a day the ledger reads: credits of opening
buckets, then per closing bucket its rollover_out and expiry, then the rollover buckets' credits,
then the debits. Empty moves (a zero balance closing, a zero need) write no entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from consumption_pipeline.domain.buckets import BUCKET_COLUMNS
from consumption_pipeline.domain.calendar import add_months, period_bounds
from consumption_pipeline.domain.catalog import Catalog, lookup
from consumption_pipeline.domain.quantities import from_micro, to_micro

NEVER = np.iinfo("int64").max
LEDGER_COLUMNS = [
    "entry_id", "bucket_id", "account_id", "entry_date", "sequence", "entry_type", "quantity",
    "opening_balance", "closing_balance", "summary_id", "related_bucket_id",
]  # fmt: skip
FLOWS = ["opening", "credited", "debited", "expired", "rolled_over"]


@dataclass(frozen=True)
class Drawdown:
    usage_summaries: pd.DataFrame  # rated usage with debited and overage
    entitlement_ledger: pd.DataFrame
    bucket_balances: pd.DataFrame
    rollover_buckets: pd.DataFrame  # rollover buckets open during the period, new or carried


def draw_down(
    rated: pd.DataFrame, buckets: pd.DataFrame, carried: pd.DataFrame, catalog: Catalog,
    period: pd.Timestamp,
) -> Drawdown:  # fmt: skip
    """Walk the period day by day.

    `buckets` are the period's grant buckets (stage 2); `carried` are the buckets still open at
    the end of the previous period with their `closing` balance (empty with no history)."""
    start, end = period_bounds(period)
    summaries, state = _pooled(
        _with_draw_order(rated, catalog), _initial_state(buckets, carried, start)
    )
    book = _Book(state, start, summaries["summary_id"].to_numpy())
    # The draw needs numbers only: texts would be copied with every day's rows.
    drawing = summaries[
        ["seq", "pool", "asset_code", "need", "rank", "bucket_order", "window_date"]
    ]
    by_day = dict(list(drawing.groupby("window_date")))
    # Only days on which something happens are visited: a bucket opens or ends, or usage is drawn.
    day = start
    while day < end:
        book.open_buckets(day)
        book.close_buckets(day)
        if day in by_day:
            book.draw(by_day[day])
        day = min([book.next_change(day, end), *(d for d in by_day if d > day)])
    debited_micro = book.debited[summaries["seq"].loc[rated.index].to_numpy()]
    usage = rated.assign(  # the rated columns are shared, not copied
        debited=from_micro(debited_micro),
        overage=from_micro(to_micro(rated["drawdown_quantity"]) - debited_micro),
    )
    return Drawdown(usage, book.ledger(period), book.balances(end), book.rollover_buckets())


def _initial_state(
    buckets: pd.DataFrame, carried: pd.DataFrame, start: pd.Timestamp
) -> pd.DataFrame:
    carried = carried.reindex(columns=[*BUCKET_COLUMNS, "closing"]).assign(is_carried=True)
    fresh = buckets[~buckets["bucket_id"].isin(carried["bucket_id"])].assign(is_carried=False)
    state = _typed(pd.concat([carried, fresh], ignore_index=True))
    state["is_carried"] = state["is_carried"].astype(bool)
    # With no history a bucket ending on day 1 is left alone: no rollover is reconstructed.
    state = state[state["is_carried"] | state["valid_to"].isna() | (state["valid_to"] > start)]
    state["balance"] = to_micro(state["closing"].fillna(0)).astype("int64")
    state["granted_micro"] = to_micro(state["granted"]).astype("int64")
    state["is_open"], state["is_closed"] = state["is_carried"], False
    state["open_on"] = state["valid_from"].where(state["valid_from"] > start, start)
    for flow in FLOWS:
        state[flow] = 0
    state["opening"] = state["balance"]
    state["asset_key"] = state["asset_id"].fillna("")
    return state.drop(columns=["closing"])


def _typed(buckets: pd.DataFrame) -> pd.DataFrame:
    """Bucket columns with one dtype whatever their source (stage 2, a previous period)."""
    out = buckets.copy()
    for column in ["valid_from", "valid_to", "asset_end_date"]:
        out[column] = pd.to_datetime(out[column]).astype("datetime64[s]")
    for column in ["priority", "rollover_generation", "max_rollovers"]:
        out[column] = out[column].astype("int64")
    for column in ["granted", "rollover_cap", "closing"]:
        if column in out:
            out[column] = out[column].astype("float64")
    out["rollover_months"] = out["rollover_months"].astype("Int64")
    return out


def _with_draw_order(rated: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Summaries in DOMAIN.md's draw order, each with its bucket order and rank among the
    summaries competing for the same buckets."""
    s = rated[["summary_id", "account_id", "asset_id", "drawdown_resource_id", "aggregation_period",
               "usage_resource_id", "window_date"]]  # fmt: skip
    s["need"] = to_micro(rated["drawdown_quantity"]).astype("int64")
    s["asset_key"] = s["asset_id"].fillna("")
    by_asset = catalog.assets.set_index("asset_id")["drawdown_order"]
    by_account = catalog.accounts.set_index("account_id")["drawdown_order"]
    s["bucket_order"] = lookup(s["asset_id"], by_asset).fillna(lookup(s["account_id"], by_account))
    s["monthly"] = s["aggregation_period"].eq("monthly")
    s["no_asset"] = s["asset_key"].eq("")
    s = s.sort_values(
        ["window_date", "monthly", "no_asset", "asset_key", "usage_resource_id", "account_id"]
    )
    s["rank"] = s.groupby(["window_date", "account_id", "drawdown_resource_id"]).cumcount()
    s["seq"] = np.arange(len(s))  # the draw order as one integer (sorting by ids costs)
    return s


def _pooled(summaries: pd.DataFrame, state: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Number each (account, drawdown resource) and each asset key: a summary draws from the
    buckets of its pool (of its asset, or account-bound), and joining and comparing integers is
    far cheaper than texts. Rollover buckets inherit both numbers from their parent."""
    account = pd.factorize(pd.concat([summaries["account_id"], state["account_id"]]))[0]
    resource, resources = pd.factorize(
        pd.concat([summaries["drawdown_resource_id"], state["usage_resource_id"]])
    )
    pool = pd.factorize(account * len(resources) + resource)[0]
    asset = pd.factorize(pd.concat([summaries["asset_key"], state["asset_key"]]))[0]
    n = len(summaries)
    return (summaries.assign(pool=pool[:n], asset_code=asset[:n]),
            state.assign(pool=pool[n:], asset_code=asset[n:]))  # fmt: skip


def _greedy(need: np.ndarray, balance: np.ndarray, summary: np.ndarray) -> np.ndarray:
    """Each summary takes min(balance, still needed) from its buckets in order (rows of one
    summary are contiguous and ordered)."""
    before = np.cumsum(balance) - balance
    first = np.r_[True, summary[1:] != summary[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(summary)), 0))
    before -= before[start]
    return np.clip(need - before, 0, balance)


def _day_number(dates: pd.Series) -> np.ndarray:
    days = dates.astype("datetime64[s]").to_numpy().astype("datetime64[D]").astype("int64")
    return np.where(dates.isna().to_numpy(), NEVER, days)


def _ranked(state: pd.DataFrame) -> pd.DataFrame:
    """The buckets with their place in bucket id order (the last tie-break of the draw order),
    ranked once rather than on every day."""
    return state.assign(bucket_seq=state["bucket_id"].rank(method="first"))


class _Book:
    """The bucket state of one period and the ledger entries written while walking it."""

    def __init__(self, state: pd.DataFrame, start: pd.Timestamp, summary_ids: np.ndarray):
        self.state, self.start = _ranked(state.reset_index(drop=True)), start
        self.entries: list[pd.DataFrame] = []
        self.summary_ids = summary_ids  # by draw order
        self.debited = np.zeros(len(summary_ids), "int64")  # micro-units per summary

    def _log(self, rows: pd.DataFrame, day, entry_type: str, quantity, opening, closing,
             summary_id=None, related=None) -> None:  # fmt: skip
        self.entries.append(pd.DataFrame({
            "bucket_id": rows["bucket_id"].to_numpy(), "account_id": rows["account_id"].to_numpy(),
            "entry_date": day, "entry_type": entry_type, "quantity": np.asarray(quantity),
            "opening_balance": np.asarray(opening), "closing_balance": np.asarray(closing),
            "summary_id": summary_id, "related_bucket_id": related,
        }))  # fmt: skip

    def open_buckets(self, day: pd.Timestamp) -> None:
        st = self.state
        opening = ~st["is_open"] & ~st["is_carried"] & ~st["is_closed"] & st["open_on"].eq(day)
        idx = st.index[opening]
        if not len(idx):
            return
        rows = st.loc[idx].sort_values("bucket_id")
        self._log(rows, day, "credit", rows["granted_micro"], 0, rows["granted_micro"])
        st.loc[rows.index, "balance"] = rows["granted_micro"]
        st.loc[rows.index, "credited"] = rows["granted_micro"]
        st.loc[rows.index, "is_open"] = True

    def close_buckets(self, day: pd.Timestamp) -> None:
        st = self.state
        closing = st["is_open"] & st["valid_to"].le(day)  # never later than its end
        if not closing.any():
            return
        rows = st[closing].sort_values("bucket_id")
        balance = rows["balance"]
        can_roll = (
            rows["rollover"].ne("none") & (rows["rollover_generation"] < rows["max_rollovers"])
            & (balance > 0) & (rows["asset_end_date"].isna() | (rows["asset_end_date"] > day))
            & rows["rollover_months"].notna()
        )  # fmt: skip
        cap = to_micro(rows["rollover_cap"].fillna(0)).astype("int64")
        moved = np.where(rows["rollover"].eq("capped"), np.minimum(balance, cap), balance)
        moved = pd.Series(np.where(can_roll, moved, 0), index=rows.index)
        children = self._rollover_children(rows[moved > 0], moved[moved > 0], day)
        rolled = rows[moved > 0]
        before, out = balance[rolled.index], moved[rolled.index]
        self._log(rolled, day, "rollover_out", out, before, before - out,
                  related=children["bucket_id"].to_numpy())  # fmt: skip
        rest = balance - moved
        expiring = rows[rest > 0]
        self._log(expiring, day, "expired", rest[expiring.index], rest[expiring.index], 0)
        st.loc[rows.index, "rolled_over"] += moved
        st.loc[rows.index, "expired"] += rest
        st.loc[rows.index, "balance"] = 0
        st.loc[rows.index, "is_open"] = False
        st.loc[rows.index, "is_closed"] = True
        if len(children):
            granted = children["granted_micro"]
            self._log(children, day, "credit", granted, 0, granted,
                      related=rolled["bucket_id"].to_numpy())  # fmt: skip
            self.state = _ranked(pd.concat([st, children], ignore_index=True))

    def _rollover_children(
        self, parents: pd.DataFrame, moved: pd.Series, day: pd.Timestamp
    ) -> pd.DataFrame:
        children = parents.copy()
        children["bucket_id"] = parents["bucket_id"] + ":rollover"
        children["origin"] = "rollover"
        children["parent_bucket_id"] = parents["bucket_id"]
        children["rollover_generation"] = parents["rollover_generation"] + 1
        children["valid_from"] = day
        ends = add_months(pd.Series(day, index=parents.index), parents["rollover_months"])
        cut = parents["asset_end_date"].notna() & (parents["asset_end_date"] < ends)
        children["valid_to"] = ends.where(~cut, parents["asset_end_date"])
        children["granted_micro"] = moved.astype("int64")
        children["granted"] = from_micro(children["granted_micro"])
        children["balance"] = children["granted_micro"]
        children["is_open"], children["is_carried"], children["is_closed"] = True, False, False
        children["open_on"] = day
        for flow in FLOWS:
            children[flow] = 0
        children["credited"] = children["granted_micro"]
        return children

    def draw(self, day_summaries: pd.DataFrame) -> None:
        """Draw the day's summaries rank by rank; the live buckets are matched once per day and
        only their balances change between ranks."""
        m = self._candidates(day_summaries)
        if m is None:
            return
        st = self.state
        balance, pos = st["balance"].to_numpy(copy=True), m["pos"].to_numpy()
        need, ranks = m["need"].to_numpy(), m["rank"].to_numpy()
        summary = m["seq"].to_numpy()
        take, opening = np.zeros(len(m), "int64"), np.zeros(len(m), "int64")
        edges = np.flatnonzero(np.diff(ranks)) + 1
        # Within one rank a bucket serves at most one summary: buckets belong to one account and
        # resource, and a rank holds one summary per account and drawdown resource.
        for a, b in zip(np.r_[0, edges], np.r_[edges, len(m)], strict=True):
            opening[a:b] = balance[pos[a:b]]
            take[a:b] = _greedy(need[a:b], opening[a:b], summary[a:b])
            balance[pos[a:b]] -= take[a:b]
        drawn = take > 0
        np.add.at(self.debited, summary[drawn], take[drawn])
        m = m[drawn]
        self._log(m, m["window_date"].to_numpy(), "debit", take[drawn], opening[drawn],
                  opening[drawn] - take[drawn], summary_id=self.summary_ids[summary[drawn]])  # fmt: skip
        st["debited"] += st["balance"].to_numpy() - balance
        st["balance"] = balance

    def _candidates(self, day_summaries: pd.DataFrame) -> pd.DataFrame | None:
        """Every (summary, eligible open bucket) pair of the day, in draw order: by rank, then
        per summary by priority, the drawdown order, rollover before fresh, bucket id."""
        st = self.state
        live = st[st["is_open"] & (st["balance"] > 0)]
        wanted = day_summaries[day_summaries["need"] > 0]
        if not len(live) or not len(wanted):
            return None
        candidates = live.reset_index(names="pos").rename(
            columns={"usage_resource_id": "drawdown_resource_id", "asset_code": "bucket_asset"}
        )
        m = wanted.merge(
            candidates[["pos", "pool", "bucket_id", "account_id", "bucket_seq", "binding",
                        "bucket_asset", "priority", "valid_from", "valid_to",
                        "rollover_generation"]],
            on="pool",
        )  # fmt: skip
        m = m[m["binding"].eq("account") | m["bucket_asset"].eq(m["asset_code"])]
        if not len(m):
            return None
        starts, ends = _day_number(m["valid_from"]), _day_number(m["valid_to"])
        m["order_key"] = np.select(
            [m["bucket_order"].eq("expiring_first"), m["bucket_order"].eq("granted_first")],
            [ends, starts],
            -starts,
        )
        m["fresh"] = m["rollover_generation"].eq(0)
        keys = ["rank", "seq", "priority", "order_key", "fresh", "bucket_seq"]
        return m.sort_values(keys, ignore_index=True)

    def next_change(self, day: pd.Timestamp, end: pd.Timestamp) -> pd.Timestamp:
        """The first day after `day` on which a bucket opens or ends, else `end`."""
        st = self.state
        waiting = st["open_on"].where(~st["is_open"] & ~st["is_closed"])
        ending = st["valid_to"].where(st["is_open"])
        following = pd.concat([waiting, ending])
        return min(following[following > day].min(), end) if (following > day).any() else end

    def ledger(self, period: pd.Timestamp) -> pd.DataFrame:
        entries = [e for e in self.entries if len(e)]
        if not entries:
            return pd.DataFrame(columns=LEDGER_COLUMNS)
        led = pd.concat(entries, ignore_index=True)
        led["sequence"] = np.arange(1, len(led) + 1)
        led["entry_id"] = f"{period:%Y-%m}-" + pd.Series(led["sequence"]).astype(str).str.zfill(8)
        for column in ["quantity", "opening_balance", "closing_balance"]:
            led[column] = from_micro(led[column].astype("int64"))
        led["entry_date"] = pd.to_datetime(led["entry_date"]).astype("datetime64[s]")
        return led[LEDGER_COLUMNS]

    def balances(self, end: pd.Timestamp) -> pd.DataFrame:
        st = self.state
        out = pd.DataFrame({"bucket_id": st["bucket_id"], "account_id": st["account_id"]})
        for flow in FLOWS:
            out[flow] = from_micro(st[flow].astype("int64"))
        out["closing"] = from_micro(st["balance"].astype("int64"))
        out["is_open"] = st["is_open"].astype(bool)
        return out.sort_values("bucket_id", ignore_index=True)

    def rollover_buckets(self) -> pd.DataFrame:
        rows = self.state[self.state["origin"].eq("rollover")]
        return _typed(rows[BUCKET_COLUMNS]).sort_values("bucket_id", ignore_index=True)
