"""Pricing models of docs/rules.md stage 5, on unrounded decimal amounts. Numbers worked by hand."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from consumption_pipeline.domain.pricing import Tier, price

# Two tiers: 0.10 a unit (flat fee 5) up to and including the 1,000th unit, 0.05 above (fee 10).
TIERS = [Tier(D(0), D("0.10"), D(5)), Tier(D(1000), D("0.05"), D(10))]


def test_per_unit_is_quantity_times_unit_price():
    # 1,234.5 × 0.02 = 24.69
    assert price(D("1234.5"), "per_unit", [Tier(D(0), D("0.02"))]) == D("24.69")


def test_per_unit_keeps_full_precision_until_the_line_is_rounded():
    # 0.000001 × 0.015 = 0.000000015 (rounding happens once per ratable line, not here)
    assert price(D("0.000001"), "per_unit", [Tier(D(0), D("0.015"))]) == D("0.000000015")


def test_graduated_prices_each_unit_in_its_tier_plus_the_flat_fee_of_each_tier_reached():
    # 2,500: 1,000 × 0.10 + 5 + 1,500 × 0.05 + 10 = 100 + 5 + 75 + 10 = 190
    assert price(D(2500), "graduated", TIERS) == D(190)
    # 400: 400 × 0.10 + 5 = 45 (the second tier holds nothing: no flat fee)
    assert price(D(400), "graduated", TIERS) == D(45)


def test_graduated_tier_boundary_the_thousandth_unit_is_in_the_first_tier():
    # Tiers at 0 and 1,000: 1,000 units are all in the first tier: 100 + 5 = 105.
    assert price(D(1000), "graduated", TIERS) == D(105)
    # 1,000.5: half a unit in the second tier, which then charges its flat fee:
    # 100 + 5 + 0.5 × 0.05 + 10 = 115.025
    assert price(D("1000.5"), "graduated", TIERS) == D("115.025")


def test_volume_prices_all_units_at_the_tier_the_total_falls_in_plus_its_flat_fee():
    tiers = [Tier(D(0), D("0.10"), D(5)), Tier(D(1000), D("0.08"), D(20))]
    # 1,000 falls in the first tier: 1,000 × 0.10 + 5 = 105
    assert price(D(1000), "volume", tiers) == D(105)
    # 1,001 falls in the second: 1,001 × 0.08 + 20 = 80.08 + 20 = 100.08
    assert price(D(1001), "volume", tiers) == D("100.08")
    # 10: 10 × 0.10 + 5 = 6
    assert price(D(10), "volume", tiers) == D(6)


def test_package_charges_whole_packages_rounding_up():
    tier = [Tier(D(0), D(3))]
    # packages of 100 at 3.00: 250 → ceil(2.5) = 3 → 9; 200 → 2 → 6; 0.5 → 1 → 3
    assert price(D(250), "package", tier, D(100)) == D(9)
    assert price(D(200), "package", tier, D(100)) == D(6)
    assert price(D("0.5"), "package", tier, D(100)) == D(3)


@pytest.mark.parametrize("model", ["per_unit", "graduated", "volume", "package"])
def test_a_quantity_of_zero_costs_nothing_not_even_a_flat_fee(model):
    assert price(D(0), model, TIERS, D(100)) == 0


def test_flat_fees_apply_to_graduated_and_volume_tiers_only():
    with_fee = [Tier(D(0), D(2), D(50))]
    # per_unit: 3 × 2 = 6 (fee ignored); package of 2: ceil(1.5) × 2 = 4 (fee ignored);
    # graduated: 6 + 50 = 56; volume: 6 + 50 = 56.
    assert price(D(3), "per_unit", with_fee) == D(6)
    assert price(D(3), "package", with_fee, D(2)) == D(4)
    assert price(D(3), "graduated", with_fee) == D(56)
    assert price(D(3), "volume", with_fee) == D(56)


def test_tiers_may_be_given_in_any_order():
    assert price(D(2500), "graduated", list(reversed(TIERS))) == D(190)
    assert price(D(1000), "volume", list(reversed(TIERS))) == D(105)


def test_three_graduated_tiers():
    tiers = [Tier(D(0), D(1)), Tier(D(10), D("0.5")), Tier(D(100), D("0.1"), D(7))]
    # 150: 10 × 1 + 90 × 0.5 + 50 × 0.1 + 7 = 10 + 45 + 5 + 7 = 67
    assert price(D(150), "graduated", tiers) == D(67)
    # 100: 10 + 45 = 55 (the 100th unit is in the second tier; no third-tier fee)
    assert price(D(100), "graduated", tiers) == D(55)
    # volume, 100: falls in the second tier: 100 × 0.5 = 50
    assert price(D(100), "volume", tiers) == D(50)
