"""Trace of an invoice line (docs/rules.md "Outputs"): from a liable summary back to its sources.

For one liable line (period, account, asset or none, billed resource) the trace gathers the
ratable parts and the rates that priced them, the usage summaries behind it, the ledger debits and
the buckets that covered them, the usage events aggregated into each summary (with their file and
row), and for every row the Dagster run and code version that wrote it. It also re-adds the
numbers, so that an auditor sees each total reconcile with its parts.

`read_trace` reads what one line needs (bound parameters only); `assemble` is pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pandas as pd

from consumption_pipeline.audit import markdown, runs
from consumption_pipeline.audit import store as audit_store
from consumption_pipeline.domain import formatting
from consumption_pipeline.domain.catalog import Catalog
from consumption_pipeline.storage.warehouse import Warehouse

TOLERANCE = 5e-7  # quantities are exact to 6 decimals; float64 sums may differ in the last ulp


class LineNotFound(ValueError):
    """No liable summary with that key; the message lists the lines that exist."""


@dataclass(frozen=True)
class LineKey:
    period: str  # 'YYYY-MM-01'
    account_id: str
    asset_id: str | None  # None: usage not tagged with an asset
    usage_resource_id: str  # the billed (drawdown) resource

    def label(self) -> str:
        return (f"{self.period[:7]} {self.account_id} asset {self.asset_id or '(none)'} "
                f"{self.usage_resource_id}")  # fmt: skip


@dataclass(frozen=True)
class Trace:
    key: LineKey
    line: pd.DataFrame  # the liable summary (one row)
    ratable: pd.DataFrame  # the priced parts: the rate that applied to each
    rates: pd.DataFrame  # the catalog rate rows of those parts (empty without a catalog)
    usage_summaries: pd.DataFrame
    ledger: pd.DataFrame  # the debits that covered the usage summaries
    buckets: pd.DataFrame  # the buckets debited
    events: pd.DataFrame  # the usage events behind the usage summaries
    runs: pd.DataFrame  # the runs that wrote the period's rows
    adjustments: pd.DataFrame = field(default_factory=pd.DataFrame)  # restatements booked here
    checks: pd.DataFrame = field(default_factory=pd.DataFrame)  # check, expected, found, ok


@dataclass(frozen=True)
class PeriodRows:
    """The rows of one account in one period that a trace draws from."""

    liable: pd.DataFrame
    ratable: pd.DataFrame
    usage_summaries: pd.DataFrame
    ledger: pd.DataFrame
    buckets: pd.DataFrame
    events: pd.DataFrame
    runs: pd.DataFrame
    restatements: pd.DataFrame  # restatement lines booked into the period as adjustments


def read_period_rows(store: Warehouse, period: str, account_id: str) -> PeriodRows:
    """One account's rows of one period (the account reaches SQL as a bound parameter)."""
    where = {"account_id": account_id}
    return PeriodRows(
        liable=store.read_period("liable_summaries", period, where),
        ratable=store.read_period("ratable_summaries", period, where),
        usage_summaries=store.read_period("usage_summaries", period, where),
        ledger=store.read_period("entitlement_ledger", period, where),
        buckets=store.read_period("entitlement_buckets", period, where),
        events=store.read_period("usage_events", period, where),
        runs=runs.for_periods(store.engine, [period]),
        restatements=audit_store.read_rows(
            store.engine, "restatement_lines", {"booked_in": pd.Timestamp(period), **where}
        ),  # fmt: skip
    )


def read_trace(store: Warehouse, key: LineKey, catalog: Catalog | None = None) -> Trace:
    return assemble(key, read_period_rows(store, key.period, key.account_id), catalog)


def assemble(key: LineKey, rows: PeriodRows, catalog: Catalog | None = None) -> Trace:
    """The trace of the line `key` from one account's rows of its period."""
    line = rows.liable[_usage(rows.liable) & _is_line(rows.liable, key, "usage_resource_id")]
    adjustments = rows.restatements[_is_line(rows.restatements, key, "usage_resource_id")]
    if line.empty:
        raise LineNotFound(_not_found(key, rows.liable, adjustments))
    summaries = rows.usage_summaries[_is_line(rows.usage_summaries, key, "drawdown_resource_id")]
    summaries = summaries.sort_values(["window_date", "usage_resource_id", "summary_id"])
    ratable = rows.ratable[_usage(rows.ratable) & _is_line(rows.ratable, key, "usage_resource_id")]
    ledger = rows.ledger[
        rows.ledger["entry_type"].eq("debit")
        & rows.ledger["summary_id"].isin(summaries["summary_id"])
    ].sort_values("sequence")
    buckets = rows.buckets[rows.buckets["bucket_id"].isin(ledger["bucket_id"])]
    events = _events_of(rows.events, summaries, key.period)
    stamp = _stamper(rows.runs)
    trace = Trace(
        key=key,
        line=stamp(line, "summaries", "liable_summaries"),
        ratable=stamp(ratable, "summaries", "ratable_summaries"),
        rates=_rate_rows(ratable, catalog),
        usage_summaries=stamp(summaries, "drawdown", "usage_summaries"),
        ledger=stamp(ledger, "drawdown", "entitlement_ledger"),
        buckets=_stamp_buckets(buckets, stamp),
        events=stamp(events, "ingest", "usage_events"),
        runs=rows.runs.sort_values(["step", "table_name"]).reset_index(drop=True),
        adjustments=adjustments.reset_index(drop=True),
    )
    return Trace(**{**trace.__dict__, "checks": reconcile(trace)})


def _is_line(frame: pd.DataFrame, key: LineKey, resource_column: str) -> pd.Series:
    asset = frame["asset_id"]
    same_asset = asset.isna() if key.asset_id is None else asset.eq(key.asset_id).fillna(False)
    return (frame["account_id"].eq(key.account_id) & same_asset
            & frame[resource_column].eq(key.usage_resource_id)).astype(bool)  # fmt: skip


def _usage(lines: pd.DataFrame) -> pd.Series:
    """Usage lines, not the adjustment lines that restatements book."""
    return lines["line_type"].fillna("usage").eq("usage").astype(bool)


def _not_found(key: LineKey, liable: pd.DataFrame, adjustments: pd.DataFrame) -> str:
    if len(adjustments):
        ids = ", ".join(sorted(set(adjustments["restatement_id"])))
        return (f"{key.label()} has only adjustment lines ({ids}): trace them with "
                f"`consumption-pipeline trace --restatement ID`")  # fmt: skip
    if liable.empty:
        return f"no liable summary for account {key.account_id!r} in {key.period[:7]}"
    lines = ", ".join(
        f"{a if isinstance(a, str) else '(none)'}/{r}"
        for a, r in liable[["asset_id", "usage_resource_id"]].itertuples(index=False)
    )
    return f"no liable summary {key.label()}; that period's lines of the account: {lines}"


def summary_ids_of_events(events: pd.DataFrame, summaries: pd.DataFrame, period: str) -> pd.Series:
    """The summary each event was aggregated into (docs/rules.md stage 3): its account, asset or
    none, resource, and window (its usage date, or the period for a monthly resource)."""
    monthly = summaries.loc[summaries["aggregation_period"].eq("monthly"), "usage_resource_id"]
    window = events["usage_date"].where(
        ~events["usage_resource_id"].isin(set(monthly)), pd.Timestamp(period)
    )
    return (events["account_id"] + "|" + events["asset_id"].fillna("-") + "|"
            + events["usage_resource_id"] + "|" + window.dt.strftime("%Y-%m-%d"))  # fmt: skip


def _events_of(events: pd.DataFrame, summaries: pd.DataFrame, period: str) -> pd.DataFrame:
    with_summary = events.assign(summary_id=summary_ids_of_events(events, summaries, period))
    mine = with_summary[with_summary["summary_id"].isin(summaries["summary_id"])]
    return mine.sort_values(["occurred_at", "event_id"])


def _stamper(stage_runs: pd.DataFrame):
    """Adds the run id and code version of the step that wrote a table's rows."""
    by_key = {(r.step, r.table_name): (r.run_id, r.code_version)
              for r in stage_runs.itertuples(index=False)}  # fmt: skip

    def stamp(frame: pd.DataFrame, step: str, table: str) -> pd.DataFrame:
        run_id, code = by_key.get((step, table), (pd.NA, pd.NA))
        return frame.assign(run_id=run_id, code_version=code).reset_index(drop=True)

    return stamp


def _stamp_buckets(buckets: pd.DataFrame, stamp) -> pd.DataFrame:
    grant = stamp(buckets[buckets["origin"].ne("rollover")], runs.BUCKET_WRITERS["grant"],
                  "entitlement_buckets")  # fmt: skip
    rollover = stamp(buckets[buckets["origin"].eq("rollover")], runs.BUCKET_WRITERS["rollover"],
                     "entitlement_buckets")  # fmt: skip
    return pd.concat([grant, rollover], ignore_index=True).sort_values(
        "bucket_id", ignore_index=True
    )


def _rate_rows(ratable: pd.DataFrame, catalog: Catalog | None) -> pd.DataFrame:
    """The catalog rows of each rate that priced a part: its level, resource, currency and
    effective_from (and the account or asset of a negotiated rate)."""
    if catalog is None or ratable.empty:
        return pd.DataFrame()
    rates = catalog.rates
    parts = []
    for part in ratable.dropna(subset=["rate_source"]).itertuples(index=False):
        level = "asset" if part.rate_source == "commitment" else part.rate_source  # its asset's
        match = (rates["level"].eq(level)
                 & rates["usage_resource_id"].eq(part.usage_resource_id)
                 & rates["currency"].eq(part.currency)
                 & rates["effective_from"].eq(part.rate_effective_from))  # fmt: skip
        if part.rate_source != "price_book":
            match &= rates["account_id"].eq(part.account_id)
        if level == "asset":
            match &= rates["asset_id"].eq(part.rate_asset_id)
        parts.append(rates[match.fillna(False).astype(bool)])
    columns = ["level", "account_id", "asset_id", "usage_resource_id", "currency", "pricing_model",
               "tier_lower", "unit_price", "package_size", "flat_fee", "effective_from",
               "effective_to"]  # fmt: skip
    found = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return found.reindex(columns=columns).drop_duplicates().reset_index(drop=True)


def reconcile(trace: Trace) -> pd.DataFrame:
    """Each total of the line against the sum of its parts."""
    line = trace.line.iloc[0]
    s, led, rat = trace.usage_summaries, trace.ledger, trace.ratable
    checks = [
        ("consumption = Σ drawdown quantity of the usage summaries", line["consumption"],
         s["drawdown_quantity"].sum()),
        ("debited = Σ debited of the usage summaries", line["debited"], s["debited"].sum()),
        ("debited = Σ ledger debits", line["debited"], led["quantity"].sum()),
        ("overage = Σ overage of the usage summaries", line["overage_quantity"],
         s["overage"].sum()),
        ("overage = Σ overage of the ratable parts", line["overage_quantity"],
         rat["overage_quantity"].sum()),
        ("amount = Σ amounts of the ratable parts", Decimal(line["amount"]),
         sum(rat["amount"], Decimal(0))),
    ]  # fmt: skip
    checks.append(_events_check(trace))
    frame = pd.DataFrame(checks, columns=["check", "expected", "found"])
    frame["ok"] = [_same(e, f) for e, f in zip(frame["expected"], frame["found"], strict=True)]
    return frame


def _events_check(trace: Trace) -> tuple[str, object, object]:
    """Every usage summary's consumption is the sum (or, for peak, the maximum) of its events."""
    events = trace.events
    total = events.groupby("summary_id")["quantity"].agg(["sum", "max", "count"])
    s = trace.usage_summaries.set_index("summary_id")
    from_events = total.reindex(s.index)
    peak = s["consumption"].sub(from_events["max"]).abs().lt(TOLERANCE)
    summed = s["consumption"].sub(from_events["sum"]).abs().lt(TOLERANCE)
    counted = s["event_count"].eq(from_events["count"].fillna(0).astype("int64"))
    matching = int(((peak | summed) & counted).sum())
    return (
        "usage summaries whose consumption and event count match their events",
        len(s),
        matching,
    )


def _same(expected: object, found: object) -> bool:
    if isinstance(expected, Decimal) or isinstance(found, Decimal):
        return Decimal(str(expected)) == Decimal(str(found))
    return abs(float(expected) - float(found)) < TOLERANCE


def shown_checks(checks: pd.DataFrame, currency: str) -> pd.DataFrame:
    """The reconciliation as a report shows it: the amounts (the Decimal values, see
    `reconcile`) in the line's currency, the other totals as quantities."""

    def shown(value: object) -> object:
        return formatting.money(value, currency) if isinstance(value, Decimal) else value

    return checks.assign(expected=checks["expected"].map(shown), found=checks["found"].map(shown))


def to_markdown(trace: Trace, max_events: int = 50) -> str:
    """The trace as a Markdown document, sources last."""
    line = trace.line.iloc[0]
    ok = bool(trace.checks["ok"].all())
    parts = [
        f"## Trace of {trace.key.label()}",
        f"Amount **{formatting.money(line['amount'], line['currency'])}** ({line['status']}) for "
        f"{formatting.number(line['overage_quantity'])} overage of "
        f"{formatting.number(line['consumption'])} consumed; "
        f"{'every total reconciles with its parts' if ok else '**a total does not reconcile**'}.",
        "### Reconciliation", markdown.table(shown_checks(trace.checks, line["currency"])),
        "### Rates that applied (ratable parts)", markdown.table(trace.ratable.drop(
            columns=["period", "account_id"], errors="ignore")),
        "### Rate rows in the catalog", markdown.table(trace.rates),
        "### Usage summaries", markdown.table(trace.usage_summaries[[
            "summary_id", "window_date", "usage_resource_id", "event_count", "consumption",
            "tokens_per_unit", "drawdown_quantity", "debited", "overage", "rate_source",
            "rate_effective_from", "run_id"]]),
        "### Ledger debits and the buckets that covered them", markdown.table(trace.ledger[[
            "entry_id", "entry_date", "bucket_id", "quantity", "opening_balance",
            "closing_balance", "summary_id", "run_id"]]),
        "### Buckets", markdown.table(trace.buckets[[
            "bucket_id", "origin", "grant_id", "asset_id", "binding", "priority", "granted",
            "valid_from", "valid_to", "rollover_generation", "change_id", "credit_id", "reason",
            "run_id"]]),
        f"### Usage events ({len(trace.events):,})", markdown.table(trace.events[[
            "event_id", "occurred_at", "usage_resource_id", "quantity", "source_file",
            "row_number", "summary_id"]], max_rows=max_events),
        "### Runs that wrote the period", markdown.table(trace.runs[[
            "step", "table_name", "run_id", "code_version", "fingerprint", "row_count"]]),
    ]  # fmt: skip
    if len(trace.adjustments):
        parts += ["### Adjustments booked on this line (restatements of closed periods)",
                  markdown.table(trace.adjustments[[
                      "restatement_id", "period", "consumption", "debited", "overage_quantity",
                      "amount", "reason", "run_id"]])]  # fmt: skip
    return "\n\n".join(parts)


def restatement_markdown(store: Warehouse, restatement_id: str) -> str:
    """A restatement traced: what was billed, the differences booked, why, which events, which
    run."""
    key = {"restatement_id": restatement_id}
    lines = audit_store.read_rows(store.engine, "restatement_lines", key)
    if lines.empty:
        raise LineNotFound(f"no restatement {restatement_id!r}")
    events = audit_store.read_rows(store.engine, "restatement_events", key)
    first = lines.iloc[0]
    return "\n\n".join([
        f"## Restatement {restatement_id} of {first['period']:%Y-%m}, booked in "
        f"{first['booked_in']:%Y-%m}",
        f"Reason: {first['reason']}. Run {first['run_id']}, code version {first['code_version']}.",
        "### Lines: billed before, and the differences booked as adjustments",
        markdown.table(lines[["account_id", "asset_id", "usage_resource_id", "currency",
                              "billed_consumption", "billed_overage_quantity", "billed_amount",
                              "consumption", "debited", "overage_quantity", "amount"]]),
        "### The events that caused it", markdown.table(events.drop(columns="restatement_id")),
    ])  # fmt: skip
