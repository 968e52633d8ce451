"""Stage 1 of DOMAIN.md: ingest usage events for one billing period.

Every event read ends in exactly one place: accepted, a removed duplicate, quarantined with a
reason, or left to the period of its usage date. Events whose usage date cannot be known
(malformed rows, unreadable timestamps) are quarantined in every period that reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from consumption_pipeline.domain.catalog import Catalog
from consumption_pipeline.domain.quantities import from_micro, parse_quantities

ID_COLUMNS = ["event_id", "account_id", "asset_id", "usage_resource_id"]
RAW_COLUMNS = [*ID_COLUMNS, "quantity", "occurred_at"]
PAYLOAD = ["account_id", "asset_key", "usage_resource_id", "quantity_micro", "occurred_ns"]


@dataclass(frozen=True)
class Ingested:
    usage_events: pd.DataFrame
    quarantined_events: pd.DataFrame
    reconciliation: dict[str, int]


def ingest(
    files: list[pd.DataFrame], catalog: Catalog, period: pd.Timestamp, timezone: str
) -> Ingested:
    """Accept, deduplicate and quarantine the events of `period` (its first day) from raw files."""
    events = pd.concat([_parse(f, timezone) for f in files], ignore_index=True)
    events["reason"] = events["reason"].where(events["reason"].notna(), pd.NA)
    duplicate = _resolve_duplicates(events)
    _check_references(events, catalog)
    in_period = events["event_period"].eq(period)
    unplaced = events["event_period"].isna()
    mine = in_period | unplaced
    accepted = mine & events["reason"].isna() & ~duplicate
    quarantined = mine & events["reason"].notna()
    counts = {
        "events_read": len(events),
        "accepted": int(accepted.sum()),
        "duplicates": int((in_period & duplicate & events["reason"].isna()).sum()),
        "quarantined": int(quarantined.sum()),
        "other_periods": int((~mine).sum()),
    }
    return Ingested(_accepted(events[accepted]), _quarantined(events[quarantined]), counts)


def _parse(raw: pd.DataFrame, timezone: str) -> pd.DataFrame:
    frame = pd.DataFrame(index=raw.index)
    for column in ID_COLUMNS:
        frame[column] = _text(raw[column])
    frame["quantity_micro"], quantity_reason = parse_quantities(raw["quantity"])
    frame["occurred_at"] = _instants(raw["occurred_at"])
    frame["usage_date"] = (
        frame["occurred_at"].dt.tz_convert(timezone).dt.tz_localize(None).dt.normalize()
    )
    frame["event_period"] = frame["usage_date"].dt.to_period("M").dt.to_timestamp()
    frame["quantity_raw"], frame["occurred_at_raw"] = raw["quantity"], raw["occurred_at"]
    frame["source_file"], frame["row_number"] = raw["source_file"], raw["row_number"]
    reason = raw["malformed"].map(lambda _: "malformed_row", na_action="ignore").astype("str")
    frame["detail"] = raw["malformed"].astype("str")
    for column in ["event_id", "account_id", "usage_resource_id"]:
        reason = reason.fillna(frame[column].isna().map({True: f"missing_{column}", False: pd.NA}))
    reason = reason.fillna(quantity_reason)
    bad_time = frame["occurred_at"].isna()
    missing_time = _text(raw["occurred_at"]).isna()
    reason = reason.mask(reason.isna() & bad_time & missing_time, "missing_occurred_at")
    reason = reason.mask(reason.isna() & bad_time, "invalid_occurred_at")
    frame["reason"] = reason
    # Rows that could not be read have no trustworthy date: they belong to no single period.
    frame.loc[frame["reason"].eq("malformed_row"), "event_period"] = pd.NaT
    return frame


def _text(values: pd.Series) -> pd.Series:
    text = values.astype("str").str.strip()
    return text.where(values.notna() & text.ne(""), pd.NA)


def _instants(values: pd.Series) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize("UTC").astype("datetime64[us, UTC]")
    text = _text(values)
    parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    return parsed.astype("datetime64[us, UTC]")


def _resolve_duplicates(events: pd.DataFrame) -> pd.Series:
    """Mark exact repeats of an event as duplicates and quarantine every copy of a conflict.

    Payloads compare as values: quantities in micro-units, instants in UTC."""
    valid = events["reason"].isna()
    keyed = events.loc[valid, ["event_id"]].copy()
    keyed["asset_key"] = events.loc[valid, "asset_id"].fillna("")
    for column in ["account_id", "usage_resource_id", "quantity_micro"]:
        keyed[column] = events.loc[valid, column]
    keyed["occurred_ns"] = events.loc[valid, "occurred_at"].astype("int64")
    distinct = keyed.drop_duplicates(["event_id", *PAYLOAD])
    conflicting = distinct.loc[distinct["event_id"].duplicated(keep=False), "event_id"]
    conflict = valid & events["event_id"].isin(conflicting)
    events.loc[conflict, "reason"] = "conflict"
    events.loc[conflict, "detail"] = "same event_id with a different payload"
    repeat = keyed.duplicated(["event_id", *PAYLOAD], keep="first")
    return pd.Series(repeat, index=keyed.index).reindex(events.index, fill_value=False) & ~conflict


def _check_references(events: pd.DataFrame, catalog: Catalog) -> None:
    pending = events["reason"].isna()
    owner = catalog.assets.set_index("asset_id")["account_id"]
    asset_owner = events["asset_id"].map(owner)
    checks = [
        ("unknown_account", ~events["account_id"].isin(catalog.accounts["account_id"])),
        ("unknown_usage_resource", ~events["usage_resource_id"].isin(catalog.resources["usage_resource_id"])),
        ("unknown_asset", events["asset_id"].notna() & asset_owner.isna()),
        ("asset_of_another_account", asset_owner.notna() & asset_owner.ne(events["account_id"])),
    ]  # fmt: skip
    for reason, failed in checks:
        hit = pending & failed.fillna(False)
        events.loc[hit, "reason"] = reason
        pending &= ~hit


def _accepted(events: pd.DataFrame) -> pd.DataFrame:
    out = events[[*ID_COLUMNS, "occurred_at", "usage_date", "source_file", "row_number"]].copy()
    out.insert(4, "quantity", from_micro(events["quantity_micro"]))
    return out.sort_values(["account_id", "usage_date", "event_id"], ignore_index=True)


def _quarantined(events: pd.DataFrame) -> pd.DataFrame:
    out = events[[*ID_COLUMNS]].copy()
    out["quantity"] = _raw_text(events["quantity_raw"])
    out["occurred_at"] = _raw_text(events["occurred_at_raw"])
    out["reason"] = events["reason"].astype("str")
    out["detail"] = events["detail"]
    out["source_file"], out["row_number"] = (
        events["source_file"],
        events["row_number"].astype("int64"),
    )
    return out.sort_values(["source_file", "row_number"], ignore_index=True)


def _raw_text(values: pd.Series) -> pd.Series:
    as_text = values.map(
        lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v), na_action="ignore"
    )
    return as_text.astype("str")
