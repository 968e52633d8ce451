"""Volume anomalies: a warning naming the accounts whose usage of a resource fell to zero or
moved by more than the factor against the previous period."""

from __future__ import annotations

import pandas as pd
import pytest

from consumption_pipeline.quality.anomalies import volume_anomalies


def rated(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["account_id", "usage_resource_id", "consumption"])


PREVIOUS = rated(("ACME", "api_calls", 600.0), ("ACME", "api_calls", 400.0),  # 1,000 in all
                 ("ACME", "gb_stored", 10.0), ("BETA", "api_calls", 300.0),
                 ("GONE", "api_calls", 5.0))  # fmt: skip


def test_usage_within_the_factor_is_not_flagged():
    # ACME api_calls 1,000 → 2,900 (×2.9), gb_stored 10 → 4 (×0.4), BETA 300 → 101 (×0.337),
    # GONE 5 → 5: all within ×3 either way.
    current = rated(("ACME", "api_calls", 2900.0), ("ACME", "gb_stored", 4.0),
                    ("BETA", "api_calls", 101.0), ("GONE", "api_calls", 5.0))  # fmt: skip
    outcome = volume_anomalies(current, PREVIOUS, factor=3)
    assert outcome.passed and outcome.facts == {"compared": 4, "accounts": "none"}


def test_falling_to_zero_and_moving_beyond_the_factor_name_the_accounts():
    # ACME api_calls 1,000 → 3,100 (×3.1 > 3); BETA 300 → 99 (×0.33 < 1/3); GONE 5 → nothing.
    # ACME gb_stored 10 → 10 is fine, NEW has no previous usage to compare with.
    current = rated(("ACME", "api_calls", 3100.0), ("ACME", "gb_stored", 10.0),
                    ("BETA", "api_calls", 99.0), ("NEW", "api_calls", 1e6))  # fmt: skip
    outcome = volume_anomalies(current, PREVIOUS, factor=3)
    assert not outcome.passed
    assert outcome.facts["accounts"] == "ACME, BETA, GONE"
    assert outcome.failing["problem"].tolist() == [
        "account 'ACME', api_calls: usage changed 3.1x (1000 in the previous period, 3100 now)",
        "account 'BETA', api_calls: usage changed 0.33x (300 in the previous period, 99 now)",
        "account 'GONE', api_calls: usage fell to zero (5 in the previous period, 0 now)",
    ]


def test_a_zero_consumption_row_is_usage_falling_to_zero():
    outcome = volume_anomalies(rated(("BETA", "api_calls", 0.0)), PREVIOUS.iloc[3:4], factor=3)
    assert outcome.failing["problem"].tolist() == [
        "account 'BETA', api_calls: usage fell to zero (300 in the previous period, 0 now)"
    ]


def test_the_factor_is_configurable():
    # 1,000 → 1,600 is ×1.6: flagged with a factor of 1.5, not with 2.
    current, previous = rated(("ACME", "api_calls", 1600.0)), PREVIOUS.iloc[:2]
    assert not volume_anomalies(current, previous, factor=1.5).passed
    assert volume_anomalies(current, previous, factor=2).passed


def test_a_first_period_has_nothing_to_compare():
    outcome = volume_anomalies(PREVIOUS, rated(), factor=3)
    assert outcome.passed and outcome.facts["compared"] == 0


def test_a_factor_of_one_or_less_is_refused():
    with pytest.raises(ValueError, match="anomaly factor must be above 1, got 1"):
        volume_anomalies(PREVIOUS, PREVIOUS, factor=1)


def test_the_factor_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    from consumption_pipeline.storage.settings import Settings

    assert Settings.from_env().anomaly_factor == 3.0
    monkeypatch.setenv("CONSUMPTION_ANOMALY_FACTOR", "2.5")
    assert Settings.from_env().anomaly_factor == 2.5
    monkeypatch.setenv("CONSUMPTION_ANOMALY_FACTOR", "lots")
    with pytest.raises(ValueError, match="CONSUMPTION_ANOMALY_FACTOR: expected a number above 1, "
                                         "got 'lots'"):  # fmt: skip
        Settings.from_env()
