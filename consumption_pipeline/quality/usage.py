"""Expectation suites on the events of docs/rules.md stage 1, as the ingest wrote them.

Accepted usage (a Great Expectations suite): its keys are set, `event_id` is unique, the quantity is a number of at most 6
decimals in [0, 10^12), the usage date is in the period, and account, resource and asset are
known to the catalog (the asset belonging to the event's account). Quarantined events: each one
says why, and where it was read (source file and row), so nothing is lost without a trace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow as pa

from consumption_pipeline.domain.calendar import period_bounds
from consumption_pipeline.domain.catalog import Catalog, lookup
from consumption_pipeline.domain.hashing import Among, repeated_hashes, text_hashes
from consumption_pipeline.domain.quantities import DECIMALS, MAX_QUANTITY
from consumption_pipeline.quality.expectations import (
    ROW_LIMIT,
    Failure,
    gxe,
    membership,
    validate_by_column,
)
from consumption_pipeline.quality.outcome import Outcome, verdict

LOCATION = ["source_file", "row_number", "event_id", "column", "expected", "got"]
KEYS = ["event_id", "account_id", "usage_resource_id", "quantity", "occurred_at", "usage_date"]
EXPLAINED = ["reason", "source_file", "row_number"]


def accepted_usage(usage_events: pd.DataFrame, catalog: Catalog, period: pd.Timestamp) -> Outcome:
    """The accepted events of `period` against the suite of this module's docstring."""
    suite = AcceptedUsage(catalog, period)
    suite.add(usage_events)
    return suite.outcome(lambda: [])


class AcceptedUsage:
    """The accepted_usage suite over the events of `period` given part by part, each part
    checked as it comes: the outcome is the one of all the parts as one frame. Each rule's
    count adds up and its first failing rows are the first of the parts in order; an event id
    repeated across parts is found by its hash, and confirmed on the ids read again."""

    def __init__(self, catalog: Catalog, period: pd.Timestamp) -> None:
        self._catalog, self._period = catalog, period
        self._rows, self._hashes = 0, []
        self._failed: dict[int, tuple[Failure, list[list]]] = {}  # order -> counted, located

    def add(self, part: pd.DataFrame) -> None:
        frame = part.reset_index(drop=True)
        checked, hashes = _checked_columns(frame, self._catalog, self._period)
        for f in validate_by_column(checked, _suite(self._period), "accepted_usage"):
            counted, located = self._failed.get(f.order, (replace(f, count=0), []))
            located += _where(frame, f)[: ROW_LIMIT - len(located)]
            self._failed[f.order] = replace(counted, count=counted.count + f.count), located
        self._rows += len(frame)
        self._hashes.append(hashes)

    def outcome(self, reread: Callable[[], Iterable[pd.DataFrame]]) -> Outcome:
        """The outcome; `reread` gives the source_file, row_number and event_id of every row
        again, in order (in parts of any size), when an id's hash repeats across parts."""
        if len(self._hashes) > 1:
            self._unique_across(reread)
        failed = [self._failed[order] for order in sorted(self._failed)]
        violations = sum(counted.count for counted, _ in failed)
        located = _listed([row for _, rows in failed for row in rows])
        return verdict("accepted_usage", located, f"{self._rows} accepted events",
                       events=self._rows, violations=violations)  # fmt: skip

    def _unique_across(self, reread: Callable[[], Iterable[pd.DataFrame]]) -> None:
        """The uniqueness rule over every part: ids whose hashes repeat, compared as text."""
        repeated = repeated_hashes(self._hashes)
        if not len(repeated):
            return
        wanted = Among(repeated).rows(np.concatenate(self._hashes))  # sorted positions
        found, start = [], 0
        for part in reread():
            mine = wanted[(wanted >= start) & (wanted < start + len(part))] - start
            found.append(part.iloc[mine])
            start += len(part)
        if start != self._rows:
            raise ValueError(f"{start} accepted events read back, {self._rows} checked")
        maybe = pd.concat(found, ignore_index=True)
        twice = maybe[maybe["event_id"].notna() & maybe["event_id"].duplicated(keep=False)]
        self._failed.pop(_UNIQUE_ORDER, None)
        if len(twice):
            rule = Failure(_UNIQUE_ORDER, "event_id", UNIQUE, len(twice), [])
            located = [[*where, "event_id", UNIQUE, where[2]]
                       for where in twice[["source_file", "row_number", "event_id"]]
                       .head(ROW_LIMIT).itertuples(index=False)]  # fmt: skip
            self._failed[_UNIQUE_ORDER] = rule, located


UNIQUE = "a unique event_id"
_UNIQUE_ORDER = len(KEYS)  # the suite's rule after the keys' null checks


def _suite(period: pd.Timestamp) -> list:
    start, end = period_bounds(period)
    e = gxe()

    def expect(kind, about: str, expected: str, **kwargs):
        return getattr(e, kind)(meta={"column": about, "expected": expected}, **kwargs)

    return [
        *(expect("ExpectColumnValuesToNotBeNull", c, "a value", column=c) for c in KEYS),
        expect("ExpectColumnValuesToBeInSet", "event_id", UNIQUE,
               column="event_id once", value_set=[True]),
        expect("ExpectColumnValuesToBeBetween", "quantity", f"a quantity in [0, {MAX_QUANTITY})",
               column="quantity", min_value=0, max_value=MAX_QUANTITY, strict_max=True),
        expect("ExpectColumnPairValuesToBeEqual", "quantity", "at most 6 decimals",
               column_A="quantity", column_B="quantity_6_decimals",
               ignore_row_if="either_value_is_missing"),
        expect("ExpectColumnValuesToBeBetween", "usage_date",
               f"a usage date in {start:%Y-%m-%d} to {end - pd.Timedelta(days=1):%Y-%m-%d}",
               column="period_day", min_value=0, max_value=(end - start).days, strict_max=True),
        *(expect("ExpectColumnValuesToBeInSet", c, f"a known {c}", column=f"{c} known",
                 value_set=[True]) for c in ("account_id", "usage_resource_id", "asset_id")),
        expect("ExpectColumnValuesToBeInSet", "asset_id", "an asset of the event's account",
               column="asset of the account", value_set=[True]),
    ]  # fmt: skip


def _checked_columns(
    frame: pd.DataFrame, catalog: Catalog, period: pd.Timestamp
) -> tuple[pd.DataFrame, np.ndarray]:
    """The columns the suite reads, and the hashes of the event ids. GX copies its frame once
    per expectation: ids as categories (integer codes, same nulls and equalities) and derived
    columns keep ten million rows cheap."""
    start, _ = period_bounds(period)
    ids = {c: frame[c].astype("category") for c in ["account_id", "usage_resource_id"]}
    event_ids, hashes = _hashed(frame["event_id"])
    checked = pd.DataFrame({
        # Event ids as their hashes (same nulls); uniqueness as a column, told by the hashes and
        # confirmed on the text of the few ids whose hashes repeat.
        "event_id": event_ids, "event_id once": _once(frame["event_id"], hashes), **ids,
        "quantity": frame["quantity"], "occurred_at": frame["occurred_at"],
        "usage_date": frame["usage_date"],
        # The quantity rounded to 6 decimals must be the quantity itself.
        "quantity_6_decimals": np.round(frame["quantity"].astype("float64"), DECIMALS),
        # Days from the period's start: an integer range is far cheaper to check than dates.
        "period_day": (pd.to_datetime(frame["usage_date"]) - start).dt.days,
        # Set membership as columns: a GX value set of thousands of ids costs seconds per check.
        "account_id known": membership(frame["account_id"], catalog.accounts["account_id"]),
        "usage_resource_id known": membership(frame["usage_resource_id"],
                                              catalog.resources["usage_resource_id"]),
        "asset_id known": membership(frame["asset_id"], catalog.assets["asset_id"]),
        # The event's account owns its asset (a pair-in-set expectation is row by row: too slow).
        "asset of the account": _owned(frame, catalog),
    })  # fmt: skip
    return checked, hashes


def _owned(frame: pd.DataFrame, catalog: Catalog) -> pd.Series:
    """True where the event's asset belongs to its account, NA where either is missing or the
    asset unknown; compared as account numbers, not texts."""
    accounts = pd.Index(catalog.accounts["account_id"], dtype="str")
    number = pd.Series(np.arange(len(accounts)), index=accounts)
    owner_of = pd.Series(accounts.get_indexer(catalog.assets["account_id"]),
                         index=pd.Index(catalog.assets["asset_id"], dtype="str"))  # fmt: skip
    owner, account = lookup(frame["asset_id"], owner_of), lookup(frame["account_id"], number)
    owned = pd.Series(owner.to_numpy(dtype=float) == account.to_numpy(dtype=float))
    return owned.astype("boolean").where(owner.notna() & frame["account_id"].notna(), pd.NA)


def _hashed(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    text = pa.array(values.astype("str"), pa.large_string(), from_pandas=True)
    hashes = text_hashes(text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text)
    return pd.Series(pd.arrays.IntegerArray(hashes, values.isna().to_numpy())), hashes


def _once(values: pd.Series, hashes: np.ndarray) -> pd.Series:
    """True where a value occurs once, False where it repeats, NA where missing."""
    once = np.ones(len(values), bool)
    maybe = Among(repeated_hashes([hashes])).rows(hashes)
    once[maybe] = ~values.iloc[maybe].duplicated(keep=False).to_numpy()
    return pd.Series(once).astype("boolean").where(values.notna(), pd.NA)


def quarantine_explained(quarantined_events: pd.DataFrame) -> Outcome:
    """Every quarantined event has a reason, a source file and a row number (three null
    checks: plain pandas, no suite to run)."""
    frame = quarantined_events.reset_index(drop=True)
    missing = [Failure(i, c, "a value", int(frame[c].isna().sum()), frame.index[frame[c].isna()].tolist())
               for i, c in enumerate(EXPLAINED)]  # fmt: skip
    failing = _located(frame, [f for f in missing if f.count])
    reasons = frame["reason"].value_counts().sort_index()
    counts = {f"reason/{r}": int(n) for r, n in reasons.items()}
    return verdict("quarantine_explained", failing, f"{len(frame)} quarantined events", **counts)


def _located(frame: pd.DataFrame, failures: list[Failure]) -> pd.DataFrame:
    return _listed([row for f in failures for row in _where(frame, f)])


def _where(frame: pd.DataFrame, failure: Failure) -> list[list]:
    """The LOCATION of each failing row of `failure`."""
    rows = []
    for i in failure.rows:
        got = frame.at[i, failure.column] if failure.column in frame else None
        where = frame.loc[i, ["source_file", "row_number", "event_id"]]
        rows.append([*where, failure.column, failure.expected, "" if _missing(got) else got])
    return rows


def _listed(rows: list[list]) -> pd.DataFrame:
    """Located rows as the outcome's failing rows."""
    # One problem per event (the first of the suite), in file order.
    out = pd.DataFrame(rows, columns=LOCATION).drop_duplicates(["source_file", "row_number"])
    out = out.sort_values(["source_file", "row_number"], kind="stable")
    out["problem"] = [
        f"{r.source_file} row {r.row_number}, event {r.event_id!r}, column '{r.column}': "
        f"expected {r.expected}, got {_text(r.got)!r}"
        for r in out.itertuples(index=False)
    ]
    return out


def _missing(value) -> bool:
    return value is None or (np.ndim(value) == 0 and pd.isna(value))


def _text(value) -> str:
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d") if value == value.normalize() else value.isoformat()
    return str(value)
