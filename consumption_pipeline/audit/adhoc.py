"""Ad hoc summaries: what an analyst asks from the Dagster UI about one account over any dates.

For a scope (an account; optionally one asset and one usage resource) and a date range of any
span, across periods, cut by day, week (ISO, from Monday) or month, the summary reports:

- per cut, usage resource and rate: consumption, drawdown quantity, debited, overage, the rate
  that applied (its level, effective date, pricing model and net unit rate) and the amount;
- per cut and bucket: opening and closing balance, credited, debited (in all, and for the usage in
  scope), expired and rolled over;
- the forecast of the open buckets and of the overage, and the trace of each invoice line the
  range touches.

Rules where docs/rules.md is silent: the range is inclusive of both dates. A usage summary counts on
its window's date (a monthly window on its period's last day). A resource filter matches a usage
summary by its usage resource or its billed (drawdown) resource, and a bucket by the billed
resource. Amounts are set per period on priced parts (tiers count the period's whole overage), so
a cut's amount is its share of its part's amount, in proportion to its overage, split in the
currency's minor units by largest remainder: a whole period adds up to its invoice line exactly.
"""

from __future__ import annotations

import difflib
import enum
import re
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

import numpy as np
import pandas as pd

from consumption_pipeline.audit import markdown
from consumption_pipeline.audit.forecast import Forecast
from consumption_pipeline.audit.trace import LineKey, PeriodRows, Trace, assemble
from consumption_pipeline.domain import formatting
from consumption_pipeline.domain.catalog import Catalog
from consumption_pipeline.domain.money import minor_unit

PART = ["period", "account_id", "asset_key", "drawdown_resource_id", "rate_source",
        "rate_asset_id", "rate_effective_from"]  # fmt: skip
USAGE_KEYS = ["granule_start", "granule_end", "period", "account_id", "asset_id",
              "usage_resource_id", "drawdown_resource_id", "rate_source", "rate_asset_id",
              "rate_effective_from", "currency"]  # fmt: skip
QUANTITIES = ["consumption", "drawdown_quantity", "debited", "overage"]
FLOWS = {"credit": "credited", "debit": "debited", "expired": "expired",
         "rollover_out": "rolled_over"}  # fmt: skip


class Granularity(enum.Enum):
    day = "day"
    week = "week"
    month = "month"


class RequestError(ValueError):
    """A request that cannot be answered; the message says which field and why."""


@dataclass(frozen=True)
class Request:
    request_id: str
    account_id: str
    start: pd.Timestamp  # first day included
    end: pd.Timestamp  # last day included
    granularity: Granularity = Granularity.day
    asset_id: str | None = None
    usage_resource_id: str | None = None

    def scope(self) -> str:
        return (f"account {self.account_id}, asset {self.asset_id or 'all'}, usage resource "
                f"{self.usage_resource_id or 'all'}, {self.start:%Y-%m-%d} to "
                f"{self.end:%Y-%m-%d} by {self.granularity.value}")  # fmt: skip


@dataclass(frozen=True)
class Summary:
    usage: pd.DataFrame  # adhoc_summaries rows
    buckets: pd.DataFrame  # adhoc_bucket_balances rows
    lines: pd.DataFrame  # the liable summaries of the periods the range touches, in scope


def parse_date(value: str, field: str) -> pd.Timestamp:
    try:
        day = pd.Timestamp(pd.to_datetime(value, format="%Y-%m-%d"))
    except (ValueError, TypeError):
        raise RequestError(f"{field}: expected a date YYYY-MM-DD, got {value!r}") from None
    return day


# A request id names the result's files: letters, digits, '-', '_' and '.', not leading with
# '.' or '-' (no path, no hidden file, no option), 1 to 64 characters.
REQUEST_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
MAX_WINDOW_DAYS = 366  # a burn rate over more than a year says nothing of the coming days


def check_request_id(value: str) -> str:
    if not REQUEST_ID.fullmatch(value):
        raise RequestError(
            f"request_id {value[:80]!r}: expected 1 to 64 letters, digits, '-', '_' or '.', "
            "starting with a letter, digit or '_'"
        )
    return value


def check_window_days(days: int, field: str) -> int:
    if not 1 <= days <= MAX_WINDOW_DAYS:
        raise RequestError(f"{field} {days}: expected a whole number of days from 1 to "
                           f"{MAX_WINDOW_DAYS}")  # fmt: skip
    return days


def _close_to(value: str, known: set[str]) -> str:
    """A few known ids like `value`, for a message (never the whole list)."""
    close = difflib.get_close_matches(value, sorted(known), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def validate(request: Request, catalog: Catalog) -> None:
    """Reject what cannot be answered, naming the field: unknown account, asset or resource, an
    asset of another account, an end before the start."""
    accounts = set(catalog.accounts["account_id"])
    if request.account_id not in accounts:
        raise RequestError(f"account_id: unknown account {request.account_id!r}"
                           f"{_close_to(request.account_id, accounts)}")  # fmt: skip
    if request.asset_id is not None:
        owner = catalog.assets.set_index("asset_id")["account_id"].get(request.asset_id)
        if owner is None:
            raise RequestError(f"asset_id: unknown asset {request.asset_id!r}"
                               f"{_close_to(request.asset_id, set(catalog.assets['asset_id']))}")  # fmt: skip
        if owner != request.account_id:
            raise RequestError(f"asset_id: asset {request.asset_id!r} belongs to account "
                               f"{owner!r}, not {request.account_id!r}")  # fmt: skip
    resources = set(catalog.resources["usage_resource_id"])
    if request.usage_resource_id is not None and request.usage_resource_id not in resources:
        raise RequestError(f"usage_resource_id: unknown usage resource "
                           f"{request.usage_resource_id!r}"
                           f"{_close_to(request.usage_resource_id, resources)}")  # fmt: skip
    if request.end < request.start:
        raise RequestError(f"end_date {request.end:%Y-%m-%d} is before start_date "
                           f"{request.start:%Y-%m-%d}")  # fmt: skip


def periods_of(start: pd.Timestamp, end: pd.Timestamp) -> list[str]:
    """The billing periods that [start, end] touches, as 'YYYY-MM-01'."""
    months = pd.period_range(start.to_period("M"), end.to_period("M"), freq="M")
    return [m.start_time.strftime("%Y-%m-%d") for m in months]


def granules(start: pd.Timestamp, end: pd.Timestamp, granularity: Granularity) -> pd.DataFrame:
    """The cuts of [start, end], each clipped to the range: granule_start, granule_end (inclusive)."""
    days = pd.Series(pd.date_range(start, end, freq="D"))
    if granularity is Granularity.day:
        first = days
    elif granularity is Granularity.week:
        first = days - pd.to_timedelta(days.dt.day_of_week, unit="D")
    else:
        first = days.dt.to_period("M").dt.start_time
    frame = pd.DataFrame({"day": days, "granule_start": first.clip(lower=start)})
    cuts = frame.groupby("granule_start")["day"].max().rename("granule_end").reset_index()
    return cuts.astype("datetime64[s]")


def _cut(dates: pd.Series, cuts: pd.DataFrame) -> pd.DataFrame:
    """The cut of each date (dates must lie inside the range)."""
    position = np.searchsorted(cuts["granule_start"].to_numpy(), dates.to_numpy(dtype="datetime64[s]"),
                               side="right") - 1  # fmt: skip
    return cuts.iloc[position].reset_index(drop=True).set_axis(dates.index)


def summarize_range(request: Request, rows: list[PeriodRows], balances: pd.DataFrame,
                    catalog: Catalog) -> Summary:  # fmt: skip
    """The ad hoc summary of `request` from the account's rows of the periods it touches."""
    cuts = granules(request.start, request.end, request.granularity)
    usage = pd.concat([r.usage_summaries for r in rows], ignore_index=True)
    ratable = pd.concat([r.ratable for r in rows], ignore_index=True)
    ledger = pd.concat([r.ledger for r in rows], ignore_index=True)
    buckets = pd.concat([r.buckets for r in rows], ignore_index=True)
    liable = pd.concat([r.liable for r in rows], ignore_index=True)
    scoped = _in_scope(usage, request)
    usage_rows = _usage_rows(scoped, ratable, catalog, request, cuts)
    bucket_rows = _bucket_rows(scoped, buckets, balances, ledger, request, catalog, cuts)
    if usage_rows.empty and not _active(bucket_rows):
        raise RequestError(f"no usage and no bucket activity for {request.scope()}")
    lines = liable[_line_in_scope(liable, request, catalog)]
    return Summary(usage_rows, bucket_rows, lines.reset_index(drop=True))


def _active(bucket_rows: pd.DataFrame) -> bool:
    flows = bucket_rows[["opening", "credited", "debited", "expired", "rolled_over", "closing"]]
    return bool(len(bucket_rows)) and bool(flows.abs().to_numpy().sum() > 0)


def _billed_resource(resource: str, catalog: Catalog) -> str:
    token = catalog.resources.set_index("usage_resource_id")["token_resource_id"].get(resource)
    return resource if token is None or pd.isna(token) else str(token)


def _in_scope(usage: pd.DataFrame, request: Request) -> pd.DataFrame:
    """The usage summaries of the scope, all windows of the periods (the range is cut later)."""
    keep = usage["account_id"].eq(request.account_id)
    if request.asset_id is not None:
        keep &= usage["asset_id"].eq(request.asset_id).fillna(False)
    if request.usage_resource_id is not None:
        keep &= (usage["usage_resource_id"].eq(request.usage_resource_id)
                 | usage["drawdown_resource_id"].eq(request.usage_resource_id))  # fmt: skip
    return usage[keep.astype(bool)].reset_index(drop=True)


def _line_in_scope(liable: pd.DataFrame, request: Request, catalog: Catalog) -> pd.Series:
    keep = liable["account_id"].eq(request.account_id)
    if request.asset_id is not None:
        keep &= liable["asset_id"].eq(request.asset_id).fillna(False)
    if request.usage_resource_id is not None:
        keep &= liable["usage_resource_id"].eq(_billed_resource(request.usage_resource_id, catalog))
    return keep.astype(bool)


def _usage_rows(scoped: pd.DataFrame, ratable: pd.DataFrame, catalog: Catalog, request: Request,
                cuts: pd.DataFrame) -> pd.DataFrame:  # fmt: skip
    frame = scoped.assign(asset_key=scoped["asset_id"].fillna(""),
                          amount=_allocated_amounts(scoped, ratable))  # fmt: skip
    frame = frame[frame["window_date"].between(request.start, request.end)]
    if frame.empty:
        return pd.DataFrame(columns=[*USAGE_KEYS, *QUANTITIES, "pricing_model", "net_unit_rate",
                                     "amount"])  # fmt: skip
    frame = pd.concat(
        [frame.reset_index(drop=True), _cut(frame["window_date"].reset_index(drop=True), cuts)],
        axis=1,
    )
    frame["rate_source"] = frame["rate_source"].fillna("none")
    grouped = frame.groupby([*USAGE_KEYS, "asset_key"], dropna=False, sort=True)
    out = grouped[QUANTITIES].sum().join(grouped["amount"].agg(_decimal_sum)).reset_index()
    parts = _parts(ratable)
    out = out.merge(parts, how="left", on=PART)
    out["pricing_model"] = out["pricing_model"].fillna(
        pd.Series(_catalog_models(out, catalog), index=out.index)
    )
    out["rate_source"] = out["rate_source"].replace("none", pd.NA)
    return out[[*USAGE_KEYS, *QUANTITIES, "pricing_model", "net_unit_rate", "amount"]]


def _decimal_sum(values: pd.Series) -> Decimal:
    return sum(values, Decimal(0))


def _parts(ratable: pd.DataFrame) -> pd.DataFrame:
    parts = ratable.assign(asset_key=ratable["asset_id"].fillna(""),
                           rate_source=ratable["rate_source"].fillna("none"))  # fmt: skip
    parts = parts.rename(columns={"usage_resource_id": "drawdown_resource_id"})
    return parts[[*PART, "pricing_model", "net_unit_rate"]]


def _catalog_models(rows: pd.DataFrame, catalog: Catalog) -> list[object]:
    """The pricing model of a rate that priced nothing (no overage) in its period."""
    rates = catalog.rates
    models = []
    for row in rows.itertuples(index=False):
        level = "asset" if row.rate_source == "commitment" else row.rate_source  # its asset's
        match = (rates["level"].eq(level) & rates["usage_resource_id"].eq(
            row.drawdown_resource_id) & rates["currency"].eq(row.currency)
            & rates["effective_from"].eq(row.rate_effective_from))  # fmt: skip
        found = rates.loc[match.fillna(False).astype(bool), "pricing_model"]
        models.append(found.iloc[0] if len(found) else pd.NA)
    return models


def _allocated_amounts(scoped: pd.DataFrame, ratable: pd.DataFrame) -> list[Decimal]:
    """Each usage summary's share of its priced part's amount, by overage, largest remainder."""
    amounts = [Decimal(0)] * len(scoped)
    if scoped.empty:
        return amounts
    frame = scoped.assign(asset_key=scoped["asset_id"].fillna(""),
                          rate_source=scoped["rate_source"].fillna("none"), position=range(len(scoped)))  # fmt: skip
    parts = ratable.assign(asset_key=ratable["asset_id"].fillna(""),
                           rate_source=ratable["rate_source"].fillna("none")).rename(
        columns={"usage_resource_id": "drawdown_resource_id"})  # fmt: skip
    for part in parts.itertuples(index=False):
        members = frame
        for column in PART:
            value = getattr(part, column)
            members = (
                members[members[column].isna()]
                if pd.isna(value)
                else members[members[column].eq(value)]
            )
        members = members[members["overage"] > 0]
        if members.empty:
            continue
        shares = _largest_remainder(Decimal(part.amount), members["overage"].to_numpy(),
                                    minor_unit(part.currency), members["summary_id"].to_numpy())  # fmt: skip
        for position, share in zip(members["position"], shares, strict=True):
            amounts[position] = share
    return amounts


def _largest_remainder(amount: Decimal, weights: np.ndarray, minor: int,
                       ties: np.ndarray) -> list[Decimal]:  # fmt: skip
    unit = Decimal(1).scaleb(-minor)
    units = int((amount / unit).to_integral_value())
    micro = [int(round(w * 1_000_000)) for w in weights]
    total = sum(micro)
    exact = [Decimal(units) * m / total for m in micro]
    floors = [int(e.to_integral_value(rounding=ROUND_FLOOR)) for e in exact]
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), str(ties[i])))
    for i in order[: units - sum(floors)]:
        floors[i] += 1
    return [Decimal(f) * unit for f in floors]


def _bucket_rows(scoped: pd.DataFrame, buckets: pd.DataFrame, balances: pd.DataFrame,
                 ledger: pd.DataFrame, request: Request, catalog: Catalog,
                 cuts: pd.DataFrame) -> pd.DataFrame:  # fmt: skip
    """Balances and flows of the scope's buckets per cut."""
    columns = ["granule_start", "granule_end", "bucket_id", "origin", "asset_id",
               "usage_resource_id", "valid_from", "valid_to", "opening", "credited", "debited",
               "debited_in_scope", "expired", "rolled_over", "closing", "change_id", "credit_id",
               "reason"]  # fmt: skip
    mine = buckets.drop_duplicates("bucket_id")
    keep = mine["account_id"].eq(request.account_id)
    if request.asset_id is not None:
        keep &= mine["asset_id"].eq(request.asset_id).fillna(False) | mine["binding"].eq("account")
    if request.usage_resource_id is not None:
        keep &= mine["usage_resource_id"].eq(_billed_resource(request.usage_resource_id, catalog))
    keep &= mine["valid_from"].le(request.end) & (mine["valid_to"].isna()
                                                   | mine["valid_to"].gt(request.start))  # fmt: skip
    keep &= mine["bucket_id"].isin(balances["bucket_id"])
    mine = mine[keep.astype(bool)]
    if mine.empty:
        return pd.DataFrame(columns=columns)
    described = mine.reindex(
        columns=[
            "bucket_id",
            "origin",
            "asset_id",
            "usage_resource_id",
            "valid_from",
            "valid_to",
            "change_id",
            "credit_id",
            "reason",
        ]
    )
    rows = described.merge(cuts, how="cross")
    # A cut in which the bucket is valid, or on whose first day it ends (its expiry or rollover).
    rows = rows[rows["valid_from"].le(rows["granule_end"])
                & (rows["valid_to"].isna() | rows["valid_to"].ge(rows["granule_start"]))]  # fmt: skip
    entries = ledger[ledger["bucket_id"].isin(mine["bucket_id"])
                     & ledger["entry_date"].between(request.start, request.end)]  # fmt: skip
    entries = pd.concat([entries.reset_index(drop=True),
                         _cut(entries["entry_date"].reset_index(drop=True), cuts)], axis=1)  # fmt: skip
    entries["flow"] = entries["entry_type"].map(FLOWS)
    flows = entries.pivot_table(index=["bucket_id", "granule_start"], columns="flow",
                                values="quantity", aggfunc="sum", fill_value=0.0)  # fmt: skip
    flows = flows.reindex(columns=list(FLOWS.values()), fill_value=0.0)
    served = entries[
        entries["entry_type"].eq("debit") & entries["summary_id"].isin(scoped["summary_id"])
    ]
    flows["debited_in_scope"] = served.groupby(["bucket_id", "granule_start"])["quantity"].sum()
    rows = rows.join(flows, on=["bucket_id", "granule_start"])
    rows[[*FLOWS.values(), "debited_in_scope"]] = rows[
        [*FLOWS.values(), "debited_in_scope"]
    ].fillna(0.0)
    rows["opening"] = _balances(rows, ledger, balances, rows["granule_start"], before=True)
    rows["closing"] = _balances(rows, ledger, balances, rows["granule_end"], before=False)
    return rows[columns].sort_values(["bucket_id", "granule_start"], ignore_index=True)


def _balances(rows: pd.DataFrame, ledger: pd.DataFrame, balances: pd.DataFrame, days: pd.Series,
              before: bool) -> list[float]:  # fmt: skip
    """Each row's bucket balance at the start (`before`) or at the end of its day, from the ledger
    of the day's period: the closing balance of the last entry, else the period's opening."""
    periods = days.dt.to_period("M").dt.start_time
    by_bucket = {k: g.sort_values("sequence") for k, g in
                 ledger.groupby(["bucket_id", "period"])}  # fmt: skip
    opening = balances.set_index(["bucket_id", "period"])["opening"]
    out = []
    for bucket, day, period in zip(rows["bucket_id"], days, periods, strict=True):
        entries = by_bucket.get((bucket, period))
        if entries is not None:
            upto = (
                entries[entries["entry_date"] < day]
                if before
                else entries[entries["entry_date"] <= day]
            )
            if len(upto):
                out.append(float(upto["closing_balance"].iloc[-1]))
                continue
        out.append(float(opening.get((bucket, period), 0.0)))
    return out


# -- the report ------------------------------------------------------------------------------


def report(request: Request, summary: Summary, traces: list[Trace], forecast_md: str) -> str:
    """The Markdown report shown in the materialization and kept beside the CSV."""
    usage = summary.usage
    totals = usage.groupby(["usage_resource_id", "drawdown_resource_id", "currency"], dropna=False)
    total_frame = totals[QUANTITIES].sum().join(totals["amount"].agg(_decimal_sum)).reset_index()
    parts = [
        f"# Ad hoc summary {request.request_id}",
        f"Scope: {request.scope()}.",
        "## Totals", markdown.table(total_frame),
        f"## Usage by {request.granularity.value}", markdown.table(usage.drop(
            columns=["account_id", "period"]), max_rows=200),
        "## Buckets: balances and what was debited", markdown.table(summary.buckets.drop(
            columns=["valid_from"]), max_rows=200),
        "Amounts inside a period are each window's share of its priced part (in proportion to "
        "overage): a whole period adds up to its invoice line.",
    ]  # fmt: skip
    parts.append(forecast_md)
    parts.append("## Invoice lines of the periods in range, traced")
    parts.append(markdown.table(summary.lines.drop(columns=["account_id"])))
    parts += [_trace_digest(t) for t in traces]
    return "\n\n".join(parts)


def forecast_markdown(forecast: Forecast, as_of: pd.Timestamp, window_days: int) -> str:
    """The forecast section of the report."""
    buckets = forecast.buckets.assign(
        exhausted_on=[_outlook(o, d) for o, d in zip(forecast.buckets["outlook"],
                                                      forecast.buckets["exhausted_on"], strict=True)]
    ).drop(columns=["as_of", "account_id", "outlook"])  # fmt: skip
    return "\n\n".join([
        f"## Forecast as of {as_of:%Y-%m-%d} (burn rates over the trailing {window_days} days)",
        "### Open buckets", markdown.table(buckets.drop(columns=["window_days"])),
        "### Overage for the rest of the period", markdown.table(
            forecast.overage.drop(columns=["as_of", "account_id", "window_days"])),
    ])  # fmt: skip


def _outlook(outlook: str, day: object) -> str:
    if outlook == "runs_out":
        return f"{day:%Y-%m-%d}"
    if outlook == "empty":
        return f"empty since {day:%Y-%m-%d}" if not pd.isna(day) else "empty"
    if outlook == "expires_first":
        return "not before it expires"
    return "never at the current rate"


def _trace_digest(trace: Trace) -> str:
    """One invoice line's trace, short: what reconciles, which buckets and rates, how many events,
    and the runs; `consumption-pipeline trace` prints it whole."""
    key, line = trace.key, trace.line.iloc[0]
    covered = trace.ledger.groupby("bucket_id")["quantity"].sum().reset_index(name="debited")
    runs = trace.runs[trace.runs["table_name"].isin(
        ["usage_events", "usage_summaries", "liable_summaries"])][["step", "run_id", "code_version"]]  # fmt: skip
    files = trace.events.groupby("source_file")["event_id"].count().reset_index(name="events")
    ok = bool(trace.checks["ok"].all())
    priced = markdown.table(trace.ratable[[
        "rate_source", "rate_asset_id", "rate_effective_from", "pricing_model", "overage_quantity",
        "net_unit_rate", "amount"]], currency=line["currency"]) if len(trace.ratable) else (
        "No ratable part: nothing beyond the buckets was priced.")  # fmt: skip
    return "\n\n".join([
        f"### {key.label()}: {formatting.money(line['amount'], line['currency'])} "
        f"({line['status']})",
        f"{'Every total reconciles with its parts' if ok else '**A total does not reconcile**'}; "
        f"{_count(len(trace.usage_summaries), 'usage summary', 'usage summaries')} from "
        f"{_count(len(trace.events), 'event', 'events')}. Full trace: "
        f"`consumption-pipeline trace --period {key.period[:7]} --account {key.account_id}"
        f"{f' --asset {key.asset_id}' if key.asset_id else ''} --resource {key.usage_resource_id}`",
        priced,
        markdown.table(covered), markdown.table(files), markdown.table(runs.drop_duplicates()),
    ])  # fmt: skip


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def csv_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of a result file as text for programs (domain/formatting.py): money at its
    currency's minor unit, quantities with their decimals, no thousands separators."""
    currencies = frame["currency"] if "currency" in frame.columns else pd.Series(None, frame.index)
    out = frame.copy()
    for column in frame.columns:
        if frame[column].dtype.kind in "fiu" or frame[column].dtype == object:
            out[column] = [formatting.plain_cell(v, str(column), c)
                           for v, c in zip(frame[column], currencies, strict=True)]  # fmt: skip
    return out


def traces_of(summary: Summary, rows: list[PeriodRows], catalog: Catalog) -> list[Trace]:
    """The trace of every invoice line in the summary."""
    by_period = {str(r.liable["period"].iloc[0].date()): r for r in rows if len(r.liable)}
    traces = []
    usage_lines = summary.lines[summary.lines["line_type"].fillna("usage").eq("usage")]
    for line in usage_lines.itertuples(index=False):
        period = str(pd.Timestamp(line.period).date())
        asset = None if pd.isna(line.asset_id) else line.asset_id
        key = LineKey(period, line.account_id, asset, line.usage_resource_id)
        traces.append(assemble(key, by_period[period], catalog))
    return traces


def scoped_forecast(result: Forecast, request: Request, catalog: Catalog) -> Forecast:
    """The forecast rows of the request's scope."""
    buckets, overage = result.buckets, result.overage
    keep_b = buckets["account_id"].eq(request.account_id)
    keep_o = overage["account_id"].eq(request.account_id)
    if request.asset_id is not None:
        keep_b &= buckets["asset_id"].eq(request.asset_id).fillna(False) | buckets["binding"].eq(
            "account"
        )
        keep_o &= overage["asset_id"].eq(request.asset_id).fillna(False)
    if request.usage_resource_id is not None:
        billed = _billed_resource(request.usage_resource_id, catalog)
        keep_b &= buckets["usage_resource_id"].eq(billed)
        keep_o &= overage["usage_resource_id"].eq(billed)
    return Forecast(buckets[keep_b.astype(bool)].reset_index(drop=True),
                    overage[keep_o.astype(bool)].reset_index(drop=True))  # fmt: skip
