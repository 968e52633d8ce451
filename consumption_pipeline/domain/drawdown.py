"""Stage 4 of docs/rules.md: draw the period's usage down against the entitlement buckets.

Day by day: open the buckets starting that day, close those ending that day (expiry or
rollover), then draw the day's summaries. Within a day the work is vectorized across accounts:
summaries competing for the same buckets (same account and drawdown resource) are taken one
rank at a time, in the order docs/rules.md gives. Within a day the ledger reads: credits of opening
buckets, then per closing bucket its rollover_out and expiry, then the rollover buckets' credits,
then the debits. Empty moves (a zero balance closing, a zero need) write no entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from consumption_pipeline.domain.buckets import BUCKET_COLUMNS, cut_by_contract
from consumption_pipeline.domain.calendar import add_months, period_bounds
from consumption_pipeline.domain.catalog import Catalog, among, lookup
from consumption_pipeline.domain.quantities import from_micro, to_micro
from consumption_pipeline.domain.rating import lowest_commitment_rates

NEVER = np.iinfo("int64").max
LEDGER_COLUMNS = [
    "entry_id", "bucket_id", "account_id", "entry_date", "sequence", "entry_type", "quantity",
    "opening_balance", "closing_balance", "summary_id", "related_bucket_id",
]  # fmt: skip
FLOWS = ["opening", "credited", "debited", "expired", "rolled_over"]
# Bucket columns that only describe a bucket: kept aside during the walk (a narrower state is
# cheaper to grow every day) and given back to rollover buckets from the bucket they descend from.
DESCRIPTIVE = ["grant_type", "commitment_rate", "change_id", "credit_id", "reason"]
EXPIRING_FIRST, GRANTED_FIRST, GRANTED_LAST = 0, 1, 2  # bucket orders (docs/rules.md) as codes


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
    the end of the previous period with their `closing` balance (empty with no history); they
    end by their asset's end as the contract now stands."""
    start, end = period_bounds(period)
    carried = cut_by_contract(carried, catalog)
    state, described = _initial_state(buckets, carried, start)
    drawing, state, order = _in_draw_order(rated, state, catalog)
    book = _Book(state, start, rated["summary_id"].array.take(order))
    by_day = dict(list(drawing.groupby("window_date")))
    # Only days on which something happens are visited: a bucket opens or ends, or usage is drawn.
    day = start
    while day < end:
        book.open_buckets(day)
        book.close_buckets(day)
        if day in by_day:
            book.draw(by_day[day], day)
        day = min([book.next_change(day, end), *(d for d in by_day if d > day)])
    seq = np.empty(len(order), "int64")
    seq[order] = np.arange(len(order))
    debited_micro = book.debited[seq]
    overage_micro = to_micro(rated["drawdown_quantity"]).to_numpy() - debited_micro
    usage = rated.assign(  # the rated columns are shared, not copied
        debited=from_micro(debited_micro), overage=from_micro(pd.Series(overage_micro)).to_numpy()
    )
    usage = _commitment_rates(usage, book.state, described, drawing, seq, overage_micro > 0,
                              catalog)  # fmt: skip
    return Drawdown(
        usage, book.ledger(period), book.balances(end), book.rollover_buckets(described)
    )


def _described(state: pd.DataFrame, described: pd.DataFrame) -> pd.DataFrame:
    """The DESCRIPTIVE columns of each bucket of `state`; a rollover bucket made in this period
    has those of the bucket it descends from (its `root` row)."""
    return described.iloc[state["root"].to_numpy()].set_axis(state.index)


def _commitment_rates(
    usage: pd.DataFrame, state: pd.DataFrame, described: pd.DataFrame, drawing: pd.DataFrame,
    seq: np.ndarray, owing: np.ndarray, catalog: Catalog,
) -> pd.DataFrame:  # fmt: skip
    """`commitment_bucket_id`: for each summary with overage, the first commitment bucket (in
    its draw order) that was eligible on its date, open whatever its balance; and the rate its
    grant's policy chooses. A bucket is open on a day from `open_on` until its `valid_to`."""
    at, pos = _first_commitments(state, drawing, seq, np.flatnonzero(owing))
    committed = np.full(len(usage), -1)  # per summary: the state row of its commitment bucket
    committed[at] = pos
    usage = _with_commitments(usage, state, committed)
    chosen, back = np.unique(pos, return_inverse=True)  # few buckets decide many summaries
    lowest = _described(state.iloc[chosen], described)["commitment_rate"].eq("lowest").to_numpy()
    lowest = lowest[back]
    if not lowest.any():
        return usage
    asset = pd.Series(state["asset_id"].to_numpy()[pos][lowest], index=usage.index[at[lowest]])
    return lowest_commitment_rates(usage, asset, catalog)


def _first_commitments(
    state: pd.DataFrame, drawing: pd.DataFrame, seq: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The summaries among `rows` (rated rows) with a commitment bucket eligible on their date,
    and the first such bucket (state row) of each in its draw order."""
    commits = np.flatnonzero(state["is_commit"].to_numpy(bool))
    commit_pools, pools = state["pool"].to_numpy()[commits], drawing["pool"].to_numpy()
    # Most summaries share no pool with a commitment bucket: left out before any join.
    committing = np.zeros(max(pools.max(initial=0), commit_pools.max(initial=0)) + 1, bool)
    committing[commit_pools] = True
    at = seq[rows]
    meets = committing[pools[at]]
    rows, at = rows[meets], at[meets]
    pair, k = _pool_pairs(np.arange(len(commits)), commit_pools, pools[at])
    day = drawing["window_date"].to_numpy()[at].astype("datetime64[D]").astype("int64")[pair]
    opens, ends = _day_number(state["open_on"].iloc[commits]), state["to_day"].to_numpy()[commits]
    anywhere = state["binding"].iloc[commits].eq("account").to_numpy()
    asset = drawing["asset_code"].to_numpy()[at][pair]
    eligible = (
        (opens[k] <= day)
        & (day < ends[k])
        & (anywhere[k] | (state["asset_code"].to_numpy()[commits][k] == asset))
    )
    pair, pos = pair[eligible], commits[k[eligible]]
    bucket_order = drawing["bucket_order"].to_numpy()[at][pair]
    at = rows[pair]
    order = np.lexsort((*_bucket_keys(state, pos, bucket_order), at))
    at, pos = at[order], pos[order]
    first = np.diff(at, prepend=-1) != 0
    return at[first], pos[first]


def _pool_pairs(
    buckets: np.ndarray, bucket_pools: np.ndarray, wanted_pools: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every (wanted row, bucket) pair of the same pool, found by bisection on the sorted pools:
    the positions among `wanted_pools`, and the buckets (state rows) they meet."""
    by_pool = np.argsort(bucket_pools, kind="stable")
    buckets, pools = buckets[by_pool], bucket_pools[by_pool]
    first = np.searchsorted(pools, wanted_pools, "left")
    count = np.searchsorted(pools, wanted_pools, "right") - first
    row = np.repeat(np.arange(len(wanted_pools)), count)
    offset = np.arange(len(row)) - np.repeat(count.cumsum() - count, count)
    return row, buckets[np.repeat(first, count) + offset]


def _with_commitments(usage: pd.DataFrame, state: pd.DataFrame, committed: np.ndarray):
    """`commitment_bucket_id` from each summary's state row (-1: none), taken in Arrow."""
    ids = pa.array(state["bucket_id"].to_numpy(object), pa.large_string())
    taken = ids.take(pa.array(committed, mask=committed < 0))
    return usage.assign(commitment_bucket_id=pd.Series(taken, index=usage.index, dtype="str"))


def _initial_state(
    buckets: pd.DataFrame, carried: pd.DataFrame, start: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The walk's bucket state, and the DESCRIPTIVE columns of its buckets (row by row: a state
    row's `root` is its row there)."""
    carried = carried.reindex(columns=[*BUCKET_COLUMNS, "closing"]).assign(is_carried=True)
    fresh = buckets[~among(buckets["bucket_id"], carried["bucket_id"])].assign(is_carried=False)
    both = pd.concat([carried, fresh], ignore_index=True)
    described = both[DESCRIPTIVE]
    state = _typed(both.drop(columns=DESCRIPTIVE))
    # Buckets of a warehouse written before commitments existed: plain grants.
    state["is_commit"] = described["grant_type"].eq("commit").to_numpy()
    state["is_carried"] = state["is_carried"].astype(bool)
    # With no history a bucket ending on day 1 is left alone: no rollover is reconstructed.
    kept = state["is_carried"] | state["valid_to"].isna() | (state["valid_to"] > start)
    state, described = state[kept].reset_index(drop=True), described[kept].reset_index(drop=True)
    state["root"] = np.arange(len(state))  # the row of `described` (rollover buckets: inherited)
    # Day numbers of the validity, compared every day by the draw order.
    state["from_day"], state["to_day"] = (
        _day_number(state["valid_from"]),
        _day_number(state["valid_to"]),
    )
    state["balance"] = to_micro(state["closing"].fillna(0)).astype("int64")
    state["granted_micro"] = to_micro(state["granted"]).astype("int64")
    state["is_open"], state["is_closed"] = state["is_carried"], False
    state["open_on"] = state["valid_from"].where(state["valid_from"] > start, start)
    for flow in FLOWS:
        state[flow] = 0
    state["opening"] = state["balance"]
    state["asset_key"] = state["asset_id"].fillna("")
    return state.drop(columns=["closing"]), described


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


def _in_draw_order(
    rated: pd.DataFrame, state: pd.DataFrame, catalog: Catalog
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """The summaries as numbers in docs/rules.md's draw order (`seq`), each with its bucket order and
    rank among the summaries competing for the same buckets; the bucket state with the same
    numbers; and the rated rows' positions in draw order.

    A summary draws from the buckets of its pool (its account and drawdown resource), of its
    asset or account-bound: ids become integer codes once (sorted, so codes order as the ids
    do), as sorting, joining and comparing texts every day would cost seconds."""
    asset_key = rated["asset_id"].fillna("")
    account, state_account = _codes(rated["account_id"], state["account_id"])
    resource, state_resource = _codes(rated["drawdown_resource_id"], state["usage_resource_id"])
    asset, state_asset = _codes(asset_key, state["asset_key"])
    usage_resource = pd.factorize(rated["usage_resource_id"], sort=True)[0]
    day = rated["window_date"].to_numpy().astype("datetime64[D]")
    monthly = rated["aggregation_period"].eq("monthly").to_numpy()
    no_asset = asset_key.eq("").to_numpy()
    order = np.lexsort((account, usage_resource, asset, no_asset, monthly, day))
    resources = max(resource.max(initial=0), state_resource.max(initial=0)) + 1
    pool = pd.factorize(
        np.r_[account, state_account] * resources + np.r_[resource, state_resource]
    )[0]
    pool, state_pool = pool[: len(rated)], pool[len(rated) :]
    by_asset = catalog.assets.set_index("asset_id")["drawdown_order"]
    by_account = catalog.accounts.set_index("account_id")["drawdown_order"]
    named = lookup(rated["asset_id"], by_asset).fillna(lookup(rated["account_id"], by_account))
    bucket_order = np.select([named.eq("expiring_first"), named.eq("granted_first")],
                             [EXPIRING_FIRST, GRANTED_FIRST], GRANTED_LAST)  # fmt: skip
    drawing = pd.DataFrame({
        "seq": np.arange(len(order)), "pool": pool[order], "asset_code": asset[order],
        "need": to_micro(rated["drawdown_quantity"]).astype("int64").to_numpy()[order],
        "bucket_order": bucket_order[order], "window_date": day[order],
    })  # fmt: skip
    drawing["rank"] = drawing.groupby(["window_date", "pool"]).cumcount().to_numpy()
    return drawing, state.assign(pool=state_pool, asset_code=state_asset), order


def _codes(values: pd.Series, others: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes of `values` in the sorted order of their distinct ids, and of `others` in the same
    numbering (ids only among `others` numbered after them)."""
    codes, distinct = pd.factorize(values, sort=True)
    known = pd.Index(distinct).get_indexer(others)
    unseen = known < 0
    known[unseen] = len(distinct) + pd.factorize(others[unseen])[0]
    return codes, known


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


def _bucket_keys(st: pd.DataFrame, pos: np.ndarray, bucket_order: np.ndarray) -> tuple:
    """The lexsort keys (last = first) of the bucket order for a summary: priority, commitment
    buckets first, its drawdown order, rollover before fresh, bucket id."""
    starts, ends = st["from_day"].to_numpy()[pos], st["to_day"].to_numpy()[pos]
    order_key = np.select([bucket_order == EXPIRING_FIRST, bucket_order == GRANTED_FIRST],
                          [ends, starts], -starts)  # fmt: skip
    fresh = st["rollover_generation"].to_numpy()[pos] == 0
    # Priority, then commitment buckets first, as one key.
    priority = st["priority"].to_numpy()[pos] * 2 + ~st["is_commit"].to_numpy(bool)[pos]
    return st["bucket_seq"].to_numpy()[pos], fresh, order_key, priority


def _ranked(state: pd.DataFrame) -> pd.DataFrame:
    """The buckets with their place in bucket id order (the last tie-break of the draw order),
    ranked once rather than on every day."""
    return state.assign(bucket_seq=state["bucket_id"].rank(method="first"))


class _Book:
    """The bucket state of one period and the ledger entries written while walking it. Entries
    name buckets by their row in the state (rows are only ever appended) and summaries by their
    place in the draw order: the ids are looked up once, when the ledger is made."""

    def __init__(
        self,
        state: pd.DataFrame,
        start: pd.Timestamp,
        summary_ids: pd.api.extensions.ExtensionArray,
    ):
        self.state, self.start = _ranked(state.reset_index(drop=True)), start
        self.entries: list[pd.DataFrame] = []
        self.summary_ids = summary_ids  # by draw order
        self.debited = np.zeros(len(summary_ids), "int64")  # micro-units per summary

    def _log(self, rows, day, entry_type: str, quantity, opening, closing, summary=-1,
             related=-1) -> None:  # fmt: skip
        self.entries.append(pd.DataFrame({
            "bucket": np.asarray(rows), "entry_date": day, "entry_type": entry_type,
            "quantity": np.asarray(quantity), "opening_balance": np.asarray(opening),
            "closing_balance": np.asarray(closing), "summary": summary, "related": related,
        }))  # fmt: skip

    def open_buckets(self, day: pd.Timestamp) -> None:
        st = self.state
        opening = ~st["is_open"] & ~st["is_carried"] & ~st["is_closed"] & st["open_on"].eq(day)
        idx = st.index[opening]
        if not len(idx):
            return
        rows = st.loc[idx].sort_values("bucket_id")
        self._log(rows.index, day, "credit", rows["granted_micro"], 0, rows["granted_micro"])
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
        child_rows = len(st) + np.arange(len(children))  # their rows once appended
        before, out = balance[rolled.index], moved[rolled.index]
        self._log(rolled.index, day, "rollover_out", out, before, before - out, related=child_rows)
        rest = balance - moved
        expiring = rows[rest > 0]
        self._log(expiring.index, day, "expired", rest[expiring.index], rest[expiring.index], 0)
        st.loc[rows.index, "rolled_over"] += moved
        st.loc[rows.index, "expired"] += rest
        st.loc[rows.index, "balance"] = 0
        st.loc[rows.index, "is_open"] = False
        st.loc[rows.index, "is_closed"] = True
        if len(children):
            granted = children["granted_micro"]
            self._log(child_rows, day, "credit", granted, 0, granted, related=rolled.index)
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
        day_of = pd.Series(day, index=parents.index)
        ends = add_months(pd.Series(day, index=parents.index), parents["rollover_months"])
        cut = parents["asset_end_date"].notna() & (parents["asset_end_date"] < ends)
        children["valid_to"] = ends.where(~cut, parents["asset_end_date"])
        children["from_day"], children["to_day"] = (
            _day_number(day_of),
            _day_number(children["valid_to"]),
        )
        children["granted_micro"] = moved.astype("int64")
        children["granted"] = from_micro(children["granted_micro"])
        children["balance"] = children["granted_micro"]
        children["is_open"], children["is_carried"], children["is_closed"] = True, False, False
        children["open_on"] = day
        for flow in FLOWS:
            children[flow] = 0
        children["credited"] = children["granted_micro"]
        return children

    def draw(self, day_summaries: pd.DataFrame, day: pd.Timestamp) -> None:
        """Draw the day's summaries rank by rank; the live buckets are matched once per day and
        only their balances change between ranks."""
        m = self._candidates(day_summaries)
        if m is None:
            return
        st = self.state
        balance, pos = st["balance"].to_numpy(copy=True), m["pos"]
        need, ranks, summary = m["need"], m["rank"], m["seq"]
        take, opening = np.zeros(len(pos), "int64"), np.zeros(len(pos), "int64")
        edges = np.flatnonzero(np.diff(ranks)) + 1
        # Within one rank a bucket serves at most one summary: buckets belong to one account and
        # resource, and a rank holds one summary per account and drawdown resource.
        for a, b in zip(np.r_[0, edges], np.r_[edges, len(pos)], strict=True):
            opening[a:b] = balance[pos[a:b]]
            take[a:b] = _greedy(need[a:b], opening[a:b], summary[a:b])
            balance[pos[a:b]] -= take[a:b]
        drawn = take > 0
        np.add.at(self.debited, summary[drawn], take[drawn])
        self._log(pos[drawn], day, "debit", take[drawn], opening[drawn],
                  opening[drawn] - take[drawn], summary=summary[drawn])  # fmt: skip
        st["debited"] += st["balance"].to_numpy() - balance
        st["balance"] = balance

    def _candidates(self, day_summaries: pd.DataFrame) -> dict[str, np.ndarray] | None:
        """Every (summary, eligible open bucket) pair of the day, in draw order: by rank, then
        per summary by priority, commitment buckets first, the drawdown order, rollover before
        fresh, bucket id."""
        st = self.state
        wanted = day_summaries[day_summaries["need"].to_numpy() > 0]
        live = np.flatnonzero(st["is_open"].to_numpy(bool) & (st["balance"].to_numpy() > 0))
        if not len(live) or not len(wanted):
            return None
        row, pos = _pool_pairs(live, st["pool"].to_numpy()[live], wanted["pool"].to_numpy())
        eligible = st["binding"].eq("account").to_numpy()[pos] | (
            st["asset_code"].to_numpy()[pos] == wanted["asset_code"].to_numpy()[row]
        )
        row, pos = row[eligible], pos[eligible]
        if not len(row):
            return None
        rank, seq = wanted["rank"].to_numpy()[row], wanted["seq"].to_numpy()[row]
        order = np.lexsort((*_bucket_keys(st, pos, wanted["bucket_order"].to_numpy()[row]), seq,
                            rank))  # fmt: skip
        return {"pos": pos[order], "need": wanted["need"].to_numpy()[row][order],
                "rank": rank[order], "seq": seq[order]}  # fmt: skip

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
        bucket_ids = self.state["bucket_id"].array
        # Taken from text arrays typed once per bucket: a million ids taken as objects would be
        # typed as text one by one when set.
        for column in ["bucket_id", "account_id"]:
            led[column] = self.state[column].astype("str").array.take(led["bucket"].to_numpy())
        led["summary_id"] = self.summary_ids.take(led["summary"].to_numpy(), allow_fill=True)
        led["related_bucket_id"] = bucket_ids.take(led["related"].to_numpy(), allow_fill=True)
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

    def rollover_buckets(self, described: pd.DataFrame) -> pd.DataFrame:
        rows = self.state[self.state["origin"].eq("rollover")]
        rows = _typed(pd.concat([rows, _described(rows, described)], axis=1)[BUCKET_COLUMNS])
        return rows.sort_values("bucket_id", ignore_index=True)
