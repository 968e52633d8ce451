"""The input contract of docs/rules.md "Inputs" as one expectation suite per catalog file.

The suites read the files as text, before anything is typed, and report every failing cell (the
catalog builder stops at the first): required columns and values, types, allowed values, unique
keys and references to other files (Great Expectations). Rules across rows are checked here too,
because billing from them would be ambiguous:

- rates of the same key (token rates: the resource; prices: level, account, asset, resource and
  currency) must not be in effect on the same day: their `[effective_from, effective_to)` ranges
  must not overlap;
- the rows of one rate (same key and `effective_from`) are its tiers: `tier_lower` starts at 0 and
  increases strictly down the file; a per_unit or package rate has one row; every row of a rate
  has the same pricing_model, package_size and effective_to.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd

from consumption_pipeline.domain.alerts import CHANNELS, KINDS, SCOPES, rule_problems
from consumption_pipeline.domain.catalog import (
    COMMITMENT_RATES,
    DECIMAL_TEXT,
    DRAWDOWN_ORDERS,
    GRANT_TYPES,
    OPTIONAL_FILES,
    PRICING_MODELS,
    RENEWAL_MONTHS,
    REQUIRED,
    CatalogError,
)
from consumption_pipeline.domain.contracts import change_problems, credit_problems
from consumption_pipeline.domain.money import MINOR_UNITS
from consumption_pipeline.quality.expectations import (
    Failure,
    gxe,
    membership,
    row_condition,
    validate,
)  # fmt: skip
from consumption_pipeline.quality.outcome import Outcome, problems, verdict
from consumption_pipeline.storage.sources import catalog_digest

LOCATION = ["file", "row", "line", "column", "expected", "got"]
DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
NUMBER = rf"^{DECIMAL_TEXT}$"
MORE_THAN_6_DECIMALS = r"^[^eE]*\.[0-9]{6}[0-9]*[1-9][0-9]*$"
RATE_FILES = ("price_book.csv", "negotiated_rates.csv")
RATE_KEYS = {
    "token_rates.csv": ["usage_resource_id"],
    "price_book.csv": ["usage_resource_id", "currency"],
    "negotiated_rates.csv": ["account_id", "asset_id", "usage_resource_id", "currency"],
}


@dataclass(frozen=True)
class Column:
    """One column of the contract: its kind, whether it must be set, and what it refers to."""

    name: str
    kind: str = "text"  # text|date|quantity|whole|decimal|currency|enum
    required: bool = False
    allowed: tuple[str, ...] = ()
    unique: bool = False
    refers: tuple[str, str] | None = None  # (file, column) holding the known values


BOOL = ("true", "false")
RATE = [
    Column("usage_resource_id", required=True, refers=("usage_resources.csv", "usage_resource_id")),
    Column("currency", "currency", required=True),
    Column("pricing_model", "enum", required=True, allowed=PRICING_MODELS),
    Column("tier_lower", "decimal"), Column("unit_price", "decimal", required=True),
    Column("package_size", "quantity"), Column("flat_fee", "decimal"),
    Column("effective_from", "date", required=True), Column("effective_to", "date"),
]  # fmt: skip
CONTRACT: dict[str, list[Column]] = {
    "accounts.csv": [
        Column("account_id", required=True, unique=True), Column("account_name", required=True),
        Column("currency", "currency", required=True),
        Column("drawdown_order", "enum", allowed=DRAWDOWN_ORDERS),
    ],
    "usage_resources.csv": [
        Column("usage_resource_id", required=True, unique=True), Column("name", required=True),
        Column("unit_of_measure", required=True),
        Column("category", "enum", allowed=("usage", "token")),
        Column("aggregation_method", "enum", allowed=("sum", "peak")),
        Column("aggregation_period", "enum", allowed=("daily", "monthly")),
        Column("token_resource_id", refers=("usage_resources.csv", "usage_resource_id")),
        Column("overage_chargeable", "enum", allowed=BOOL),
    ],
    "token_rates.csv": [
        Column("usage_resource_id", required=True,
               refers=("usage_resources.csv", "usage_resource_id")),
        Column("tokens_per_unit", "quantity", required=True),
        Column("effective_from", "date", required=True), Column("effective_to", "date"),
    ],
    "products.csv": [
        Column("product_id", required=True, unique=True), Column("product_name", required=True),
    ],
    "product_grants.csv": [
        Column("grant_id", required=True, unique=True),
        Column("product_id", required=True, refers=("products.csv", "product_id")),
        Column("usage_resource_id", required=True,
               refers=("usage_resources.csv", "usage_resource_id")),
        Column("quantity", "quantity", required=True),
        Column("renewal", "enum", required=True, allowed=tuple(RENEWAL_MONTHS)),
        Column("validity_months", "whole"),
        Column("rollover", "enum", allowed=("none", "full", "capped")),
        Column("rollover_cap", "quantity"), Column("max_rollovers", "whole"),
        Column("binding", "enum", allowed=("asset", "account")), Column("priority", "whole"),
        Column("prorate", "enum", allowed=BOOL),
        Column("grant_type", "enum", allowed=GRANT_TYPES),
        Column("commitment_rate", "enum", allowed=COMMITMENT_RATES),
    ],
    "assets.csv": [
        Column("asset_id", required=True, unique=True),
        Column("account_id", required=True, refers=("accounts.csv", "account_id")),
        Column("product_id", required=True, refers=("products.csv", "product_id")),
        Column("quantity", "quantity", required=True),
        Column("start_date", "date", required=True), Column("end_date", "date"),
        Column("drawdown_order", "enum", allowed=DRAWDOWN_ORDERS),
    ],
    "price_book.csv": RATE,
    "negotiated_rates.csv": [
        Column("account_id", required=True, refers=("accounts.csv", "account_id")),
        Column("asset_id", refers=("assets.csv", "asset_id")), *RATE,
    ],
    "asset_changes.csv": [
        Column("change_id", required=True, unique=True),
        Column("asset_id", required=True, refers=("assets.csv", "asset_id")),
        Column("effective_date", "date", required=True), Column("quantity", "quantity"),
        Column("end_date", "date"),
    ],
    "credit_grants.csv": [
        Column("credit_id", required=True, unique=True),
        Column("account_id", required=True, refers=("accounts.csv", "account_id")),
        Column("asset_id", refers=("assets.csv", "asset_id")),
        Column("usage_resource_id", required=True,
               refers=("usage_resources.csv", "usage_resource_id")),
        Column("quantity", "quantity", required=True),
        Column("effective_date", "date", required=True), Column("valid_to", "date"),
        Column("priority", "integer"), Column("reason"),
    ],
    "alert_rules.csv": [
        Column("rule_id", required=True, unique=True),
        Column("account_id", refers=("accounts.csv", "account_id")),
        Column("kind", "enum", required=True, allowed=KINDS),
        Column("threshold", "decimal", required=True),
        Column("usage_resource_id", refers=("usage_resources.csv", "usage_resource_id")),
        Column("scope", "enum", allowed=SCOPES), Column("channel", "enum", allowed=CHANNELS),
        Column("recipient"),
    ],
}  # fmt: skip
# Expected-value wording, shared with the catalog builder's errors.
EXPECTED = {
    "date": "a date YYYY-MM-DD", "quantity": "a non-negative number with at most 6 decimals",
    "whole": "a whole number", "integer": "an integer",
    "decimal": "a non-negative decimal number",
    "currency": "an ISO 4217 code like USD",
}  # fmt: skip
# Files that bill nothing when empty: a header without rows is a broken export.
NOT_EMPTY = ("accounts.csv", "usage_resources.csv")


def check_name(file: str) -> str:
    """The check of one catalog file, e.g. `catalog_price_book` for price_book.csv."""
    return "catalog_" + file.removesuffix(".csv")


def check_catalog(
    files: dict[str, pd.DataFrame], error: CatalogError | None = None
) -> list[Outcome]:
    """One outcome per catalog file (text frames keyed by file name, as `sources` reads them).

    `error` is what the catalog builder raised, if it did: its cell fails that file's check too,
    so a catalog that cannot be built never shows a passing check. The same files give the same
    outcomes: a process billing several periods validates its catalog once."""
    key = catalog_digest(files, str(error).encode() if error else b"")
    if key not in _CHECKED:
        cells = {name: _cells(frame) for name, frame in files.items()}
        _CHECKED.clear()  # one catalog is current at a time
        _CHECKED[key] = [_check_file(name, cells, error) for name in REQUIRED]
    return _CHECKED[key]


_CHECKED: dict[str, list[Outcome]] = {}


def check_file(
    name: str, files: dict[str, pd.DataFrame], error: CatalogError | None = None
) -> Outcome:
    """The outcome of one catalog file (the others are read for its references)."""
    return _check_file(name, {n: _cells(frame) for n, frame in files.items()}, error)


def _check_file(name: str, cells: dict[str, pd.DataFrame], error: CatalogError | None) -> Outcome:
    if name in cells:
        failing = _failing(name, cells)
    elif name in OPTIONAL_FILES:
        failing = _located(name, [])
    else:
        failing = _located(name, [(None, "", "the file", "")])
        failing["problem"] = f"{name}: required catalog file is missing"
    if error is not None and error.file == name:
        failing = _with_error(failing, name, error)
    rows = len(cells[name]) if name in cells else 0
    return verdict(check_name(name), failing, f"{rows} rows of {name}", rows=rows)


def _cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells trimmed, None where empty (as the builder reads them), positional index."""
    frame = frame.reset_index(drop=True)
    out = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        text = frame[column].astype("str").str.strip()
        set_ = frame[column].notna() & text.ne("")
        out[str(column).strip().lstrip("\ufeff")] = text.astype("object").where(set_, None)
    out.attrs["lines"] = frame.attrs.get("lines")
    return out


def _failing(name: str, cells: dict[str, pd.DataFrame]) -> pd.DataFrame:
    frame = cells[name]
    suite = _suite(name, frame, cells)
    failures = validate(frame.assign(**suite.columns), suite.items, suite=name)
    located = _from_failures(name, frame, failures)
    rules = [_rule(name, frame, cells) for _rule in ROW_RULES.get(name, [])]
    failing = pd.concat([located, *rules], ignore_index=True)
    # One problem per cell: the first one found (the suite's order, then the row rules).
    failing = failing.drop_duplicates(["row", "column"])
    failing = failing.sort_values("row", na_position="first", kind="stable")
    if frame.attrs.get("lines"):  # a quoted line break makes a row span lines
        lines = pd.Series([pd.NA, *frame.attrs["lines"]], dtype="Int64")
        failing["line"] = lines.reindex(failing["row"].fillna(0)).to_numpy()
    failing["problem"] = [_problem(name, r) for r in failing.itertuples(index=False)]
    return failing.reset_index(drop=True)


class _Suite:
    """Expectations in order, each told which column it is about and what it expects."""

    def __init__(self) -> None:
        self.items: list = []
        self.columns: dict[str, pd.Series] = {}  # derived columns the expectations read

    def add(self, kind: str, about: str, expected: str, /, **kwargs) -> None:
        """Add expectation `kind` with `kwargs`; failing rows are told `about` which column."""
        meta = {"column": about, "expected": expected}
        self.items.append(getattr(gxe(), kind)(meta=meta, **kwargs))

    def add_known(self, frame: pd.DataFrame, column: str, known: list[str], expected: str) -> None:
        """Every value of `column` is one of `known` (checked on a membership column)."""
        self.columns[f"{column} known"] = membership(frame[column], known)
        self.add("ExpectColumnValuesToBeInSet", column, expected, column=f"{column} known",
                 value_set=[True])  # fmt: skip


def _suite(name: str, frame: pd.DataFrame, cells: dict[str, pd.DataFrame]) -> _Suite:
    s = _Suite()
    if name in NOT_EMPTY:
        s.add("ExpectTableRowCountToBeBetween", "", "at least one row", min_value=1)
    for c in CONTRACT[name]:
        if c.required:
            s.add("ExpectColumnToExist", c.name, "the column", column=c.name)
        if c.name not in frame.columns:
            continue
        if c.required:
            s.add("ExpectColumnValuesToNotBeNull", c.name, "a value", column=c.name)
        if c.unique:
            s.add("ExpectColumnValuesToBeUnique", c.name, f"a unique {c.name}", column=c.name)
        if c.refers is not None:
            s.add_known(frame, c.name, _known(cells, *c.refers), f"a known {c.refers[1]}")
        _typed(s, c)
    _across_columns(s, name, frame, cells)
    return s


def _typed(s: _Suite, c: Column) -> None:
    expected = EXPECTED.get(c.kind, "")
    if c.kind == "enum":
        s.add("ExpectColumnValuesToBeInSet", c.name, f"one of {'|'.join(c.allowed)}",
              column=c.name, value_set=list(c.allowed))  # fmt: skip
    elif c.kind == "date":
        s.add("ExpectColumnValuesToMatchRegex", c.name, expected, column=c.name, regex=DATE)
        s.add("ExpectColumnValuesToMatchStrftimeFormat", c.name, expected, column=c.name,
              strftime_format="%Y-%m-%d")  # fmt: skip
    elif c.kind in ("quantity", "decimal"):
        s.add("ExpectColumnValuesToMatchRegex", c.name, expected, column=c.name, regex=NUMBER)
        if c.kind == "quantity":
            s.add("ExpectColumnValuesToNotMatchRegex", c.name, expected, column=c.name,
                  regex=MORE_THAN_6_DECIMALS)  # fmt: skip
    elif c.kind == "whole":
        s.add("ExpectColumnValuesToMatchRegex", c.name, expected, column=c.name, regex=r"^[0-9]+$")
    elif c.kind == "integer":
        s.add(
            "ExpectColumnValuesToMatchRegex", c.name, expected, column=c.name, regex=r"^-?[0-9]+$"
        )
    elif c.kind == "currency":
        s.add("ExpectColumnValuesToBeInSet", c.name, expected, column=c.name,
              value_set=sorted(MINOR_UNITS))  # fmt: skip


def _across_columns(s: _Suite, name: str, frame: pd.DataFrame, cells: dict) -> None:
    """Rules between the cells of one row (a rule about an absent column is the column's)."""
    has = set(frame.columns).__contains__
    if name == "usage_resources.csv" and has("token_resource_id"):
        token = frame["category"].eq("token") if has("category") else frame.index < 0
        ids = frame["usage_resource_id"] if has("usage_resource_id") else pd.Series()
        s.add("ExpectColumnValuesToBeInSet", "token_resource_id", "a resource whose category is "
              "token", column="token_resource_id", value_set=sorted(set(ids[token].dropna())))  # fmt: skip
        if has("category"):
            s.add("ExpectColumnValuesToBeNull", "token_resource_id", "no token_resource_id on a "
                  "token resource", column="token_resource_id",
                  row_condition=row_condition("category", "token"))  # fmt: skip
    if name == "product_grants.csv" and has("rollover"):
        expected = "a cap when rollover is capped"
        if has("rollover_cap"):
            s.add("ExpectColumnValuesToNotBeNull", "rollover_cap", expected, column="rollover_cap",
                  row_condition=row_condition("rollover", "capped"))  # fmt: skip
        else:
            s.add("ExpectColumnValuesToNotBeInSet", "rollover_cap", expected, column="rollover",
                  value_set=["capped"])  # fmt: skip
    if name == "product_grants.csv" and has("validity_months") and has("renewal"):
        s.add("ExpectColumnValuesToNotMatchRegex", "validity_months", "a positive number of months",
              column="validity_months", regex=r"^0+$",
              row_condition=row_condition("renewal", "none"))  # fmt: skip
    for later, earlier in [("end_date", "start_date"), ("effective_to", "effective_from")]:
        if has(later) and has(earlier):  # ISO dates compare as text
            s.add("ExpectColumnPairValuesAToBeGreaterThanB", later, f"a date after {earlier}",
                  column_A=later, column_B=earlier, or_equal=False,
                  ignore_row_if="either_value_is_missing")  # fmt: skip
    if name in RATE_FILES and has("pricing_model"):
        expected = "a positive package_size for the package model"
        if has("package_size"):
            package = row_condition("pricing_model", "package")
            s.add("ExpectColumnValuesToNotBeNull", "package_size", expected, column="package_size",
                  row_condition=package)  # fmt: skip
            s.add("ExpectColumnValuesToNotMatchRegex", "package_size", expected,
                  column="package_size", regex=r"^[^1-9]*$", row_condition=package)  # fmt: skip
        else:
            s.add("ExpectColumnValuesToNotBeInSet", "package_size", expected,
                  column="pricing_model", value_set=["package"])  # fmt: skip
    if name == "credit_grants.csv" and has("quantity"):
        s.add("ExpectColumnValuesToNotMatchRegex", "quantity", "a positive quantity",
              column="quantity", regex=r"^\+?[0.]*([eE].*)?$")  # fmt: skip
    if name == "negotiated_rates.csv" and has("asset_id") and has("account_id"):
        assets = cells.get("assets.csv", pd.DataFrame())
        owners = assets.reindex(columns=["asset_id", "account_id"]).dropna()
        # Only the assets this file names: GX compares each row with every pair of the set.
        owners = owners[owners["asset_id"].isin(frame["asset_id"])]
        s.add("ExpectColumnPairValuesToBeInSet", "asset_id", "an asset of the row's account",
              column_A="asset_id", column_B="account_id",
              value_pairs_set=[tuple(p) for p in owners.itertuples(index=False)],
              ignore_row_if="either_value_is_missing")  # fmt: skip


def _known(cells: dict[str, pd.DataFrame], file: str, column: str) -> list[str]:
    frame = cells.get(file)
    if frame is None or column not in frame:
        return []
    return sorted(set(frame[column].dropna()))


def _from_failures(name: str, frame: pd.DataFrame, failures: list[Failure]) -> pd.DataFrame:
    rows = []
    for f in failures:
        if not f.rows:
            rows.append((None, f.column, f.expected, ""))
            continue
        for row in f.rows:
            got = frame.at[row, f.column] if f.column in frame else None
            rows.append((row, f.column, f.expected, "" if pd.isna(got) else got))
    return _located(name, rows)


def _located(name: str, rows: list[tuple]) -> pd.DataFrame:
    """Failing rows from (position or None, column, expected, got)."""
    out = pd.DataFrame(rows, columns=["position", "column", "expected", "got"])
    out.insert(0, "file", name)
    position = out["position"].astype("Int64")
    out.insert(1, "row", position + 1)  # the first data row is row 1, on line 2
    out.insert(2, "line", position + 2)
    return out.drop(columns=["position"]).reindex(columns=[*LOCATION, "problem"])


def _problem(name: str, r) -> str:
    if pd.isna(r.row):
        if r.expected == "the column":
            return f"{name}: missing required column '{r.column}'"
        return f"{name}: expected {r.expected}"
    return (
        f"{name}: row {r.row} (line {r.line}), column '{r.column}': "
        f"expected {r.expected}, got {r.got!r}"
    )


def _with_error(failing: pd.DataFrame, name: str, error: CatalogError) -> pd.DataFrame:
    """The builder's failing cell added to the suite's, unless the suite found it already."""
    same = failing["column"].eq(error.column) & (
        failing["row"].eq(error.row).fillna(False) if error.row else failing["row"].isna()
    )
    if same.any():
        return failing
    row = pd.DataFrame([{"file": name, "row": error.row, "line": error.row + 1 if error.row else None,
                         "column": error.column, "expected": "", "got": "",
                         "problem": str(error)}])  # fmt: skip
    return pd.concat([failing, row], ignore_index=True)


# -- rules across rows -----------------------------------------------------------------------


def _rates(name: str, frame: pd.DataFrame) -> pd.DataFrame | None:
    """The rows whose key and dates are readable: key, from, to, file position."""
    key = RATE_KEYS[name]
    if not {*key, "effective_from"} <= set(frame.columns):
        return None
    rates = frame[key].fillna("").astype("str")
    rates["key"] = rates[key[0]].str.cat(rates[key[1:]], sep=", ")  # also for a file with no rows
    rates["from"] = pd.to_datetime(frame["effective_from"], format="%Y-%m-%d", errors="coerce")
    to = frame["effective_to"] if "effective_to" in frame else pd.Series(None, index=frame.index)
    rates["to"] = pd.to_datetime(to, format="%Y-%m-%d", errors="coerce")
    readable = rates["from"].notna() & (to.isna() | rates["to"].notna())
    rates["position"] = frame.index
    return rates[readable]


def _overlapping_rates(name: str, frame: pd.DataFrame, _cells: dict) -> pd.DataFrame:
    """A rate in effect on a day when an earlier rate of the same key still is."""
    rates = _rates(name, frame)
    if rates is None or rates.empty:
        return problems(LOCATION)
    if name in RATE_FILES:  # the rows of one rate share its dates: compare rates, not tiers
        rates = rates.drop_duplicates(["key", "from"])
    pairs = rates.merge(rates, on="key", suffixes=("", "_earlier"))
    earlier = (pairs["from_earlier"] < pairs["from"]) | (
        pairs["from_earlier"].eq(pairs["from"]) & (pairs["position_earlier"] < pairs["position"])
    )
    still = pairs["to_earlier"].isna() | (pairs["to_earlier"] > pairs["from"])
    hits = pairs[earlier & still].sort_values(["position", "position_earlier"])
    hits = hits.drop_duplicates("position")
    rows = [(r.position, "effective_from",
             f"no overlap with the rate of row {r.position_earlier + 1} "
             f"(line {r.position_earlier + 2}) for the same key ({r.key})",
             frame.at[r.position, "effective_from"]) for r in hits.itertuples()]  # fmt: skip
    return _located(name, rows)


def _tiers(name: str, frame: pd.DataFrame, _cells: dict) -> pd.DataFrame:
    """Tiers from 0, strictly increasing down the file; one rate, one model, size and end."""
    rates = _rates(name, frame)
    if rates is None or rates.empty or "pricing_model" not in frame:
        return problems(LOCATION)
    blank = pd.Series(None, index=frame.index, dtype="object")
    rates = rates.assign(
        lower=frame.get("tier_lower", blank).map(_decimal, na_action=None),
        pricing_model=frame["pricing_model"],
        package_size=frame.get("package_size", blank).fillna(""),
        effective_to=frame.get("effective_to", blank).fillna(""),
    )
    # Each rate's rows in file order, rates in order of their first row: one pass over the rows
    # (a pandas group per rate costs ~0.1 ms, and a price book has thousands of rates).
    group = rates.groupby(["key", "from"], sort=False).ngroup().to_numpy()
    order = np.argsort(group, kind="stable")
    numbered = zip(group[order], rates.iloc[order].itertuples(), strict=True)
    rows = []
    for _, tiers in itertools.groupby(numbered, key=lambda pair: pair[0]):
        rows += _rate_rows(frame, [t for _, t in tiers])
    return _located(name, rows)


def _rate_rows(frame: pd.DataFrame, tiers: list) -> list[tuple]:
    """The failing rows of one rate, its tiers in file order."""
    first, rows, previous = tiers[0], [], None
    for t in tiers:
        for column in ["pricing_model", "package_size", "effective_to"]:
            if getattr(t, column) != getattr(first, column):
                expected = (f"{getattr(first, column)!r} as in row {first.position + 1} "
                            f"(line {first.position + 2}) of the same rate")  # fmt: skip
                rows.append((t.position, column, expected, getattr(t, column)))
        got = frame.at[t.position, "tier_lower"] if "tier_lower" in frame else ""
        if t.lower is None:
            continue  # unreadable: the suite reports it
        if previous is None and t.lower != 0:
            rows.append((t.position, "tier_lower", "the first tier of a rate at 0", got))
        elif previous is not None and t.lower <= previous:
            rows.append((t.position, "tier_lower", f"tiers in ascending order: above {previous}",
                         got))  # fmt: skip
        elif previous is not None and first.pricing_model in ("per_unit", "package"):
            rows.append((t.position, "tier_lower", f"a single row for a {first.pricing_model} rate",
                         got))  # fmt: skip
        previous = t.lower
    return rows


def _decimal(text) -> Decimal | None:
    if text is None or pd.isna(text):
        return Decimal(0)  # the documented default: a single tier from 0
    return Decimal(text) if re.fullmatch(DECIMAL_TEXT, text) else None


def _typed_cells(frame: pd.DataFrame, dates: tuple[str, ...], quantities: tuple[str, ...] = ()
                 ) -> pd.DataFrame:  # fmt: skip
    """The readable cells of a file as the builder types them (unreadable ones missing: the suite
    reports those), for the rules that follow a timeline."""
    out = frame.copy()
    for column in dates:
        values = frame.get(column, pd.Series(None, index=frame.index, dtype="object"))
        out[column] = pd.to_datetime(values, format="%Y-%m-%d", errors="coerce")
    for column in quantities:
        values = frame.get(column, pd.Series(None, index=frame.index, dtype="object"))
        out[column] = pd.to_numeric(values, errors="coerce")
    return out


def _assets(cells: dict[str, pd.DataFrame]) -> pd.DataFrame:
    assets = cells.get("assets.csv", pd.DataFrame()).reindex(
        columns=["asset_id", "account_id", "quantity", "start_date", "end_date"]
    )
    assets = _typed_cells(assets, ("start_date", "end_date"), ("quantity",))
    return assets[assets["start_date"].notna()].drop_duplicates("asset_id")


def _changes(frame: pd.DataFrame, cells: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return _typed_cells(
        frame.reindex(columns=[*frame.columns, "quantity", "end_date"]).loc[
            :, lambda f: ~f.columns.duplicated()
        ],
        ("effective_date", "end_date"),
        ("quantity",),
    )


def _timeline(name: str, frame: pd.DataFrame, cells: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Changes that break their asset's timeline (the builder's own rule, every row)."""
    if not {"asset_id", "effective_date", "change_id"} <= set(frame.columns):
        return problems(LOCATION)
    changes = _changes(frame, cells)
    neither = changes.index[
        changes["quantity"].isna()
        & changes["end_date"].isna()
        & frame.reindex(columns=["quantity", "end_date"]).isna().all(axis=1)
    ]
    found = [(i, "quantity", "a quantity or an end_date (or both)") for i in neither]
    found += change_problems(changes.drop(index=neither), _assets(cells))
    return _located(name, [(i, c, e, _got(frame, i, c)) for i, c, e in found])


def _credit_rules(name: str, frame: pd.DataFrame, cells: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Credits on another account's asset, of a converted resource, or never open."""
    needed = {"credit_id", "account_id", "usage_resource_id", "effective_date"}
    if not needed <= set(frame.columns):
        return problems(LOCATION)
    credits = _typed_cells(frame.reindex(columns=[*frame.columns, "asset_id", "valid_to"]).loc[
        :, lambda f: ~f.columns.duplicated()], ("effective_date", "valid_to"))  # fmt: skip
    resources = (
        cells.get("usage_resources.csv", pd.DataFrame())
        .reindex(columns=["usage_resource_id", "token_resource_id"])
        .drop_duplicates("usage_resource_id")
    )
    changes = cells.get("asset_changes.csv", pd.DataFrame(columns=REQUIRED["asset_changes.csv"]))
    changes = _changes(changes, cells)
    assets = _assets(cells)
    changes = changes[changes["asset_id"].isin(assets["asset_id"])]
    bad = pd.DataFrame(change_problems(changes, assets), columns=["row", "column", "expected"])
    changes = changes.drop(index=bad["row"])  # the changes' own check reports those
    found = credit_problems(credits, assets, resources, changes)
    return _located(name, [(i, c, e, _got(frame, i, c)) for i, c, e in found])


def _got(frame: pd.DataFrame, row, column: str) -> str:
    value = frame.at[row, column] if column in frame else None
    return "" if value is None or pd.isna(value) else value


def _alert_rules(name: str, frame: pd.DataFrame, cells: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Rules whose threshold, scope, resource or recipient does not fit their kind and channel
    (the builder's own rule, every row)."""
    resources = cells.get("usage_resources.csv", pd.DataFrame()).reindex(
        columns=["usage_resource_id", "token_resource_id"]
    )
    rules = frame.reindex(columns=[*frame.columns, "usage_resource_id", "scope", "channel",
                                   "recipient", "kind", "threshold", "rule_id"]).loc[
        :, lambda f: ~f.columns.duplicated()]  # fmt: skip
    readable = rules["threshold"].map(lambda t: t is None or bool(re.fullmatch(DECIMAL_TEXT, t)))
    rules = rules.assign(threshold=rules["threshold"].where(readable, None))
    found = rule_problems(rules, resources)
    return _located(name, [(i, c, e, _got(frame, i, c)) for i, c, e in found])


RowRule = Callable[[str, pd.DataFrame, dict], pd.DataFrame]
ROW_RULES: dict[str, list[RowRule]] = {
    "token_rates.csv": [_overlapping_rates],
    "price_book.csv": [_overlapping_rates, _tiers],
    "negotiated_rates.csv": [_overlapping_rates, _tiers],
    "asset_changes.csv": [_timeline],
    "credit_grants.csv": [_credit_rules],
    "alert_rules.csv": [_alert_rules],
}
