"""Stage 3 of docs/rules.md: usage summaries per window, token conversion, and the rate to price
their overage.

A summary is one (account, asset or none, resource, window). Daily windows are usage dates;
a monthly window covers the period and is dated on its last day, the date of its token rate,
its price and its drawdown. Where docs/rules.md is silent: when several rows of one level are in
effect on a date, the one with the latest `effective_from` wins.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from consumption_pipeline.domain.calendar import period_bounds
from consumption_pipeline.domain.catalog import Catalog, CatalogIds, distinct_codes
from consumption_pipeline.domain.quantities import (
    EXACT_SUM_UNITS,
    MAX_QUANTITY,
    MICRO,
    from_micro,
    to_micro,
)

LEVELS = ["asset", "account", "price_book"]  # the first in effect wins
RATED_FROM = [  # the columns of usage_events that rating reads
    "account_id",
    "asset_id",
    "usage_resource_id",
    "quantity",
    "usage_date",
]


class RatingError(ValueError):
    """A summary that cannot be rated (no token rate in effect): the period must not be billed."""


def rate_usage(
    usage_events: pd.DataFrame | Iterable[pd.DataFrame], catalog: Catalog, period: pd.Timestamp
) -> pd.DataFrame:
    """Aggregate accepted events (a frame, or batches of one) into rated usage summaries
    (drawdown quantity and rate chosen)."""
    ids = _Ids(catalog)
    windows = _Windows(ids, period)
    for events in [usage_events] if isinstance(usage_events, pd.DataFrame) else usage_events:
        windows.add(events)
    return _rated(windows, ids, catalog)


def window_sums(usage_events: pd.DataFrame, catalog: Catalog, period: pd.Timestamp) -> pa.Table:
    """The partial sums per window of a part of the accepted events, wherever they are worked
    out (a cluster's task): `rate_sums` combines those of every part. They carry the float sum
    of each window's units, so that the parts' sums are checked as one frame's would be."""
    windows = _Windows(_Ids(catalog), period, careful=True)
    windows.add(usage_events)
    return windows.folded()


def rate_sums(parts: Iterable[pa.Table], catalog: Catalog, period: pd.Timestamp) -> pd.DataFrame:
    """Rated usage summaries from the `window_sums` of every part of the accepted events: the
    same as `rate_usage` of the events."""
    ids = _Ids(catalog)
    windows = _Windows(ids, period, careful=True)
    for part in parts:
        windows.merge(part)
    return _rated(windows, ids, catalog)


def _rated(windows: _Windows, ids: _Ids, catalog: Catalog) -> pd.DataFrame:
    summaries = windows.summaries()
    _convert_to_tokens(summaries, ids, catalog)
    _resolve_rates(summaries, ids, catalog)
    return _finish(summaries, ids)


class _Ids(CatalogIds):
    """The catalog's ids and the resource settings rating needs, by index: summaries carry int
    codes until `_finish`."""

    def __init__(self, catalog: Catalog):
        super().__init__(catalog)
        resources = catalog.resources
        self.currencies = pd.Index(catalog.accounts["currency"].unique(), dtype="str")
        self.currency = self.currencies.get_indexer(catalog.accounts["currency"])
        self.token = self.resources.get_indexer(resources["token_resource_id"])
        self.monthly = resources["aggregation_period"].eq("monthly").to_numpy()
        self.peak = resources["aggregation_method"].eq("peak").to_numpy()
        self.period_of = resources["aggregation_period"].to_numpy(dtype=object)
        self.chargeable = resources["overage_chargeable"].to_numpy(dtype=bool)

    def codes(self, values: pd.Series, column: str, optional: bool = False) -> np.ndarray:
        """Each row's index among the catalog's ids (-1 for a missing optional id), looking each
        distinct value up once."""
        places, distinct = distinct_codes(values)
        codes = np.append(self.of_column[column].get_indexer(distinct), -1)[places]
        unknown = (codes < 0) & (places >= 0 if optional else True)
        if unknown.any():
            value = values[unknown].iloc[0]
            raise RatingError(
                f"usage_events.{column} holds {value!r}, which the catalog does not know"
            )
        return codes


class _Windows:
    """Events keyed by summary as one int64: (owner, resource, window day). The owner is the
    asset when there is one (an asset has one account), else the account; the day counts from
    the period's start. Batches are folded into partial sums as they come, so memory follows the
    summaries, not the events."""

    _DAYS = 1 << 16  # window days from the period start, biased to allow any date
    _FOLD_ROWS = 1 << 24  # events held before they are folded into the partial sums (256 MB)

    def __init__(self, ids: _Ids, period: pd.Timestamp, careful: bool = False):
        self.ids, (self.start, self.end) = ids, period_bounds(period)
        self._careful = careful  # float sums of units from the first event on
        self.start_day = _days(pd.Series([self.start]))[0]
        owners = len(ids.accounts) + len(ids.assets)
        if owners * max(len(ids.resources), 1) >= 2**63 // self._DAYS:
            raise RatingError("the catalog has too many accounts, assets and resources to key")
        self._held: list[tuple[np.ndarray, np.ndarray]] = []  # keys and micro-units
        self._partial = pa.table({c: pa.array([], pa.int64()) for c in _PARTIAL})
        self._units = 0.0  # all events' quantities: no window's sum can be larger

    def add(self, events: pd.DataFrame) -> None:
        ids = self.ids
        account = ids.codes(events["account_id"], "account_id")
        asset = ids.codes(events["asset_id"], "asset_id", optional=True)
        resource = ids.codes(events["usage_resource_id"], "usage_resource_id")
        tagged = asset >= 0
        if (ids.owner[asset[tagged]] != account[tagged]).any():
            raise RatingError("usage_events holds an event whose asset is another account's")
        owner = np.where(tagged, len(ids.accounts) + asset, account)
        day = np.where(ids.monthly[resource], 0, _days(events["usage_date"]) - self.start_day)
        key = (owner * len(ids.resources) + resource) * self._DAYS + (day + self._DAYS // 2)
        self._held.append((key, to_micro(events["quantity"]).to_numpy()))
        self._units += float(events["quantity"].sum())
        if sum(len(k) for k, _ in self._held) >= self._FOLD_ROWS:
            self._fold()

    def _fold(self) -> None:
        """Fold the held events into the partial sums (Arrow's hash aggregation: a third faster
        than pandas' on int64 keys)."""
        if not self._held:
            return
        key, micro = (np.concatenate(c) for c in zip(*self._held, strict=True))
        self._held = []
        events, sums = pa.table({"key": key, "micro": micro}), _SUMS
        # Rare: with this much usage a window's int64 sum might wrap. Float sums of what comes
        # from now on tell: every window held less than 2**62 micro-units until now, so one can
        # only pass 2**63 if what it gets from now on reaches 2**62.
        if self._careful or self._units >= EXACT_SUM_UNITS:
            events, sums = events.append_column("units", pa.array(micro / MICRO)), _CAREFUL_SUMS
        self.merge(_aggregate(events, sums))

    def merge(self, folded: pa.Table) -> None:
        """Add partial sums (of `_fold`, here or in another process) to these. Sums without the
        units' float sums count them as none (they come from before they were needed)."""
        self._partial, folded = (
            _with_units(self._partial, folded),
            _with_units(folded, self._partial),
        )
        if self._partial.num_rows:
            sums = _CAREFUL_SUMS if "units" in self._partial.column_names else _SUMS
            merged = [(name, "sum" if how == "count" else how, name) for _, how, name in sums]
            folded = _aggregate(pa.concat_tables([self._partial, folded]), merged)
        self._partial = folded

    def folded(self) -> pa.Table:
        """The partial sums of every event added."""
        self._fold()
        return self._partial

    def _owner_ranks(self) -> np.ndarray:
        """Each owner's place in the summaries' order: by account, then asset (none first)."""
        ids = self.ids
        asset = np.append(np.full(len(ids.accounts), -1), np.arange(len(ids.assets)))
        account = np.append(np.arange(len(ids.accounts)), ids.owner)
        order = np.lexsort(
            [np.append(_ranks(ids.assets), -1)[asset], _ranks(ids.accounts)[account]]
        )
        return _inverse(order)

    def summaries(self) -> pd.DataFrame:
        """One row per window, ordered by the ids' text (no asset first), then the window: its
        ids as codes, dates, event count and consumption in micro-units."""
        self._fold()
        partial = {c: self._partial[c].to_numpy() for c in self._partial.column_names}
        ids, key = self.ids, partial["key"]
        day, rest = key % self._DAYS - self._DAYS // 2, key // self._DAYS
        owner, resource = rest // len(ids.resources), rest % len(ids.resources)
        tagged = owner >= len(ids.accounts)
        asset = np.where(tagged, owner - len(ids.accounts), -1)
        account = np.where(tagged, np.append(ids.owner, -1)[asset], owner)  # -1: no asset
        # The key again, with each id replaced by its place in text order: one int64 to sort.
        ranked = self._owner_ranks()[owner] * len(ids.resources) + _ranks(ids.resources)[resource]
        order = np.argsort(ranked * self._DAYS + key % self._DAYS)
        out = {c: values[order] for c, values in partial.items()}
        resource, day = resource[order], day[order]
        window_start = np.datetime64(self.start, "D") + day
        last_day = np.datetime64(self.end, "D") - 1
        summaries = pd.DataFrame({
            "account": account[order], "asset": asset[order], "resource": resource,
            "window_start": window_start.astype("datetime64[s]"),
            "window_date": np.where(ids.monthly[resource], last_day, window_start)
            .astype("datetime64[s]"),
            "event_count": out["event_count"],
            "consumption_micro": np.where(ids.peak[resource], out["peak"], out["total"]),
        })  # fmt: skip
        units = out.get("units", np.zeros(len(key)))
        _check_sums(summaries, ~ids.peak[resource] & (units >= EXACT_SUM_UNITS), ids)
        return summaries


# Per window: (column of the events, Arrow aggregation, name in the partial sums).
_SUMS = [("micro", "sum", "total"), ("micro", "max", "peak"), ("micro", "count", "event_count")]
_CAREFUL_SUMS = [*_SUMS, ("units", "sum", "units")]
_PARTIAL = ["key", "total", "peak", "event_count"]


def _with_units(sums: pa.Table, other: pa.Table) -> pa.Table:
    """`sums` with a units column of zeros if `other` has one and it has not."""
    if "units" in sums.column_names or "units" not in other.column_names:
        return sums
    return sums.append_column("units", pa.array(np.zeros(sums.num_rows)))


def _aggregate(table: pa.Table, sums: list[tuple[str, str, str]]) -> pa.Table:
    grouped = table.group_by("key").aggregate([(column, how) for column, how, _ in sums])
    return pa.table({"key": grouped["key"],
                     **{name: grouped[f"{column}_{how}"] for column, how, name in sums}})  # fmt: skip


def _check_sums(s: pd.DataFrame, suspect: np.ndarray, ids: _Ids) -> None:
    """A summed window must stay below MAX_QUANTITY units, as one event does: one that reaches it
    stops the rating (`suspect`: its int64 sum may have wrapped)."""
    large = suspect | (s["consumption_micro"].to_numpy() >= MAX_QUANTITY * MICRO)
    if large.any():
        row = s[large].iloc[0]
        asset = ids.assets[row["asset"]] if row["asset"] >= 0 else "no asset"
        raise RatingError(
            f"usage of account '{ids.accounts[row['account']]}' ({asset}), resource "
            f"'{ids.resources[row['resource']]}', window {row['window_start']:%Y-%m-%d}: its "
            f"consumption reaches {MAX_QUANTITY:,} units, more than a window can hold exactly; "
            f"{int(large.sum())} windows affected"
        )


def _ranks(values: pd.Index) -> np.ndarray:
    """Each value's place in sorted order."""
    return _inverse(np.argsort(values.to_numpy(dtype=object), kind="stable"))


def _inverse(order: np.ndarray) -> np.ndarray:
    """The place of each position in `order`."""
    places = np.empty(len(order), np.int64)
    places[order] = np.arange(len(order))
    return places


def _days(values: pd.Series) -> np.ndarray:
    dates = values if pd.api.types.is_datetime64_dtype(values.dtype) else pd.to_datetime(values)
    return dates.to_numpy(dtype="datetime64[D]").view("int64")


def _convert_to_tokens(s: pd.DataFrame, ids: _Ids, catalog: Catalog) -> None:
    """Token-converted resources draw from their token at the token rate in effect on the
    window's date: drawdown = consumption x tokens per unit, rounded half up to 6 decimals."""
    resource, token = s["resource"].to_numpy(), ids.token[s["resource"].to_numpy()]
    s["drawdown"] = np.where(token >= 0, token, resource)
    rates = catalog.token_rates
    key = np.where(token >= 0, resource, -1)
    chosen = _in_effect(key, s["window_date"], ids.resources.get_indexer(rates["usage_resource_id"]),
                        rates)  # fmt: skip
    missing = np.flatnonzero((token >= 0) & (chosen < 0))
    if len(missing):
        row = s.iloc[missing[0]]
        raise RatingError(
            f"no token rate for usage resource '{ids.resources[row['resource']]}' in effect on "
            f"{row['window_date']:%Y-%m-%d} (token_rates.csv); {len(missing)} summaries affected"
        )
    tpu = np.append(rates["tokens_per_unit"].to_numpy(dtype="int64"), 0)[chosen]
    s["tokens_per_unit_micro"] = pd.array(np.where(chosen >= 0, tpu, 0), dtype="Int64")
    s.loc[chosen < 0, "tokens_per_unit_micro"] = pd.NA
    s["drawdown_micro"] = s["consumption_micro"]
    if (chosen >= 0).any():
        converted = chosen >= 0
        s.loc[converted, "drawdown_micro"] = _multiply_half_up(
            s.loc[converted, "consumption_micro"],
            pd.Series(tpu[converted], index=s.index[converted]),
        )


def _multiply_half_up(micro: pd.Series, factor_micro: pd.Series) -> pd.Series:
    """micro × factor (both scaled by 10^6), rounded half-up to 6 decimals, exactly."""
    if int(micro.max()) * int(factor_micro.max()) < 2**62:
        return (micro.astype("int64") * factor_micro.astype("int64") + MICRO // 2) // MICRO
    exact = [
        (int(q) * int(f) + MICRO // 2) // MICRO for q, f in zip(micro, factor_micro, strict=True)
    ]
    return pd.Series(exact, index=micro.index, dtype="int64")


_FAR = np.iinfo(np.int64).max // 4  # an open effective_to, as days


def _in_effect(
    key: np.ndarray, dates: pd.Series, row_key: np.ndarray, rows: pd.DataFrame
) -> np.ndarray:
    """For each (key, date): the position in `rows` of the row with that key in effect on the
    date (effective_from <= date < effective_to; the latest effective_from wins), else -1.
    Worked on the distinct (key, date) pairs that have rows at all: a few per resource and day."""
    chosen = np.full(len(key), -1)
    wanted = np.flatnonzero(np.isin(key, row_key[row_key >= 0]) & (key >= 0))
    if not len(wanted):
        return chosen
    day = _days(dates)[wanted]
    span = int(day.max() - day.min()) + 1
    if int(key.max()) >= 2**62 // span:
        raise RatingError("too many rate keys and dates to pair")
    pair, distinct = pd.factorize(key[wanted] * span + (day - day.min()))
    distinct = pd.DataFrame({"key": distinct // span, "day": distinct % span + day.min()})
    matched = distinct.reset_index(names="pair").merge(
        pd.DataFrame({"key": row_key, "start": _days(rows["effective_from"]),
                      "end": _days(rows["effective_to"]), "row": np.arange(len(rows))}),
        on="key",
    )  # fmt: skip
    end = np.where(rows["effective_to"].isna().to_numpy()[matched["row"]], _FAR, matched["end"])
    live = (matched["start"] <= matched["day"]) & (matched["day"] < end)
    best = matched[live].sort_values(["pair", "start"]).drop_duplicates("pair", keep="last")
    per_pair = np.full(len(distinct), -1)
    per_pair[best["pair"].to_numpy()] = best["row"].to_numpy()
    chosen[wanted] = per_pair[pair]
    return chosen


def _resolve_rates(s: pd.DataFrame, ids: _Ids, catalog: Catalog) -> None:
    """Asset-level negotiated rate, else account-level, else the price book, in the account's
    currency, in effect on the window's date."""
    account, asset = s["account"].to_numpy(), s["asset"].to_numpy()
    drawdown = s["drawdown"].to_numpy()
    currency = ids.currency[account]
    s["currency"], s["overage_chargeable"] = currency, ids.chargeable[drawdown]
    heads = catalog.rates.drop_duplicates(
        ["level", "account_id", "asset_id", "usage_resource_id", "currency", "effective_from"]
    ).reset_index(drop=True)
    head_account = ids.accounts.get_indexer(heads["account_id"])
    head_asset = ids.assets.get_indexer(heads["asset_id"])
    head_resource = ids.resources.get_indexer(heads["usage_resource_id"])
    head_currency = ids.currencies.get_indexer(heads["currency"])
    resources, currencies = len(ids.resources), len(ids.currencies)

    def keyed(owner: np.ndarray, resource: np.ndarray, currency: np.ndarray) -> np.ndarray:
        return np.where((owner >= 0) & (resource >= 0) & (currency >= 0),
                        (owner * resources + resource) * currencies + currency, -1)  # fmt: skip

    # An asset-level row binds its asset's summaries (the asset's account is the summary's).
    asset_row_owner = np.where(np.append(ids.owner, -1)[head_asset] == head_account, head_asset, -1)
    owners = {"asset": (asset, asset_row_owner), "account": (account, head_account),
              "price_book": (np.zeros_like(account), np.zeros_like(head_account))}  # fmt: skip
    found = np.full(len(s), -1)
    for level in LEVELS:
        mine = heads["level"].eq(level).to_numpy()
        summary_owner, row_owner = owners[level]
        key = np.where(found < 0, keyed(summary_owner, drawdown, currency), -1)
        row_key = np.where(mine, keyed(row_owner, head_resource, head_currency), -1)
        chosen = _in_effect(key, s["window_date"], row_key, heads)
        found = np.where(found < 0, chosen, found)
    chosen = heads[["level", "asset_id", "effective_from"]].reindex(found)  # -1: none, NA
    s["rate_source"] = chosen["level"].astype("str").array
    s["rate_asset_id"] = chosen["asset_id"].astype("str").array
    s["rate_effective_from"] = chosen["effective_from"].to_numpy()


def _finish(s: pd.DataFrame, ids: _Ids) -> pd.DataFrame:
    """The summaries with their ids as text."""

    def text(values: pd.Index, codes: np.ndarray) -> pa.Array:
        return pa.array(values.to_numpy(dtype=object), pa.large_string()).take(
            pa.array(codes, mask=codes < 0)
        )

    account = text(ids.accounts, s["account"].to_numpy())
    asset = text(ids.assets, s["asset"].to_numpy())
    resource = text(ids.resources, s["resource"].to_numpy())
    days, day = np.unique(s["window_start"].to_numpy(), return_inverse=True)
    dated = text(pd.Index(pd.DatetimeIndex(days).strftime("%Y-%m-%d")), day)
    bar, dash = pa.scalar("|", pa.large_string()), pa.scalar("-", pa.large_string())
    summary_id = pc.binary_join_element_wise(
        account, pc.fill_null(asset, dash), resource, dated, bar
    )
    return pd.DataFrame({
        "summary_id": pd.Series(summary_id, dtype="str"),
        "account_id": pd.Series(account, dtype="str"), "asset_id": pd.Series(asset, dtype="str"),
        "usage_resource_id": pd.Series(resource, dtype="str"),
        "aggregation_period": pd.Series(ids.period_of[s["resource"].to_numpy()], dtype="str"),
        "window_start": s["window_start"].to_numpy(), "window_date": s["window_date"].to_numpy(),
        "event_count": s["event_count"].to_numpy(dtype="int64"),
        "consumption": from_micro(s["consumption_micro"]).to_numpy(),
        "drawdown_resource_id": pd.Series(text(ids.resources, s["drawdown"].to_numpy()),
                                          dtype="str"),
        "tokens_per_unit": from_micro(s["tokens_per_unit_micro"]).to_numpy(),
        "drawdown_quantity": from_micro(s["drawdown_micro"]).to_numpy(),
        "currency": pd.Series(text(ids.currencies, s["currency"].to_numpy()), dtype="str"),
        "rate_source": s["rate_source"], "rate_asset_id": s["rate_asset_id"],
        "rate_effective_from": s["rate_effective_from"].to_numpy(),
        "overage_chargeable": s["overage_chargeable"].to_numpy(dtype=bool),
    })  # fmt: skip


def lowest_commitment_rates(
    usage: pd.DataFrame, commitment_asset: pd.Series, catalog: Catalog
) -> pd.DataFrame:
    """Summaries whose deciding commitment has the `lowest` rate policy (`commitment_asset`: the
    commitment's asset, by summary index) are priced at that asset's own negotiated rate in
    effect on the window's date, at level `commitment`; without such a rate, as resolved
    before."""
    wanted = usage.loc[commitment_asset.index, ["drawdown_resource_id", "currency", "window_date"]]
    rates = catalog.rates[catalog.rates["level"].eq("asset")].drop_duplicates(
        ["asset_id", "usage_resource_id", "currency", "effective_from"]
    )
    pairs = wanted.assign(asset_id=commitment_asset[wanted.index]).reset_index(names="row").merge(
        rates[["asset_id", "usage_resource_id", "currency", "effective_from", "effective_to"]],
        left_on=["asset_id", "drawdown_resource_id", "currency"],
        right_on=["asset_id", "usage_resource_id", "currency"],
    )  # fmt: skip
    date = pd.to_datetime(pairs["window_date"])
    live = (pairs["effective_from"] <= date) & (
        pairs["effective_to"].isna() | (date < pairs["effective_to"])
    )
    best = pairs[live].sort_values(["row", "effective_from"]).drop_duplicates("row", keep="last")
    if best.empty:
        return usage
    rows = usage.index.get_indexer(best["row"])
    columns = {c: usage[c].copy() for c in ("rate_source", "rate_asset_id", "rate_effective_from")}
    columns["rate_source"].iloc[rows] = "commitment"
    columns["rate_asset_id"].iloc[rows] = best["asset_id"].to_numpy()
    columns["rate_effective_from"].iloc[rows] = best["effective_from"].to_numpy()
    return usage.assign(**columns)  # the other columns are shared, not copied
