"""What the dashboard pages show, read from the warehouse of docs/rules.md "Outputs" (and names,
units and policies from the catalog): one function per section, for an account or for one asset.

Quantities and money stay `Decimal` from the warehouse to the page, so a balance or a total on a
page is the exact sum of warehouse values. An asset's page covers the usage tagged with that
asset and the buckets created from its grants, whatever their binding.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from markupsafe import Markup

from consumption_pipeline.dashboard import formatting, svg
from consumption_pipeline.dashboard.catalog import Account, Asset, CatalogView, RateRow, Resource
from consumption_pipeline.dashboard.store import ReadOnlyWarehouse

ZERO = Decimal(0)
HISTORY_PERIODS = 6  # periods shown in the usage chart and the invoice list
FORECAST_TABLE = "bucket_forecasts"
RATE_SOURCES = {"asset": "asset-negotiated", "account": "account-negotiated",
                "price_book": "price book", "commitment": "commitment rate"}  # fmt: skip
# Ledger entry types (docs/rules.md "Outputs"), with the sign they move a balance by.
ENTRY_SIGNS = {"credit": 1, "debit": -1, "expired": -1, "rollover_out": -1}


# -- who and when ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """An account, or one asset of it."""

    account: Account
    asset: Asset | None = None

    @property
    def where(self) -> dict[str, str]:
        """Columns that select this scope's usage, rated usage and invoice lines."""
        found = {"account_id": self.account.account_id}
        return {**found, "asset_id": self.asset.asset_id} if self.asset else found

    @property
    def owned_where(self) -> dict[str, str]:
        """Columns that select the rows carrying this scope's asset id, whatever their account
        (the buckets of the asset's grants, events tagged with it), else the account's rows."""
        return {"asset_id": self.asset.asset_id} if self.asset else self.where


def find_account(store: ReadOnlyWarehouse, catalog: CatalogView, account_id: str) -> Scope | None:
    """The account from the catalog or, if the catalog no longer lists it, from its invoice lines
    (so that billed history stays visible); None when neither knows it."""
    if account_id in catalog.accounts:
        return Scope(catalog.accounts[account_id])
    lines = store.rows("liable_summaries", {"account_id": account_id}, order_by=["period"])
    if not lines:
        return None
    return Scope(Account(account_id, account_id, lines[-1]["currency"], ""))


def find_asset(store: ReadOnlyWarehouse, catalog: CatalogView, asset_id: str) -> Scope | None:
    """The asset and its account from the catalog, else from the asset's buckets or usage."""
    asset = catalog.assets.get(asset_id)
    if asset is None:
        found = store.rows("entitlement_buckets", {"asset_id": asset_id}) or store.rows(
            "usage_summaries", {"asset_id": asset_id}
        )
        if not found:
            return None
        asset = Asset(asset_id, found[0]["account_id"], "", "", None, None, None, None)
    account = find_account(store, catalog, asset.account_id)
    return Scope(account.account, asset) if account else None


def history(periods: list[date], period: date) -> list[date]:
    """The selected period and the ones before it, at most HISTORY_PERIODS."""
    return [p for p in periods if p <= period][-HISTORY_PERIODS:]


def period_end(period: date) -> date:
    """The last day of a billing period."""
    return (period + timedelta(days=32)).replace(day=1) - timedelta(days=1)


# -- the index -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceTotal:
    resource: Resource
    consumption: Decimal
    overage: Decimal


@dataclass(frozen=True)
class AccountRow:
    account: Account
    totals: list[ResourceTotal]  # per billed resource, from the period's liable summaries
    amount: Decimal | None  # None: no invoice line in the period
    status: str  # final, provisional, or "no usage"


def index_rows(
    store: ReadOnlyWarehouse, catalog: CatalogView, period: date, search: str = ""
) -> list[AccountRow]:
    """Every account (catalog, plus any with lines the catalog no longer lists) with its
    consumption, overage and amount in `period`, filtered by a case-insensitive `search` on the
    account's id or name."""
    lines = defaultdict(list)
    for line in store.rows("liable_summaries", {"period": period}):
        lines[line["account_id"]].append(line)
    accounts = dict(catalog.accounts)
    for account_id, rows in lines.items():
        accounts.setdefault(account_id, Account(account_id, account_id, rows[0]["currency"], ""))
    needle = search.strip().casefold()
    rows = []
    for account in sorted(accounts.values(), key=lambda a: a.account_id):
        if needle and needle not in f"{account.account_id}\n{account.name}".casefold():
            continue
        mine = lines.get(account.account_id, [])
        rows.append(
            AccountRow(
                account,
                _resource_totals(catalog, mine),
                sum((line["amount"] for line in mine), ZERO) if mine else None,
                _status(mine),
            )
        )
    return rows


def _resource_totals(catalog: CatalogView, lines: list[dict[str, Any]]) -> list[ResourceTotal]:
    consumption: dict[str, Decimal] = defaultdict(Decimal)
    overage: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        consumption[line["usage_resource_id"]] += line["consumption"]
        overage[line["usage_resource_id"]] += line["overage_quantity"]
    return [
        ResourceTotal(catalog.resource(r), consumption[r], overage[r]) for r in sorted(consumption)
    ]


def _status(lines: list[dict[str, Any]]) -> str:
    statuses = {line["status"] for line in lines}
    if not statuses:
        return "no usage"
    return "final" if statuses == {"final"} else "provisional"


# -- usage -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageTotals:
    period: date  # or the window's date, for a day's bar
    consumption: Decimal
    drawdown_quantity: Decimal
    debited: Decimal
    overage: Decimal


@dataclass(frozen=True)
class ResourceUsage:
    resource: Resource
    drawdown_resource: Resource
    chart: Markup
    totals: list[UsageTotals]  # one per period with usage, oldest first


def usage(
    store: ReadOnlyWarehouse, catalog: CatalogView, scope: Scope, periods: list[date]
) -> list[ResourceUsage]:
    """Consumption per usage resource over `periods` (oldest first): a chart of each window and
    the totals of each period."""
    rows = store.rows("usage_summaries", {**scope.where, "period": periods})
    by_resource: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_resource[row["usage_resource_id"]].append(row)
    first, last = periods[0], period_end(periods[-1])
    result = []
    for resource_id in sorted(by_resource):
        summaries = by_resource[resource_id]
        resource = catalog.resource(resource_id)
        drawdown = catalog.resource(summaries[0]["drawdown_resource_id"])
        bars = _bars(summaries, resource, drawdown)
        label = f"{resource.name} per day, {formatting.period(first)} to {formatting.period(last)}"
        chart = svg.consumption_chart(bars, first, last, resource.unit, label)
        result.append(ResourceUsage(resource, drawdown, chart, _period_totals(summaries)))
    return result


def _bars(summaries: list[dict[str, Any]], resource: Resource, drawdown: Resource) -> list[svg.Bar]:
    converted = drawdown.usage_resource_id != resource.usage_resource_id
    bars = []
    for day, t in _sums(summaries, "window_date").items():
        # The chart speaks the resource's unit; a converted resource's overage is in tokens, so
        # the bar splits in the same proportion as its drawdown quantity.
        over = t.consumption * t.overage / t.drawdown_quantity if t.drawdown_quantity else ZERO
        drawn = f" = {formatting.quantity(t.drawdown_quantity, drawdown.unit)}" if converted else ""
        title = (
            f"{day.isoformat()}: {formatting.quantity(t.consumption, resource.unit)}{drawn}; "
            f"{formatting.number(t.debited)} from buckets, {formatting.number(t.overage)} overage"
        )
        bars.append(svg.Bar(day, t.consumption - over, over, title))
    return bars


def _period_totals(summaries: list[dict[str, Any]]) -> list[UsageTotals]:
    return list(_sums(summaries, "period").values())


def _sums(summaries: list[dict[str, Any]], by: str) -> dict[date, UsageTotals]:
    """Consumption, drawdown quantity, debited and overage summed per value of `by`, in order."""
    columns = ("consumption", "drawdown_quantity", "debited", "overage")
    sums: dict[date, list[Decimal]] = defaultdict(lambda: [ZERO] * len(columns))
    for row in summaries:
        total = sums[row[by]]
        for i, column in enumerate(columns):
            total[i] += row[column]
    return {key: UsageTotals(key, *values) for key, values in sorted(sums.items())}


# -- grants (buckets) --------------------------------------------------------------------------


@dataclass(frozen=True)
class BucketView:
    bucket_id: str
    grant_id: str
    asset_id: str | None
    resource: Resource
    binding: str
    priority: int
    policy: str  # renewal or validity, and rollover
    generation: int
    parent_bucket_id: str | None
    valid_from: date
    valid_to: date | None  # exclusive; None: never expires
    granted: Decimal
    consumed: Decimal  # debited over all periods up to the selected one
    expired: Decimal
    rolled_over: Decimal
    balance: Decimal | None  # closing balance in the selected period
    is_open: bool | None
    origin: str = "grant"  # grant, commitment, amendment, rollover or credit
    behind: str = ""  # the asset change or credit behind it, with the credit's reason
    exhaustion: date | None = None  # projected, when a forecast exists
    outlook: str | None = None  # the forecast's word for it, e.g. "runs out", "expires first"

    @property
    def consumed_share(self) -> str:
        return formatting.percent(self.consumed, self.granted)


def grants(
    store: ReadOnlyWarehouse, catalog: CatalogView, scope: Scope, period: date
) -> list[BucketView]:
    """The scope's buckets of `period`, with their flows summed over every period up to it and
    their balance at its end."""
    buckets = store.rows("entitlement_buckets", {**scope.owned_where, "period": period})
    ids = [b["bucket_id"] for b in buckets]
    balances = store.rows("bucket_balances", {"bucket_id": ids}) if ids else []
    flows: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    closing: dict[str, dict[str, Any]] = {}
    for row in balances:
        if row["period"] > period:
            continue
        for column in ("debited", "expired", "rolled_over"):
            flows[row["bucket_id"]][column] += row[column]
        if row["period"] == period:
            closing[row["bucket_id"]] = row
    views = []
    for b in sorted(
        buckets, key=lambda b: (b["usage_resource_id"], b["valid_from"], b["bucket_id"])
    ):
        flow, end = flows[b["bucket_id"]], closing.get(b["bucket_id"])
        views.append(
            BucketView(
                b["bucket_id"], b["grant_id"], b["asset_id"],
                catalog.resource(b["usage_resource_id"]), b["binding"], b["priority"],
                _policy(catalog, b), b["rollover_generation"], b["parent_bucket_id"],
                b["valid_from"], b["valid_to"], b["granted"], flow["debited"], flow["expired"],
                flow["rolled_over"], end["closing"] if end else None,
                end["is_open"] if end else None, _origin(b), _behind(b),
            )
        )  # fmt: skip
    return views


@dataclass(frozen=True)
class Cover:
    """What a bucket outside an asset's own grants drew from that asset's usage in a period."""

    bucket_id: str
    asset_id: str | None  # the asset whose grant made the bucket; None for an account credit
    resource: Resource
    quantity: Decimal


def covered_by_others(
    store: ReadOnlyWarehouse, catalog: CatalogView, scope: Scope, period: date
) -> list[Cover]:
    """For an asset: the account-bound buckets of other grants that covered its usage in
    `period` (its invoice lines count them as drawn from buckets; its own Grants do not)."""
    if scope.asset is None:
        return []
    where = {"account_id": scope.account.account_id, "period": period}
    own = {
        s["summary_id"] for s in store.rows("usage_summaries", {**scope.where, "period": period})
    }
    buckets = {b["bucket_id"]: b for b in store.rows("entitlement_buckets", where)}
    drawn: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for entry in store.rows("entitlement_ledger", {**where, "entry_type": "debit"}):
        bucket = buckets.get(entry["bucket_id"])
        if entry["summary_id"] in own and bucket and bucket["asset_id"] != scope.asset.asset_id:
            drawn[entry["bucket_id"]] += entry["quantity"]
    return [Cover(bucket_id, buckets[bucket_id]["asset_id"],
                  catalog.resource(buckets[bucket_id]["usage_resource_id"]), quantity)
            for bucket_id, quantity in sorted(drawn.items())]  # fmt: skip


def _origin(bucket: dict[str, Any]) -> str:
    """Where a bucket comes from; a commitment's amendment or rollover says so."""
    origin = bucket["origin"] or "grant"
    if bucket.get("grant_type") == "commit" and origin in ("amendment", "rollover"):
        return f"{origin} of a commitment"
    return origin


def _behind(bucket: dict[str, Any]) -> str:
    """The asset changes and the credit behind a bucket, in words."""
    parts = []
    if bucket.get("credit_id"):
        reason = f": {bucket['reason']}" if bucket.get("reason") else ""
        parts.append(f"credit {bucket['credit_id']}{reason}")
    if bucket.get("change_id"):
        changes = bucket["change_id"].split()
        parts.append(("change " if len(changes) == 1 else "changes ") + ", ".join(changes))
    return "; ".join(parts)


def _policy(catalog: CatalogView, bucket: dict[str, Any]) -> str:
    grant = catalog.grants.get(bucket["grant_id"])
    if grant is None:
        term = ""
    elif grant.renewal != "none":
        term = f"renews {grant.renewal}" + ("" if grant.prorate else ", not prorated")
    elif grant.validity_months:
        term = f"one-time, valid {grant.validity_months} months"
    else:
        term = "one-time, never expires"
    rollover = bucket["rollover"] or "none"
    if rollover == "capped":
        rollover = f"capped at {formatting.number(bucket['rollover_cap'])}"
    if rollover != "none":
        rollover += f", at most {bucket['max_rollovers']}×"
    return "; ".join(part for part in (term, f"rollover {rollover}") if part)


def with_forecasts(store: ReadOnlyWarehouse, buckets: list[BucketView], period: date) -> bool:
    """Fill each bucket's projected exhaustion date from the forecast table, when the warehouse
    has one (`bucket_forecasts`: `bucket_id` and a date column named like `*exhaust*`, per
    `period` and `as_of` when it has those columns, the latest `as_of` of the period winning;
    an `outlook` column is shown beside the date).
    Returns whether any forecast applies to these buckets."""
    table = store.optional_table(FORECAST_TABLE)
    if table is None or "bucket_id" not in table.c or not buckets:
        return False
    date_column = next((c.name for c in table.c if "exhaust" in c.name.lower()), None)
    if date_column is None:
        return False
    where: dict[str, Any] = {"bucket_id": [b.bucket_id for b in buckets]}
    if "period" in table.c:
        where["period"] = period
    rows = store.select(table, where, order_by=["as_of"] if "as_of" in table.c else [])
    latest = {r["bucket_id"]: r for r in rows}
    for i, bucket in enumerate(buckets):
        row = latest.get(bucket.bucket_id, {})
        outlook = row.get("outlook")
        buckets[i] = replace(
            bucket,
            exhaustion=_as_date(row.get(date_column)),
            outlook=outlook.replace("_", " ") if isinstance(outlook, str) else None,
        )
    return bool(rows)


def _as_date(value: Any) -> date | None:
    """A date from a table this module did not define (SQLite may hand back text)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


# -- rates -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tier:
    lower: Decimal
    text: str  # the price of the tier, readable


@dataclass(frozen=True)
class RateView:
    asset_id: str | None
    resource: Resource  # the billed (drawdown) resource the rate prices
    fed_by: list[Resource]  # the usage resources drawn as this resource
    source: str  # asset-negotiated, account-negotiated, price book, or why there is none
    rate_asset_id: str | None
    effective_from: date | None
    effective_to: date | None
    pricing_model: str | None
    tiers: list[Tier]


def rates(
    store: ReadOnlyWarehouse, catalog: CatalogView, scope: Scope, period: date
) -> list[RateView]:
    """The rate that prices each billed resource's overage in `period` and where it comes from,
    as the rating stage chose it for the period's usage (one row per rate in effect: a rate that
    changes inside the period shows twice)."""
    chosen: dict[tuple, set[str]] = defaultdict(set)
    for row in store.rows("usage_summaries", {**scope.where, "period": period}):
        key = (
            row["asset_id"] or "", row["drawdown_resource_id"], row["rate_source"] or "",
            row["rate_asset_id"], row["rate_effective_from"], row["currency"],
            bool(row["overage_chargeable"]),
        )  # fmt: skip
        chosen[key].add(row["usage_resource_id"])
    views = []
    for key in sorted(chosen, key=lambda k: (k[0], k[1], k[4] or date.min)):
        asset_id, resource_id, source, rate_asset, effective, currency, chargeable = key
        resource = catalog.resource(resource_id)
        rows = _rate_rows(catalog, scope.account.account_id, key)
        tiers = [Tier(r.tier_lower, _tier_text(r, resource)) for r in rows]
        views.append(
            RateView(
                asset_id or None, resource, [catalog.resource(r) for r in sorted(chosen[key])],
                _source_label(source, chargeable), rate_asset, effective,
                rows[0].effective_to if rows else None, rows[0].pricing_model if rows else None,
                tiers,
            )
        )  # fmt: skip
    return views


def _rate_rows(catalog: CatalogView, account_id: str, key: tuple) -> list[RateRow]:
    _asset, resource_id, source, rate_asset, effective, currency, _chargeable = key

    def owner(row: RateRow) -> bool:
        if source in ("asset", "commitment"):  # a commitment rate is its asset's own rows
            return row.asset_id == rate_asset
        if source == "account":
            return row.account_id == account_id and row.asset_id is None
        return True

    rows = [
        r for r in catalog.rates
        if r.level == ("asset" if source == "commitment" else source)
        and r.usage_resource_id == resource_id and r.currency == currency
        and r.effective_from == effective and owner(r)
    ]  # fmt: skip
    return sorted(rows, key=lambda r: r.tier_lower)


def _source_label(source: str, chargeable: bool) -> str:
    if source:
        return RATE_SOURCES.get(source, source)
    return "no price: overage not chargeable" if not chargeable else "no rate"


def _tier_text(row: RateRow, resource: Resource) -> str:
    unit = resource.unit
    price = formatting.unit_price(row.unit_price, row.currency)
    if row.pricing_model == "package":
        size = formatting.quantity(row.package_size, unit)
        return f"{price} per {size}"
    text = f"{price} per {unit}"
    if row.flat_fee:
        text += f" + {formatting.money(row.flat_fee, row.currency)} flat"
    return text


# -- wallet statement (the ledger) ----------------------------------------------------------------


@dataclass(frozen=True)
class StatementLine:
    entry_date: date
    entry_type: str  # credit, rollover in, debit, expired, rollover out
    bucket_id: str
    description: str
    change: Decimal  # signed
    bucket_balance: Decimal  # the bucket's closing balance after the entry
    balance: Decimal  # the running balance of the wallet (all the scope's buckets of a resource)


@dataclass
class Statement:
    resource: Resource
    opening: Decimal = ZERO
    lines: list[StatementLine] = field(default_factory=list)

    @property
    def closing(self) -> Decimal:
        return self.lines[-1].balance if self.lines else self.opening

    def total(self, entry_type: str) -> Decimal:
        return sum((abs(line.change) for line in self.lines if line.entry_type == entry_type), ZERO)


def wallet_statement(
    store: ReadOnlyWarehouse, catalog: CatalogView, scope: Scope, period: date
) -> list[Statement]:
    """The ledger of the scope's buckets in `period`, in date order, one statement per resource:
    the opening balance is what every earlier ledger entry left, and each line carries the running
    balance."""
    buckets = {b["bucket_id"]: b for b in store.rows("entitlement_buckets", scope.owned_where)}
    if not buckets:
        return []
    where = {"account_id": scope.account.account_id}
    entries = [
        e for e in store.rows("entitlement_ledger", where, order_by=["period", "sequence"])
        if e["bucket_id"] in buckets and e["period"] <= period
    ]  # fmt: skip
    served = {
        s["summary_id"]: s for s in store.rows("usage_summaries", {**where, "period": period})
    }
    statements: dict[str, Statement] = {}
    for entry in entries:
        resource_id = buckets[entry["bucket_id"]]["usage_resource_id"]
        statement = statements.setdefault(resource_id, Statement(catalog.resource(resource_id)))
        change = ENTRY_SIGNS[entry["entry_type"]] * entry["quantity"]
        if entry["period"] < period:
            statement.opening += change
            continue
        statement.lines.append(
            StatementLine(
                entry["entry_date"], _entry_label(entry), entry["bucket_id"],
                _describe(entry, served, catalog, buckets[entry["bucket_id"]]), change,
                entry["closing_balance"],
                statement.closing + change,
            )
        )  # fmt: skip
    # A wallet whose buckets are all gone (empty, no entry in the period) has nothing to state.
    return [s for _, s in sorted(statements.items()) if s.lines or s.opening]


def _entry_label(entry: dict[str, Any]) -> str:
    if entry["entry_type"] == "credit" and entry["related_bucket_id"]:
        return "rollover in"
    return entry["entry_type"].replace("_", " ")


def _describe(entry: dict[str, Any], served: dict[str, dict], catalog: CatalogView,
              bucket: dict[str, Any]) -> str:  # fmt: skip
    kind, related = entry["entry_type"], entry["related_bucket_id"]
    if kind == "debit":
        summary = served.get(entry["summary_id"])
        if summary is None:
            return f"usage {entry['summary_id']}"
        resource = catalog.resource(summary["usage_resource_id"])
        asset = f", asset {summary['asset_id']}" if summary["asset_id"] else ""
        used = formatting.quantity(summary["consumption"], resource.unit)
        return f"{used} of {resource.name} on {summary['window_date'].isoformat()}{asset}"
    if kind == "expired":
        return "balance expired at the end of validity"
    if kind == "rollover_out":
        return f"rolled over to {related}"
    if related:
        return f"rolled over from {related}"
    if bucket.get("credit_id"):
        return "credit granted" + (f": {bucket['reason']}" if bucket.get("reason") else "")
    if bucket.get("origin") == "amendment":
        return f"amendment granted ({_behind(bucket)})"
    return "granted"


# -- invoices ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invoice:
    period: date
    status: str
    currency: str
    lines: list[dict[str, Any]]  # liable summaries, with `resource` added

    @property
    def total(self) -> Decimal:
        return sum((line["amount"] for line in self.lines), ZERO)


def invoices(
    store: ReadOnlyWarehouse, catalog: CatalogView, scope: Scope, periods: list[date]
) -> list[Invoice]:
    """The liable summaries of each period (newest first): the invoice-ready lines, their total
    (a sum of rounded lines) and whether they are provisional or final."""
    by_period: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for line in store.rows("liable_summaries", {**scope.where, "period": periods}):
        by_period[line["period"]].append(
            {**line, "resource": catalog.resource(line["usage_resource_id"])}
        )
    result = []
    for period in sorted(by_period, reverse=True):
        lines = sorted(
            by_period[period], key=lambda line: (line["asset_id"] or "", line["usage_resource_id"])
        )
        result.append(Invoice(period, _status(lines), lines[0]["currency"], lines))
    return result


# -- data integrity ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Law:
    """One conservation law of docs/rules.md, verified here on the warehouse rows."""

    rule: str
    checked: int  # rows the law was verified on
    broken: int  # rows where it does not hold

    @property
    def holds(self) -> bool:
        return self.broken == 0


@dataclass(frozen=True)
class Integrity:
    quarantined: list[tuple[str, int]]  # the scope's quarantined events by reason
    unattributed: list[tuple[str, int]]  # the period's events of no known account
    reconciliation: dict[str, Any] | None  # the period's ingest_reconciliation row
    laws: list[Law]


def integrity(
    store: ReadOnlyWarehouse, catalog: CatalogView, scope: Scope, period: date
) -> Integrity:
    """The scope's quarantined events of `period` by reason, those that name no known account
    (on an account's page: they may be its own), the period's ingest counts and the
    conservation laws verified on the scope's rows."""
    rows = store.rows("quarantined_events", {"period": period})
    if scope.asset:  # tagged with the asset, even by another account's usage
        mine = [e for e in rows if e["asset_id"] == scope.asset.asset_id]
    else:
        mine = [e for e in rows if e["account_id"] == scope.account.account_id]
    quarantined = Counter(e["reason"] for e in mine)
    unattributed = Counter(e["reason"] for e in rows if e["account_id"] not in catalog.accounts)
    counts = store.rows("ingest_reconciliation", {"period": period})
    return Integrity(
        sorted(quarantined.items()),
        sorted(unattributed.items()) if scope.asset is None else [],
        counts[0] if counts else None,
        _laws(store, scope, period, counts),
    )


def _laws(
    store: ReadOnlyWarehouse, scope: Scope, period: date, counts: list[dict[str, Any]]
) -> list[Law]:
    summaries = store.rows("usage_summaries", {**scope.where, "period": period})
    ids = [
        b["bucket_id"]
        for b in store.rows("entitlement_buckets", {**scope.owned_where, "period": period})
    ]
    balances = store.rows("bucket_balances", {"bucket_id": ids, "period": period}) if ids else []
    liable = store.rows("liable_summaries", {**scope.where, "period": period})
    ratable = store.rows("ratable_summaries", {**scope.where, "period": period})
    liable_sum = sum((r["amount"] for r in liable), ZERO)
    ratable_sum = sum((r["amount"] for r in ratable), ZERO)
    return [
        Law(
            "events read = accepted + duplicates + quarantined + other periods (whole period)",
            len(counts),
            sum(
                c["events_read"]
                != c["accepted"] + c["duplicates"] + c["quarantined"] + c["other_periods"]
                for c in counts
            ),
        ),
        Law(
            "per usage summary: drawdown quantity = debited + overage",
            len(summaries),
            sum(s["drawdown_quantity"] != s["debited"] + s["overage"] for s in summaries),
        ),
        Law(
            "per bucket: opening + credited − debited − expired − rolled over = closing ≥ 0",
            len(balances),
            sum(
                b["opening"] + b["credited"] - b["debited"] - b["expired"] - b["rolled_over"]
                != b["closing"]
                or b["closing"] < 0
                for b in balances
            ),
        ),
        Law(
            "sum of liable amounts = sum of ratable amounts",
            1 if liable or ratable else 0,
            int(liable_sum != ratable_sum),
        ),
    ]
