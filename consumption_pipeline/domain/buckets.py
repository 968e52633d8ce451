"""Stage 2 of docs/rules.md: entitlement buckets from assetized products, as the contract stands.

Every (asset, grant of its product) pair yields one bucket (one-time grants) or month-aligned
k-month buckets (renewing grants), granted on the asset's quantity in force on the bucket's
first day and ended by the asset's final end (contracts.py). A quantity raised inside a window
adds an amendment bucket for the rest of it; each credit grant is a bucket of its own. Only the
buckets a period needs are built: those valid during it, and those ending on its first day
(their close, expiry or rollover, happens in it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from consumption_pipeline.domain.calendar import add_months, month_index, month_start, period_bounds
from consumption_pipeline.domain.catalog import Catalog, among
from consumption_pipeline.domain.contracts import Timeline
from consumption_pipeline.domain.quantities import MICRO, from_micro

BUCKET_COLUMNS = [
    "bucket_id", "origin", "account_id", "asset_id", "grant_id", "usage_resource_id", "binding",
    "priority", "granted", "valid_from", "valid_to", "rollover_generation", "parent_bucket_id",
    "rollover", "rollover_cap", "max_rollovers", "rollover_months", "asset_end_date",
    "grant_type", "commitment_rate", "change_id", "credit_id", "reason",
]  # fmt: skip
ORIGINS = ("grant", "commitment", "amendment", "credit", "rollover")


def create_buckets(catalog: Catalog, period: pd.Timestamp) -> pd.DataFrame:
    """The buckets of every asset and credit that matter to `period`, `granted` after proration."""
    start, end = period_bounds(period)
    timeline = Timeline(catalog.assets, catalog.changes) if len(catalog.changes) else None
    assets = _with_final_end(catalog.assets, timeline)
    pairs = _pairs(assets, catalog.grants, end)
    windows = [_one_time(pairs, timeline, start, end), _renewing(pairs, timeline, start, end)]
    if timeline is not None:
        windows.append(_amendments(pairs, catalog.changes, timeline, start, end))
    parts = [_with_pair_columns(pd.concat(windows, ignore_index=True), pairs)]
    credits = _credits(catalog.credits, assets, start, end)
    return _finish(pd.concat([*parts, credits], ignore_index=True) if len(credits) else parts[0])


def _relevant(buckets: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """Valid during the period, or ending on its first day; and not empty in time."""
    valid_to, valid_from = buckets["valid_to"], buckets["valid_from"]
    return (valid_from < end) & (valid_to.isna() | ((valid_to >= start) & (valid_to > valid_from)))


def _with_final_end(assets: pd.DataFrame, timeline: Timeline | None) -> pd.DataFrame:
    """The assets with their final end (`final_end`), the cancellation that set it and whether
    they have changes (`changed`: only those need the timeline)."""
    if timeline is None:
        return assets.assign(final_end=assets["end_date"], cancelled_by=None, changed=False)
    ends = timeline.ends.reindex(assets["asset_id"])
    return assets.assign(final_end=ends["end_date"].to_numpy(),
                         cancelled_by=ends["change_id"].to_numpy(),
                         changed=timeline.changed(assets["asset_id"]))  # fmt: skip


def _pairs(assets: pd.DataFrame, grants: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """Each asset started before `end` with each grant of its product."""
    started = assets[assets["start_date"] < end]
    return started.merge(grants, on="product_id", suffixes=("_asset", ""))


# What computes a pair's buckets: the frames of windows carry only these, not every pair column.
_COMPUTING = ["asset_id", "grant_id", "quantity_asset", "quantity", "start_date", "end_date",
              "final_end", "changed", "renewal_months", "validity_months", "prorate"]  # fmt: skip
# What a bucket takes from its pair, as written.
_FROM_PAIR = ["account_id", "asset_id", "grant_id", "usage_resource_id", "binding", "priority",
              "rollover", "rollover_cap", "max_rollovers", "final_end", "grant_type",
              "commitment_rate", "cancelled_by"]  # fmt: skip


def _computing(pairs: pd.DataFrame, at: np.ndarray) -> pd.DataFrame:
    """The _COMPUTING columns of the pairs at positions `at`, and those positions (`pair`)."""
    return pairs[_COMPUTING].take(at).reset_index(drop=True).assign(pair=at)


def _at_first_day(windows: pd.DataFrame, timeline: Timeline | None) -> pd.DataFrame:
    """`full_granted` on the quantity in force on each bucket's first day (`granted_on`), the
    asset's end as known then (`known_end`) and the change behind them."""
    quantity = windows["quantity_asset"].to_numpy("int64", copy=True)
    known_end = windows["end_date"].to_numpy("datetime64[s]", copy=True)
    change = np.full(len(windows), None, dtype=object)
    changed = windows["changed"].to_numpy(bool)
    if changed.any():  # only assets with changes need the timeline
        state = timeline.in_force(windows["asset_id"][changed], windows["valid_from"][changed])
        quantity[changed] = state["quantity"].to_numpy("int64")
        known_end[changed] = state["end_date"].to_numpy("datetime64[s]")
        change[changed] = state["change_id"].to_numpy(object)
    return windows.assign(full_granted=_times(windows["quantity"], quantity), granted_on=quantity,
                          known_end=known_end, change_id=change)  # fmt: skip


_SAFE = 2**62  # products below this fit int64 exactly


def _times(grant_micro: pd.Series, asset_micro: pd.Series) -> pd.Series:
    """grant.quantity × asset.quantity in micro-units, rounded half-up to 6 decimals, exactly:
    in int64 where the product cannot overflow, else in Python integers (object columns)."""
    g, a = np.asarray(grant_micro, dtype="int64"), np.asarray(asset_micro, dtype="int64")
    if not len(g) or float(g.max()) * float(a.max()) < _SAFE:
        out = (g * a + MICRO // 2) // MICRO
    else:
        out = ((g.astype(object) * a.astype(object) + MICRO // 2) // MICRO).astype(object)
    return pd.Series(out, index=grant_micro.index)


def _prorated(granted_micro: pd.Series, covered: pd.Series, full: pd.Series) -> pd.Series:
    """floor(granted × days covered / days of the full window), in whole units (micro-units)."""
    g, c = np.asarray(granted_micro), np.asarray(covered, dtype="int64")
    f = np.asarray(full, dtype="int64")
    if g.dtype != object and (not len(g) or float(g.max()) * float(c.max()) < _SAFE):
        return pd.Series(g * c // (f * MICRO) * MICRO, index=granted_micro.index)
    g = g.astype(object)  # Python integers: exact at any size
    return pd.Series(g * c.astype(object) // (f.astype(object) * MICRO) * MICRO,
                     index=granted_micro.index)  # fmt: skip


def _one_time(pairs: pd.DataFrame, timeline: Timeline | None, start, end) -> pd.DataFrame:
    w = _computing(pairs, np.flatnonzero(pairs["renewal_months"].eq(0)))
    w["valid_from"] = w["start_date"]
    w["valid_to"] = _cut(add_months(w["start_date"], w["validity_months"]), w["final_end"])
    w = _at_first_day(w[_relevant(w, start, end)], timeline)
    return _bucket_rows(w, w["full_granted"], w["validity_months"], _window_id(w))


def _renewing(pairs: pd.DataFrame, timeline: Timeline | None, start, end) -> pd.DataFrame:
    """The k-month window holding the period, and the one before it (it may end on day 1)."""
    at = np.flatnonzero(pairs["renewal_months"].gt(0))
    first_month = month_index(pairs["start_date"].iloc[at]).to_numpy()
    current = (month_index(pd.Series([start])).iloc[0] - first_month) // pairs[
        "renewal_months"
    ].to_numpy()[at]
    window = np.r_[current - 1, current]
    keep = window >= 0
    windows = _computing(pairs, np.r_[at, at][keep]).assign(window=window[keep])
    window_start, window_end = _window_bounds(windows, windows["window"])
    windows["valid_from"] = window_start.where(
        window_start > windows["start_date"], windows["start_date"]
    )
    windows["valid_to"] = _cut(window_end, windows["final_end"])
    relevant = _relevant(windows, start, end)
    windows, window_start, window_end = (
        windows[relevant],
        window_start[relevant],
        window_end[relevant],
    )
    windows = _at_first_day(windows, timeline)
    # Granted on the end known on the first day; a later cancellation only cuts the bucket.
    covered = (_cut(window_end, windows["known_end"]) - windows["valid_from"]).dt.days
    full = (window_end - window_start).dt.days
    partial = windows["prorate"] & (covered < full)
    prorated = _prorated(windows["full_granted"], covered, full)
    granted = prorated.where(partial, windows["full_granted"])
    return _bucket_rows(windows, granted, windows["renewal_months"], _window_id(windows))


def _bucket_rows(w: pd.DataFrame, granted, rollover_months, bucket_id) -> pd.DataFrame:
    """The buckets of windows `w` as their own columns and the position of their pair."""
    return pd.DataFrame({
        "pair": w["pair"], "bucket_id": bucket_id, "origin": "grant", "granted": granted,
        "valid_from": w["valid_from"], "valid_to": w["valid_to"],
        "rollover_months": rollover_months, "change_id": w["change_id"],
    })  # fmt: skip


def _with_pair_columns(windows: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """The buckets of `windows` with the columns they take from their pair; no credit's."""
    taken = pairs[_FROM_PAIR].take(windows["pair"].to_numpy()).set_axis(windows.index)
    no_text = pd.Series(np.nan, index=windows.index, dtype="str")
    return pd.concat([windows.drop(columns="pair"), taken], axis=1).assign(
        change_id=windows["change_id"].astype("str"), credit_id=no_text, reason=no_text
    )


def _window_bounds(pairs: pd.DataFrame, window: pd.Series) -> tuple[pd.Series, pd.Series]:
    """[first day, end) of each pair's k-month window number `window`, aligned to month starts."""
    k, first_month = pairs["renewal_months"], month_index(pairs["start_date"])
    return month_start(first_month + window * k), month_start(first_month + (window + 1) * k)


def _window_id(buckets: pd.DataFrame) -> pd.Series:
    return buckets["asset_id"] + ":" + buckets["grant_id"] + ":" + _day_text(buckets["valid_from"])


def _day_text(days: pd.Series) -> pd.Series:
    """`days` as YYYY-MM-DD, each distinct day formatted once (buckets share a few hundred)."""
    codes, distinct = pd.factorize(days)
    text = pd.array(pd.DatetimeIndex(distinct).strftime("%Y-%m-%d"), dtype="str")
    return pd.Series(text.take(codes, allow_fill=True), index=days.index)


def _amendments(
    pairs: pd.DataFrame, changes: pd.DataFrame, timeline: Timeline, start, end
) -> pd.DataFrame:
    """A quantity q raised on day D above L, the largest quantity the window (one-time grants:
    the grant) has been granted on so far, adds (q - L) × grant quantity for the rest of it,
    prorated (renewing grants) by one floor of the whole expression."""
    ups = changes.loc[changes["quantity"].notna(),
                      ["asset_id", "change_id", "effective_date", "quantity"]]  # fmt: skip
    ups = ups.rename(columns={"quantity": "new_quantity", "change_id": "amending"})
    rows = _computing(pairs, np.flatnonzero(among(pairs["asset_id"], ups["asset_id"])))
    rows = rows.merge(ups, on="asset_id")
    rows = rows[rows["effective_date"] > rows["start_date"]]  # on the start: its first quantity
    renewing = rows["renewal_months"].gt(0)
    window = (month_index(rows["effective_date"]) - month_index(rows["start_date"])) // rows[
        "renewal_months"
    ].where(renewing, 1)
    window_start, window_end = _window_bounds(rows, window)
    rows = rows.assign(window=window.where(renewing, 0), valid_from=window_start.where(
        renewing & (window_start > rows["start_date"]), rows["start_date"]))  # fmt: skip
    rows = rows[rows["valid_from"] < rows["effective_date"]]  # a window starting on D takes q
    rows = _raised(_at_first_day(rows, timeline))
    window_start, window_end = window_start[rows.index], window_end[rows.index]
    renewing = rows["renewal_months"].gt(0)
    day = rows["effective_date"]
    known_end = timeline.in_force(rows["asset_id"], day)["end_date"]
    covered = (_cut(window_end, known_end) - day).dt.days
    added = _times(rows["quantity"], rows["added"])
    full = (window_end - window_start).dt.days.where(renewing, 1)  # one-time: never prorated
    prorated = _prorated(added, covered.where(renewing, 1), full)
    granted = prorated.where(renewing & rows["prorate"], added)
    ends = window_end.where(renewing, add_months(day, rows["validity_months"]))
    bucket_id = (_window_id(rows) + ":amend:" + rows["amending"]).where(
        renewing, rows["asset_id"] + ":" + rows["grant_id"] + ":amend:" + rows["amending"]
    )
    rows = rows.assign(valid_from=day, valid_to=_cut(ends, rows["final_end"]),
                       change_id=rows["amending"])  # fmt: skip
    months = rows["renewal_months"].where(renewing, rows["validity_months"])
    out = _bucket_rows(rows, granted, months, bucket_id).assign(origin="amendment")
    return out[_relevant(out, start, end)]


def _raised(rows: pd.DataFrame) -> pd.DataFrame:
    """The raises above L, with the units they add (`added`), in (asset, grant, window, day)
    order."""
    rows = rows.sort_values(["asset_id", "grant_id", "window", "effective_date"])
    raised = rows.groupby(["asset_id", "grant_id", "window"])["new_quantity"].cummax()
    before = raised.groupby([rows["asset_id"], rows["grant_id"], rows["window"]]).shift()
    # In exact integers: micro-units of quantities up to 10^12 pass float64's 2^53.
    largest = np.maximum(rows["granted_on"].to_numpy("int64"),
                         before.to_numpy("int64", na_value=-1))  # fmt: skip
    rows = rows.assign(added=rows["new_quantity"].to_numpy("int64") - largest)
    return rows[rows["added"] > 0]


def _credits(credits: pd.DataFrame, assets: pd.DataFrame, start, end) -> pd.DataFrame:
    """One bucket per credit grant; an asset-bound one within its asset's dates."""
    asset = assets.set_index("asset_id").reindex(credits["asset_id"])
    begins, ends = asset["start_date"].to_numpy(), asset["final_end"].to_numpy()
    starts = pd.Series(begins, index=credits.index).astype("datetime64[s]")
    valid_from = credits["effective_date"].where(
        starts.isna() | (credits["effective_date"] > starts), starts
    )
    no_text = pd.Series(np.nan, index=credits.index, dtype="str")
    out = pd.DataFrame({
        "bucket_id": "credit:" + credits["credit_id"], "origin": "credit",
        "account_id": credits["account_id"], "asset_id": credits["asset_id"], "grant_id": no_text,
        "usage_resource_id": credits["usage_resource_id"],
        "binding": credits["asset_id"].notna().map({True: "asset", False: "account"}),
        "priority": credits["priority"], "granted": credits["quantity"].astype("int64"),
        "valid_from": valid_from,
        "valid_to": _cut(credits["valid_to"], pd.Series(ends, index=credits.index)),
        "rollover": "none", "rollover_cap": pd.Series(pd.NA, index=credits.index, dtype="Int64"),
        "max_rollovers": 0, "rollover_months": pd.Series(pd.NA, index=credits.index, dtype="Int64"),
        "final_end": pd.Series(ends, index=credits.index), "grant_type": "grant",
        "commitment_rate": no_text, "change_id": no_text,
        "cancelled_by": asset["cancelled_by"].to_numpy(), "credit_id": credits["credit_id"],
        "reason": credits["reason"],
    })  # fmt: skip
    return out[_relevant(out, start, end)]


def cut_by_contract(buckets: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Buckets made before a cancellation was known (carried from a period computed earlier) end
    by their asset's final end, their `granted` unchanged."""
    if catalog.changes.empty or buckets.empty or catalog.changes["end_date"].isna().all():
        return buckets
    ends = Timeline(catalog.assets, catalog.changes).ends["end_date"]
    final = pd.Series(ends.reindex(buckets["asset_id"]).to_numpy(), index=buckets.index)
    final = final.where(final.notna(), pd.to_datetime(buckets["asset_end_date"]))
    valid_to = pd.to_datetime(buckets["valid_to"]).astype("datetime64[s]")
    return buckets.assign(valid_to=_cut(valid_to, final), asset_end_date=final)


def _cut(valid_to: pd.Series, asset_end: pd.Series) -> pd.Series:
    """A bucket ends at the asset's end date if that comes first (or if it never would end)."""
    asset_end = asset_end.astype("datetime64[s]")
    ends_first = asset_end.notna() & (valid_to.isna() | (asset_end < valid_to))
    return valid_to.astype("datetime64[s]").where(~ends_first, asset_end)


def _behind(buckets: pd.DataFrame) -> pd.Series:
    """The changes behind each bucket: the one in force on its first day (or that added it), and
    the cancellation that cut its end, if another."""
    first = buckets["change_id"].astype("str")
    end = buckets["final_end"]
    cut = buckets["cancelled_by"].notna() & end.notna() & buckets["valid_to"].eq(end)
    if not cut.any():
        return first
    by, was = buckets["cancelled_by"][cut].astype("str"), first[cut]
    return first.mask(cut, by.where(was.isna() | was.eq(by), was + " " + by))


def _finish(buckets: pd.DataFrame) -> pd.DataFrame:
    n = buckets.index
    grant_type = buckets["grant_type"].astype("str")
    origin = buckets["origin"].where(
        ~(buckets["origin"].eq("grant") & grant_type.eq("commit")), "commitment"
    )
    out = pd.DataFrame({
        "bucket_id": buckets["bucket_id"], "origin": origin,
        "account_id": buckets["account_id"], "asset_id": buckets["asset_id"],
        "grant_id": buckets["grant_id"].astype("str"),
        "usage_resource_id": buckets["usage_resource_id"], "binding": buckets["binding"],
        "priority": buckets["priority"].astype("int64"),
        "granted": from_micro(buckets["granted"].astype("int64")),
        "valid_from": buckets["valid_from"].astype("datetime64[s]"),
        "valid_to": buckets["valid_to"].astype("datetime64[s]"),
        "rollover_generation": 0,
        "parent_bucket_id": pd.Series(pd.NA, index=n, dtype="str"),
        "rollover": buckets["rollover"], "rollover_cap": from_micro(buckets["rollover_cap"].astype("Int64")),
        "max_rollovers": buckets["max_rollovers"].astype("int64"),
        "rollover_months": buckets["rollover_months"].astype("Int64"),
        "asset_end_date": buckets["final_end"].astype("datetime64[s]"),
        "grant_type": grant_type, "commitment_rate": buckets["commitment_rate"].astype("str"),
        "change_id": _behind(buckets), "credit_id": buckets["credit_id"].astype("str"),
        "reason": buckets["reason"].astype("str"),
    })  # fmt: skip
    return out[BUCKET_COLUMNS].sort_values("bucket_id", ignore_index=True)
