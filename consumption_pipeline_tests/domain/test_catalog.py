"""The catalog of docs/rules.md "Inputs": the input contract, its defaults and its errors."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from consumption_pipeline.domain.catalog import CatalogError, build_catalog
from consumption_pipeline_tests.builders import text_frame


def rows() -> dict[str, list[dict]]:
    """The smallest full catalog, only required columns: one account, resource, product,
    grant, asset and price."""
    return {
        "accounts.csv": [{"account_id": "ACME", "account_name": "Acme", "currency": "USD"}],
        "usage_resources.csv": [
            {"usage_resource_id": "credits", "name": "Credits", "unit_of_measure": "credit"}
        ],
        "products.csv": [{"product_id": "PRO", "product_name": "Pro"}],
        "product_grants.csv": [{"grant_id": "G", "product_id": "PRO",
                                "usage_resource_id": "credits", "quantity": "1000",
                                "renewal": "monthly"}],
        "assets.csv": [{"asset_id": "A1", "account_id": "ACME", "product_id": "PRO",
                        "quantity": "1", "start_date": "2026-09-01"}],
        "price_book.csv": [{"usage_resource_id": "credits", "currency": "USD",
                            "pricing_model": "per_unit", "unit_price": "0.02",
                            "effective_from": "2026-01-01"}],
    }  # fmt: skip


def build(files: dict[str, list[dict]] | None = None, **changes: dict):
    """Build from `rows()`, with cells of the first row of a file changed, e.g.
    build(assets={"start_date": "x"})."""
    files = files or rows()
    for name, cells in changes.items():
        files[f"{name}.csv"][0].update(cells)
    return build_catalog({name: text_frame(r) for name, r in files.items()})


def test_defaults_of_usage_resources():
    # category usage; aggregation sum, daily; overage_chargeable true.
    r = build().resources.iloc[0]
    assert (r["category"], r["aggregation_method"], r["aggregation_period"]) == (
        "usage",
        "sum",
        "daily",
    )
    assert bool(r["overage_chargeable"]) is True
    assert pd.isna(r["token_resource_id"])


def test_defaults_of_product_grants():
    # rollover none; max_rollovers 1; binding asset; priority 100; prorate true.
    g = build().grants.iloc[0]
    assert (g["rollover"], g["max_rollovers"], g["binding"], g["priority"]) == (
        "none",
        1,
        "asset",
        100,
    )
    assert bool(g["prorate"]) is True
    assert pd.isna(g["validity_months"]) and pd.isna(g["rollover_cap"])


def test_default_drawdown_order_is_expiring_first_on_the_account():
    # The account defaults to expiring_first; an asset without one follows its account.
    catalog = build()
    assert catalog.accounts["drawdown_order"].tolist() == ["expiring_first"]
    assert catalog.assets["drawdown_order"].isna().tolist() == [True]


def test_empty_optional_cells_take_the_defaults_too():
    catalog = build(product_grants={"rollover": "", "priority": " ", "prorate": "", "binding": ""})
    g = catalog.grants.iloc[0]
    assert (g["rollover"], g["priority"], bool(g["prorate"]), g["binding"]) == (
        "none",
        100,
        True,
        "asset",
    )


def test_given_values_override_the_defaults():
    files = rows()
    files["usage_resources.csv"] = [
        {"usage_resource_id": "credits", "name": "Credits", "unit_of_measure": "credit",
         "category": "token"},
        {"usage_resource_id": "gb", "name": "Storage", "unit_of_measure": "GB",
         "aggregation_method": "peak", "aggregation_period": "monthly",
         "token_resource_id": "credits", "overage_chargeable": "false"},
    ]  # fmt: skip
    files["product_grants.csv"][0].update(rollover="capped", rollover_cap="200",
        max_rollovers="2", binding="account", priority="10", prorate="false")  # fmt: skip
    files["accounts.csv"][0]["drawdown_order"] = "granted_first"
    files["assets.csv"][0]["drawdown_order"] = "granted_last"
    catalog = build(files)
    gb = catalog.resources.set_index("usage_resource_id").loc["gb"]
    assert (gb["aggregation_method"], gb["aggregation_period"], gb["token_resource_id"]) == (
        "peak",
        "monthly",
        "credits",
    )
    assert bool(gb["overage_chargeable"]) is False
    g = catalog.grants.iloc[0]
    assert (g["rollover"], g["rollover_cap"], g["max_rollovers"], g["binding"]) == (
        "capped",
        200_000_000,
        2,
        "account",
    )
    assert (g["priority"], bool(g["prorate"])) == (10, False)
    assert catalog.accounts["drawdown_order"].tolist() == ["granted_first"]
    assert catalog.assets["drawdown_order"].tolist() == ["granted_last"]


def test_catalog_quantities_are_exact_micro_units():
    # A grant of 0.1 units and an asset quantity of 2.5: 100,000 and 2,500,000 micro-units.
    catalog = build(product_grants={"quantity": "0.1"}, assets={"quantity": "2.5"})
    assert catalog.grants["quantity"].tolist() == [100_000]
    assert catalog.assets["quantity"].tolist() == [2_500_000]


def test_prices_are_decimals_not_floats():
    catalog = build(price_book={"unit_price": "0.1", "flat_fee": "5.00"})
    assert catalog.rates["unit_price"].tolist() == [Decimal("0.1")]
    assert catalog.rates["flat_fee"].tolist() == [Decimal("5.00")]
    assert catalog.rates["tier_lower"].tolist() == [Decimal("0")]


def test_unknown_extra_columns_are_ignored():
    catalog = build(accounts={"crm_owner": "Jane"}, assets={"notes": "renewed twice"})
    assert "crm_owner" not in catalog.accounts.columns
    assert catalog.assets["asset_id"].tolist() == ["A1"]


def test_cells_are_trimmed():
    catalog = build(assets={"asset_id": " A1 ", "account_id": "ACME ", "start_date": " 2026-09-01"})
    assert catalog.assets[["asset_id", "account_id"]].values.tolist() == [["A1", "ACME"]]


def test_token_rates_and_negotiated_rates_may_be_absent():
    catalog = build()  # rows() has neither file
    assert catalog.token_rates.empty
    assert catalog.rates["level"].tolist() == ["price_book"]


def test_negotiated_rates_are_asset_or_account_level():
    files = rows()
    price = {k: v for k, v in files["price_book.csv"][0].items()}
    files["negotiated_rates.csv"] = [{"account_id": "ACME", **price, "unit_price": "0.015"},
                                     {"account_id": "ACME", "asset_id": "A1", **price}]  # fmt: skip
    assert build(files).rates["level"].tolist() == ["price_book", "account", "asset"]


REQUIRED_FILES = ["accounts.csv", "usage_resources.csv", "products.csv", "product_grants.csv",
                  "assets.csv", "price_book.csv"]  # fmt: skip


@pytest.mark.parametrize("name", REQUIRED_FILES)
def test_every_catalog_file_but_the_two_rate_files_is_required(name):
    files = {n: text_frame(r) for n, r in rows().items() if n != name}
    with pytest.raises(CatalogError, match=f"{name}: required catalog file is missing"):
        build_catalog(files)


@pytest.mark.parametrize(
    "name, column",
    [
        ("accounts.csv", "currency"),
        ("usage_resources.csv", "unit_of_measure"),
        ("products.csv", "product_name"),
        ("product_grants.csv", "renewal"),
        ("assets.csv", "start_date"),
        ("price_book.csv", "effective_from"),
    ],
)
def test_a_missing_required_column_is_an_error_naming_file_and_column(name, column):
    files = rows()
    for row in files[name]:
        del row[column]
    with pytest.raises(CatalogError, match=f"^{name}: missing required column '{column}'$"):
        build(files)


def test_a_missing_required_column_of_an_optional_file_is_an_error():
    files = rows()
    files["token_rates.csv"] = [{"usage_resource_id": "credits", "effective_from": "2026-01-01"}]
    with pytest.raises(CatalogError, match="token_rates.csv: missing required column 'tokens_per"):
        build(files)


@pytest.mark.parametrize(
    "file, cells, column",
    [
        ("assets", {"start_date": "2026/09/01"}, "start_date"),
        ("assets", {"start_date": "2026-02-30"}, "start_date"),
        ("assets", {"start_date": ""}, "start_date"),
        ("assets", {"end_date": "2026-08-01"}, "end_date"),  # before the start
        ("assets", {"end_date": "2026-09-01"}, "end_date"),  # an empty [start, end)
        ("assets", {"quantity": "-1"}, "quantity"),
        ("assets", {"quantity": "one"}, "quantity"),
        ("assets", {"account_id": "NOBODY"}, "account_id"),
        ("assets", {"product_id": "GOLD"}, "product_id"),
        ("assets", {"drawdown_order": "cheapest_first"}, "drawdown_order"),
        ("accounts", {"currency": "usd"}, "currency"),
        ("accounts", {"currency": "DOLLAR"}, "currency"),
        ("accounts", {"drawdown_order": "fifo"}, "drawdown_order"),
        ("accounts", {"account_name": ""}, "account_name"),
        ("usage_resources", {"category": "credit"}, "category"),
        ("usage_resources", {"aggregation_method": "avg"}, "aggregation_method"),
        ("usage_resources", {"aggregation_period": "hourly"}, "aggregation_period"),
        ("usage_resources", {"overage_chargeable": "yes"}, "overage_chargeable"),
        ("usage_resources", {"token_resource_id": "tokens"}, "token_resource_id"),
        ("product_grants", {"renewal": "weekly"}, "renewal"),
        ("product_grants", {"quantity": "0.1234567"}, "quantity"),
        ("product_grants", {"quantity": "1_000"}, "quantity"),
        ("product_grants", {"quantity": "NaN"}, "quantity"),
        ("product_grants", {"usage_resource_id": "gpu"}, "usage_resource_id"),
        ("product_grants", {"product_id": "GOLD"}, "product_id"),
        ("product_grants", {"rollover": "capped"}, "rollover_cap"),  # capped needs a cap
        ("product_grants", {"rollover": "some"}, "rollover"),
        ("product_grants", {"renewal": "none", "validity_months": "0"}, "validity_months"),
        ("product_grants", {"validity_months": "1.5"}, "validity_months"),
        ("product_grants", {"priority": "-1"}, "priority"),
        ("product_grants", {"max_rollovers": "two"}, "max_rollovers"),
        ("product_grants", {"binding": "global"}, "binding"),
        ("product_grants", {"prorate": "maybe"}, "prorate"),
        ("price_book", {"pricing_model": "tiered"}, "pricing_model"),
        ("price_book", {"pricing_model": "package"}, "package_size"),  # package needs a size
        ("price_book", {"unit_price": "-0.02"}, "unit_price"),
        ("price_book", {"unit_price": "NaN"}, "unit_price"),
        ("price_book", {"unit_price": "1_000"}, "unit_price"),
        ("price_book", {"unit_price": "$0.02"}, "unit_price"),
        ("price_book", {"effective_to": "2025-12-31"}, "effective_to"),
        ("price_book", {"usage_resource_id": "gpu"}, "usage_resource_id"),
    ],
)
def test_a_bad_cell_is_an_error_naming_file_row_and_column(file, cells, column):
    # The first data row is row 1, on line 2 of the file (after the header).
    with pytest.raises(CatalogError, match=rf"^{file}\.csv: row 1 \(line 2\), column '{column}'"):
        build(**{file: cells})


def test_the_error_names_the_row_of_the_bad_cell():
    # The third asset is bad: row 3, line 4.
    files = rows()
    asset = files["assets.csv"][0]
    files["assets.csv"] = [asset, {**asset, "asset_id": "A2"},
                           {**asset, "asset_id": "A3", "quantity": "lots"}]  # fmt: skip
    with pytest.raises(
        CatalogError, match=r"assets\.csv: row 3 \(line 4\), column 'quantity'.*'lots'"
    ):
        build(files)


def test_duplicate_ids_are_an_error():
    files = rows()
    files["assets.csv"].append(dict(files["assets.csv"][0]))
    with pytest.raises(CatalogError, match=r"assets\.csv: row 2 .*column 'asset_id'.*unique"):
        build(files)


def test_a_negotiated_rate_for_an_asset_of_another_account_is_an_error():
    files = rows()
    files["accounts.csv"].append({"account_id": "GLOBEX", "account_name": "G", "currency": "USD"})
    price = files["price_book.csv"][0]
    files["negotiated_rates.csv"] = [{"account_id": "GLOBEX", "asset_id": "A1", **price}]
    with pytest.raises(CatalogError, match=r"negotiated_rates\.csv: row 1.*'asset_id'"):
        build(files)


def test_a_resource_converts_only_into_a_token_resource_in_one_step():
    # credits is a usage resource: nothing can be converted into it. And a token resource is
    # not converted further (its own buckets are what others draw from).
    files = rows()
    files["usage_resources.csv"].append({"usage_resource_id": "gpu", "name": "GPU",
        "unit_of_measure": "hour", "token_resource_id": "credits"})  # fmt: skip
    with pytest.raises(CatalogError, match=r"row 2 .*'token_resource_id'.*category is token"):
        build(files)
    files = rows()
    files["usage_resources.csv"] = [
        {
            "usage_resource_id": "credits",
            "name": "C",
            "unit_of_measure": "c",
            "category": "token",
            "token_resource_id": "credits",
        }
    ]
    with pytest.raises(CatalogError, match=r"row 1 .*'token_resource_id'.*no token_resource_id"):
        build(files)
