"""Seeded generator of source directories (docs/rules.md "Inputs") at any size.

`generate` writes the catalog CSVs and the usage files of a realistic deployment: a fixed set of
resources (one token, two resources converted into it, a peak one, one whose overage is not
chargeable), products with one-time and renewing grants, assets with varied start dates, some
negotiated rates, a price book in every currency used, and usage events spread over the requested
billing periods, with a few exact duplicates and bad rows mixed in.

Every event is a pure function of ``(seed, row number)`` (a counter-based hash, vectorized with
numpy), so a file is written chunk by chunk with bounded memory, and a duplicate can copy an event
written in any earlier file without keeping it. The same seed gives byte-identical files.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

EVENT_COLUMNS = [
    "event_id",
    "account_id",
    "asset_id",
    "usage_resource_id",
    "quantity",
    "occurred_at",
]
EVENT_FORMATS = ("parquet", "csv", "jsonl")
PARQUET_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("account_id", pa.string()),
        ("asset_id", pa.string()),
        ("usage_resource_id", pa.string()),
        ("quantity", pa.float64()),
        ("occurred_at", pa.timestamp("us", tz="UTC")),
    ]
)

# --- the fixed catalog -----------------------------------------------------------------------


def _table(columns: list[str], rows: str) -> pd.DataFrame:
    """A small fixed table written as CSV rows: every value a string, empty for "not set"."""
    return pd.read_csv(io.StringIO(rows.strip()), names=columns, dtype=str, keep_default_na=False)


RESOURCES = _table(
    [
        "usage_resource_id",
        "name",
        "unit_of_measure",
        "category",
        "aggregation_method",
        "aggregation_period",
        "token_resource_id",
        "overage_chargeable",
    ],
    """
credits,Credits,credit,token,sum,daily,,true
compute_hours,Compute hours,hour,usage,sum,daily,credits,true
gpu_hours,GPU hours,hour,usage,sum,daily,credits,true
api_calls,API calls,call,usage,sum,daily,,true
gb_stored,Storage,GB,usage,peak,monthly,,true
egress_gb,Data egress,GB,usage,sum,daily,,true
support_tickets,Support tickets,ticket,usage,sum,monthly,,false
""",
)
# The resources events are recorded against (the token itself is only drawn down); for each, the
# decimals its quantities carry and the range of their numerator, log-uniform in
# [10**min, 10**max]: compute 0.25-25 h, GPU 0.1-8 h, 1-5,000 calls, 1-2,000 GB stored,
# 0.1-300 GB egress, 1 ticket.
EVENT_RESOURCES = [
    "compute_hours",
    "gpu_hours",
    "api_calls",
    "gb_stored",
    "egress_gb",
    "support_tickets",
]
QUANTITY_DECIMALS = np.array([2, 3, 0, 3, 2, 0])
QUANTITY_LOG10_MIN = np.array([1.4, 2.0, 0.0, 3.0, 1.0, 0.0])
QUANTITY_LOG10_MAX = np.array([3.4, 3.9, 3.7, 6.3, 4.5, 0.0])

PRODUCTS = _table(
    ["product_id", "product_name"],
    """
STARTER,Starter plan
PRO,Pro plan
ENTERPRISE,Enterprise plan
CREDIT_PACK,Credit pack
API_PACK,API call pack
""",
)
PLAN_PRODUCTS, PLAN_WEIGHTS = np.array([0, 1, 2]), np.array([0.5, 0.35, 0.15])
ADD_ON_PRODUCTS, ADD_ON_WEIGHTS = np.array([3, 4, 1]), np.array([0.45, 0.35, 0.2])
# Which resources an asset's usage is about, per product (columns follow EVENT_RESOURCES).
RESOURCE_MIX = np.array(
    [
        [0.25, 0.00, 0.55, 0.10, 0.05, 0.05],  # STARTER
        [0.30, 0.05, 0.40, 0.10, 0.13, 0.02],  # PRO
        [0.30, 0.15, 0.35, 0.05, 0.14, 0.01],  # ENTERPRISE
        [0.70, 0.30, 0.00, 0.00, 0.00, 0.00],  # CREDIT_PACK
        [0.00, 0.00, 1.00, 0.00, 0.00, 0.00],  # API_PACK
    ]
)

GRANTS = _table(
    [
        "grant_id",
        "product_id",
        "usage_resource_id",
        "quantity",
        "renewal",
        "validity_months",
        "rollover",
        "rollover_cap",
        "max_rollovers",
        "binding",
        "priority",
        "prorate",
        "grant_type",
        "commitment_rate",
    ],
    # Enterprise credits are a commitment priced at the lowest rate; credit packs a bounded one.
    """
STARTER_API,STARTER,api_calls,100000,monthly,,,,,asset,,,,
STARTER_STORAGE,STARTER,gb_stored,50,monthly,,,,,,,,,
STARTER_CREDITS,STARTER,credits,500,monthly,,none,,,account,,,,
STARTER_SUPPORT,STARTER,support_tickets,2,monthly,,,,,asset,,false,,
PRO_CREDITS,PRO,credits,5000,monthly,,capped,1000,,account,,,,
PRO_API,PRO,api_calls,1000000,monthly,,full,,2,asset,,,,
PRO_STORAGE,PRO,gb_stored,500,monthly,,,,,asset,,,,
PRO_EGRESS,PRO,egress_gb,1000,monthly,,,,,asset,,,,
PRO_SUPPORT,PRO,support_tickets,10,monthly,,,,,asset,,false,,
ENT_CREDITS,ENTERPRISE,credits,60000,quarterly,,full,,2,account,50,,commit,lowest
ENT_API,ENTERPRISE,api_calls,10000000,monthly,,capped,2000000,,asset,,,,
ENT_STORAGE,ENTERPRISE,gb_stored,5000,monthly,,,,,asset,,,,
ENT_EGRESS,ENTERPRISE,egress_gb,10000,monthly,,,,,asset,,,,
ENT_SUPPORT,ENTERPRISE,support_tickets,500,annual,,,,,account,,false,,
CREDIT_PACK_CREDITS,CREDIT_PACK,credits,10000,none,12,,,,account,10,,commit,bounded
API_PACK_CALLS,API_PACK,api_calls,500000,none,,,,,asset,,,,
""",
)

PRICE_COLUMNS = [
    "usage_resource_id",
    "currency",
    "pricing_model",
    "tier_lower",
    "unit_price",
    "package_size",
    "flat_fee",
    "effective_from",
    "effective_to",
]
# One row per tier, with (unit_price, flat_fee) in each currency. `egress_gb` gets a new price on
# the 16th of the first period (see _price_book): a rate change inside a period.
PRICE_TIERS = _table(
    [
        "usage_resource_id",
        "pricing_model",
        "tier_lower",
        "package_size",
        "USD",
        "USD_flat_fee",
        "EUR",
        "EUR_flat_fee",
        "JPY",
        "JPY_flat_fee",
    ],
    """
credits,per_unit,,,0.01,,0.009,,1.5,
api_calls,graduated,0,,0.001,10.00,0.0009,9.00,0.15,1500
api_calls,graduated,1000000,,0.0008,,0.0007,,0.12,
api_calls,graduated,10000000,,0.0005,,0.00045,,0.075,
gb_stored,volume,0,,0.10,,0.09,,15,
gb_stored,volume,1000,,0.08,5.00,0.07,4.50,12,750
gb_stored,volume,10000,,0.05,,0.045,,7.5,
egress_gb,package,,100,5.00,,4.50,,750,
support_tickets,per_unit,,,20.00,,18.00,,3000,
""",
)
EGRESS_NEW_PRICE = {"USD": "5.50", "EUR": "5.00", "JPY": "800"}
NEGOTIATED_CREDIT_PRICE = {"USD": "0.008", "EUR": "0.0072", "JPY": "1.2"}
NEGOTIATED_API_PRICE = {"USD": "0.0006", "EUR": "0.00055", "JPY": "0.09"}

CURRENCIES, CURRENCY_WEIGHTS = np.array(["USD", "EUR", "JPY"]), np.array([0.6, 0.3, 0.1])
COMPANY_SUFFIX = {"USD": ["Inc.", "LLC", "Corp."], "EUR": ["GmbH", "B.V.", "SAS"], "JPY": ["K.K."]}
# Offsets the event producers of each currency's accounts write (Z half of the time).
OFFSETS = np.array(["Z", "-05:00", "+01:00", "+09:00"])
OFFSET_MINUTES = np.array([0, -300, 60, 540])
NAME_WORDS = [
    "Acme Hooli Vandelay Stark Wonka Tyrell Cyberdyne Soylent Oscorp Aperture Nakatomi Monarch "
    "Dunder Wayne Initech Globex Umbrella Gringotts Duff Sterling".split(),
    "Analytics Labs Systems Logistics Foods Health Robotics Media Energy Capital".split(),
]

# Kinds of rows besides plain events and exact duplicates: the bad rows the ingest stage
# quarantines, named after its reasons.
BAD_KINDS = (
    "negative_quantity",
    "too_many_decimals",
    "unknown_account",
    "unknown_usage_resource",
    "unknown_asset",
    "asset_of_another_account",
    "conflict",  # same event_id as an earlier event, another quantity: every copy is quarantined
    "invalid_quantity",  # text formats only: a non-numeric quantity ("n/a")
    "malformed_row",  # text formats only: a CSV row with an extra field, a truncated JSON line
)
TEXT_ONLY_KINDS = ("invalid_quantity", "malformed_row")
UNKNOWN_ACCOUNT, UNKNOWN_RESOURCE, UNKNOWN_ASSET = "ACC-UNKNOWN", "teleport_minutes", "AST-UNKNOWN"

# --- counter-based randomness ----------------------------------------------------------------

_MASK64 = 0xFFFFFFFFFFFFFFFF
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S27, _S30, _S31, _S11 = np.uint64(27), np.uint64(30), np.uint64(31), np.uint64(11)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer: a bijective, well-mixed hash of uint64 values (wraps on purpose)."""
    x = x ^ (x >> _S30)
    x *= _M1
    x ^= x >> _S27
    x *= _M2
    x ^= x >> _S31
    return x


class _Stream:
    """Independent uniform draws for a vector of row numbers, each a pure function of the row."""

    def __init__(self, seed: int, rows: np.ndarray):
        key = _mix(np.array([seed & _MASK64], dtype=np.uint64))[0]
        self.base = _mix(rows.astype(np.uint64) * _GOLDEN + key)

    def uniform(self, draw: int) -> np.ndarray:
        h = _mix(self.base + np.uint64(draw * int(_GOLDEN) & _MASK64))
        return (h >> _S11).astype(np.float64) * (1.0 / 9007199254740992.0)


# --- catalog ---------------------------------------------------------------------------------


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pa.array(numbers).cast(pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _dates(days: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(days.astype("datetime64[D]"), unit="D")


def _parse_periods(periods: Sequence[str]) -> np.ndarray:
    if isinstance(periods, str):
        periods = [periods]
    months = sorted({np.datetime64(p[:7], "M") for p in periods})
    if not months:
        raise ValueError("at least one billing period (YYYY-MM) is needed")
    return np.array(months, dtype="datetime64[M]")


class _Catalog:
    """The generated accounts, assets and rates, kept as arrays for the event generator."""

    def __init__(self, n_accounts: int, months: np.ndarray, seed: int):
        rng = np.random.default_rng(seed)
        first = months[0].astype("datetime64[D]")
        n = n_accounts
        self.account_ids = _ids("ACC", np.arange(1, n + 1), 7)
        self.currency_idx = rng.choice(3, size=n, p=CURRENCY_WEIGHTS)
        self.currency = CURRENCIES[self.currency_idx]
        suffix = np.array(
            [rng.choice(COMPANY_SUFFIX[c]) for c in CURRENCIES], dtype=object
        )  # one legal-form per currency, varied by seed
        w1, w2 = (np.array(w, dtype=object) for w in NAME_WORDS)
        self.account_names = (
            w1[rng.integers(0, len(w1), n)] + " " + w2[rng.integers(0, len(w2), n)] + " "
        ) + suffix[self.currency_idx]
        self.account_order = rng.choice(
            np.array(["", "granted_first", "granted_last"], dtype=object), n, p=[0.85, 0.1, 0.05]
        )

        # One plan per account, and for some accounts one or two add-ons.
        per_account = 1 + (rng.random(n) < 0.45) + (rng.random(n) < 0.15)
        m = int(per_account.sum())
        self.asset_offset = np.concatenate([[0], np.cumsum(per_account)[:-1]])
        self.asset_count = per_account
        self.asset_account = np.repeat(np.arange(n), per_account)
        is_plan = np.zeros(m, dtype=bool)
        is_plan[self.asset_offset] = True
        self.asset_product = np.where(
            is_plan,
            rng.choice(PLAN_PRODUCTS, m, p=PLAN_WEIGHTS),
            rng.choice(ADD_ON_PRODUCTS, m, p=ADD_ON_WEIGHTS),
        )
        self.asset_ids = _ids("AST", np.arange(1, m + 1), 8)
        quantity = np.where(is_plan, 1, rng.choice([1, 1, 1, 2, 3, 5], m))
        # Start: a month start up to a year before the first period, or inside the periods; 40%
        # of them mid-month (prorated first bucket).
        month_offset = rng.integers(-12, len(months), m)
        start_month = months[0] + month_offset.astype("timedelta64[M]")
        mid_month = rng.random(m) < 0.4
        day = np.where(mid_month, rng.integers(1, 28, m), 0)
        start = start_month.astype("datetime64[D]") + day.astype("timedelta64[D]")
        # About 8% end, many of them inside the periods (end_date is exclusive).
        ends = rng.random(m) < 0.08
        end = np.maximum(start, first) + rng.integers(1, 31 * len(months) + 30, m).astype(
            "timedelta64[D]"
        )
        self.asset_start_ms = start.astype("datetime64[ms]").astype(np.int64)
        self.asset_end_ms = np.where(
            ends, end.astype("datetime64[ms]").astype(np.int64), np.iinfo(np.int64).max
        )
        order = rng.choice(
            np.array(["", "granted_last", "granted_first", "expiring_first"], dtype=object),
            m,
            p=[0.95, 0.03, 0.01, 0.01],
        )
        self.assets = pd.DataFrame(
            {
                "asset_id": self.asset_ids.to_numpy(zero_copy_only=False),
                "account_id": pc.take(self.account_ids, self.asset_account).to_numpy(
                    zero_copy_only=False
                ),
                "product_id": PRODUCTS["product_id"].to_numpy()[self.asset_product],
                "quantity": quantity,
                "start_date": _dates(start),
                "end_date": np.where(ends, _dates(end), ""),
                "drawdown_order": order,
            }
        )
        self.accounts = pd.DataFrame(
            {
                "account_id": self.account_ids.to_numpy(zero_copy_only=False),
                "account_name": self.account_names,
                "currency": self.currency,
                "drawdown_order": self.account_order,
            }
        )
        self.price_book = self._price_book(sorted(set(self.currency)), first)
        self.token_rates = pd.DataFrame(
            [
                ("compute_hours", "10", "2020-01-01", ""),
                ("gpu_hours", "40", "2020-01-01", str(first + np.timedelta64(15, "D"))),
                ("gpu_hours", "45", str(first + np.timedelta64(15, "D")), ""),
            ],
            columns=["usage_resource_id", "tokens_per_unit", "effective_from", "effective_to"],
        )
        self.negotiated_rates = self._negotiated(rng, is_plan)
        # Contracts that change, from a stream of their own (the events stay as they were).
        changes = np.random.default_rng([seed, 1])
        self.asset_changes = self._asset_changes(changes, start, end, ends, quantity, months)
        self.credit_grants = self._credit_grants(changes, months)

    def _asset_changes(self, rng, start, end, ends, quantity, months) -> pd.DataFrame:
        """One change for about 10% of the assets, dated inside the asset and the periods: 60%
        more seats, 20% fewer, 20% a cancellation with up to 90 days' notice."""
        first = months[0].astype("datetime64[D]")
        last = (months[-1] + np.timedelta64(1, "M")).astype("datetime64[D]")
        lo = np.maximum(start + np.timedelta64(1, "D"), first)
        hi = np.where(ends, np.minimum(end, last), last)
        chosen = np.flatnonzero((rng.random(len(start)) < 0.10) & (lo < hi))
        span = (hi[chosen] - lo[chosen]).astype(np.int64)
        day = lo[chosen] + (rng.random(len(chosen)) * span).astype("timedelta64[D]")
        kind = rng.choice(3, len(chosen), p=[0.6, 0.2, 0.2])
        seats = quantity[chosen]
        new = np.where(kind == 0, seats + rng.integers(1, 4, len(chosen)),
                       np.maximum(seats - 1, 0))  # fmt: skip
        notice = day + rng.integers(0, 91, len(chosen)).astype("timedelta64[D]")
        cancel_end = np.where(ends[chosen], np.minimum(notice, end[chosen]), notice)
        return pd.DataFrame({
            "change_id": _ids("CHG", np.arange(1, len(chosen) + 1), 7).to_numpy(zero_copy_only=False),
            "asset_id": self.assets["asset_id"].to_numpy()[chosen],
            "effective_date": _dates(day),
            "quantity": np.where(kind < 2, new.astype(str), ""),
            "end_date": np.where(kind == 2, _dates(cancel_end), ""),
        })  # fmt: skip

    def _credit_grants(self, rng, months) -> pd.DataFrame:
        """A goodwill credit of 100-5,000 credits for about 2% of the accounts, account-bound,
        dated inside the periods; half of them valid for 30-90 days."""
        first = months[0].astype("datetime64[D]")
        days = ((months[-1] + np.timedelta64(1, "M")).astype("datetime64[D]") - first).astype(int)
        chosen = np.flatnonzero(rng.random(len(self.currency)) < 0.02)
        day = first + rng.integers(0, days, len(chosen)).astype("timedelta64[D]")
        until = day + rng.integers(30, 91, len(chosen)).astype("timedelta64[D]")
        return pd.DataFrame({
            "credit_id": _ids("CRD", np.arange(1, len(chosen) + 1), 6).to_numpy(zero_copy_only=False),
            "account_id": self.accounts["account_id"].to_numpy()[chosen], "asset_id": "",
            "usage_resource_id": "credits", "quantity": rng.integers(100, 5001, len(chosen)),
            "effective_date": _dates(day),
            "valid_to": np.where(rng.random(len(chosen)) < 0.5, _dates(until), ""),
            "priority": "", "reason": "goodwill",
        })  # fmt: skip

    @staticmethod
    def _price_book(currencies: list[str], first: np.datetime64) -> pd.DataFrame:
        change = str(first + np.timedelta64(15, "D"))
        rows = []
        for currency in currencies:
            for tier in PRICE_TIERS.itertuples(index=False):
                row = [
                    tier.usage_resource_id,
                    currency,
                    tier.pricing_model,
                    tier.tier_lower,
                    getattr(tier, currency),
                    tier.package_size,
                    getattr(tier, f"{currency}_flat_fee"),
                ]
                if tier.usage_resource_id == "egress_gb":
                    rows.append([*row, "2020-01-01", change])
                    row[4] = EGRESS_NEW_PRICE[currency]
                    rows.append([*row, change, ""])
                else:
                    rows.append([*row, "2020-01-01", ""])
        return pd.DataFrame(rows, columns=PRICE_COLUMNS)

    def _negotiated(self, rng: np.random.Generator, is_plan: np.ndarray) -> pd.DataFrame:
        # Account level: a credits discount for ~5% of accounts; asset level: an api_calls rate
        # for ~2% of the plans.
        accounts = np.flatnonzero(rng.random(len(self.currency)) < 0.05)
        assets = np.flatnonzero(is_plan & (rng.random(len(is_plan)) < 0.02))
        account_ids = self.accounts["account_id"].to_numpy()
        frames = []
        for idx, asset_ids, resource, price in (
            (accounts, np.full(len(accounts), ""), "credits", NEGOTIATED_CREDIT_PRICE),
            (
                self.asset_account[assets],
                self.assets["asset_id"].to_numpy()[assets],
                "api_calls",
                NEGOTIATED_API_PRICE,
            ),
        ):
            cur = self.currency[idx]
            frames.append(
                pd.DataFrame(
                    {
                        "account_id": account_ids[idx],
                        "asset_id": asset_ids,
                        "usage_resource_id": resource,
                        "currency": cur,
                        "pricing_model": "per_unit",
                        "tier_lower": "",
                        "unit_price": [price[c] for c in cur],
                        "package_size": "",
                        "flat_fee": "",
                        "effective_from": "2020-01-01",
                        "effective_to": "",
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)

    def write(self, out: Path) -> None:
        def csv(name: str, frame: pd.DataFrame) -> None:
            frame.to_csv(out / name, index=False, lineterminator="\n")

        csv("accounts.csv", self.accounts)
        csv("usage_resources.csv", RESOURCES)
        csv("token_rates.csv", self.token_rates)
        csv("products.csv", PRODUCTS)
        csv("product_grants.csv", GRANTS)
        csv("assets.csv", self.assets)
        csv("price_book.csv", self.price_book)
        csv("negotiated_rates.csv", self.negotiated_rates)
        csv("asset_changes.csv", self.asset_changes)
        csv("credit_grants.csv", self.credit_grants)


# --- events ----------------------------------------------------------------------------------


class _Events:
    """Rows of the usage files as a pure function of their row number."""

    def __init__(
        self,
        catalog: _Catalog,
        months: np.ndarray,
        total: int,
        seed: int,
        text: bool,
        bad_fraction: float,
        duplicate_fraction: float,
    ):
        self.catalog, self.total, self.seed = catalog, total, seed
        self.n_accounts = len(catalog.currency)
        starts = months.astype("datetime64[ms]").astype(np.int64)
        ends = (months + np.timedelta64(1, "M")).astype("datetime64[ms]").astype(np.int64)
        self.period_start, self.period_len = starts, ends - starts
        self.cum_len = np.cumsum(self.period_len)
        self.bad_fraction, self.duplicate_fraction = bad_fraction, duplicate_fraction
        self.bad_kinds = [k for k in BAD_KINDS if text or k not in TEXT_ONLY_KINDS]
        self.mix_cdf = np.cumsum(RESOURCE_MIX, axis=1)
        # A skewed account popularity, shuffled so that it does not follow the ids.
        self.popularity = np.random.default_rng([seed, 1]).permutation(self.n_accounts)
        self.offset_of_currency = np.array([1, 2, 3])  # USD -05:00, EUR +01:00, JPY +09:00

    def kinds(self, rows: np.ndarray) -> np.ndarray:
        """0 plain, 1 duplicate, 2 + k bad kind k."""
        s = _Stream(self.seed, rows)
        u = s.uniform(0)
        kind = np.zeros(len(rows), dtype=np.int8)
        kind[u < self.bad_fraction + self.duplicate_fraction] = 1
        bad = u < self.bad_fraction
        k = np.minimum(
            (s.uniform(1) * len(self.bad_kinds)).astype(np.int8), len(self.bad_kinds) - 1
        )
        kind[bad] = 2 + k[bad]
        return kind

    def payload(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The plain event of each row number: indices into the catalog and integer quantities."""
        c, s = self.catalog, _Stream(self.seed, rows)
        account = self.popularity[(s.uniform(2) ** 2 * self.n_accounts).astype(np.int64)]
        asset = c.asset_offset[account] + (s.uniform(3) * c.asset_count[account]).astype(np.int64)
        product = c.asset_product[asset]
        resource = (s.uniform(4)[:, None] > self.mix_cdf[product]).sum(axis=1)
        resource = np.minimum(resource, len(EVENT_RESOURCES) - 1)
        low, high = QUANTITY_LOG10_MIN[resource], QUANTITY_LOG10_MAX[resource]
        numerator = np.floor(10 ** (low + s.uniform(6) * (high - low))).astype(np.int64)
        decimals = QUANTITY_DECIMALS[resource]
        # Mostly in order of row number (files follow time), with a little jitter.
        jitter = min(1000.0, max(1.0, self.total / 100))
        position = (rows + s.uniform(7) * jitter) / (self.total + jitter) * self.cum_len[-1]
        position = position.astype(np.int64)
        period = np.searchsorted(self.cum_len, position, side="right")
        prior = np.concatenate([[0], self.cum_len[:-1]])
        ms = self.period_start[period] + position - prior[period]
        # 10% of usage carries no asset; so does most usage outside its asset's dates (the rest
        # keeps the tag: accepted, it finds no bucket and is overage).
        outside = (ms < c.asset_start_ms[asset]) | (ms >= c.asset_end_ms[asset])
        untagged = (s.uniform(5) < 0.1) | (outside & (s.uniform(10) < 0.95))
        asset = np.where(untagged, -1, asset)
        offset = np.where(
            s.uniform(8) < 0.5, 0, self.offset_of_currency[c.currency_idx[account]]
        ).astype(np.int64)
        return {
            "account": account,
            "asset": asset,
            "resource": resource,
            "numerator": numerator,
            "decimals": decimals,
            "ms": ms,
            "offset": offset,
        }

    def chunk(self, lo: int, hi: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        rows = np.arange(lo, hi, dtype=np.int64)
        kind = self.kinds(rows)
        # A duplicate (or a conflict) repeats an earlier plain row, possibly in another file.
        s = _Stream(self.seed, rows)
        conflict = 2 + self.bad_kinds.index("conflict")
        copies = (kind == 1) | (kind == conflict)
        source = np.where(copies, (s.uniform(9) * rows).astype(np.int64), rows)
        demote = copies & ((self.kinds(source) != 0) | (source == rows))
        kind[demote], source[demote] = 0, rows[demote]
        event = self.payload(source)
        event["id_number"] = source
        event["kind"] = kind
        return event, kind

    def render(self, event: dict[str, np.ndarray], fmt: str) -> pa.Table | pa.Array:
        """Build the chunk's column arrays (parquet) or text lines (csv, jsonl)."""
        c, kind = self.catalog, event["kind"]
        kinds = ["plain", "duplicate", *self.bad_kinds]

        def is_kind(name: str) -> np.ndarray:
            return kind == kinds.index(name) if name in kinds else np.zeros(len(kind), bool)

        account = event["account"]
        asset = event["asset"].copy()
        numerator, decimals = event["numerator"].copy(), event["decimals"].copy()
        numerator[is_kind("negative_quantity")] *= -1
        numerator[is_kind("conflict")] += 1
        seven = is_kind("too_many_decimals")
        numerator[seven] = numerator[seven] * 10 ** (7 - decimals[seven]) + 1
        decimals[seven] = 7
        quantity = numerator / 10.0**decimals  # exact to the shortest repr: <= `decimals` places

        other = is_kind("asset_of_another_account")
        if self.n_accounts > 1:
            asset[other] = c.asset_offset[(account[other] + 1) % self.n_accounts]
        account_ids = pc.take(c.account_ids, pa.array(account))
        account_ids = pc.if_else(pa.array(is_kind("unknown_account")), UNKNOWN_ACCOUNT, account_ids)
        asset[is_kind("unknown_account")] = -1
        asset_ids = pc.take(c.asset_ids, pa.array(asset, mask=asset < 0))
        unknown_asset = is_kind("unknown_asset") | (other & (self.n_accounts == 1))
        asset_ids = pc.if_else(pa.array(unknown_asset), UNKNOWN_ASSET, asset_ids)
        resource_ids = pc.take(pa.array(EVENT_RESOURCES), pa.array(event["resource"]))
        resource_ids = pc.if_else(
            pa.array(is_kind("unknown_usage_resource")), UNKNOWN_RESOURCE, resource_ids
        )
        event_ids = _ids("evt-", event["id_number"], 10)
        if fmt == "parquet":
            instant = pa.array(event["ms"] * 1000, type=pa.timestamp("us", tz="UTC"))
            return pa.Table.from_arrays(
                [event_ids, account_ids, asset_ids, resource_ids, pa.array(quantity), instant],
                schema=PARQUET_SCHEMA,
            )

        quantity_text = pc.cast(pa.array(quantity), pa.string())
        quantity_text = pc.if_else(pa.array(is_kind("invalid_quantity")), "n/a", quantity_text)
        shift = OFFSET_MINUTES[event["offset"]] * 60_000
        local = pa.array(event["ms"] + shift, type=pa.timestamp("ms"))
        # The cast writes "YYYY-MM-DD HH:MM:SS.mmm" ~20x faster than strftime; ISO wants a "T".
        stamp = pc.utf8_replace_slice(pc.cast(local, pa.string()), 10, 11, "T")
        stamp = pc.binary_join_element_wise(stamp, pc.take(pa.array(OFFSETS), event["offset"]), "")
        # Lines end in "\n"; a malformed row gets an extra CSV field, or a JSON line cut short.
        malformed = pa.array(is_kind("malformed_row"))
        if fmt == "csv":
            return pc.binary_join_element_wise(
                event_ids,
                account_ids,
                pc.fill_null(asset_ids, ""),
                resource_ids,
                quantity_text,
                pc.binary_join_element_wise(stamp, pc.if_else(malformed, ",extra\n", "\n"), ""),
                ",",
            )
        numeric = pa.array(~is_kind("invalid_quantity"))
        asset_json = pc.binary_join_element_wise('"', pc.fill_null(asset_ids, ""), '"', "")
        return pc.binary_join_element_wise(
            '{"event_id": "',
            event_ids,
            '", "account_id": "',
            account_ids,
            '", "asset_id": ',
            pc.if_else(pc.is_null(asset_ids), "null", asset_json),
            ', "usage_resource_id": "',
            resource_ids,
            '", "quantity": ',
            pc.if_else(numeric, quantity_text, '"n/a"'),
            ', "occurred_at": "',
            stamp,
            pc.if_else(malformed, "\n", '"}\n'),
            "",
        )


def _write_lines(handle, lines: pa.Array) -> None:
    # A string array's data buffer is its values back to back: write it without Python strings.
    offsets = np.frombuffer(
        lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4
    )
    handle.write(memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]])


def generate(
    out_dir: str | Path,
    *,
    accounts: int = 100,
    events: int = 10_000,
    periods: Sequence[str] = ("2026-10",),
    seed: int = 0,
    event_format: str = "parquet",
    files: int = 4,
    bad_fraction: float = 0.001,
    duplicate_fraction: float = 0.001,
    chunk_rows: int = 1_000_000,
) -> dict:
    """Write a complete source directory to `out_dir` and return the counts written.

    `events` is the number of rows in the usage files, duplicates and bad rows included, split
    evenly over `files` files (``usage/events-00000.<format>`` ...), each written `chunk_rows`
    rows at a time (one parquet row group per chunk), so memory stays bounded at any size.
    """
    if event_format not in EVENT_FORMATS:
        raise ValueError(f"event_format must be one of {EVENT_FORMATS}, not {event_format!r}")
    if accounts < 1 or events < 0 or files < 1 or chunk_rows < 1:
        raise ValueError("accounts, files and chunk_rows must be positive, events non-negative")
    if not 0 <= bad_fraction + duplicate_fraction <= 1:
        raise ValueError("bad_fraction + duplicate_fraction must be within [0, 1]")
    out = Path(out_dir)
    usage = out / "usage"
    usage.mkdir(parents=True, exist_ok=True)
    for stale in usage.glob("events-*.*"):  # a re-run with fewer files leaves no extra ones
        stale.unlink()
    months = _parse_periods(periods)
    catalog = _Catalog(accounts, months, seed)
    catalog.write(out)
    gen = _Events(
        catalog,
        months,
        events,
        seed,
        event_format != "parquet",
        bad_fraction,
        duplicate_fraction,
    )
    kinds = ["plain", "duplicate", *gen.bad_kinds]
    counts = np.zeros(len(kinds), dtype=np.int64)
    bounds = [events * f // files for f in range(files + 1)]
    for f in range(files):
        path = usage / f"events-{f:05d}.{event_format}"
        lo_file, hi_file = bounds[f], bounds[f + 1]
        chunks = range(lo_file, hi_file, chunk_rows) if hi_file > lo_file else []
        if event_format == "parquet":
            with pq.ParquetWriter(path, PARQUET_SCHEMA) as writer:
                for lo in chunks:
                    event, kind = gen.chunk(lo, min(lo + chunk_rows, hi_file))
                    counts += np.bincount(kind, minlength=len(kinds))
                    writer.write_table(gen.render(event, "parquet"), row_group_size=chunk_rows)
                if not chunks:
                    writer.write_table(PARQUET_SCHEMA.empty_table())
            continue
        with open(path, "wb") as handle:
            if event_format == "csv":
                handle.write((",".join(EVENT_COLUMNS) + "\n").encode())
            for lo in chunks:
                event, kind = gen.chunk(lo, min(lo + chunk_rows, hi_file))
                counts += np.bincount(kind, minlength=len(kinds))
                _write_lines(handle, gen.render(event, event_format))
    by_kind = dict(zip(kinds, counts.tolist(), strict=True))
    return {
        "accounts": len(catalog.accounts),
        "assets": len(catalog.assets),
        "products": len(PRODUCTS),
        "grants": len(GRANTS),
        "negotiated_rates": len(catalog.negotiated_rates),
        "asset_changes": len(catalog.asset_changes),
        "credit_grants": len(catalog.credit_grants),
        "periods": [str(m) for m in months],
        "files": files,
        "events": events,
        "plain": by_kind.pop("plain"),
        "duplicates": by_kind.pop("duplicate"),
        "bad": sum(by_kind.values()),
        "bad_by_kind": by_kind,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m consumption_pipeline.cli.synthetic",
        description="Write a seeded synthetic source directory (catalog CSVs + usage files).",
    )
    parser.add_argument("out_dir")
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--periods", nargs="+", default=["2026-10"], metavar="YYYY-MM")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", dest="event_format", choices=EVENT_FORMATS, default="parquet")
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--bad-fraction", type=float, default=0.001)
    parser.add_argument("--duplicate-fraction", type=float, default=0.001)
    parser.add_argument("--chunk-rows", type=int, default=1_000_000)
    args = vars(parser.parse_args(argv))
    counts = generate(args.pop("out_dir"), **args)
    json.dump(counts, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
