"""Small catalogs and events for domain tests, written as the text a CSV file would hold."""

from __future__ import annotations

import pandas as pd

from consumption_pipeline.domain.catalog import REQUIRED, Catalog, build_catalog


def text_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows of cells (missing cells empty), all text, as read from a CSV file."""
    frame = pd.DataFrame(rows).fillna("")
    return frame.astype("str")


def catalog(**files: list[dict]) -> Catalog:
    """A catalog from rows per file, named without `.csv` (e.g. accounts=[{...}]).

    Files not given are empty (with their required columns)."""
    frames = {}
    for name, columns in REQUIRED.items():
        rows = files.get(name.removesuffix(".csv"), [])
        frames[name] = text_frame(rows) if rows else pd.DataFrame(columns=columns, dtype="str")
    return build_catalog(frames)


def acme_catalog() -> Catalog:
    """the worked example of docs/rules.md: ACME, PRO (1,000 credits monthly, rollover capped 200,
    account-bound) from 2026-09-01 and PACK (500 credits once, 2 months) from 2026-10-10."""
    return catalog(
        accounts=[{"account_id": "ACME", "account_name": "Acme", "currency": "USD"}],
        usage_resources=[
            {"usage_resource_id": "credits", "name": "Credits", "unit_of_measure": "credit", "category": "token"},
            {"usage_resource_id": "compute_hours", "name": "Compute", "unit_of_measure": "hour",
             "token_resource_id": "credits"},
        ],
        token_rates=[{"usage_resource_id": "compute_hours", "tokens_per_unit": "10", "effective_from": "2026-01-01"}],
        products=[{"product_id": "PRO", "product_name": "Pro"}, {"product_id": "PACK", "product_name": "Pack"}],
        product_grants=[
            {"grant_id": "G-PRO", "product_id": "PRO", "usage_resource_id": "credits", "quantity": "1000",
             "renewal": "monthly", "rollover": "capped", "rollover_cap": "200", "binding": "account"},
            {"grant_id": "G-PACK", "product_id": "PACK", "usage_resource_id": "credits", "quantity": "500",
             "renewal": "none", "validity_months": "2", "binding": "account"},
        ],
        assets=[
            {"asset_id": "A1", "account_id": "ACME", "product_id": "PRO", "quantity": "1", "start_date": "2026-09-01"},
            {"asset_id": "A2", "account_id": "ACME", "product_id": "PACK", "quantity": "1", "start_date": "2026-10-10"},
        ],
        price_book=[{"usage_resource_id": "credits", "currency": "USD", "pricing_model": "per_unit",
                     "unit_price": "0.02", "effective_from": "2026-01-01"}],
    )  # fmt: skip


def event_file(rows: list[dict], source_file: str = "events.csv") -> pd.DataFrame:
    """One event file as `sources.read_events` returns it (text cells, row numbers from 2)."""
    frame = text_frame(rows)
    for column in [
        "event_id",
        "account_id",
        "asset_id",
        "usage_resource_id",
        "quantity",
        "occurred_at",
    ]:
        if column not in frame:
            frame[column] = ""
    frame["source_file"] = source_file
    frame["row_number"] = range(2, len(frame) + 2)
    frame["malformed"] = pd.Series(pd.NA, index=frame.index, dtype="str")
    return frame
