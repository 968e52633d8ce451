"""The input contract of each catalog file as a Great Expectations suite: every failing cell is
reported (file, row, line, column, what was expected, what was there), with the catalog builder's
own wording, and the rules across rows (overlapping rates, tiers) that the builder does not make."""

from __future__ import annotations

import pandas as pd
import pytest

from consumption_pipeline.domain.catalog import REQUIRED, CatalogError, build_catalog
from consumption_pipeline.quality.inputs import check_catalog, check_file
from consumption_pipeline.storage import sources
from consumption_pipeline_tests.corpus.source import write_source


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    return sources.read_catalog(write_source(tmp_path_factory.mktemp("source")))


def changed(files: dict, name: str, row: int, **cells) -> dict:
    """The files with cells of data row `row` (from 1) of `name` replaced."""
    frame = files[name].copy()
    for column, value in cells.items():
        frame.loc[row - 1, column] = value
    return {**files, name: frame}


def problems(files: dict, name: str) -> list[str]:
    return check_file(name, files).failing["problem"].tolist()


def test_one_check_per_catalog_file_named_after_it(files):
    outcomes = check_catalog(files)
    assert [o.check for o in outcomes] == [
        "catalog_accounts", "catalog_usage_resources", "catalog_token_rates", "catalog_products",
        "catalog_product_grants", "catalog_assets", "catalog_price_book",
        "catalog_negotiated_rates", "catalog_asset_changes", "catalog_credit_grants",
        "catalog_alert_rules",
    ]  # fmt: skip
    assert all(o.passed for o in outcomes)
    assert outcomes[0].summary == "passed: 2 rows of accounts.csv"


def test_optional_rate_files_with_a_header_and_no_rows_pass(files):
    empty = {name: files[name].iloc[0:0] for name in ["token_rates.csv", "negotiated_rates.csv"]}
    assert check_file("negotiated_rates.csv", {**files, **empty}).passed
    assert check_file("token_rates.csv", {**files, **empty}).passed


# The cells the catalog builder refuses (consumption_pipeline_tests/domain/test_catalog.py), each
# found by the suite with the builder's words.
@pytest.mark.parametrize("name, row, cells, column, expected", [
    ("assets.csv", 1, {"start_date": "2026/09/01"}, "start_date", "a date YYYY-MM-DD"),
    ("assets.csv", 1, {"start_date": "2026-02-30"}, "start_date", "a date YYYY-MM-DD"),
    ("assets.csv", 2, {"end_date": "2026-09-01"}, "end_date", "a date after start_date"),
    ("assets.csv", 1, {"quantity": "-1"}, "quantity", "a non-negative number with at most 6 decimals"),
    ("assets.csv", 2, {"product_id": "GOLD"}, "product_id", "a known product_id"),
    ("assets.csv", 1, {"drawdown_order": "cheapest_first"}, "drawdown_order",
     "one of expiring_first|granted_first|granted_last"),
    ("accounts.csv", 2, {"currency": "usd"}, "currency", "an ISO 4217 code like USD"),
    ("accounts.csv", 1, {"account_name": " "}, "account_name", "a value"),
    ("usage_resources.csv", 3, {"aggregation_method": "avg"}, "aggregation_method", "one of sum|peak"),
    ("usage_resources.csv", 3, {"token_resource_id": "api_calls"}, "token_resource_id",
     "a resource whose category is token"),
    ("usage_resources.csv", 1, {"token_resource_id": "credits"}, "token_resource_id",
     "no token_resource_id on a token resource"),
    ("product_grants.csv", 1, {"quantity": "0.1234567"}, "quantity",
     "a non-negative number with at most 6 decimals"),
    ("product_grants.csv", 1, {"quantity": "NaN"}, "quantity",
     "a non-negative number with at most 6 decimals"),
    ("product_grants.csv", 1, {"rollover": "capped"}, "rollover_cap", "a cap when rollover is capped"),
    ("product_grants.csv", 1, {"renewal": "none", "validity_months": "0"}, "validity_months",
     "a positive number of months"),
    ("product_grants.csv", 1, {"priority": "-1"}, "priority", "a whole number"),
    ("price_book.csv", 1, {"pricing_model": "package"}, "package_size",
     "a positive package_size for the package model"),
    ("price_book.csv", 2, {"unit_price": "$0.018"}, "unit_price", "a non-negative decimal number"),
    ("price_book.csv", 1, {"effective_to": "2025-12-31"}, "effective_to", "a date after effective_from"),
    ("token_rates.csv", 1, {"usage_resource_id": "gpu"}, "usage_resource_id", "a known usage_resource_id"),
    ("negotiated_rates.csv", 1, {"asset_id": "A1"}, "asset_id", "an asset of the row's account"),
])  # fmt: skip
def test_a_bad_cell_is_found_with_the_builders_words(files, name, row, cells, column, expected):
    bad = changed(files, name, row, **cells)
    cell = bad[name].loc[row - 1, column].strip() if column in bad[name] else ""
    assert problems(bad, name) == [
        f"{name}: row {row} (line {row + 1}), column '{column}': expected {expected}, got {cell!r}"
    ]
    with pytest.raises(CatalogError, match=rf"^{name}: row {row} \(line {row + 1}\), column "
                                           rf"'{column}': expected"):  # fmt: skip
        build_catalog(bad)


def test_every_failing_cell_is_reported_not_only_the_first(files):
    # The builder stops at the first bad cell; the check lists all of them, in file order.
    bad = changed(files, "accounts.csv", 1, currency="usd")
    bad = changed(bad, "accounts.csv", 2, currency="", account_id="ACME")
    assert problems(bad, "accounts.csv") == [
        "accounts.csv: row 1 (line 2), column 'account_id': expected a unique account_id, got 'ACME'",
        "accounts.csv: row 1 (line 2), column 'currency': expected an ISO 4217 code like USD, got 'usd'",
        "accounts.csv: row 2 (line 3), column 'account_id': expected a unique account_id, got 'ACME'",
        "accounts.csv: row 2 (line 3), column 'currency': expected a value, got ''",
    ]


def test_a_missing_required_column_or_file(files):
    no_currency = {**files, "accounts.csv": files["accounts.csv"].drop(columns="currency")}
    assert problems(no_currency, "accounts.csv") == [
        "accounts.csv: missing required column 'currency'"
    ]
    absent = {n: f for n, f in files.items() if n not in ("products.csv", "token_rates.csv")}
    assert problems(absent, "products.csv") == ["products.csv: required catalog file is missing"]
    assert check_file("token_rates.csv", absent).passed  # the two rate files are optional


def test_the_builders_error_fails_its_files_check_even_where_the_suite_sees_nothing(files):
    # 1e3 is a number the suite lets through; say the builder refused it: the check fails too.
    error = CatalogError("products.csv: row 1 (line 2), column 'product_name': expected x, got 'y'",
                         file="products.csv", row=1, column="product_name")  # fmt: skip
    outcome = check_catalog(files, error)[REQUIRED_ORDER.index("products.csv")]
    assert not outcome.passed and outcome.failing["problem"].tolist() == [str(error)]


REQUIRED_ORDER = list(REQUIRED)


def rate(resource, currency, model, lower, unit, start, end="", size="") -> dict:
    return {"usage_resource_id": resource, "currency": currency, "pricing_model": model,
            "tier_lower": lower, "unit_price": unit, "package_size": size, "flat_fee": "",
            "effective_from": start, "effective_to": end}  # fmt: skip


def with_rates(files: dict, name: str, *rows: dict) -> dict:
    frame = pd.concat([files[name], pd.DataFrame(rows, dtype="str")], ignore_index=True)
    return {**files, name: frame.fillna("")}


def test_rates_that_follow_each_other_do_not_overlap(files):
    # [2026-01-01, 2026-07-01) then [2026-07-01, open): touching, not overlapping.
    bad = changed(files, "price_book.csv", 1, effective_to="2026-07-01")
    bad = with_rates(
        bad, "price_book.csv", rate("credits", "USD", "per_unit", "", "0.03", "2026-07-01")
    )
    assert check_file("price_book.csv", bad).passed


def test_a_rate_starting_inside_an_earlier_rate_overlaps_it(files):
    # The credits USD rate of row 1 runs from 2026-01-01 with no end; row 9 starts in it.
    bad = changed(files, "price_book.csv", 1, effective_to="2026-07-02")
    bad = with_rates(
        bad, "price_book.csv", rate("credits", "USD", "per_unit", "", "0.03", "2026-07-01")
    )
    assert problems(bad, "price_book.csv") == [
        "price_book.csv: row 9 (line 10), column 'effective_from': expected no overlap with the "
        "rate of row 1 (line 2) for the same key (credits, USD), got '2026-07-01'"
    ]


def test_rates_of_another_currency_or_level_do_not_overlap(files):
    # credits in JPY is another key; BETA's negotiated rate is another level than the book.
    other = with_rates(
        files, "price_book.csv", rate("credits", "JPY", "per_unit", "", "3", "2026-01-01")
    )
    assert check_file("price_book.csv", other).passed


def test_a_rate_inside_an_earlier_long_one_is_found_past_a_short_one(files):
    # Row 1: from 2026-01-01, open. Row 9: [2026-03-01, 2026-04-01). Row 10: from 2026-05-01.
    # Row 10 ends no overlap with row 9 but still overlaps row 1.
    bad = with_rates(files, "price_book.csv",
                     rate("credits", "USD", "per_unit", "", "0.03", "2026-03-01", "2026-04-01"),
                     rate("credits", "USD", "per_unit", "", "0.04", "2026-05-01"))  # fmt: skip
    assert [p.split(",")[0] for p in problems(bad, "price_book.csv")] == [
        "price_book.csv: row 9 (line 10)",
        "price_book.csv: row 10 (line 11)",
    ]
    assert "rate of row 1 (line 2)" in problems(bad, "price_book.csv")[1]


def test_two_token_rates_from_the_same_day_overlap(files):
    bad = with_rates(files, "token_rates.csv", {"usage_resource_id": "compute_hours",
                                                "tokens_per_unit": "12", "effective_from": "2026-01-01"})  # fmt: skip
    assert problems(bad, "token_rates.csv") == [
        "token_rates.csv: row 2 (line 3), column 'effective_from': expected no overlap with the "
        "rate of row 1 (line 2) for the same key (compute_hours), got '2026-01-01'"
    ]


def test_tiers_of_one_rate_must_agree_on_model_size_and_end(files):
    # The api_calls USD rate (rows 3 and 4): row 4 ends earlier and has a package size.
    bad = changed(files, "price_book.csv", 4, effective_to="2027-01-01", package_size="10")
    assert problems(bad, "price_book.csv") == [
        "price_book.csv: row 4 (line 5), column 'package_size': expected '' as in row 3 (line 4) "
        "of the same rate, got '10'",
        "price_book.csv: row 4 (line 5), column 'effective_to': expected '' as in row 3 (line 4) "
        "of the same rate, got '2027-01-01'",
    ]
