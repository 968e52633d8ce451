"""The catalog of docs/rules.md "Inputs": validated, typed, with the documented defaults applied.

Input frames hold the CSV cells as text (one frame per file, header names as columns).
A bad cell stops everything with a `CatalogError` naming the file, row and column: a wrong
catalog would bill every account wrongly, so nothing is quarantined here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from consumption_pipeline.domain.alerts import CHANNELS, KINDS, SCOPES, rule_problems
from consumption_pipeline.domain.contracts import change_problems, credit_problems
from consumption_pipeline.domain.money import MINOR_UNITS
from consumption_pipeline.domain.quantities import parse_quantities

RATE_COLUMNS = ["usage_resource_id", "currency", "pricing_model", "tier_lower", "unit_price",
                "package_size", "flat_fee", "effective_from", "effective_to"]  # fmt: skip

REQUIRED = {
    "accounts.csv": ["account_id", "account_name", "currency"],
    "usage_resources.csv": ["usage_resource_id", "name", "unit_of_measure"],
    "token_rates.csv": ["usage_resource_id", "tokens_per_unit", "effective_from"],
    "products.csv": ["product_id", "product_name"],
    "product_grants.csv": ["grant_id", "product_id", "usage_resource_id", "quantity", "renewal"],
    "assets.csv": ["asset_id", "account_id", "product_id", "quantity", "start_date"],
    "price_book.csv": ["usage_resource_id", "currency", "pricing_model", "unit_price",
                       "effective_from"],
    "negotiated_rates.csv": ["account_id", "usage_resource_id", "currency", "pricing_model",
                             "unit_price", "effective_from"],
    "asset_changes.csv": ["change_id", "asset_id", "effective_date"],
    "credit_grants.csv": ["credit_id", "account_id", "usage_resource_id", "quantity",
                          "effective_date"],
    "alert_rules.csv": ["rule_id", "kind", "threshold"],
}  # fmt: skip
OPTIONAL_FILES = {"token_rates.csv", "negotiated_rates.csv", "asset_changes.csv",
                  "credit_grants.csv", "alert_rules.csv"}  # fmt: skip
ALERT_RULE_COLUMNS = ["rule_id", "account_id", "kind", "threshold", "usage_resource_id", "scope",
                      "channel", "recipient"]  # fmt: skip

DRAWDOWN_ORDERS = ("expiring_first", "granted_first", "granted_last")
RENEWAL_MONTHS = {"none": 0, "monthly": 1, "quarterly": 3, "annual": 12}
GRANT_TYPES = ("grant", "commit")
COMMITMENT_RATES = ("bounded", "lowest")
PRICING_MODELS = ("per_unit", "graduated", "volume", "package")
# Non-negative decimal text, ASCII digits only (Decimal itself would also take "1_000" or "NaN").
DECIMAL_TEXT = r"\+?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?"


class CatalogError(ValueError):
    """A catalog file that cannot be billed from; the message names file, row and column.

    `file`, `row` (1 = the first data row) and `column` locate the cell where known."""

    def __init__(self, message: str, file: str = "", row: int | None = None, column: str = ""):
        super().__init__(message)
        self.file, self.row, self.column = file, row, column


@dataclass(frozen=True)
class Catalog:
    accounts: pd.DataFrame
    resources: pd.DataFrame
    token_rates: pd.DataFrame
    products: pd.DataFrame
    grants: pd.DataFrame
    assets: pd.DataFrame
    rates: pd.DataFrame  # price book and negotiated rows, with a `level` column
    changes: pd.DataFrame  # asset changes, in file order
    credits: pd.DataFrame  # credit grants, in file order
    # alert rules (domain/alerts.py), in file order; they bill nothing
    alert_rules: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=ALERT_RULE_COLUMNS)
    )


class _File:
    """Typed access to one file's text cells, raising errors that point at the cell."""

    def __init__(self, name: str, frame: pd.DataFrame):
        self.name, self.index = name, frame.index
        self.lines = frame.attrs.get("lines")  # each row's first line, where the reader knew it
        self.cells = {c: _trimmed(frame[c]) for c in frame.columns}  # column -> text, NA if empty
        for column in REQUIRED[name]:
            if column not in self.cells:
                raise CatalogError(
                    f"{name}: missing required column '{column}'", file=name, column=column
                )

    def fail(self, index: int, column: str, expected: str) -> CatalogError:
        value = self.cells[column].at[index] if column in self.cells else ""
        value = "" if pd.isna(value) else value
        row = self.index.get_loc(index) + 1
        line = self.lines[row - 1] if self.lines else row + 1  # the header is line 1
        return CatalogError(
            f"{self.name}: row {row} (line {line}), column '{column}': "
            f"expected {expected}, got {value!r}",
            file=self.name, row=row, column=column,
        )  # fmt: skip

    def text(self, column: str, default: str | None = None, allowed=None) -> pd.Series:
        if column not in self.cells:
            return pd.Series(default, index=self.index, dtype="str")
        values = self.cells[column]
        if default is not None:
            values = values.fillna(default)
        elif column in REQUIRED[self.name]:
            self._check(values.notna(), column, "a value")
        if allowed is not None:
            self._check(values.isin(allowed) | values.isna(), column, f"one of {'|'.join(allowed)}")
        return values

    def _check(self, ok: pd.Series, column: str, expected: str) -> None:
        if not ok.all():
            raise self.fail(ok.index[~ok][0], column, expected)

    def dates(self, column: str) -> pd.Series:
        raw = self.text(column)
        parsed = pd.to_datetime(raw, format="%Y-%m-%d", errors="coerce")
        self._check(parsed.notna() | raw.isna(), column, "a date YYYY-MM-DD")
        return parsed.astype("datetime64[s]")

    def micro(self, column: str, default: str | None = None) -> pd.Series:
        raw = self.text(column, default)
        micro, reason = parse_quantities(raw.fillna(""))
        self._check(
            reason.isna() | raw.isna(), column, "a non-negative number with at most 6 decimals"
        )
        return micro.where(raw.notna()).astype("Int64")

    def integers(self, column: str, default: str | None = None, signed: bool = False) -> pd.Series:
        raw = self.text(column, default)
        pattern, expected = ("-?[0-9]+", "an integer") if signed else ("[0-9]+", "a whole number")
        self._check(raw.isna() | raw.str.fullmatch(pattern).fillna(False), column, expected)
        return pd.to_numeric(raw).astype("Int64")

    def decimals(self, column: str, default: str | None = None) -> pd.Series:
        raw = self.text(column, default)
        ok = raw.isna() | raw.str.fullmatch(DECIMAL_TEXT).fillna(False)
        self._check(ok, column, "a non-negative decimal number")
        return raw.map(Decimal, na_action="ignore").astype("object")

    def currency(self) -> pd.Series:
        values = self.text("currency")
        self._check(values.isin(MINOR_UNITS), "currency", "an ISO 4217 code like USD")
        return values

    def booleans(self, column: str, default: str) -> pd.Series:
        return self.text(column, default, allowed=("true", "false")).eq("true")

    def unique(self, column: str) -> None:
        self._check(~self.cells[column].duplicated(), column, f"a unique {column}")

    def refers(self, column: str, known: pd.Series, what: str) -> None:
        values = self.text(column)
        self._check(values.isna() | among(values, known), column, f"a known {what}")


def _trimmed(values: pd.Series) -> pd.Series:
    """Cells without surrounding blanks, NA where empty (in pyarrow: far fewer pandas calls)."""
    text = pc.utf8_trim_whitespace(_arrow_text(values))
    return pd.Series(pc.if_else(pc.equal(text, ""), None, text), index=values.index, dtype="str")


def among(values: pd.Series, known: pd.Series) -> np.ndarray:
    """Which text values are among `known` (missing ones are not). Arrow's is_in: pandas' isin
    on text builds a Python object per known value (0.35 s for 100,000 bucket ids)."""
    found = pc.is_in(_arrow_text(values), value_set=_arrow_text(known))
    return found.fill_null(False).to_numpy(zero_copy_only=False)


def _arrow_text(values: pd.Series) -> pa.Array:
    return pa.array(values.astype("str"), type=pa.string(), from_pandas=True)


def lookup(keys: pd.Series, table: pd.Series) -> pd.Series:
    """`keys.map(table)`, looking each distinct key up once: events and summaries repeat a few
    thousand ids millions of times, and mapping every row through an index costs seconds."""
    codes, distinct = distinct_codes(keys)
    found = pd.Series(distinct).map(table).array
    return pd.Series(found.take(codes, allow_fill=True), index=keys.index)


def distinct_codes(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Each row's place among the column's distinct values (-1 where missing), and those values:
    a categorical's own codes, else the values factorized."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(), values.cat.categories
    codes, distinct = pd.factorize(values)
    return codes, pd.Index(distinct)


class CatalogIds:
    """The catalog's ids as indexes: the stages that handle millions of events carry int codes
    into them, not texts."""

    def __init__(self, catalog: Catalog):
        self.accounts = pd.Index(catalog.accounts["account_id"], dtype="str")
        self.assets = pd.Index(catalog.assets["asset_id"], dtype="str")
        self.resources = pd.Index(catalog.resources["usage_resource_id"], dtype="str")
        self.of_column = {"account_id": self.accounts, "asset_id": self.assets,
                          "usage_resource_id": self.resources}  # fmt: skip
        self.owner = self.accounts.get_indexer(catalog.assets["account_id"])  # each asset's


def build_catalog(files: dict[str, pd.DataFrame]) -> Catalog:
    """Validate the catalog files (text frames keyed by file name) into a `Catalog`."""
    for name in REQUIRED:
        if name not in files and name not in OPTIONAL_FILES:
            raise CatalogError(f"{name}: required catalog file is missing", file=name)
    get = {n: _File(n, files.get(n, pd.DataFrame(columns=REQUIRED[n]))) for n in REQUIRED}
    accounts = _accounts(get["accounts.csv"])
    resources = _resources(get["usage_resources.csv"])
    products = _products(get["products.csv"])
    grants = _grants(get["product_grants.csv"], products, resources)
    assets = _assets(get["assets.csv"], accounts, products)
    token_rates = _token_rates(get["token_rates.csv"], resources)
    rates = pd.concat(
        [_rates(get["price_book.csv"], resources, accounts, assets, "price_book"),
         _rates(get["negotiated_rates.csv"], resources, accounts, assets, None)],
        ignore_index=True,
    )  # fmt: skip
    changes = _changes(get["asset_changes.csv"], assets)
    credits = _credits(get["credit_grants.csv"], accounts, assets, resources, changes)
    alert_rules = _alert_rules(get["alert_rules.csv"], accounts, resources)
    return Catalog(accounts, resources, token_rates, products, grants, assets, rates, changes,
                   credits, alert_rules)  # fmt: skip


def _accounts(f: _File) -> pd.DataFrame:
    f.unique("account_id")
    currency = f.currency()
    return pd.DataFrame({
        "account_id": f.text("account_id"), "account_name": f.text("account_name"),
        "currency": currency,
        "drawdown_order": f.text("drawdown_order", "expiring_first", DRAWDOWN_ORDERS),
    })  # fmt: skip


def _resources(f: _File) -> pd.DataFrame:
    f.unique("usage_resource_id")
    out = pd.DataFrame({
        "usage_resource_id": f.text("usage_resource_id"), "name": f.text("name"),
        "unit_of_measure": f.text("unit_of_measure"),
        "category": f.text("category", "usage", ("usage", "token")),
        "aggregation_method": f.text("aggregation_method", "sum", ("sum", "peak")),
        "aggregation_period": f.text("aggregation_period", "daily", ("daily", "monthly")),
        "token_resource_id": f.text("token_resource_id"),
        "overage_chargeable": f.booleans("overage_chargeable", "true"),
    })  # fmt: skip
    f.refers("token_resource_id", out["usage_resource_id"], "usage_resource_id")
    tokens = out.loc[out["token_resource_id"].notna(), "token_resource_id"]
    token_ok = out.set_index("usage_resource_id")["category"].reindex(tokens).eq("token").to_numpy()
    f._check(pd.Series(token_ok, index=tokens.index).reindex(out.index, fill_value=True),
             "token_resource_id", "a resource whose category is token")  # fmt: skip
    # A conversion is one step: a token resource is drawn from itself, never converted further.
    f._check(out["category"].ne("token") | out["token_resource_id"].isna(), "token_resource_id",
             "no token_resource_id on a token resource")  # fmt: skip
    return out


def _products(f: _File) -> pd.DataFrame:
    f.unique("product_id")
    return pd.DataFrame(
        {"product_id": f.text("product_id"), "product_name": f.text("product_name")}
    )


def _grants(f: _File, products: pd.DataFrame, resources: pd.DataFrame) -> pd.DataFrame:
    f.unique("grant_id")
    f.refers("product_id", products["product_id"], "product_id")
    f.refers("usage_resource_id", resources["usage_resource_id"], "usage_resource_id")
    renewal = f.text("renewal", allowed=tuple(RENEWAL_MONTHS))
    rollover = f.text("rollover", "none", ("none", "full", "capped"))
    out = pd.DataFrame({
        "grant_id": f.text("grant_id"), "product_id": f.text("product_id"),
        "usage_resource_id": f.text("usage_resource_id"), "quantity": f.micro("quantity"),
        "renewal": renewal, "renewal_months": renewal.map(RENEWAL_MONTHS).astype("int64"),
        "validity_months": f.integers("validity_months"), "rollover": rollover,
        "rollover_cap": f.micro("rollover_cap"), "max_rollovers": f.integers("max_rollovers", "1"),
        "binding": f.text("binding", "asset", ("asset", "account")),
        "priority": f.integers("priority", "100"), "prorate": f.booleans("prorate", "true"),
        "grant_type": f.text("grant_type", "grant", GRANT_TYPES),
        "commitment_rate": f.text("commitment_rate", "bounded", COMMITMENT_RATES),
    })  # fmt: skip
    f._check(out["rollover"].ne("capped") | out["rollover_cap"].notna(), "rollover_cap",
             "a cap when rollover is capped")  # fmt: skip
    f._check(out["renewal"].ne("none") | out["validity_months"].fillna(1).gt(0), "validity_months",
             "a positive number of months")  # fmt: skip
    return out


def _assets(f: _File, accounts: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    f.unique("asset_id")
    f.refers("account_id", accounts["account_id"], "account_id")
    f.refers("product_id", products["product_id"], "product_id")
    out = pd.DataFrame({
        "asset_id": f.text("asset_id"), "account_id": f.text("account_id"),
        "product_id": f.text("product_id"), "quantity": f.micro("quantity"),
        "start_date": f.dates("start_date"), "end_date": f.dates("end_date"),
        "drawdown_order": f.text("drawdown_order", allowed=DRAWDOWN_ORDERS),
    })  # fmt: skip
    f._check(out["end_date"].isna() | (out["end_date"] > out["start_date"]), "end_date",
             "a date after start_date")  # fmt: skip
    return out


def _token_rates(f: _File, resources: pd.DataFrame) -> pd.DataFrame:
    f.refers("usage_resource_id", resources["usage_resource_id"], "usage_resource_id")
    out = pd.DataFrame({
        "usage_resource_id": f.text("usage_resource_id"),
        "tokens_per_unit": f.micro("tokens_per_unit"),
        "effective_from": f.dates("effective_from"), "effective_to": f.dates("effective_to"),
    })  # fmt: skip
    f._check(out["effective_to"].isna() | (out["effective_to"] > out["effective_from"]),
             "effective_to", "a date after effective_from")  # fmt: skip
    return out


def _rates(f: _File, resources, accounts, assets, level: str | None) -> pd.DataFrame:
    f.refers("usage_resource_id", resources["usage_resource_id"], "usage_resource_id")
    f.currency()
    out = pd.DataFrame({
        "account_id": f.text("account_id"), "asset_id": f.text("asset_id"),
        "usage_resource_id": f.text("usage_resource_id"), "currency": f.text("currency"),
        "pricing_model": f.text("pricing_model", allowed=PRICING_MODELS),
        "tier_lower": f.decimals("tier_lower", "0"), "unit_price": f.decimals("unit_price"),
        "package_size": f.micro("package_size"), "flat_fee": f.decimals("flat_fee", "0"),
        "effective_from": f.dates("effective_from"), "effective_to": f.dates("effective_to"),
    })  # fmt: skip
    if level is None:
        f.refers("account_id", accounts["account_id"], "account_id")
        f.refers("asset_id", assets["asset_id"], "asset_id")
        owner = assets.set_index("asset_id")["account_id"].reindex(out["asset_id"]).to_numpy()
        own = pd.Series(owner == out["account_id"].to_numpy(), index=out.index)
        f._check(out["asset_id"].isna() | own, "asset_id", "an asset of the row's account")
        out["level"] = out["asset_id"].notna().map({True: "asset", False: "account"})
    else:
        out["level"] = level
    package = out["pricing_model"].eq("package")
    f._check(~package | out["package_size"].fillna(0).gt(0), "package_size",
             "a positive package_size for the package model")  # fmt: skip
    f._check(out["effective_to"].isna() | (out["effective_to"] > out["effective_from"]),
             "effective_to", "a date after effective_from")  # fmt: skip
    return out


def _changes(f: _File, assets: pd.DataFrame) -> pd.DataFrame:
    f.unique("change_id")
    f.refers("asset_id", assets["asset_id"], "asset_id")
    out = pd.DataFrame({
        "change_id": f.text("change_id"), "asset_id": f.text("asset_id"),
        "effective_date": f.dates("effective_date"), "quantity": f.micro("quantity"),
        "end_date": f.dates("end_date"),
    })  # fmt: skip
    f._check(out["quantity"].notna() | out["end_date"].notna(), "quantity",
             "a quantity or an end_date (or both)")  # fmt: skip
    for index, column, expected in change_problems(out, assets):
        raise f.fail(index, column, expected)
    return out


def _credits(
    f: _File, accounts: pd.DataFrame, assets: pd.DataFrame, resources: pd.DataFrame,
    changes: pd.DataFrame,
) -> pd.DataFrame:  # fmt: skip
    f.unique("credit_id")
    f.refers("account_id", accounts["account_id"], "account_id")
    f.refers("usage_resource_id", resources["usage_resource_id"], "usage_resource_id")
    f.refers("asset_id", assets["asset_id"], "asset_id")
    out = pd.DataFrame({
        "credit_id": f.text("credit_id"), "account_id": f.text("account_id"),
        "asset_id": f.text("asset_id"), "usage_resource_id": f.text("usage_resource_id"),
        "quantity": f.micro("quantity"), "effective_date": f.dates("effective_date"),
        "valid_to": f.dates("valid_to"), "priority": f.integers("priority", "100", signed=True),
        "reason": f.text("reason"),
    })  # fmt: skip
    f._check(out["quantity"].gt(0), "quantity", "a positive quantity")
    for index, column, expected in credit_problems(out, assets, resources, changes):
        raise f.fail(index, column, expected)
    return out


def _alert_rules(f: _File, accounts: pd.DataFrame, resources: pd.DataFrame) -> pd.DataFrame:
    f.unique("rule_id")
    f.refers("account_id", accounts["account_id"], "account_id")
    f.refers("usage_resource_id", resources["usage_resource_id"], "usage_resource_id")
    f.decimals("threshold")
    out = pd.DataFrame({
        "rule_id": f.text("rule_id"), "account_id": f.text("account_id"),
        "kind": f.text("kind", allowed=KINDS), "threshold": f.decimals("threshold"),
        "usage_resource_id": f.text("usage_resource_id"),
        "scope": f.text("scope", allowed=SCOPES), "channel": f.text("channel", allowed=CHANNELS),
        "recipient": f.text("recipient"),
    })  # fmt: skip
    for index, column, expected in rule_problems(out, resources):
        raise f.fail(index, column, expected)
    return out
