"""Balance and spend alerts: the rules of `alert_rules.csv` and when each one's threshold is
crossed in a period (README "Alerts"; docs/rules.md is silent on alerts, so the rules are stated
here and there).

A rule watches every account (`account_id` empty) or one, and one resource or all of them. Its
**subject** is what the threshold is compared with:

- `consumed_share` (threshold a percentage, 0 < t ≤ 100): the share of a bucket's granted quantity
  drawn from it, `(granted − balance) ÷ granted`; with `scope = wallet` (the default) of an
  account's open buckets of one resource together, `Σ(granted − balance) ÷ Σ granted`. Crossed
  when the share reaches the threshold (≥).
- `balance_below` (units of the resource): a bucket's balance, or with `scope = wallet` the sum
  of the balances of the account's open buckets of the resource. Crossed when below (<).
- `exhaustion_within_days` (whole days): a bucket of the forecast (`bucket_forecasts`) exhausted
  within that many days of its as-of date: `exhausted_on − as_of ≤ threshold`, an empty bucket
  counting as 0 days. Subject: the bucket.
- `overage_amount` (money in the account's currency): the period's amount of the account's
  invoice lines from its own usage (one resource's line, if the rule names it), priced as the
  summaries price it. Crossed when the amount reaches the threshold (≥).

Running values are taken at the end of each day of the period up to its as-of date (the day
itself included: what the warehouse holds for it has happened), on the days they can change (the
period's first day, a day with a ledger entry or usage, a day a bucket opens or ends). A bucket
is open on day d when valid_from ≤ d < valid_to. An alert is the **first** day of the period on
which its rule's threshold is crossed for its subject: a condition still true on the first day of
a period (a wallet 90% drawn since last month) alerts again in the new period, once. The alert's
id is a digest of (period, rule, account, subject), so recomputing a period finds the same
alerts.
"""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal

import numpy as np
import pandas as pd

from consumption_pipeline.domain.calendar import period_bounds
from consumption_pipeline.domain.money import round_money

KINDS = ("consumed_share", "exhaustion_within_days", "overage_amount", "balance_below")
SCOPES = ("wallet", "bucket")
CHANNELS = ("webhook", "email")
RULE_ID = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
EMAIL = r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+"
URL = r"https?://[^\s]+"
UNITS = {"consumed_share": "percent", "balance_below": "units", "exhaustion_within_days": "days"}
ALERT_COLUMNS = [
    "alert_id", "period", "rule_id", "kind", "account_id", "subject_type", "subject_id",
    "usage_resource_id", "value", "threshold", "unit", "as_of", "details", "channel",
    "recipient",
]  # fmt: skip

Problem = tuple[object, str, str]  # (row label, column, what was expected)


def rule_problems(rules: pd.DataFrame, resources: pd.DataFrame) -> list[Problem]:
    """The rules that cannot be evaluated or delivered, in file order (cells as text, None or NA
    where empty; rows whose kind is unknown are left to the allowed-values check)."""
    converted = set(
        resources.loc[resources["token_resource_id"].notna(), "usage_resource_id"].dropna()
    ) if "token_resource_id" in resources else set()  # fmt: skip
    found: list[Problem] = []
    for r in rules.reindex(columns=["rule_id", "kind", "threshold", "usage_resource_id", "scope",
                                    "channel", "recipient"]).itertuples():  # fmt: skip
        problem = _rule_problem(r, converted)
        if problem:
            found.append((r.Index, *problem))
    return found


def _set(value) -> bool:
    return value is not None and not pd.isna(value)


def _rule_problem(r, converted: set[str]) -> tuple[str, str] | None:
    if _set(r.rule_id) and not re.fullmatch(RULE_ID, str(r.rule_id)):
        return (
            "rule_id",
            "1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit",
        )
    threshold = _decimal(r.threshold)
    if r.kind == "consumed_share" and threshold is not None and not 0 < threshold <= 100:
        return "threshold", "a percentage above 0 and at most 100"
    if (
        r.kind == "exhaustion_within_days"
        and threshold is not None
        and (threshold != threshold.to_integral_value() or threshold > 366)
    ):
        return "threshold", "a whole number of days from 0 to 366"
    if r.kind == "balance_below" and threshold is not None and threshold <= 0:
        return "threshold", "a balance above 0"
    if _set(r.usage_resource_id) and r.usage_resource_id in converted:
        return (
            "usage_resource_id",
            "a resource drawn from its own buckets (not one converted into a token)",
        )
    if _set(r.scope) and r.kind in KINDS and r.kind not in ("consumed_share", "balance_below"):
        return "scope", f"no scope for kind {r.kind} (its subject is fixed)"
    if r.channel == "email" and not (_set(r.recipient) and re.fullmatch(EMAIL, str(r.recipient))):
        return "recipient", "an email address for the email channel"
    if r.channel == "webhook" and _set(r.recipient) and not re.fullmatch(URL, str(r.recipient)):
        return "recipient", "an http:// or https:// URL for the webhook channel"
    if not _set(r.channel) and _set(r.recipient):
        return "channel", "a channel (webhook|email) for the recipient"
    return None


def _decimal(value) -> Decimal | None:
    if not _set(value):
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


def alert_id(period: pd.Timestamp, rule_id: str, account_id: str, subject_type: str,
             subject_id: str) -> str:  # fmt: skip
    """A stable id: the same period, rule and subject always give the same alert."""
    key = "\x1f".join([f"{period:%Y-%m}", rule_id, account_id, subject_type, subject_id])
    return f"{period:%Y-%m}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def evaluate_alerts(
    rules: pd.DataFrame, buckets: pd.DataFrame, balances: pd.DataFrame,
    ledger: pd.DataFrame, forecasts: pd.DataFrame, amounts: pd.DataFrame, period: pd.Timestamp,
    as_of: pd.Timestamp,
) -> pd.DataFrame:  # fmt: skip
    """The alerts of `period` as of `as_of`: one row per rule and subject whose threshold is
    crossed on a day of the period up to `as_of`, dated on the first such day.

    `buckets`, `balances` and `ledger` are the period's entitlement_buckets, bucket_balances and
    entitlement_ledger; `forecasts` its bucket_forecasts; `amounts` the running amount of each
    account's lines per day (`daily_amounts`)."""
    if rules.empty:
        return pd.DataFrame(columns=ALERT_COLUMNS)
    start, end = period_bounds(period)
    last = min(as_of, end - pd.Timedelta(days=1))
    balance_kinds = rules["kind"].isin(["consumed_share", "balance_below"]).any()
    states = bucket_states(buckets, balances, ledger, start, last) if balance_kinds else None
    found = []
    for rule in rules.itertuples(index=False):
        if rule.kind in ("consumed_share", "balance_below"):
            found.append(_balance_alerts(rule, states))
        elif rule.kind == "exhaustion_within_days":
            found.append(_exhaustion_alerts(rule, forecasts))
        elif rule.kind == "overage_amount":
            found.append(_amount_alerts(rule, amounts))
    found = [f for f in found if len(f)]
    if not found:
        return pd.DataFrame(columns=ALERT_COLUMNS)
    out = pd.concat(found, ignore_index=True)
    out["period"] = period
    out["alert_id"] = [alert_id(period, *k) for k in zip(
        out["rule_id"], out["account_id"], out["subject_type"], out["subject_id"], strict=True)]  # fmt: skip
    return out.sort_values(["as_of", "rule_id", "account_id", "subject_id"], kind="stable")[
        ALERT_COLUMNS
    ].reset_index(drop=True)


def bucket_states(buckets: pd.DataFrame, balances: pd.DataFrame, ledger: pd.DataFrame,
                  first: pd.Timestamp, last: pd.Timestamp) -> pd.DataFrame:  # fmt: skip
    """Each bucket's balance at the end of each day in [first, last] on which anything can
    change, while it is open: bucket_id, account_id, asset_id, usage_resource_id, granted, day,
    balance."""
    cols = ["bucket_id", "account_id", "asset_id", "usage_resource_id", "granted", "valid_from",
            "valid_to"]  # fmt: skip
    known = buckets.drop_duplicates("bucket_id")[cols]
    known = known[known["bucket_id"].isin(balances["bucket_id"])]
    entries = ledger[(ledger["entry_date"] >= first) & (ledger["entry_date"] <= last)]
    days = pd.DatetimeIndex(
        sorted({first, *entries["entry_date"],
                *known["valid_from"][(known["valid_from"] > first) & (known["valid_from"] <= last)],
                *known["valid_to"].dropna()[(known["valid_to"] > first) & (known["valid_to"] <= last)]})
    )  # fmt: skip
    if known.empty or days.empty:
        return pd.DataFrame(columns=[*cols[:5], "day", "balance"])
    grid = known.merge(pd.DataFrame({"day": days}), how="cross")
    open_ = (grid["valid_from"] <= grid["day"]) & (
        grid["valid_to"].isna() | (grid["day"] < grid["valid_to"])
    )
    grid = grid[open_].sort_values(["bucket_id", "day"]).reset_index(drop=True)
    # The balance after the day's last entry, else the one carried from before.
    last_entry = entries.sort_values("sequence").drop_duplicates(["bucket_id", "entry_date"],
                                                                 keep="last")  # fmt: skip
    after = last_entry[["bucket_id", "entry_date", "closing_balance"]].rename(
        columns={"entry_date": "day", "closing_balance": "balance"})  # fmt: skip
    grid = grid.merge(after, how="left", on=["bucket_id", "day"])
    opening = balances.drop_duplicates("bucket_id").set_index("bucket_id")["opening"]
    grid["balance"] = grid.groupby("bucket_id")["balance"].ffill()
    grid["balance"] = grid["balance"].fillna(grid["bucket_id"].map(opening)).astype("float64")
    return grid[[*cols[:5], "day", "balance"]]


def _matching(rule, frame: pd.DataFrame) -> pd.DataFrame:
    keep = pd.Series(True, index=frame.index)
    if _set(rule.account_id):
        keep &= frame["account_id"].eq(rule.account_id)
    if _set(rule.usage_resource_id):
        keep &= frame["usage_resource_id"].eq(rule.usage_resource_id)
    return frame[keep]


def _balance_alerts(rule, states: pd.DataFrame) -> pd.DataFrame:
    states = _matching(rule, states)
    if states.empty:
        return states
    wallet = not _set(rule.scope) or rule.scope == "wallet"
    if wallet:
        group = ["account_id", "usage_resource_id", "day"]
        values = (
            states.assign(n=1)
            .groupby(group, as_index=False)
            .agg(granted=("granted", "sum"), balance=("balance", "sum"), buckets=("n", "sum"))
        )
        values["subject_type"], values["subject_id"] = "wallet", values["usage_resource_id"]
    else:
        values = states.assign(buckets=1, subject_type="bucket", subject_id=states["bucket_id"])
    threshold = float(rule.threshold)
    values["granted"], values["balance"] = values["granted"].round(6), values["balance"].round(6)
    if rule.kind == "consumed_share":
        consumed = (values["granted"] - values["balance"]).round(6)
        share = (consumed / values["granted"].where(values["granted"] > 0) * 100).round(6)
        values = values.assign(value=share, consumed=consumed)
        crossed = values["value"] >= threshold
    else:
        values = values.assign(value=values["balance"])
        crossed = values["value"] < threshold
    first = values[crossed.fillna(False)].sort_values("day").drop_duplicates(
        ["account_id", "subject_type", "subject_id"])  # fmt: skip
    details = [
        json.dumps({k: _plain(getattr(r, k)) for k in ("granted", "balance", "consumed", "buckets")
                    if hasattr(r, k)}, sort_keys=True)
        for r in first.itertuples(index=False)
    ]  # fmt: skip
    return _rows(rule, first, details, UNITS[rule.kind])


def _exhaustion_alerts(rule, forecasts: pd.DataFrame) -> pd.DataFrame:
    forecasts = _matching(rule, forecasts)
    dated = forecasts[forecasts["exhausted_on"].notna()]
    if dated.empty:
        return dated
    days = (dated["exhausted_on"] - dated["as_of"]).dt.days.clip(lower=0)
    first = dated.assign(value=days.astype("float64"), day=dated["as_of"],
                         subject_type="bucket", subject_id=dated["bucket_id"])  # fmt: skip
    first = first[first["value"] <= float(rule.threshold)]
    details = [
        json.dumps({"exhausted_on": f"{r.exhausted_on:%Y-%m-%d}", "outlook": r.outlook,
                    "balance": _plain(r.balance), "burn_rate": _plain(r.burn_rate),
                    "valid_to": None if pd.isna(r.valid_to) else f"{r.valid_to:%Y-%m-%d}"},
                   sort_keys=True)
        for r in first.itertuples(index=False)
    ]  # fmt: skip
    return _rows(rule, first, details, "days")


def _amount_alerts(rule, amounts: pd.DataFrame) -> pd.DataFrame:
    amounts = _matching(rule, amounts)
    if amounts.empty:
        return amounts
    if not _set(rule.usage_resource_id):  # the account's lines together
        amounts = amounts.groupby(["account_id", "currency", "day"], as_index=False).agg(
            amount=("amount", "sum"), overage=("overage", "sum")
        )
    threshold = Decimal(str(rule.threshold))
    crossed = amounts[[a >= threshold for a in amounts["amount"]]]
    first = crossed.sort_values("day").drop_duplicates("account_id")
    first = first.assign(subject_type="account", subject_id=first["account_id"],
                         value=[float(a) for a in first["amount"]])  # fmt: skip
    details = [json.dumps({"amount": str(r.amount), "currency": r.currency,
                           "overage": _plain(r.overage)}, sort_keys=True)
               for r in first.itertuples(index=False)]  # fmt: skip
    out = _rows(rule, first, details, "")
    out["unit"] = first["currency"].to_numpy()
    return out


def _rows(rule, first: pd.DataFrame, details: list[str], unit: str) -> pd.DataFrame:
    if "usage_resource_id" in first:
        resource = first["usage_resource_id"].astype("object").to_numpy()
    else:  # the account's lines together
        resource = [rule.usage_resource_id if _set(rule.usage_resource_id) else None] * len(first)
    return pd.DataFrame({
        "rule_id": rule.rule_id, "kind": rule.kind, "account_id": first["account_id"].to_numpy(),
        "subject_type": first["subject_type"].to_numpy(),
        "subject_id": first["subject_id"].astype("str").to_numpy(), "usage_resource_id": resource,
        "value": first["value"].astype("float64").round(6).to_numpy(),
        "threshold": float(rule.threshold), "unit": unit,
        "as_of": pd.to_datetime(first["day"]).to_numpy(), "details": details,
        "channel": rule.channel if _set(rule.channel) else None,
        "recipient": rule.recipient if _set(rule.recipient) else None,
    })  # fmt: skip


def daily_amounts(usage: pd.DataFrame, price_lines, period: pd.Timestamp,
                  as_of: pd.Timestamp, accounts: list[str] | None = None) -> pd.DataFrame:  # fmt: skip
    """The running amount of each account's invoice lines (per drawdown resource) at the end of
    each day of the period up to `as_of` on which it can change: account_id, usage_resource_id,
    currency, day, amount (Decimal), overage.

    `price_lines(usage) -> liable lines` prices usage summaries as the summaries stage does (the
    caller passes `summarize` with its catalog), so that an alert's amount is the invoice's. A
    monthly window counts on its date, the period's last day. Only `accounts`, if given."""
    start, end = period_bounds(period)
    last = min(as_of, end - pd.Timedelta(days=1))
    usage = usage[usage["window_date"] <= last]
    if accounts is not None:
        usage = usage[usage["account_id"].isin(accounts)]
    columns = ["account_id", "usage_resource_id", "currency", "day", "amount", "overage"]
    if usage.empty:
        return pd.DataFrame(columns=columns)
    frames = []
    for day in sorted(usage["window_date"].unique()):
        lines = price_lines(usage[usage["window_date"] <= day])
        grouped = lines.groupby(["account_id", "usage_resource_id", "currency"], as_index=False)
        summed = grouped.agg(amount=("amount", lambda a: sum(a, Decimal(0))),
                             overage=("overage_quantity", "sum"))  # fmt: skip
        frames.append(summed.assign(day=pd.Timestamp(day)))
    out = pd.concat(frames, ignore_index=True)
    out["amount"] = [round_money(a, c) for a, c in zip(out["amount"], out["currency"], strict=True)]
    return out[columns]


def _plain(value):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float | np.floating):
        return round(float(value), 6)
    if isinstance(value, np.integer):
        return int(value)
    return value
