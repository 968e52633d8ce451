"""Stage 1 of DOMAIN.md: ingest usage events for one billing period.

Every event read ends in exactly one place: accepted, a removed duplicate, quarantined with a
reason, or left to the period of its usage date. Events whose usage date cannot be known
(malformed rows, unreadable timestamps) are quarantined in every period that reads them.

`event_id` is the idempotency key. Copies of an id are compared as values (quantities in
micro-units, instants in UTC) where their fields parse, and as raw text where they do not:
exact copies count once, whether or not the event is billable (the kept copy is accepted or
quarantined), and an id whose copies differ in anything is a conflict, so no copy is billed.
A conflicting copy that is unbillable on its own keeps its own reason; the others get `conflict`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from consumption_pipeline.domain.catalog import Catalog, lookup
from consumption_pipeline.domain.quantities import from_micro, parse_quantities

ID_COLUMNS = ["event_id", "account_id", "asset_id", "usage_resource_id"]
RAW_COLUMNS = [*ID_COLUMNS, "quantity", "occurred_at"]
PAYLOAD = ["account_id", "asset_id", "usage_resource_id", "quantity_micro", "occurred_ns"]
ACCEPTED_FROM = [*ID_COLUMNS, "quantity_micro", "occurred_at", "usage_date", "source_file",
                 "row_number"]  # fmt: skip


@dataclass(frozen=True)
class Ingested:
    usage_events: pd.DataFrame
    quarantined_events: pd.DataFrame
    reconciliation: dict[str, int]


def ingest(
    files: Iterable[pd.DataFrame], catalog: Catalog, period: pd.Timestamp, timezone: str
) -> Ingested:
    """Accept, deduplicate and quarantine the events of `period` (its month) from raw files
    (parsed one at a time: a raw file read lazily is freed once parsed)."""
    period = pd.Timestamp(period).to_period("M").to_timestamp()
    parsed = [_parse(f, timezone) for f in files] or [
        _parse(
            pd.DataFrame(columns=[*RAW_COLUMNS, "source_file", "row_number", "malformed"]), timezone
        )  # fmt: skip
    ]
    events = pd.concat(parsed, ignore_index=True)
    del parsed
    duplicate = _resolve_duplicates(events)
    _check_references(events, catalog)
    mine = events["event_period"].eq(period) | events["event_period"].isna()
    kept = mine & ~duplicate
    accepted = kept & events["reason"].isna()
    quarantined = kept & events["reason"].notna()
    counts = {
        "events_read": len(events),
        "accepted": int(accepted.sum()),
        "duplicates": int((mine & duplicate).sum()),
        "quarantined": int(quarantined.sum()),
        "other_periods": int((~mine).sum()),
    }
    return Ingested(
        _accepted(events.loc[accepted, ACCEPTED_FROM]), _quarantined(events[quarantined]), counts
    )


def _parse(raw: pd.DataFrame, timezone: str) -> pd.DataFrame:
    frame = pd.DataFrame(index=raw.index)
    for column in ID_COLUMNS:
        frame[column] = _text(raw[column])
    frame["quantity_micro"], quantity_reason = parse_quantities(raw["quantity"])
    frame["occurred_at"] = _instants(raw["occurred_at"])
    frame["usage_date"] = (
        frame["occurred_at"].dt.tz_convert(timezone).dt.tz_localize(None).dt.normalize()
    )
    months = frame["usage_date"].to_numpy().astype("datetime64[M]")
    frame["event_period"] = pd.Series(months.astype("datetime64[us]"), index=raw.index)
    frame["quantity_raw"], frame["occurred_at_raw"] = raw["quantity"], raw["occurred_at"]
    frame["source_file"], frame["row_number"] = raw["source_file"], raw["row_number"]
    # Payload values for comparing copies: parsed where possible, else the raw text (rendered
    # only for the copies of repeated ids, see _resolve_duplicates).
    bad_time = frame["occurred_at"].isna()
    instants = frame["occurred_at"].dt.tz_localize(None).to_numpy().view("int64")
    frame["occurred_ns"] = pd.Series(instants, index=raw.index).where(~bad_time, 0)
    frame["quantity_bad"] = quantity_reason.notna()

    malformed = raw["malformed"].notna()
    reason = pd.Series(pd.NA, index=raw.index, dtype="str").mask(malformed, "malformed_row")
    frame["detail"] = raw["malformed"].astype("str")
    for column in ["event_id", "account_id", "usage_resource_id"]:
        reason = reason.mask(reason.isna() & frame[column].isna(), f"missing_{column}")
    reason = reason.fillna(quantity_reason)
    missing_time = bad_time & _text_where(raw["occurred_at"], bad_time).isna()
    reason = reason.mask(reason.isna() & bad_time & missing_time, "missing_occurred_at")
    reason = reason.mask(reason.isna() & bad_time, "invalid_occurred_at")
    frame["reason"] = reason
    # Rows that could not be read have no trustworthy date: they belong to no single period.
    frame.loc[malformed, "event_period"] = pd.NaT
    return frame


def _text(values: pd.Series) -> pd.Series:
    """Stripped text, NA where missing or blank; a categorical is cleaned once per category."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = _text(pd.Series(values.cat.categories, dtype="str")).array
        codes = values.cat.codes.to_numpy()
        return pd.Series(categories.take(codes, allow_fill=True), index=values.index)
    text = values.astype("str").str.strip()
    return text.where(values.notna() & text.ne(""), pd.NA)


def _text_where(values: pd.Series, rows: pd.Series) -> pd.Series:
    """The text of the chosen rows only (NA elsewhere): rendering every Parquet instant or number
    as text would dominate the ingest."""
    out = pd.Series(pd.NA, index=values.index, dtype="str")
    if rows.any():
        out[rows] = _text(values[rows])
    return out


def _instants(values: pd.Series) -> pd.Series:
    """Instants in UTC; a timestamp written without an offset is UTC."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize("UTC").astype("datetime64[us, UTC]")
    text = _text(values)
    parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    return parsed.astype("datetime64[us, UTC]")


def _resolve_duplicates(events: pd.DataFrame) -> pd.Series:
    """Mark exact repeats of an event_id as duplicates; quarantine every copy of a conflict."""
    ids = pd.factorize(events["event_id"])[0]  # -1 where missing
    ids[events["reason"].eq("malformed_row").to_numpy()] = -1
    counts = np.bincount(ids[ids >= 0], minlength=1)
    # Payloads are compared only where an id occurs more than once (rare in real feeds).
    rows = np.flatnonzero((ids >= 0) & (counts[np.maximum(ids, 0)] > 1))
    keyed = events.iloc[rows]
    keyed = (
        keyed[PAYLOAD]
        .assign(
            id=ids[rows],
            occurred_unparsed=_text_where(keyed["occurred_at_raw"], keyed["occurred_at"].isna()),
            quantity_unparsed=_text_where(keyed["quantity_raw"], keyed["quantity_bad"]),
        )
        .fillna({"occurred_unparsed": "", "quantity_unparsed": ""})
    )
    repeat = keyed.duplicated(keep="first").to_numpy()
    payloads = np.bincount(keyed["id"].to_numpy()[~repeat], minlength=len(counts))  # per id
    conflict, duplicate = np.zeros(len(events), bool), np.zeros(len(events), bool)
    conflict[rows] = payloads[keyed["id"].to_numpy()] > 1
    duplicate[rows] = repeat
    marked = conflict & events["reason"].isna().to_numpy()
    events.loc[marked, "reason"] = "conflict"
    events.loc[marked, "detail"] = "same event_id with a different payload"
    return pd.Series(duplicate & ~conflict, index=events.index)


def _check_references(events: pd.DataFrame, catalog: Catalog) -> None:
    pending = events["reason"].isna()
    owner = catalog.assets.set_index("asset_id")["account_id"]
    asset_owner = lookup(events["asset_id"], owner)
    resources = catalog.resources["usage_resource_id"]
    checks = [
        ("unknown_account", ~events["account_id"].isin(catalog.accounts["account_id"])),
        ("unknown_usage_resource", ~events["usage_resource_id"].isin(resources)),
        ("unknown_asset", events["asset_id"].notna() & asset_owner.isna()),
        ("asset_of_another_account", asset_owner.notna() & asset_owner.ne(events["account_id"])),
    ]  # fmt: skip
    for reason, failed in checks:
        hit = pending & failed.fillna(False)
        events.loc[hit, "reason"] = reason
        pending &= ~hit


def _accepted(events: pd.DataFrame) -> pd.DataFrame:
    out = events[[*ID_COLUMNS, "occurred_at", "usage_date", "source_file"]]
    out.insert(4, "quantity", from_micro(events["quantity_micro"]))
    out["row_number"] = events["row_number"].astype("int64")
    # Files come sorted by name and rows in file order: the events stay in (file, row) order,
    # which is deterministic and far cheaper than sorting millions of ids.
    return out.reset_index(drop=True)


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
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
        return values.map(lambda v: v.isoformat(), na_action="ignore").astype("str")
    return values.astype("str").where(values.notna(), pd.NA)
