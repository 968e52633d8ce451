"""Exhaustion forecast: when each open bucket runs out, and the overage still to come in a period.

Stated first, as account executives read it (docs/rules.md is silent on forecasting):

- The forecast is made **as of** a date D: everything dated before D has happened, nothing from D
  on. A bucket is open on D when it started before D and ends after D.
- A bucket's **burn rate** is what the ledger debited from it in the trailing window [D − W, D),
  divided by W days. Its balance on D is the closing balance of its last ledger entry before D.
- At that rate it is **exhausted on** D + ⌈balance ÷ rate⌉ − 1 (the day its last unit is drawn).
  When that day is not before its end (ends are exclusive), it is not exhausted before it expires
  (`expires_first`); a bucket that never expires and has no burn, or would last more than 100
  years at its burn, is `no_burn`; an empty one is `empty`, dated on the day its balance reached
  zero.
- The **projected overage** for the rest of the period [D, period end) replays docs/rules.md's
  drawdown over the projected demand: each (account, asset, resource) draws every remaining day
  the average drawdown quantity of its daily windows in the trailing window; a monthly window is
  projected at its value so far (a `sum` scaled to the whole period, a `peak` as is). The replay
  uses the real drawdown rules (priority, order, binding, rollover), starting from the balances on
  D, so buckets that will open or roll over later in the period count. Rates stay those last used.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd

from consumption_pipeline.domain.buckets import BUCKET_COLUMNS
from consumption_pipeline.domain.calendar import period_bounds
from consumption_pipeline.domain.catalog import Catalog, among
from consumption_pipeline.domain.drawdown import draw_down
from consumption_pipeline.domain.quantities import from_micro, to_micro
from consumption_pipeline.domain.summaries import summarize
from consumption_pipeline.storage.warehouse import Warehouse

DEFAULT_WINDOW_DAYS = 30
HORIZON_DAYS = 36_525  # a bucket lasting more than 100 years at its burn rate never runs out
KEY = ["account_id", "asset_id", "usage_resource_id", "drawdown_resource_id"]
LINE = ["account_id", "asset_id", "drawdown_resource_id"]
RATED = ["currency", "rate_source", "rate_asset_id", "rate_effective_from", "overage_chargeable"]
# The columns a forecast reads of the ledger and of the usage summaries.
LEDGER_READ = ["period", "bucket_id", "entry_date", "sequence", "entry_type", "quantity",
               "closing_balance"]  # fmt: skip
USAGE_READ = ["period", *KEY, "aggregation_period", "window_date", "drawdown_quantity", "debited",
              "overage", *RATED]  # fmt: skip
BUCKET_FORECAST_COLUMNS = [
    "as_of", "bucket_id", "account_id", "asset_id", "usage_resource_id", "binding", "valid_to",
    "balance", "window_days", "window_debited", "burn_rate", "exhausted_on", "outlook",
]  # fmt: skip
OVERAGE_FORECAST_COLUMNS = [
    "as_of", "account_id", "asset_id", "usage_resource_id", "currency", "window_days",
    "demand_rate", "days_remaining", "overage_to_date", "projected_overage",
    "projected_period_overage", "projected_period_amount",
]  # fmt: skip


@dataclass(frozen=True)
class Forecast:
    buckets: pd.DataFrame  # one row per bucket open on the as-of date
    overage: pd.DataFrame  # one row per (account, asset, billed resource) with usage or demand


@dataclass(frozen=True)
class PeriodState:
    """What the warehouse holds for the period of the as-of date and the window before it."""

    buckets: pd.DataFrame  # entitlement_buckets of the period (grant and rollover rows)
    balances: pd.DataFrame  # bucket_balances of the period
    ledger: pd.DataFrame  # entitlement_ledger of the periods the window and the period cover
    usage: pd.DataFrame  # usage_summaries of those periods


def forecast_periods(as_of: pd.Timestamp, window_days: int) -> list[str]:
    """The periods whose ledger and usage a forecast as of `as_of` reads."""
    first = (as_of - pd.Timedelta(days=window_days)).to_period("M")
    last = (as_of - pd.Timedelta(days=1)).to_period("M")
    months = pd.period_range(min(first, last), max(last, as_of.to_period("M")), freq="M")
    return [m.start_time.strftime("%Y-%m-%d") for m in months]


def forecast(state: PeriodState, catalog: Catalog, period: pd.Timestamp, as_of: pd.Timestamp,
             window_days: int = DEFAULT_WINDOW_DAYS, grace_days: int = 3) -> Forecast:  # fmt: skip
    """The forecast of `period` as of `as_of` (within the period, or its end)."""
    start, end = period_bounds(period)
    if not start <= as_of <= end:
        raise ValueError(f"as-of date {as_of:%Y-%m-%d} is outside period {start:%Y-%m}")
    if window_days < 1:
        raise ValueError(f"the trailing window must be at least one day, got {window_days}")
    open_now = _open_buckets(state, as_of)
    window = (state.ledger["entry_date"] >= as_of - pd.Timedelta(days=window_days)) & (
        state.ledger["entry_date"] < as_of
    )
    debits = state.ledger[window & state.ledger["entry_type"].eq("debit")]
    buckets = _bucket_outlook(open_now, debits, as_of, window_days)
    overage = _overage(state, open_now, catalog, period, as_of, window_days, grace_days)
    return Forecast(buckets, overage)


def _open_buckets(state: PeriodState, as_of: pd.Timestamp) -> pd.DataFrame:
    """The buckets open on `as_of` with their balance then and the day their last entry was made."""
    buckets = state.buckets.drop_duplicates("bucket_id")
    known = among(buckets["bucket_id"], state.balances["bucket_id"])
    started = buckets["valid_from"] < as_of
    not_ended = buckets["valid_to"].isna() | (buckets["valid_to"] > as_of)
    open_now = buckets[known & started & not_ended].copy()
    period = state.balances["period"].iloc[0] if len(state.balances) else None
    ledger = state.ledger[state.ledger["period"].eq(period) & (state.ledger["entry_date"] < as_of)]
    last = ledger.sort_values("sequence").drop_duplicates("bucket_id", keep="last")
    last = last.set_index("bucket_id")
    opening = state.balances.set_index("bucket_id")["opening"]
    ids = open_now["bucket_id"]
    balance = ids.map(last["closing_balance"].to_dict()).fillna(ids.map(opening.to_dict()))
    open_now["balance"] = balance.fillna(0.0).astype("float64")
    open_now["last_entry_on"] = pd.to_datetime(ids.map(last["entry_date"].to_dict()))
    return open_now.reset_index(drop=True)


def _bucket_outlook(open_now: pd.DataFrame, debits: pd.DataFrame, as_of: pd.Timestamp,
                    window_days: int) -> pd.DataFrame:  # fmt: skip
    out = open_now.copy()
    debited = debits.groupby("bucket_id")["quantity"].sum()
    out["window_debited"] = out["bucket_id"].map(debited.to_dict()).fillna(0.0).astype("float64")
    balance = to_micro(out["balance"]).astype("int64").to_numpy()
    burned = to_micro(out["window_debited"]).astype("int64").to_numpy()
    out["burn_rate"] = np.round(out["window_debited"] / window_days, 6)
    # Integer ceiling of balance / (burned / W) = ceil(balance × W / burned), exact in micro-units
    # (Python integers: balance × W may pass int64).
    days = np.array([-(-(int(b) * window_days) // int(u)) if u > 0 else 0
                     for b, u in zip(balance, burned, strict=True)], dtype=object)  # fmt: skip
    beyond = (days > HORIZON_DAYS).astype(bool)
    days = np.minimum(days, HORIZON_DAYS).astype("int64")
    runs_out = as_of + pd.to_timedelta(np.maximum(days - 1, 0), unit="D")
    before_end = out["valid_to"].isna() | (pd.Series(runs_out, index=out.index) < out["valid_to"])
    out["outlook"] = np.select(
        [balance == 0, (burned > 0) & ~beyond & before_end, out["valid_to"].notna()],
        ["empty", "runs_out", "expires_first"],
        "no_burn",
    )
    out["exhausted_on"] = pd.Series(runs_out, index=out.index).where(out["outlook"].eq("runs_out"))
    out.loc[out["outlook"].eq("empty"), "exhausted_on"] = out["last_entry_on"]
    out["as_of"], out["window_days"] = as_of, window_days
    return out[BUCKET_FORECAST_COLUMNS].sort_values("bucket_id", ignore_index=True)


def _overage(state: PeriodState, open_now: pd.DataFrame, catalog: Catalog, period: pd.Timestamp,
             as_of: pd.Timestamp, window_days: int, grace_days: int) -> pd.DataFrame:  # fmt: skip
    start, end = period_bounds(period)
    usage = state.usage
    in_period = usage[usage["period"].eq(start)]
    daily = usage["aggregation_period"].eq("daily")
    to_date = in_period[in_period["aggregation_period"].eq("daily")
                        & (in_period["window_date"] < as_of)]  # fmt: skip
    trailing = usage[daily & (usage["window_date"] >= as_of - pd.Timedelta(days=window_days))
                     & (usage["window_date"] < as_of)]  # fmt: skip
    demand = _demand(trailing, window_days)
    days = pd.date_range(as_of, end - pd.Timedelta(days=1), freq="D")
    projected = _projected_windows(demand, days, in_period, catalog, start, as_of, end)
    if len(projected):
        fresh = state.buckets[state.buckets["origin"].ne("rollover")
                              & (state.buckets["valid_from"] >= as_of)]  # fmt: skip
        carried = open_now[[*BUCKET_COLUMNS, "balance"]].rename(columns={"balance": "closing"})
        projected = draw_down(
            projected, fresh[BUCKET_COLUMNS], carried, catalog, start
        ).usage_summaries
    lines = _lines(to_date, projected, demand, catalog, start, as_of, grace_days)
    lines["as_of"], lines["window_days"], lines["days_remaining"] = as_of, window_days, len(days)
    return lines[OVERAGE_FORECAST_COLUMNS].sort_values(
        ["account_id", "asset_id", "usage_resource_id"], ignore_index=True, na_position="first"
    )


def _demand(trailing: pd.DataFrame, window_days: int) -> pd.DataFrame:
    """Average drawdown quantity per day of each (account, asset, resource), in micro-units, with
    the rate its latest window used."""
    if trailing.empty:
        return pd.DataFrame(columns=[*KEY, *RATED, "rate_micro"])
    frame = trailing.assign(asset_key=trailing["asset_id"].fillna(""),
                            micro=to_micro(trailing["drawdown_quantity"]).astype("int64"))  # fmt: skip
    keys = ["account_id", "asset_key", "usage_resource_id", "drawdown_resource_id"]
    grouped = frame.groupby(keys)  # ids matched once for both (a key has one window per date)
    latest = frame.loc[grouped["window_date"].idxmax()].set_index(keys)
    total = grouped["micro"].sum()
    # Half-up to the micro-unit: a projection needs no more precision than a quantity has.
    rate = (total * 2 + window_days) // (2 * window_days)
    out = latest[["asset_id", *RATED]].assign(rate_micro=rate).reset_index()
    return out.drop(columns="asset_key")


def _projected_windows(demand: pd.DataFrame, days: pd.DatetimeIndex, in_period: pd.DataFrame,
                       catalog: Catalog, start: pd.Timestamp, as_of: pd.Timestamp,
                       end: pd.Timestamp) -> pd.DataFrame:  # fmt: skip
    """Rated windows for the rest of the period: daily demand, and the monthly windows."""
    parts = []
    drawing = demand[demand["rate_micro"] > 0]
    if len(days) and len(drawing):
        daily = drawing.merge(pd.DataFrame({"window_date": days}), how="cross")
        daily["aggregation_period"] = "daily"
        daily["micro"] = daily["rate_micro"]
        parts.append(daily)
    monthly = in_period[in_period["aggregation_period"].eq("monthly")]
    if len(days) and len(monthly):
        method = monthly["usage_resource_id"].map(
            catalog.resources.set_index("usage_resource_id")["aggregation_method"]
        )
        micro = to_micro(monthly["drawdown_quantity"]).astype("int64")
        elapsed, total = (as_of - start).days, (end - start).days
        scaled = (micro * total * 2 + elapsed) // (2 * elapsed) if elapsed else micro
        parts.append(monthly.assign(micro=micro.where(method.eq("peak"), scaled)))
    if not parts:
        return pd.DataFrame()
    rated = pd.concat(parts, ignore_index=True)
    rated["window_date"] = pd.to_datetime(rated["window_date"]).astype("datetime64[s]")
    rated["summary_id"] = ("forecast|" + rated["account_id"] + "|" + rated["asset_id"].fillna("-")
                           + "|" + rated["usage_resource_id"] + "|"
                           + rated["window_date"].dt.strftime("%Y-%m-%d"))  # fmt: skip
    rated["drawdown_quantity"] = from_micro(rated["micro"])
    return rated[["summary_id", *KEY, "aggregation_period", "window_date", "drawdown_quantity",
                  *RATED]].reset_index(drop=True)  # fmt: skip


def _lines(to_date: pd.DataFrame, projected: pd.DataFrame, demand: pd.DataFrame, catalog: Catalog,
           start: pd.Timestamp, as_of: pd.Timestamp, grace_days: int) -> pd.DataFrame:  # fmt: skip
    """Per invoice line: overage so far, still to come, and the period's projected amount."""
    columns = [*LINE, "drawdown_quantity", "debited", "overage", *RATED]
    # Each part summed on its own: concatenating millions of windows first would copy them.
    parts = [_per_line_and_rate(rows.reindex(columns=columns).assign(part=part))
             for part, rows in [("to_date", to_date), ("projected", projected)] if len(rows)]  # fmt: skip
    if not parts:
        return pd.DataFrame(columns=OVERAGE_FORECAST_COLUMNS)
    both = pd.concat(parts, ignore_index=True)
    both["asset_key"] = both["asset_id"].fillna("")
    both["overage_micro"] = to_micro(both["overage"].astype("float64")).astype("int64")
    keys = ["account_id", "asset_key", "drawdown_resource_id"]
    overage = both.pivot_table(index=keys, columns="part", values="overage_micro", aggfunc="sum",
                               fill_value=0).reindex(columns=["to_date", "projected"], fill_value=0)  # fmt: skip
    rate = demand.assign(asset_key=demand["asset_id"].fillna("")).groupby(keys)["rate_micro"].sum()
    lines = overage.reset_index()
    index = pd.MultiIndex.from_frame(lines[keys])
    lines["demand_rate"] = from_micro(pd.Series(rate.reindex(index).fillna(0).to_numpy()))
    lines["overage_to_date"] = from_micro(lines["to_date"])
    lines["projected_overage"] = from_micro(lines["projected"])
    lines["projected_period_overage"] = from_micro(lines["to_date"] + lines["projected"])
    liable = summarize(both.drop(columns=["asset_key", "overage_micro", "part"]), catalog, start,
                       as_of, grace_days).liable_summaries  # fmt: skip
    amounts = liable.assign(asset_key=liable["asset_id"].fillna("")).rename(
        columns={"usage_resource_id": "drawdown_resource_id"})[[*keys, "amount", "currency"]]  # fmt: skip
    lines = lines.merge(amounts, on=keys, how="left", validate="one_to_one")
    lines["projected_period_amount"] = lines["amount"].where(lines["amount"].notna(), Decimal(0))
    lines["asset_id"] = lines["asset_key"].where(lines["asset_key"].ne(""), pd.NA)
    return lines.rename(columns={"drawdown_resource_id": "usage_resource_id"})


def _per_line_and_rate(both: pd.DataFrame) -> pd.DataFrame:
    """One row per line, rate and part, quantities summed in micro-units: what the overage and its
    pricing are computed on (a month of daily windows is ~30 times as many rows)."""
    keys = [*LINE, *RATED, "part"]
    quantities = ["drawdown_quantity", "debited", "overage"]
    micro = {c: to_micro(both[c].astype("float64")).astype("int64") for c in quantities}
    sums = both[keys].assign(**micro).groupby(keys, dropna=False, sort=False).sum().reset_index()
    return sums.assign(**{c: from_micro(sums[c]) for c in quantities})


def read_state(store: Warehouse, period: str, as_of: pd.Timestamp, window_days: int,
               account_id: str | None = None) -> PeriodState:  # fmt: skip
    """The rows a forecast of `period` reads (one account's, if given; bound parameters only)."""
    where = {"account_id": account_id} if account_id else None
    window = forecast_periods(as_of, window_days)

    def rows(table: str, periods: list[str], columns: list[str]) -> pd.DataFrame:
        frames = [store.read_period(table, p, where, columns) for p in periods]
        return pd.concat(frames, ignore_index=True)

    return PeriodState(
        buckets=store.read_period("entitlement_buckets", period, where),
        balances=store.read_period("bucket_balances", period, where),
        ledger=rows("entitlement_ledger", window, LEDGER_READ),
        usage=rows("usage_summaries", window, USAGE_READ),
    )


def as_of_for(period: pd.Timestamp, today: pd.Timestamp) -> pd.Timestamp:
    """A period's forecast date: today while it runs, its end once over, its start before."""
    start, end = period_bounds(period)
    return min(max(today, start), end)
