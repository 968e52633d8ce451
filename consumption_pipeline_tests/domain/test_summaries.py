"""Stage 5 of docs/rules.md, rule by rule: ratable summaries (overage priced, split by rate) and
liable summaries (invoice lines, rounded parts, status). Numbers worked out by hand.

As in test_drawdown, every scenario is an account of one catalog, and October 2026 (the first
period processed) is run once for the module.
"""

from __future__ import annotations

from decimal import Decimal as D

import pandas as pd
import pytest

from consumption_pipeline.domain.catalog import Catalog
from consumption_pipeline.domain.summaries import PricingError, summarize
from consumption_pipeline_tests.domain.test_drawdown import (
    CREDITS,
    Run,
    Scenario,
    account,
    asset,
    build_catalog,
    grant,
    price_row,
    resource,
    run_periods,
    token_rate,
    token_resource,
    use,
)

RESOURCES = [
    CREDITS, token_resource("compute_hours"), token_resource("gpu_hours"), resource("api_calls"),
    resource("split_calls"), resource("half_cents"), resource("vol_calls"), resource("pack_calls"),
    resource("free_calls", overage_chargeable="false"),
    resource("unpriced_free", overage_chargeable="false"),
]  # fmt: skip
TOKEN_RATES = [token_rate("compute_hours", "10"), token_rate("gpu_hours", "1")]
R1, R2 = (
    {"effective_from": "2026-01-01", "effective_to": "2026-10-15"},
    {"effective_from": "2026-10-15"},
)
PRICE_BOOK = [
    price_row("credits", "0.02"), price_row("credits", "0.02", "EUR"),
    price_row("credits", "2.5", "JPY"), price_row("credits", "1.2345", "KWD"),
    price_row("api_calls", "0.01"),
    # split_calls: graduated, 0.10 then 0.05 above 1,000 until 15 Oct; 0.20 then 0.10 from 15 Oct.
    price_row("split_calls", "0.10", model="graduated", tier_lower="0", **R1),
    price_row("split_calls", "0.05", model="graduated", tier_lower="1000", **R1),
    price_row("split_calls", "0.20", model="graduated", tier_lower="0", **R2),
    price_row("split_calls", "0.10", model="graduated", tier_lower="1000", **R2),
    # half_cents: the same 0.015 a unit, but two rates (a new row from 15 Oct).
    price_row("half_cents", "0.015", **R1), price_row("half_cents", "0.015", **R2),
    price_row("free_calls", "1.00"),
    price_row("vol_calls", "0.10", model="volume", tier_lower="0", flat_fee="5"),
    price_row("vol_calls", "0.08", model="volume", tier_lower="1000", flat_fee="20"),
    price_row("pack_calls", "3", model="package", package_size="100"),
]  # fmt: skip
SCENARIOS: list[Scenario] = []


def scenario(name: str, usage=(), grants=(), assets=None, **extra) -> str:
    assets = [asset("A1", "NONE", "2026-01-01")] if assets is None else assets
    SCENARIOS.append(Scenario(name, list(grants), list(assets), list(usage), **extra))
    return name


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return build_catalog(SCENARIOS, RESOURCES, TOKEN_RATES, PRICE_BOOK)


@pytest.fixture(scope="module")
def run(cat) -> Run:
    return run_periods(cat, SCENARIOS, "2026-10")


def rows(frame: pd.DataFrame, *columns: str) -> list[tuple]:
    out = frame[list(columns)].astype(object).where(frame[list(columns)].notna(), None)
    return [tuple(r) for r in out.itertuples(index=False)]


PER_UNIT = scenario("PERUNIT", [use("2026-10-05", "12.345", "compute_hours")])


def test_overage_is_priced_at_the_rate_of_its_drawdown_resource_and_rounded(run):
    # 12.345 h × 10 = 123.45 credits, no bucket: all overage. 123.45 × $0.02 = 2.469 → $2.47.
    # Net unit rate 2.47 / 123.45 = 0.02000810... → 0.020008.
    oct_ = run.view(PER_UNIT)["2026-10"]
    assert rows(oct_.ratable, "asset_id", "usage_resource_id", "rate_source", "pricing_model",
                "overage_quantity", "amount", "net_unit_rate", "currency") == [
        ("A1", "credits", "price_book", "per_unit", 123.45, D("2.47"), D("0.020008"), "USD")
    ]  # fmt: skip
    assert rows(oct_.liable, "asset_id", "usage_resource_id", "consumption", "debited",
                "overage_quantity", "amount", "currency") == [
        ("A1", "credits", 123.45, 0.0, 123.45, D("2.47"), "USD")
    ]  # fmt: skip


SPLIT = scenario(
    "SPLIT",
    [use("2026-10-10", "1200", "split_calls"), use("2026-10-11", "300", "split_calls"),
     use("2026-10-20", "1500", "split_calls")],
)  # fmt: skip


def test_a_rate_change_inside_the_period_splits_the_overage_into_parts_priced_from_tier_zero(run):
    # Graduated; rate 1 (to 15 Oct): 0.10 up to 1,000, 0.05 above; rate 2 (from 15 Oct): 0.20, 0.10.
    # Rate 1 part: 1,200 + 300 = 1,500 → 1,000 × 0.10 + 500 × 0.05 = 100 + 25 = 125.00.
    # Rate 2 part: 1,500, tiers counted from zero again → 1,000 × 0.20 + 500 × 0.10 = 250.00.
    # Liable: 3,000 overage, 125 + 250 = 375.00, net unit rate 375 / 3,000 = 0.125.
    # (Priced as one quantity at either rate it would be 185.00 or 370.00.)
    oct_ = run.view(SPLIT)["2026-10"]
    ratable = oct_.ratable.sort_values("rate_effective_from")
    assert rows(ratable, "pricing_model", "overage_quantity", "amount") == [
        ("graduated", 1500.0, D("125.00")), ("graduated", 1500.0, D("250.00")),
    ]  # fmt: skip
    assert ratable["rate_effective_from"].dt.strftime("%Y-%m-%d").tolist() == [
        "2026-01-01", "2026-10-15",
    ]  # fmt: skip
    assert rows(oct_.liable, "overage_quantity", "amount", "net_unit_rate") == [
        (3000.0, D("375.00"), D("0.125000"))
    ]


HALF = scenario(
    "HALF", [use("2026-10-10", "1", "half_cents"), use("2026-10-20", "1", "half_cents")]
)


def test_each_ratable_line_is_rounded_half_up_and_the_liable_amount_sums_the_rounded_parts(run):
    # Two rates of 0.015: 1 × 0.015 = 0.015 → 0.02 on each line; liable 0.02 + 0.02 = 0.04
    # (rounding the unrounded total 0.030 would say 0.03).
    oct_ = run.view(HALF)["2026-10"]
    assert oct_.ratable["amount"].tolist() == [D("0.02"), D("0.02")]
    assert oct_.liable["amount"].tolist() == [D("0.04")]


NEGOTIATED = scenario(
    "NEGO",
    [use("2026-10-05", "10", "compute_hours", "N1"), use("2026-10-05", "10", "compute_hours", "N2"),
     use("2026-10-05", "10", "compute_hours", None)],
    assets=[asset("N1", "NONE", "2026-01-01"), asset("N2", "NONE", "2026-01-01")],
    negotiated_rates=[{"account_id": "ACME", **price_row("credits", "0.015")},
                      {"account_id": "ACME", "asset_id": "N1", **price_row("credits", "0.01")}],
)  # fmt: skip


def test_asset_rate_over_account_rate_over_price_book_in_the_amounts(run):
    # 10 h = 100 credits each. N1: its asset rate 0.01 → 1.00; N2: the account rate 0.015 → 1.50;
    # untagged: the account rate → 1.50. (PERUNIT's account has the price book, 0.02.)
    oct_ = run.view(NEGOTIATED)["2026-10"]
    assert sorted(rows(oct_.ratable, "asset_id", "rate_source", "amount"), key=str) == [
        ("N1", "asset", D("1.00")), ("N2", "account", D("1.50")), (None, "account", D("1.50")),
    ]  # fmt: skip


FREE = scenario(
    "FREE", [use("2026-10-05", "40", "free_calls"), use("2026-10-05", "6", "unpriced_free")]
)


def test_overage_of_a_resource_not_chargeable_is_recorded_with_amount_zero(run):
    # free_calls (priced 1.00) and unpriced_free (no price at all, and no error): 40 and 6 of
    # overage recorded, 0.00 owed.
    oct_ = run.view(FREE)["2026-10"]
    assert sorted(rows(oct_.ratable, "usage_resource_id", "overage_quantity", "amount")) == [
        ("free_calls", 40.0, D("0.00")), ("unpriced_free", 6.0, D("0.00")),
    ]  # fmt: skip
    assert sorted(rows(oct_.liable, "usage_resource_id", "overage_quantity", "amount")) == [
        ("free_calls", 40.0, D("0.00")), ("unpriced_free", 6.0, D("0.00")),
    ]  # fmt: skip


COVERED_UNPRICED = scenario(
    "COVERED",
    [use("2026-10-05", "5", "compute_hours")],
    grants=[grant("G", "P", "100")],
    assets=[asset("A1", "P", "2026-10-01")],
    accounts=[account(currency="CHF")],
)  # fmt: skip


def test_usage_fully_covered_needs_no_price(run):
    # CHF has no price for credits, but 50 credits are covered by the bucket: no overage, no
    # error; the line says 0.00 CHF.
    oct_ = run.view(COVERED_UNPRICED)["2026-10"]
    assert oct_.ratable.empty
    assert rows(
        oct_.liable, "consumption", "debited", "overage_quantity", "amount", "currency"
    ) == [(50.0, 50.0, 0.0, D("0.00"), "CHF")]


def test_chargeable_overage_without_a_price_is_a_pricing_error(run, cat):
    # The same CHF usage had the bucket not covered it: 50 credits of chargeable overage, no price.
    usage = run["2026-10"].usage
    usage = usage[usage["account_id"].eq("COVERED-ACME")].assign(debited=0.0, overage=50.0)
    with pytest.raises(PricingError) as error:
        summarize(usage, cat, pd.Timestamp("2026-10-01"), pd.Timestamp("2026-10-02"))
    message = str(error.value)
    assert "COVERED-ACME" in message and "credits" in message and "CHF" in message


@pytest.mark.parametrize("windows", [4, 10])
def test_a_line_sums_its_windows_exactly_or_stops(run, cat, windows):
    # Windows of 999,999,999,999 units each, all debited: 4 sum to 3,999,999,999,996 units,
    # exactly; 10 to 9,999,999,999,990 units = 9.99999999999e18 micro-units, past what int64
    # holds (9.22e18), so summed in int64 it would wrap to a negative: the line stops the period.
    usage = run["2026-10"].usage
    one = usage[usage["account_id"].eq("COVERED-ACME")].iloc[[0]]
    big = pd.concat([one] * windows, ignore_index=True).assign(
        drawdown_quantity=999_999_999_999.0, debited=999_999_999_999.0, overage=0.0
    )
    as_of = pd.Timestamp("2026-10-02")
    if windows == 4:
        line = summarize(big, cat, pd.Timestamp("2026-10-01"), as_of).liable_summaries.iloc[0]
        assert (line["consumption"], line["debited"]) == (3_999_999_999_996.0,) * 2
        return
    with pytest.raises(PricingError) as error:
        summarize(big, cat, pd.Timestamp("2026-10-01"), as_of)
    assert str(error.value) == (
        f"line of account 'COVERED-ACME' ({one['asset_id'].iloc[0]}), resource "
        f"'{one['drawdown_resource_id'].iloc[0]}': its drawdown quantity sums to "
        "9,999,999,999,990 units, more than a line can sum exactly (4,611,686,018,427); "
        "1 lines affected"
    )


CURRENCIES = scenario(
    "CURRENCIES",
    [use("2026-10-05", "0.3", "compute_hours", "Y1", "YEN"),
     use("2026-10-05", "0.1", "compute_hours", "K1", "KWDACC"),
     use("2026-10-05", "0.025", "compute_hours", "E1", "EURACC")],
    assets=[asset("Y1", "NONE", "2026-01-01", account="YEN"),
            asset("K1", "NONE", "2026-01-01", account="KWDACC"),
            asset("E1", "NONE", "2026-01-01", account="EURACC")],
    accounts=[account("YEN", "JPY"), account("KWDACC", "KWD"), account("EURACC", "EUR")],
)  # fmt: skip


def test_amounts_round_half_up_to_the_minor_unit_of_the_account_currency(run):
    # JPY: 0.3 h = 3 credits × ¥2.5 = 7.5 → ¥8.  KWD: 0.1 h = 1 credit × 1.2345 = 1.2345 → 1.235.
    # EUR: 0.025 h = 0.25 credits × €0.02 = 0.005 → €0.01.
    liable = run.view(CURRENCIES)["2026-10"].liable.set_index("account_id")
    assert liable.loc["YEN", ["amount", "currency"]].tolist() == [D("8"), "JPY"]
    assert liable.loc["KWDACC", ["amount", "currency"]].tolist() == [D("1.235"), "KWD"]
    assert liable.loc["EURACC", ["amount", "currency"]].tolist() == [D("0.01"), "EUR"]
    assert (
        str(liable.loc["YEN", "amount"]) == "8" and str(liable.loc["KWDACC", "amount"]) == "1.235"
    )


MODELS = scenario(
    "MODELS", [use("2026-10-05", "1001", "vol_calls"), use("2026-10-05", "250", "pack_calls")]
)


def test_volume_and_package_overage_through_the_summaries(run):
    # vol_calls 1,001: all at the second tier's 0.08 + its fee 20 = 80.08 + 20 = 100.08.
    # pack_calls 250 in packages of 100 at 3: ceil(2.5) = 3 → 9.00.
    oct_ = run.view(MODELS)["2026-10"]
    assert sorted(rows(oct_.liable, "usage_resource_id", "amount")) == [
        ("pack_calls", D("9.00")), ("vol_calls", D("100.08")),
    ]  # fmt: skip


LINES = scenario(
    "LINES",
    [use("2026-10-05", "5", "compute_hours"), use("2026-10-06", "2", "compute_hours"),
     use("2026-10-05", "30", "gpu_hours"), use("2026-10-05", "7", "api_calls"),
     use("2026-10-05", "1", "compute_hours", asset_id=None),
     use("2026-10-05", "0", "api_calls", "A3")],
    grants=[grant("G", "P", "1000")],
    assets=[asset("A1", "P", "2026-10-01"), asset("A2", "P", "2026-10-01"),
            asset("A3", "NONE", "2026-10-01")],
)  # fmt: skip


def test_liable_summary_is_one_line_per_asset_and_drawdown_resource_with_usage(run):
    # A1 (asset-bound bucket of 1,000 credits): compute_hours 5 h + 2 h = 70 credits and gpu_hours
    # 30 credits bill as one credits line: 100 consumed (in credits), 100 debited, 0 owed.
    # A1's api_calls: its own line, 7 × 0.01 = 0.07. Untagged compute_hours 1 h = 10 credits,
    # not served by A1's asset-bound bucket: 10 × 0.02 = 0.20. A3's zero usage: a line owing
    # 0.00. A2 has no usage: no line.
    liable = run.view(LINES)["2026-10"].liable
    assert sorted(rows(liable, "asset_id", "usage_resource_id", "consumption", "debited",
                       "overage_quantity", "amount"), key=str) == [
        ("A1", "api_calls", 7.0, 0.0, 7.0, D("0.07")),
        ("A1", "credits", 100.0, 100.0, 0.0, D("0.00")),
        ("A3", "api_calls", 0.0, 0.0, 0.0, D("0.00")),
        (None, "credits", 10.0, 0.0, 10.0, D("0.20")),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("as_of", "grace_days", "status"),
    [
        ("2026-10-31", 3, "provisional"),  # inside the period
        ("2026-11-03", 3, "provisional"),  # the period ended on 1 Nov; 3 days of grace to 4 Nov
        ("2026-11-04", 3, "final"),
        ("2026-11-01", 0, "final"),
        ("2027-03-01", 3, "final"),
    ],
)
def test_status_is_provisional_while_the_period_is_open_and_final_once_closed(
    run, cat, as_of, grace_days, status
):
    usage = run["2026-10"].usage
    usage = usage[usage["account_id"].eq("LINES-ACME")]
    result = summarize(usage, cat, pd.Timestamp("2026-10-01"), pd.Timestamp(as_of), grace_days)
    assert result.liable_summaries["status"].unique().tolist() == [status]


def test_per_account_the_liable_amounts_sum_to_the_ratable_amounts(run):
    oct_ = run["2026-10"]
    liable = oct_.liable.groupby("account_id")["amount"].sum()
    ratable = oct_.ratable.groupby("account_id")["amount"].sum().reindex(liable.index, fill_value=0)
    assert liable.to_dict() == ratable.to_dict()
    assert liable["SPLIT-ACME"] == D("375.00")
