"""The alerts of a period as of a date (domain/alerts.py), from what the warehouse holds: the
period's buckets, balances and ledger, its bucket forecasts, and its usage priced day by day for
the accounts an overage rule could fire for."""

from __future__ import annotations

import pandas as pd

from consumption_pipeline.domain.alerts import daily_amounts, evaluate_alerts
from consumption_pipeline.domain.catalog import Catalog
from consumption_pipeline.domain.summaries import SUMMARIZED, summarize
from consumption_pipeline.storage.warehouse import Warehouse

LEDGER_READ = ["bucket_id", "entry_date", "sequence", "entry_type", "closing_balance"]


def period_alerts(store: Warehouse, catalog: Catalog, period: str, as_of: pd.Timestamp,
                  grace_days: int = 3) -> pd.DataFrame:  # fmt: skip
    """Every alert of `period` whose threshold is crossed up to `as_of` (the forecast's date)."""
    rules = catalog.alert_rules
    day = pd.Timestamp(period)
    if rules.empty:
        return evaluate_alerts(rules, *[pd.DataFrame()] * 5, day, as_of)
    kinds = set(rules["kind"])
    buckets = store.read_period("entitlement_buckets", period)
    balances = store.read_period("bucket_balances", period)
    ledger = store.read_period("entitlement_ledger", period, columns=LEDGER_READ)
    forecasts = store.read_period("bucket_forecasts", period)
    amounts = pd.DataFrame(columns=["account_id", "usage_resource_id", "currency", "day",
                                    "amount", "overage"])  # fmt: skip
    if "overage_amount" in kinds:
        amounts = _amounts(store, catalog, rules[rules["kind"].eq("overage_amount")], day, as_of,
                           grace_days)  # fmt: skip
    return evaluate_alerts(rules, buckets, balances, ledger, forecasts, amounts,
                           day, as_of)  # fmt: skip


def _amounts(store: Warehouse, catalog: Catalog, rules: pd.DataFrame, period: pd.Timestamp,
             as_of: pd.Timestamp, grace_days: int) -> pd.DataFrame:  # fmt: skip
    """The running amounts of the accounts whose period amount so far reaches the lowest
    threshold of an overage rule that watches them: only those are priced day by day."""
    key = f"{period:%Y-%m-%d}"
    lines = store.read_period("liable_summaries", key)
    lines = lines[lines["line_type"].fillna("usage").eq("usage")]
    totals = lines.groupby("account_id")["amount"].sum()
    candidates = []
    for account, total in totals.items():
        watching = rules[rules["account_id"].isna() | rules["account_id"].eq(account)]
        if len(watching) and total >= watching["threshold"].min():
            candidates.append(account)
    if not candidates:
        return daily_amounts(pd.DataFrame(columns=[*SUMMARIZED, "window_date"]), None, period,
                             as_of)  # fmt: skip
    usage = store.read_period("usage_summaries", key, columns=[*SUMMARIZED, "window_date"])

    def price(part: pd.DataFrame) -> pd.DataFrame:
        return summarize(part, catalog, period, as_of, grace_days).liable_summaries

    return daily_amounts(usage, price, period, as_of, candidates)
