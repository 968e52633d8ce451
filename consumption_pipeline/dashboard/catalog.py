"""The catalog of docs/rules.md "Inputs" as the dashboard shows it: names, units, grant policies and
rate rows, read from the source directory (never written) and read again when a file changes."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd

from consumption_pipeline.domain.catalog import REQUIRED, build_catalog
from consumption_pipeline.domain.quantities import micro_to_decimal
from consumption_pipeline.storage import sources


@dataclass(frozen=True)
class Account:
    account_id: str
    name: str
    currency: str
    drawdown_order: str


@dataclass(frozen=True)
class Resource:
    usage_resource_id: str
    name: str
    unit: str
    token_resource_id: str | None
    overage_chargeable: bool


@dataclass(frozen=True)
class Grant:
    grant_id: str
    product_id: str
    usage_resource_id: str
    quantity: Decimal
    renewal: str
    validity_months: int | None
    rollover: str
    rollover_cap: Decimal | None
    max_rollovers: int
    binding: str
    priority: int
    prorate: bool


@dataclass(frozen=True)
class Asset:
    asset_id: str
    account_id: str
    product_id: str  # empty for an asset the catalog no longer lists
    product_name: str
    quantity: Decimal | None
    start_date: date | None
    end_date: date | None  # exclusive
    drawdown_order: str | None


@dataclass(frozen=True)
class RateRow:
    """One row of the price book or of the negotiated rates (`level`: price_book, account,
    asset)."""

    level: str
    account_id: str | None
    asset_id: str | None
    usage_resource_id: str
    currency: str
    pricing_model: str
    tier_lower: Decimal
    unit_price: Decimal
    package_size: Decimal | None
    flat_fee: Decimal
    effective_from: date
    effective_to: date | None


@dataclass(frozen=True)
class AlertRule:
    rule_id: str
    account_id: str | None  # None: every account
    kind: str
    threshold: str  # as written (a percentage, units, days or money)
    usage_resource_id: str | None
    scope: str | None
    channel: str | None
    recipient: str | None


@dataclass(frozen=True)
class CatalogView:
    accounts: dict[str, Account]
    resources: dict[str, Resource]
    grants: dict[str, Grant]
    assets: dict[str, Asset]
    rates: list[RateRow]
    alert_rules: tuple[AlertRule, ...] = ()

    def resource(self, resource_id: str) -> Resource:
        """The resource, or a stand-in named by its id when the catalog no longer lists it."""
        return self.resources.get(
            resource_id, Resource(resource_id, resource_id, "unit", None, True)
        )


class CatalogSource:
    """The catalog of a source directory, loaded once and again whenever a catalog file
    changes (the pipeline and the dashboard read the same directory)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._view: CatalogView | None = None

    def current(self) -> CatalogView:
        stamp = tuple(_mtime(self.path / name) for name in REQUIRED)
        with self._lock:
            if self._view is None or stamp != self._stamp:
                self._view = load_catalog(self.path)
                self._stamp = stamp
            return self._view


def _mtime(path: Path) -> int | None:
    return path.stat().st_mtime_ns if path.exists() else None


def load_catalog(path: Path) -> CatalogView:
    """Read and validate the catalog files (errors name the file, row and column)."""
    catalog = build_catalog(sources.read_catalog(path))
    products = dict(
        zip(catalog.products["product_id"], catalog.products["product_name"], strict=True)
    )
    accounts = {
        r.account_id: Account(r.account_id, r.account_name, r.currency, r.drawdown_order)
        for r in catalog.accounts.itertuples()
    }
    resources = {
        r.usage_resource_id: Resource(
            r.usage_resource_id, r.name, r.unit_of_measure, _text(r.token_resource_id),
            bool(r.overage_chargeable),
        )
        for r in catalog.resources.itertuples()
    }  # fmt: skip
    grants = {
        r.grant_id: Grant(
            r.grant_id, r.product_id, r.usage_resource_id, _micro(r.quantity), r.renewal,
            _int(r.validity_months), r.rollover, _micro(r.rollover_cap), int(r.max_rollovers),
            r.binding, int(r.priority), bool(r.prorate),
        )
        for r in catalog.grants.itertuples()
    }  # fmt: skip
    assets = {
        r.asset_id: Asset(
            r.asset_id, r.account_id, r.product_id, products.get(r.product_id, r.product_id),
            _micro(r.quantity), _date(r.start_date), _date(r.end_date), _text(r.drawdown_order),
        )
        for r in catalog.assets.itertuples()
    }  # fmt: skip
    rates = [
        RateRow(
            r.level, _text(r.account_id), _text(r.asset_id), r.usage_resource_id, r.currency,
            r.pricing_model, r.tier_lower, r.unit_price, _micro(r.package_size), r.flat_fee,
            _date(r.effective_from), _date(r.effective_to),
        )
        for r in catalog.rates.itertuples()
    ]  # fmt: skip
    alert_rules = tuple(
        AlertRule(r.rule_id, _text(r.account_id), r.kind, str(r.threshold),
                  _text(r.usage_resource_id), _text(r.scope), _text(r.channel), _text(r.recipient))
        for r in catalog.alert_rules.itertuples()
    )  # fmt: skip
    return CatalogView(accounts, resources, grants, assets, rates, alert_rules)


def _text(value: object) -> str | None:
    return None if pd.isna(value) else str(value)


def _int(value: object) -> int | None:
    return None if pd.isna(value) else int(value)


def _micro(value: object) -> Decimal | None:
    return None if pd.isna(value) else micro_to_decimal(int(value))


def _date(value: object) -> date | None:
    return None if pd.isna(value) else pd.Timestamp(value).date()
