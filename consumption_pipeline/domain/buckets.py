"""Stage 2 of DOMAIN.md: entitlement buckets from assetized products.

Every (asset, grant of its product) pair yields one bucket (one-time grants) or month-aligned
k-month buckets (renewing grants). Only the buckets a period needs are built: those valid during
it, and those ending on its first day (their close, expiry or rollover, happens in it).
"""

from __future__ import annotations

import pandas as pd

from consumption_pipeline.domain.calendar import add_months, month_index, month_start, period_bounds
from consumption_pipeline.domain.catalog import Catalog
from consumption_pipeline.domain.quantities import MICRO, from_micro

BUCKET_COLUMNS = [
    "bucket_id", "origin", "account_id", "asset_id", "grant_id", "usage_resource_id", "binding",
    "priority", "granted", "valid_from", "valid_to", "rollover_generation", "parent_bucket_id",
    "rollover", "rollover_cap", "max_rollovers", "rollover_months", "asset_end_date",
]  # fmt: skip


def create_buckets(catalog: Catalog, period: pd.Timestamp) -> pd.DataFrame:
    """The grant buckets of every asset that matter to `period`, with `granted` after proration."""
    start, end = period_bounds(period)
    pairs = catalog.assets.merge(catalog.grants, on="product_id", suffixes=("_asset", ""))
    pairs = pairs[pairs["start_date"] < end]
    pairs["full_granted"] = _times(pairs["quantity"], pairs["quantity_asset"])
    one_time = _one_time(pairs[pairs["renewal_months"].eq(0)])
    renewing = _renewing(
        pairs[pairs["renewal_months"].gt(0)], month_index(pd.Series([start])).iloc[0]
    )
    buckets = pd.concat([one_time, renewing], ignore_index=True)
    relevant = (buckets["valid_from"] < end) & (
        buckets["valid_to"].isna() | (buckets["valid_to"] >= start)
    )
    buckets = buckets[
        relevant & (buckets["valid_to"].isna() | (buckets["valid_to"] > buckets["valid_from"]))
    ]
    return _finish(buckets)


def _times(grant_micro: pd.Series, asset_micro: pd.Series) -> pd.Series:
    """grant.quantity × asset.quantity in micro-units, rounded half-up to 6 decimals.

    Object columns hold Python integers, so the product is exact (int64 could overflow)."""
    return (grant_micro.astype("object") * asset_micro.astype("object") + MICRO // 2) // MICRO


def _one_time(pairs: pd.DataFrame) -> pd.DataFrame:
    out = pairs.copy()
    out["valid_from"] = out["start_date"]
    out["valid_to"] = _cut(add_months(out["start_date"], out["validity_months"]), out["end_date"])
    out["granted"] = out["full_granted"]
    out["rollover_months"] = out["validity_months"]
    return out


def _renewing(pairs: pd.DataFrame, period_month: int) -> pd.DataFrame:
    """The k-month window holding the period, and the one before it (it may end on day 1)."""
    k = pairs["renewal_months"]
    first_month = month_index(pairs["start_date"])
    current = (period_month - first_month) // k
    windows = pd.concat([pairs.assign(window=current - 1), pairs.assign(window=current)])
    windows = windows[windows["window"] >= 0].copy()
    k, first_month = windows["renewal_months"], month_index(windows["start_date"])
    window_start = month_start(first_month + windows["window"] * k)
    window_end = month_start(first_month + (windows["window"] + 1) * k)
    windows["valid_from"] = window_start.where(
        window_start > windows["start_date"], windows["start_date"]
    )
    windows["valid_to"] = _cut(window_end, windows["end_date"])
    covered = (windows["valid_to"] - windows["valid_from"]).dt.days
    full = (window_end - window_start).dt.days
    partial = windows["prorate"] & (covered < full)
    # floor(granted × days covered / days of the full window), in whole units
    prorated = windows["full_granted"] * covered.astype("object") // (full.astype("object") * MICRO)
    windows["granted"] = (prorated * MICRO).where(partial, windows["full_granted"])
    windows["rollover_months"] = k
    return windows


def _cut(valid_to: pd.Series, asset_end: pd.Series) -> pd.Series:
    """A bucket ends at the asset's end date if that comes first (or if it never would end)."""
    ends_first = asset_end.notna() & (valid_to.isna() | (asset_end < valid_to))
    return valid_to.where(~ends_first, asset_end)


def _finish(buckets: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({
        "bucket_id": buckets["asset_id"] + ":" + buckets["grant_id"] + ":"
        + buckets["valid_from"].dt.strftime("%Y-%m-%d"),
        "origin": "grant", "account_id": buckets["account_id"], "asset_id": buckets["asset_id"],
        "grant_id": buckets["grant_id"], "usage_resource_id": buckets["usage_resource_id"],
        "binding": buckets["binding"], "priority": buckets["priority"].astype("int64"),
        "granted": from_micro(buckets["granted"].astype("int64")),
        "valid_from": buckets["valid_from"], "valid_to": buckets["valid_to"],
        "rollover_generation": 0,
        "parent_bucket_id": pd.Series(pd.NA, index=buckets.index, dtype="str"),
        "rollover": buckets["rollover"], "rollover_cap": from_micro(buckets["rollover_cap"]),
        "max_rollovers": buckets["max_rollovers"].astype("int64"),
        "rollover_months": buckets["rollover_months"].astype("Int64"),
        "asset_end_date": buckets["end_date"],
    })  # fmt: skip
    return out[BUCKET_COLUMNS].sort_values("bucket_id", ignore_index=True)
