"""A small, complete source directory whose October 2026 bill is worked out by hand, and the pure
pipeline (real files, the readers of `sources`, every domain stage) to bill it.

Accounts: ACME (USD) and BETA (EUR). compute_hours convert to credits at 10 an hour; PRO grants
1,000 credits a month, account-bound; assets A1 (ACME) and B1 (BETA) hold PRO from 2026-09-01.
Prices: credits 0.02 USD / 0.018 EUR per unit; api_calls USD graduated (0.001 up to 1,000, then
0.0005), EUR 0.001 per unit but BETA negotiated 0.0008; storage_gb (peak, monthly) USD volume
(0.10 per GB, 0.05 per GB from 100 GB), EUR 0.09 per unit.

October, from an empty warehouse (no history, the October grant opens on 10-01 with 1,000):
- ACME A1 credits: 80 h (10-05) + 70 h (10-20) = 1,500 credits; 1,000 from the grant, 500
  overage × 0.02 = 10.00 USD;
- ACME api_calls: 1,500 calls: 1,000 × 0.001 + 500 × 0.0005 = 1.25 USD;
- ACME storage_gb: peak of 120 and 150 = 150 GB, all in the 100+ tier: 150 × 0.05 = 7.50 USD;
- BETA api_calls: 2,000 calls × 0.0008 (negotiated) = 1.60 EUR;
- BETA B1 credits: 50 h = 500 credits, all from the grant: 0.00 EUR.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd

from consumption_pipeline.domain.buckets import create_buckets
from consumption_pipeline.domain.catalog import Catalog, build_catalog
from consumption_pipeline.domain.drawdown import draw_down
from consumption_pipeline.domain.ingest import Ingested, ingest
from consumption_pipeline.domain.rating import rate_usage
from consumption_pipeline.domain.summaries import summarize
from consumption_pipeline.quality.conservation import (
    bucket_balances_conserved,
    drawdown_conserved,
    events_reconcile,
    liable_equals_ratable,
)
from consumption_pipeline.storage import sources

PERIOD = pd.Timestamp("2026-10-01")
AS_OF = pd.Timestamp("2026-12-01")
EVENT_COLUMNS = ["event_id", "account_id", "asset_id", "usage_resource_id", "quantity",
                 "occurred_at"]  # fmt: skip
RATE_COLUMNS = ["usage_resource_id", "currency", "pricing_model", "tier_lower", "unit_price",
                "package_size", "flat_fee", "effective_from", "effective_to"]  # fmt: skip

CATALOG: dict[str, list[list[str]]] = {
    "accounts.csv": [["account_id", "account_name", "currency"],
                     ["ACME", "Acme", "USD"], ["BETA", "Beta", "EUR"]],
    "usage_resources.csv": [
        ["usage_resource_id", "name", "unit_of_measure", "category", "aggregation_method",
         "aggregation_period", "token_resource_id"],
        ["credits", "Credits", "credit", "token", "", "", ""],
        ["compute_hours", "Compute", "hour", "usage", "sum", "daily", "credits"],
        ["api_calls", "API calls", "call", "", "", "", ""],
        ["storage_gb", "Storage", "GB", "", "peak", "monthly", ""],
    ],
    "token_rates.csv": [["usage_resource_id", "tokens_per_unit", "effective_from", "effective_to"],
                        ["compute_hours", "10", "2026-01-01", ""]],
    "products.csv": [["product_id", "product_name"], ["PRO", "Pro"]],
    "product_grants.csv": [
        ["grant_id", "product_id", "usage_resource_id", "quantity", "renewal", "binding"],
        ["PRO_CREDITS", "PRO", "credits", "1000", "monthly", "account"],
    ],
    "assets.csv": [["asset_id", "account_id", "product_id", "quantity", "start_date", "end_date"],
                   ["A1", "ACME", "PRO", "1", "2026-09-01", ""],
                   ["B1", "BETA", "PRO", "1", "2026-09-01", ""]],
    "price_book.csv": [
        RATE_COLUMNS,
        ["credits", "USD", "per_unit", "", "0.02", "", "", "2026-01-01", ""],
        ["credits", "EUR", "per_unit", "", "0.018", "", "", "2026-01-01", ""],
        ["api_calls", "USD", "graduated", "0", "0.001", "", "", "2026-01-01", ""],
        ["api_calls", "USD", "graduated", "1000", "0.0005", "", "", "2026-01-01", ""],
        ["api_calls", "EUR", "per_unit", "", "0.001", "", "", "2026-01-01", ""],
        ["storage_gb", "USD", "volume", "0", "0.10", "", "", "2026-01-01", ""],
        ["storage_gb", "USD", "volume", "100", "0.05", "", "", "2026-01-01", ""],
        ["storage_gb", "EUR", "per_unit", "", "0.09", "", "", "2026-01-01", ""],
    ],
    "negotiated_rates.csv": [["account_id", "asset_id", *RATE_COLUMNS],
                             ["BETA", "", "api_calls", "EUR", "per_unit", "", "0.0008", "", "",
                              "2026-01-01", ""]],
}  # fmt: skip
EVENTS: list[list[str]] = [
    ["e-acme-1", "ACME", "A1", "compute_hours", "80", "2026-10-05T10:00:00Z"],
    ["e-acme-2", "ACME", "A1", "compute_hours", "70", "2026-10-20T10:00:00Z"],
    ["e-acme-3", "ACME", "", "api_calls", "1500", "2026-10-07T00:00:00Z"],
    ["e-acme-4", "ACME", "", "storage_gb", "120", "2026-10-03T08:00:00Z"],
    ["e-acme-5", "ACME", "", "storage_gb", "150", "2026-10-18T08:00:00Z"],
    ["e-beta-1", "BETA", "", "api_calls", "2000", "2026-10-10T12:00:00+02:00"],
    ["e-beta-2", "BETA", "B1", "compute_hours", "50", "2026-10-11T00:00:00Z"],
]
# The liable lines of October: (account, asset, billed resource) -> (consumption, debited,
# overage, amount, currency).
BILL = {
    ("ACME", "A1", "credits"): (1500, 1000, 500, Decimal("10.00"), "USD"),
    ("ACME", "", "api_calls"): (1500, 0, 1500, Decimal("1.25"), "USD"),
    ("ACME", "", "storage_gb"): (150, 0, 150, Decimal("7.50"), "USD"),
    ("BETA", "", "api_calls"): (2000, 0, 2000, Decimal("1.60"), "EUR"),
    ("BETA", "B1", "credits"): (500, 500, 0, Decimal("0.00"), "EUR"),
}


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return path


def write_source(root: Path) -> Path:
    """The source directory of this module's docstring, events in `usage/base.csv`."""
    for name, rows in CATALOG.items():
        write_csv(root / name, rows)
    write_csv(root / "usage" / "base.csv", [EVENT_COLUMNS, *EVENTS])
    return root


@dataclass(frozen=True)
class Billed:
    catalog: Catalog
    ingested: Ingested
    liable: pd.DataFrame
    ratable: pd.DataFrame

    def lines(self) -> dict[tuple, tuple]:
        """The liable lines in the shape of `BILL`."""
        return {
            (r.account_id, "" if pd.isna(r.asset_id) else r.asset_id, r.usage_resource_id): (
                r.consumption, r.debited, r.overage_quantity, r.amount, r.currency)
            for r in self.liable.itertuples()
        }  # fmt: skip

    def reason(self, event_id: str) -> list[str]:
        """The quarantine reasons of every copy of `event_id`, in file order."""
        q = self.ingested.quarantined_events
        return q.loc[q["event_id"].eq(event_id), "reason"].tolist()


def read_and_ingest(
    root: Path, period: pd.Timestamp = PERIOD, timezone: str = "UTC", catalog: Catalog | None = None
) -> tuple[Catalog, list[pd.DataFrame], Ingested]:
    """Stage 1 through the real file readers (the catalog is built unless given)."""
    catalog = catalog if catalog is not None else build_catalog(sources.read_catalog(root))
    files = [sources.read_events(p, root) for p in sources.event_files(root)]
    return catalog, files, ingest(files, catalog, period, timezone)


def bill(
    root: Path, period: pd.Timestamp = PERIOD, timezone: str = "UTC", catalog: Catalog | None = None
) -> Billed:
    """Every stage of one period from an empty warehouse, through the real file readers; the
    conservation laws must hold on the way."""
    catalog, files, ingested = read_and_ingest(root, period, timezone, catalog)
    rated = rate_usage(ingested.usage_events, catalog, period)
    drawn = draw_down(rated, create_buckets(catalog, period), pd.DataFrame(), catalog, period)
    summaries = summarize(drawn.usage_summaries, catalog, period, AS_OF)
    laws = [
        events_reconcile(sum(len(f) for f in files), len(ingested.usage_events),
                         ingested.quarantined_events, ingested.reconciliation),
        drawdown_conserved(drawn.usage_summaries, drawn.entitlement_ledger),
        bucket_balances_conserved(drawn.bucket_balances, drawn.entitlement_ledger,
                                  pd.DataFrame(columns=["bucket_id", "closing"])),
        liable_equals_ratable(summaries.liable_summaries, summaries.ratable_summaries),
    ]  # fmt: skip
    broken = [law.summary for law in laws if not law.passed]
    assert not broken, broken
    return Billed(catalog, ingested, summaries.liable_summaries, summaries.ratable_summaries)
