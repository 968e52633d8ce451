"""Stage 3 of DOMAIN.md: usage summaries per window, token conversion, and the rate to price
their overage.

A summary is one (account, asset or none, resource, window). Daily windows are usage dates;
a monthly window covers the period and is dated on its last day, the date of its token rate,
its price and its drawdown. Where DOMAIN.md is silent: when several rows of one level are in
effect on a date, the one with the latest `effective_from` wins.
"""

from __future__ import annotations

import pandas as pd

from consumption_pipeline.domain.calendar import period_bounds
from consumption_pipeline.domain.catalog import Catalog, lookup
from consumption_pipeline.domain.quantities import MICRO, from_micro, to_micro

LEVEL_RANK = {"asset": 0, "account": 1, "price_book": 2}
KEYS = [
    "account_id",
    "asset_key",
    "usage_resource_id",
    "aggregation_period",
    "window_start",
    "window_date",
]


class RatingError(ValueError):
    """A summary that cannot be rated (no token rate in effect): the period must not be billed."""


def rate_usage(usage_events: pd.DataFrame, catalog: Catalog, period: pd.Timestamp) -> pd.DataFrame:
    """Aggregate accepted events into rated usage summaries (drawdown quantity and rate chosen)."""
    summaries = _aggregate(usage_events, catalog, period)
    summaries = _convert_to_tokens(summaries, catalog)
    summaries = _resolve_rates(summaries, catalog)
    return _finish(summaries, period)


def _aggregate(events: pd.DataFrame, catalog: Catalog, period: pd.Timestamp) -> pd.DataFrame:
    start, end = period_bounds(period)
    resources = catalog.resources.set_index("usage_resource_id")
    frame = pd.DataFrame({
        "account_id": events["account_id"], "asset_key": events["asset_id"].fillna(""),
        "usage_resource_id": events["usage_resource_id"], "micro": to_micro(events["quantity"]),
    })  # fmt: skip
    period_of = resources["aggregation_period"]
    monthly = lookup(events["usage_resource_id"], period_of).eq("monthly")
    usage_date = pd.to_datetime(events["usage_date"]).astype("datetime64[s]")
    frame["window_start"] = usage_date.where(~monthly, start)
    # The aggregation period and window date follow from the resource and window start.
    grouped = frame.groupby(KEYS[:3] + ["window_start"], sort=True, dropna=False)["micro"]
    out = grouped.agg(total="sum", peak="max", event_count="count").reset_index()
    out.insert(3, "aggregation_period", lookup(out["usage_resource_id"], period_of))
    monthly = out["aggregation_period"].eq("monthly")
    out.insert(5, "window_date", out["window_start"].where(~monthly, end - pd.Timedelta(days=1)))
    peak = lookup(out["usage_resource_id"], resources["aggregation_method"]).eq("peak")
    out["consumption_micro"] = out["peak"].where(peak, out["total"])
    return out.drop(columns=["total", "peak"])


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
