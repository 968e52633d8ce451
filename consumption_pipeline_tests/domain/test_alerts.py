"""Alert thresholds (domain/alerts.py, README "Alerts"): each rule's subject, value and the first
day of the period it is crossed, with the numbers worked out by hand."""

from __future__ import annotations

import json
from decimal import Decimal

import pandas as pd
import pytest

from consumption_pipeline.domain.alerts import alert_id, daily_amounts, evaluate_alerts
from consumption_pipeline.domain.summaries import summarize
from consumption_pipeline_tests.builders import acme_catalog

OCT, NOV = pd.Timestamp("2026-10-01"), pd.Timestamp("2026-11-01")
D = pd.Timestamp


def rules(*rows: dict) -> pd.DataFrame:
    base = {"rule_id": "r", "account_id": pd.NA, "kind": "", "threshold": Decimal(0),
            "usage_resource_id": pd.NA, "scope": pd.NA, "channel": pd.NA, "recipient": pd.NA}  # fmt: skip
    return pd.DataFrame([{**base, **r} for r in rows])


def bucket(bucket_id, granted, valid_from, valid_to, account="ACME", resource="credits"):
    return {"bucket_id": bucket_id, "account_id": account, "asset_id": "A1",
            "usage_resource_id": resource, "granted": float(granted),
            "valid_from": D(valid_from), "valid_to": D(valid_to) if valid_to else pd.NaT}  # fmt: skip


def entry(sequence, bucket_id, day, entry_type, closing):
    return {"bucket_id": bucket_id, "entry_date": D(day), "sequence": sequence,
            "entry_type": entry_type, "closing_balance": float(closing)}  # fmt: skip


# October: B1 grants 1,000 [10-01, 11-01), B2 500 [10-10, 12-10). 300 drawn from B1 on 10-05;
# on 10-20 the last 700 of B1 and 400 of B2.
BUCKETS = pd.DataFrame([bucket("B1", 1000, "2026-10-01", "2026-11-01"),
                        bucket("B2", 500, "2026-10-10", "2026-12-10")])  # fmt: skip
BALANCES = pd.DataFrame({"bucket_id": ["B1", "B2"], "opening": [0.0, 0.0]})
LEDGER = pd.DataFrame([
    entry(1, "B1", "2026-10-01", "credit", 1000), entry(2, "B1", "2026-10-05", "debit", 700),
    entry(3, "B2", "2026-10-10", "credit", 500), entry(4, "B1", "2026-10-20", "debit", 0),
    entry(5, "B2", "2026-10-20", "debit", 100),
])  # fmt: skip
NO_FORECAST = pd.DataFrame(columns=["bucket_id", "account_id", "usage_resource_id", "as_of",
                                    "exhausted_on", "outlook", "balance", "burn_rate", "valid_to"])  # fmt: skip
NO_AMOUNTS = pd.DataFrame(columns=["account_id", "usage_resource_id", "currency", "day", "amount",
                                   "overage"])  # fmt: skip


def evaluate(rule_rows, as_of=NOV, buckets=BUCKETS, balances=BALANCES, ledger=LEDGER,
             forecasts=NO_FORECAST, amounts=NO_AMOUNTS, period=OCT):  # fmt: skip
    return evaluate_alerts(rule_rows, buckets, balances, ledger, forecasts,
                           amounts, period, as_of)  # fmt: skip


def test_a_wallet_share_alerts_on_the_day_the_running_share_reaches_the_threshold():
    # Drawn / granted of the open buckets: 10-05 300 / 1,000 = 30%; 10-10 B2 opens: 300 / 1,500 =
    # 20%; 10-20 1,400 / 1,500 = 93.333333%: the first day at or above 80% is 10-20.
    found = evaluate(rules({"rule_id": "share80", "kind": "consumed_share",
                            "threshold": Decimal(80), "usage_resource_id": "credits"}))  # fmt: skip
    assert len(found) == 1
    alert = found.iloc[0]
    assert (alert["subject_type"], alert["subject_id"], alert["as_of"]) == ("wallet", "credits",
                                                                          D("2026-10-20"))  # fmt: skip
    assert alert["value"] == 93.333333 and alert["unit"] == "percent"
    assert json.loads(alert["details"]) == {"granted": 1500.0, "balance": 100.0,
                                            "consumed": 1400.0, "buckets": 2}  # fmt: skip


def test_a_threshold_crossed_earlier_in_the_period_is_dated_on_that_day():
    # 25%: crossed on 10-05 (30%); the dip to 20% on 10-10 and 93% on 10-20 add nothing.
    found = evaluate(rules({"kind": "consumed_share", "threshold": Decimal(25)}))
    assert found[["as_of", "value"]].values.tolist() == [[D("2026-10-05"), 30.0]]


def test_a_bucket_share_alerts_per_bucket():
    # B1 30% on 10-05, 100% on 10-20; B2 400 / 500 = 80% on 10-20 (the threshold reached counts).
    found = evaluate(rules({"kind": "consumed_share", "threshold": Decimal(80), "scope": "bucket"}))
    assert found[["subject_id", "as_of", "value"]].values.tolist() == [
        ["B1", D("2026-10-20"), 100.0], ["B2", D("2026-10-20"), 80.0]]  # fmt: skip


def test_a_wallet_balance_alerts_when_it_falls_below():
    # Balances: 10-01 1,000; 10-05 700; 10-10 1,200; 10-20 100 < 200.
    found = evaluate(rules({"kind": "balance_below", "threshold": Decimal(200)}))
    assert found[["subject_id", "as_of", "value", "unit"]].values.tolist() == [
        ["credits", D("2026-10-20"), 100.0, "units"]]  # fmt: skip
    # 1,000 is not below 1,000; 700 on 10-05 is.
    found = evaluate(rules({"kind": "balance_below", "threshold": Decimal(1000)}))
    assert found[["as_of", "value"]].values.tolist() == [[D("2026-10-05"), 700.0]]


def test_nothing_after_the_as_of_date_counts():
    found = evaluate(
        rules({"kind": "consumed_share", "threshold": Decimal(80)}), as_of=D("2026-10-19")
    )
    assert found.empty
    found = evaluate(
        rules({"kind": "consumed_share", "threshold": Decimal(80)}), as_of=D("2026-10-20")
    )
    assert found["as_of"].tolist() == [D("2026-10-20")]  # the as-of day itself has happened


def test_a_condition_carried_into_the_period_alerts_on_its_first_day():
    # B0 [09-01, 12-01) of 1,000 opens October with 100 left and no entry: 90% drawn on 10-01.
    buckets = pd.DataFrame([bucket("B0", 1000, "2026-09-01", "2026-12-01")])
    balances = pd.DataFrame({"bucket_id": ["B0"], "opening": [100.0]})
    found = evaluate(rules({"kind": "consumed_share", "threshold": Decimal(90)}), buckets=buckets,
                     balances=balances, ledger=LEDGER.iloc[:0])  # fmt: skip
    assert found[["as_of", "value"]].values.tolist() == [[D("2026-10-01"), 90.0]]


def test_rules_filter_by_account_and_resource():
    other = rules({"kind": "consumed_share", "threshold": Decimal(10), "account_id": "BETA"},
                  {"rule_id": "r2", "kind": "consumed_share", "threshold": Decimal(10),
                   "usage_resource_id": "api_calls"})  # fmt: skip
    assert evaluate(other).empty


def test_exhaustion_alerts_from_the_forecast_within_the_days():
    # As of 10-21: B1 runs dry on 10-25 (4 days), B2 on 11-05 (15 days); B3 emptied on 10-10
    # counts as 0 days; a bucket that expires first has no date.
    forecasts = pd.DataFrame({
        "bucket_id": ["B1", "B2", "B3", "B4"], "account_id": "ACME", "usage_resource_id": "credits",
        "as_of": D("2026-10-21"), "exhausted_on": [D("2026-10-25"), D("2026-11-05"), D("2026-10-10"), pd.NaT],
        "outlook": ["runs_out", "runs_out", "empty", "expires_first"], "balance": [40.0, 150, 0, 9],
        "burn_rate": [10.0, 10, 0, 0], "valid_to": D("2026-12-01"),
    })  # fmt: skip
    found = evaluate(rules({"kind": "exhaustion_within_days", "threshold": Decimal(7)}),
                     forecasts=forecasts, as_of=D("2026-10-21"))  # fmt: skip
    assert found[["subject_id", "value", "as_of"]].values.tolist() == [
        ["B1", 4.0, D("2026-10-21")], ["B3", 0.0, D("2026-10-21")]]  # fmt: skip
    assert json.loads(found.iloc[0]["details"])["exhausted_on"] == "2026-10-25"


def usage_summary(day: str, overage: float) -> dict:
    return {"account_id": "ACME", "asset_id": pd.NA, "drawdown_resource_id": "credits",
            "rate_source": "price_book", "rate_asset_id": pd.NA, "rate_effective_from": D("2026-01-01"),
            "currency": "USD", "overage_chargeable": True, "drawdown_quantity": overage + 100,
            "debited": 100.0, "overage": overage, "window_date": D(day)}  # fmt: skip


def test_overage_amount_alerts_on_the_day_the_priced_amount_reaches_the_threshold():
    # Overage at $0.02 a credit: 10-05 40 credits = $0.80; 10-20 +100 = 140 credits = $2.80.
    catalog = acme_catalog()
    usage = pd.DataFrame([usage_summary("2026-10-05", 40), usage_summary("2026-10-20", 100)])

    def price(part):
        return summarize(part, catalog, OCT, NOV).liable_summaries

    amounts = daily_amounts(usage, price, OCT, NOV)
    assert amounts["amount"].tolist() == [Decimal("0.80"), Decimal("2.80")]
    found = evaluate(
        rules({"kind": "overage_amount", "threshold": Decimal("2.80")}), amounts=amounts
    )
    assert found[["subject_type", "subject_id", "as_of", "value", "unit"]].values.tolist() == [
        ["account", "ACME", D("2026-10-20"), 2.8, "USD"]]  # fmt: skip
    assert json.loads(found.iloc[0]["details"]) == {"amount": "2.80", "currency": "USD",
                                                    "overage": 140.0}  # fmt: skip
    # $0.50 is reached on 10-05 already; $2.81 never.
    found = evaluate(
        rules({"kind": "overage_amount", "threshold": Decimal("0.5")}), amounts=amounts
    )
    assert found["as_of"].tolist() == [D("2026-10-05")]
    assert evaluate(rules({"kind": "overage_amount", "threshold": Decimal("2.81")}),
                    amounts=amounts).empty  # fmt: skip


def test_alert_ids_are_stable_and_name_period_rule_and_subject():
    rule = rules({"rule_id": "share80", "kind": "consumed_share", "threshold": Decimal(80)})
    first, again = evaluate(rule), evaluate(rule, as_of=D("2026-10-25"))
    assert first["alert_id"].tolist() == again["alert_id"].tolist()
    assert first["alert_id"][0] == alert_id(OCT, "share80", "ACME", "wallet", "credits")
    assert first["alert_id"][0].startswith("2026-10-")
    assert alert_id(NOV, "share80", "ACME", "wallet", "credits") != first["alert_id"][0]
    assert alert_id(OCT, "share80", "ACME", "bucket", "credits") != first["alert_id"][0]


@pytest.mark.parametrize("kind", ["consumed_share", "balance_below", "exhaustion_within_days",
                                  "overage_amount"])  # fmt: skip
def test_no_rules_or_no_data_no_alerts(kind):
    assert evaluate(rules()).empty
    assert evaluate(rules({"kind": kind, "threshold": Decimal(1)}), buckets=BUCKETS.iloc[:0],
                    ledger=LEDGER.iloc[:0]).empty  # fmt: skip
