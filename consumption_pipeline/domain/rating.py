"""Stage 3 of DOMAIN.md: usage summaries per window, token conversion, and the rate to price
their overage.

A summary is one (account, asset or none, resource, window). Daily windows are usage dates;
a monthly window covers the period and is dated on its last day, the date of its token rate,
its price and its drawdown. Where DOMAIN.md is silent: when several rows of one level are in
effect on a date, the one with the latest `effective_from` wins.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from consumption_pipeline.domain.calendar import period_bounds
from consumption_pipeline.domain.catalog import Catalog, lookup
from consumption_pipeline.domain.quantities import MICRO, from_micro, to_micro

LEVEL_RANK = {"asset": 0, "account": 1, "price_book": 2}
RATED_FROM = [  # the columns of usage_events that rating reads
    "account_id", "asset_id", "usage_resource_id", "quantity", "usage_date"]


class RatingError(ValueError):
    """A summary that cannot be rated (no token rate in effect): the period must not be billed."""


def rate_usage(
    usage_events: pd.DataFrame | Iterable[pd.DataFrame], catalog: Catalog, period: pd.Timestamp
) -> pd.DataFrame:
    """Aggregate accepted events (a frame, or batches of one) into rated usage summaries
    (drawdown quantity and rate chosen)."""
    batches = [usage_events] if isinstance(usage_events, pd.DataFrame) else usage_events
    summaries = _aggregate(batches, catalog, period)
    summaries = _convert_to_tokens(summaries, catalog)
    summaries = _resolve_rates(summaries, catalog)
    return _finish(summaries, period)


class _Windows:
    """Events keyed by summary as one int64: (owner, resource, window day). The owner is the
    asset when there is one (an asset has one account), else the account; the day counts from
    the period's start. Batches are folded into partial sums as they come, so memory follows the
    summaries, not the events."""

    _DAYS = 1 << 16  # window days from the period start, biased to allow any date
    _FOLD_ROWS = 1 << 23  # events held before they are folded into the partial sums

    def __init__(self, catalog: Catalog, period: pd.Timestamp):
        self.accounts = pd.Index(catalog.accounts["account_id"], dtype="str")
        self.assets = pd.Index(catalog.assets["asset_id"], dtype="str")
        self.resources = catalog.resources.set_index("usage_resource_id")
        self.owner = self.accounts.get_indexer(catalog.assets["account_id"])
        self.start = _days(pd.Series([period_bounds(period)[0]]))[0]
        self.monthly = self.resources["aggregation_period"].eq("monthly").to_numpy()
        owners = len(self.accounts) + len(self.assets)
        if owners * max(len(self.resources), 1) >= 2**63 // self._DAYS:
            raise RatingError("the catalog has too many accounts, assets and resources to key")
        self._held: list[pd.DataFrame] = []
        self._partial = pd.DataFrame(columns=["key", "total", "peak", "event_count"], dtype="int64")

    def add(self, events: pd.DataFrame) -> None:
        account = _codes(events["account_id"], self.accounts, "account_id")
        asset = _codes(events["asset_id"], self.assets, "asset_id", optional=True)
        resource = _codes(events["usage_resource_id"], self.resources.index, "usage_resource_id")
        tagged = asset >= 0
        if (self.owner[asset[tagged]] != account[tagged]).any():
            raise RatingError("usage_events holds an event whose asset is another account's")
        owner = np.where(tagged, len(self.accounts) + asset, account)
        day = np.where(self.monthly[resource], 0, _days(events["usage_date"]) - self.start)
        key = (owner * len(self.resources) + resource) * self._DAYS + (day + self._DAYS // 2)
        self._held.append(pd.DataFrame({"key": key, "micro": to_micro(events["quantity"])}))
        if sum(len(h) for h in self._held) >= self._FOLD_ROWS:
            self._fold()

    def _fold(self) -> None:
        if not self._held:
            return
        events = pd.concat(self._held, ignore_index=True)
        self._held = []
        micro = events.groupby("key", sort=False)["micro"]
        folded = micro.agg(total="sum", peak="max", event_count="count").reset_index()
        if len(self._partial):
            both = pd.concat([self._partial, folded], ignore_index=True).groupby("key", sort=False)
            folded = both.agg(total=("total", "sum"), peak=("peak", "max"),
                              event_count=("event_count", "sum")).reset_index()  # fmt: skip
        self._partial = folded

    def summaries(self, period: pd.Timestamp) -> pd.DataFrame:
        """One row per window: its keys as text, event count and consumption in micro-units."""
        self._fold()
        key = self._partial["key"].to_numpy()
        day, rest = key % self._DAYS - self._DAYS // 2, key // self._DAYS
        owner, resource = rest // len(self.resources), rest % len(self.resources)
        tagged = owner >= len(self.accounts)
        asset = np.where(tagged, owner - len(self.accounts), -1)
        account = np.where(tagged, np.append(self.owner, -1)[asset], owner)  # -1: no asset
        # Ordered by the ids' text, no asset first, then the window.
        ranks = [_ranks(self.accounts)[account], np.append(_ranks(self.assets), -1)[asset],
                 _ranks(self.resources.index)[resource], day]  # fmt: skip
        order = np.lexsort(ranks[::-1])
        out = self._partial.take(order)
        day, resource, asset, account = day[order], resource[order], asset[order], account[order]
        start, end = period_bounds(period)
        frame = pd.DataFrame({
            "account_id": self.accounts.take(account),
            "asset_key": self.assets.append(pd.Index([""])).take(asset),  # -1: no asset
            "usage_resource_id": self.resources.index.take(resource),
            "aggregation_period": self.resources["aggregation_period"].to_numpy()[resource],
            "window_start": (start + pd.to_timedelta(day, unit="D")).astype("datetime64[s]"),
        })  # fmt: skip
        monthly = self.monthly[resource]
        last_day = (end - pd.Timedelta(days=1)).to_datetime64()
        frame["window_date"] = frame["window_start"].where(~monthly, last_day)
        frame["event_count"] = out["event_count"].to_numpy()
        peak = self.resources["aggregation_method"].eq("peak").to_numpy()[resource]
        frame["consumption_micro"] = np.where(peak, out["peak"], out["total"])
        return frame


def _codes(values: pd.Series, known: pd.Index, column: str, optional: bool = False) -> np.ndarray:
    """Each row's index in `known` (-1 for a missing optional id), looking each distinct value
    up once."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        places, distinct = values.cat.codes.to_numpy(), values.cat.categories
    else:
        places, distinct = pd.factorize(values)
    lut = np.append(known.get_indexer(distinct), -1)
    codes = lut[places]
    unknown = (codes < 0) & (places >= 0 if optional else True)
    if unknown.any():
        value = values[unknown].iloc[0]
        raise RatingError(f"usage_events.{column} holds {value!r}, which the catalog does not know")
    return codes


def _ranks(values: pd.Index) -> np.ndarray:
    """Each value's place in sorted order."""
    ranks = np.empty(len(values), np.int64)
    ranks[np.argsort(values.to_numpy(dtype=object), kind="stable")] = np.arange(len(values))
    return ranks


def _days(values: pd.Series) -> np.ndarray:
    dates = values if pd.api.types.is_datetime64_dtype(values.dtype) else pd.to_datetime(values)
    return dates.to_numpy(dtype="datetime64[D]").view("int64")


def _aggregate(
    batches: Iterable[pd.DataFrame], catalog: Catalog, period: pd.Timestamp
) -> pd.DataFrame:
    windows = _Windows(catalog, period)
    for events in batches:
        windows.add(events)
    return windows.summaries(period)


def _convert_to_tokens(summaries: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    token_of = catalog.resources.set_index("usage_resource_id")["token_resource_id"]
    token = lookup(summaries["usage_resource_id"], token_of)
    summaries["drawdown_resource_id"] = token.fillna(summaries["usage_resource_id"])
    converted = summaries[token.notna()].reset_index()
    rates = catalog.token_rates.rename(columns={"tokens_per_unit": "tpu_micro"})
    chosen = _in_effect(converted, rates, ["usage_resource_id"], "window_date")
    missing = converted[~converted["index"].isin(chosen["index"])]
    if len(missing):
        row = missing.iloc[0]
        raise RatingError(
            f"no token rate for usage resource '{row['usage_resource_id']}' in effect on "
            f"{row['window_date']:%Y-%m-%d} (token_rates.csv); {len(missing)} summaries affected"
        )
    tpu = chosen.set_index("index")["tpu_micro"]
    summaries["tokens_per_unit_micro"] = tpu.reindex(summaries.index).astype("Int64")
    summaries["drawdown_micro"] = summaries["consumption_micro"]
    if len(tpu):
        consumption = summaries.loc[tpu.index, "consumption_micro"]
        summaries.loc[tpu.index, "drawdown_micro"] = _multiply_half_up(consumption, tpu)
    return summaries


def _multiply_half_up(micro: pd.Series, factor_micro: pd.Series) -> pd.Series:
    """micro × factor (both scaled by 10^6), rounded half-up to 6 decimals, exactly."""
    if int(micro.max()) * int(factor_micro.max()) < 2**62:
        return (micro.astype("int64") * factor_micro.astype("int64") + MICRO // 2) // MICRO
    exact = [
        (int(q) * int(f) + MICRO // 2) // MICRO for q, f in zip(micro, factor_micro, strict=True)
    ]
    return pd.Series(exact, index=micro.index, dtype="int64")


def _in_effect(rows: pd.DataFrame, dated: pd.DataFrame, on: list[str], date: str) -> pd.DataFrame:
    """Each row matched to the dated catalog row in effect on its date (the latest start wins)."""
    matched = rows.merge(dated, on=on, how="inner")
    live = (matched["effective_from"] <= matched[date]) & (
        matched["effective_to"].isna() | (matched[date] < matched["effective_to"])
    )
    matched = matched[live].sort_values(["index", "effective_from"])
    return matched.drop_duplicates("index", keep="last")


def _resolve_rates(summaries: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Asset-level negotiated rate, else account-level, else the price book, in the account's
    currency, in effect on the window's date."""
    currency = catalog.accounts.set_index("account_id")["currency"]
    summaries["currency"] = lookup(summaries["account_id"], currency)
    chargeable = catalog.resources.set_index("usage_resource_id")["overage_chargeable"]
    summaries["overage_chargeable"] = lookup(summaries["drawdown_resource_id"], chargeable).astype(
        bool
    )
    heads = catalog.rates.drop_duplicates(
        ["level", "account_id", "asset_id", "usage_resource_id", "currency", "effective_from"]
    )[
        [
            "level",
            "account_id",
            "asset_id",
            "usage_resource_id",
            "currency",
            "effective_from",
            "effective_to",
        ]
    ]
    heads = heads.rename(columns={"usage_resource_id": "drawdown_resource_id"})
    keyed = summaries.reset_index()[
        ["index", "account_id", "asset_key", "drawdown_resource_id", "currency", "window_date"]
    ]
    found = []
    for level, keys in [
        ("asset", ["account_id", "asset_key"]),
        ("account", ["account_id"]),
        ("price_book", []),
    ]:
        rows = heads[heads["level"].eq(level)].copy()
        rows["asset_key"] = rows["asset_id"].fillna("")
        rows = rows[
            [
                *keys,
                "drawdown_resource_id",
                "currency",
                "level",
                "asset_id",
                "effective_from",
                "effective_to",
            ]
        ]
        found.append(
            _in_effect(keyed, rows, [*keys, "drawdown_resource_id", "currency"], "window_date")
        )
    best = pd.concat(found).assign(rank=lambda f: lookup(f["level"], pd.Series(LEVEL_RANK)))
    best = best.sort_values(["index", "rank"]).drop_duplicates("index").set_index("index")
    summaries["rate_source"] = best["level"].reindex(summaries.index)
    summaries["rate_asset_id"] = best["asset_id"].reindex(summaries.index)
    summaries["rate_effective_from"] = best["effective_from"].reindex(summaries.index)
    return summaries


def _finish(s: pd.DataFrame, period: pd.Timestamp) -> pd.DataFrame:
    asset = s["asset_key"].where(s["asset_key"].ne(""), pd.NA)
    summary_id = (
        s["account_id"] + "|" + s["asset_key"].where(asset.notna(), "-") + "|"
        + s["usage_resource_id"] + "|" + s["window_start"].dt.strftime("%Y-%m-%d")
    )  # fmt: skip
    return pd.DataFrame({
        "summary_id": summary_id, "account_id": s["account_id"], "asset_id": asset,
        "usage_resource_id": s["usage_resource_id"], "aggregation_period": s["aggregation_period"],
        "window_start": s["window_start"], "window_date": s["window_date"],
        "event_count": s["event_count"].astype("int64"),
        "consumption": from_micro(s["consumption_micro"]),
        "drawdown_resource_id": s["drawdown_resource_id"],
        "tokens_per_unit": from_micro(s["tokens_per_unit_micro"]),
        "drawdown_quantity": from_micro(s["drawdown_micro"]), "currency": s["currency"],
        "rate_source": s["rate_source"], "rate_asset_id": s["rate_asset_id"],
        "rate_effective_from": s["rate_effective_from"],
        "overage_chargeable": s["overage_chargeable"],
    }).reset_index(drop=True)  # fmt: skip
