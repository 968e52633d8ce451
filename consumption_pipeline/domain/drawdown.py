"""Stage 4 of DOMAIN.md: draw the period's usage down against the entitlement buckets.

Day by day: open the buckets starting that day, close those ending that day (expiry or
rollover), then draw the day's summaries. Within a day the work is vectorized across accounts:
summaries competing for the same buckets (same account and drawdown resource) are taken one
rank at a time, in the order DOMAIN.md gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from consumption_pipeline.domain.buckets import BUCKET_COLUMNS
from consumption_pipeline.domain.calendar import add_months, period_bounds
from consumption_pipeline.domain.catalog import Catalog
from consumption_pipeline.domain.quantities import from_micro, to_micro

NEVER = np.iinfo("int64").max
LEDGER_COLUMNS = ["entry_id", "bucket_id", "account_id", "entry_date", "sequence", "entry_type",
                  "quantity", "opening_balance", "closing_balance", "summary_id", "related_bucket_id"]  # fmt: skip
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
    book = _Book(_initial_state(buckets, carried, start), start)
    summaries = _with_draw_order(rated, catalog)
    for day in pd.date_range(start, end - pd.Timedelta(days=1), freq="D"):
        book.open_buckets(day)
        book.close_buckets(day)
        book.draw(summaries[summaries["window_date"].eq(day)])
    usage = rated.copy()
    debited = pd.Series(book.debited_by_summary, dtype="int64")
    debited_micro = usage["summary_id"].map(debited).fillna(0).astype("int64")
    usage["debited"] = from_micro(debited_micro)
    usage["overage"] = from_micro(to_micro(usage["drawdown_quantity"]) - debited_micro)
    return Drawdown(usage, book.ledger(period), book.balances(end), book.rollover_buckets())


def _initial_state(
    buckets: pd.DataFrame, carried: pd.DataFrame, start: pd.Timestamp
) -> pd.DataFrame:
    carried = carried.reindex(columns=BUCKET_COLUMNS + ["closing"])
    fresh = buckets[~buckets["bucket_id"].isin(carried["bucket_id"])]
    # With no history a bucket ending on day 1 is left alone: no rollover is reconstructed.
    fresh = fresh[fresh["valid_to"].isna() | (fresh["valid_to"] > start)]
    state = pd.concat(
        [carried.assign(is_carried=True), fresh.assign(is_carried=False)], ignore_index=True
    )
    state["balance"] = to_micro(state["closing"].fillna(0)).astype("int64")
    state["granted_micro"] = to_micro(state["granted"]).astype("int64")
    state["is_open"], state["is_closed"] = state["is_carried"], False
    state["open_on"] = state["valid_from"].where(state["valid_from"] > start, start)
    for flow in FLOWS:
        state[flow] = 0
    state["opening"] = state["balance"]
    state["asset_key"] = state["asset_id"].fillna("")
    return state.drop(columns=["closing"])


def _with_draw_order(rated: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Summaries in DOMAIN.md's draw order, each with its bucket order and rank among the
    summaries competing for the same buckets."""
    s = rated[["summary_id", "account_id", "asset_id", "drawdown_resource_id", "aggregation_period",
               "usage_resource_id", "window_date"]].copy()  # fmt: skip
    s["need"] = to_micro(rated["drawdown_quantity"]).astype("int64")
    s["asset_key"] = s["asset_id"].fillna("")
    by_asset = catalog.assets.set_index("asset_id")["drawdown_order"]
    by_account = catalog.accounts.set_index("account_id")["drawdown_order"]
    s["bucket_order"] = s["asset_id"].map(by_asset).fillna(s["account_id"].map(by_account))
    s["monthly"] = s["aggregation_period"].eq("monthly")
    s["no_asset"] = s["asset_key"].eq("")
    s = s.sort_values(
        ["window_date", "monthly", "no_asset", "asset_key", "usage_resource_id", "account_id"]
    )
    s["rank"] = s.groupby(["window_date", "account_id", "drawdown_resource_id"]).cumcount()
    return s


def _day_number(dates: pd.Series) -> np.ndarray:
    days = dates.astype("datetime64[s]").to_numpy().astype("datetime64[D]").astype("int64")
    return np.where(dates.isna().to_numpy(), NEVER, days)


class _Book:
    """The bucket state of one period and the ledger entries written while walking it."""

    def __init__(self, state: pd.DataFrame, start: pd.Timestamp):
        self.state, self.start = state.reset_index(drop=True), start
        self.entries: list[pd.DataFrame] = []
        self.debited_by_summary: dict[str, int] = {}

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
        closing = st["is_open"] & st["valid_to"].eq(day)
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
        self._log(rolled, day, "rollover_out", moved[rolled.index], balance[rolled.index],
                  balance[rolled.index] - moved[rolled.index], related=children["bucket_id"].to_numpy())  # fmt: skip
        rest = balance - moved
        expiring = rows[rest > 0]
        self._log(expiring, day, "expired", rest[expiring.index], rest[expiring.index], 0)
        st.loc[rows.index, "rolled_over"] += moved
        st.loc[rows.index, "expired"] += rest
        st.loc[rows.index, "balance"] = 0
        st.loc[rows.index, "is_open"] = False
        st.loc[rows.index, "is_closed"] = True
        if len(children):
            self._log(children, day, "credit", children["granted_micro"], 0, children["granted_micro"],
                      related=rolled["bucket_id"].to_numpy())  # fmt: skip
            self.state = pd.concat([st, children], ignore_index=True)

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
        for _, batch in day_summaries.groupby("rank", sort=True):
            self._draw_batch(batch)

    def _draw_batch(self, batch: pd.DataFrame) -> None:
        st = self.state
        live = st[st["is_open"] & (st["balance"] > 0)]
        if not len(live) or not (batch["need"] > 0).any():
            return
        candidates = live.reset_index(names="pos").rename(
            columns={"usage_resource_id": "drawdown_resource_id", "asset_key": "bucket_asset_key"}
        )
        m = batch[batch["need"] > 0].merge(
            candidates[["pos", "bucket_id", "account_id", "drawdown_resource_id", "binding",
                        "bucket_asset_key", "priority", "valid_from", "valid_to",
                        "rollover_generation", "balance"]],
            on=["account_id", "drawdown_resource_id"],
        )  # fmt: skip
        m = m[m["binding"].eq("account") | m["bucket_asset_key"].eq(m["asset_key"])]
        if not len(m):
            return
        starts, ends = _day_number(m["valid_from"]), _day_number(m["valid_to"])
        m["order_key"] = np.select(
            [m["bucket_order"].eq("expiring_first"), m["bucket_order"].eq("granted_first")],
            [ends, starts],
            -starts,
        )
        m["fresh"] = m["rollover_generation"].eq(0)
        m = m.sort_values(["summary_id", "priority", "order_key", "fresh", "bucket_id"])
        before = m.groupby("summary_id")["balance"].cumsum() - m["balance"]
        take = np.clip(m["need"] - before, 0, m["balance"])
        m, take = m[take > 0], take[take > 0]
        self._log(m, m["window_date"].to_numpy(), "debit", take, m["balance"], m["balance"] - take,
                  summary_id=m["summary_id"].to_numpy())  # fmt: skip
        st.loc[m["pos"].to_numpy(), "balance"] -= take.to_numpy()
        st.loc[m["pos"].to_numpy(), "debited"] += take.to_numpy()
        for summary_id, amount in take.groupby(m["summary_id"]).sum().items():
            self.debited_by_summary[summary_id] = self.debited_by_summary.get(summary_id, 0) + int(
                amount
            )

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
        return rows[BUCKET_COLUMNS].sort_values("bucket_id", ignore_index=True)
