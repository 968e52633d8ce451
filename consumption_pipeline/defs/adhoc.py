"""The ad hoc summary asset (consumption_pipeline/audit/adhoc.py): an analyst materializes it from
the launchpad of the Dagster UI with a typed config; it writes the summary to the warehouse under a
request id, shows a Markdown report in the materialization and writes a CSV beside the outbox."""

import datetime as dt
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from consumption_pipeline.audit import adhoc
from consumption_pipeline.audit import store as audit_store
from consumption_pipeline.audit.fingerprints import code_version
from consumption_pipeline.audit.forecast import DEFAULT_WINDOW_DAYS, forecast, read_state
from consumption_pipeline.audit.trace import read_period_rows
from consumption_pipeline.closing.outbox import outbox_dir
from consumption_pipeline.defs.resources import SourceDirectory, WarehouseResource
from consumption_pipeline.domain.catalog import Catalog
from consumption_pipeline.storage.warehouse import Warehouse


class AdhocConfig(dg.Config):
    account_id: str = Field(description="The account (accounts.csv account_id). Required.")
    start_date: str = Field(description="First day included, YYYY-MM-DD.")
    end_date: str = Field(description="Last day included, YYYY-MM-DD; any span, across periods.")
    granularity: adhoc.Granularity = Field(
        default=adhoc.Granularity.day, description="Cut the range by day, week or month."
    )
    asset_id: str | None = Field(default=None, description="Only this asset (default: all).")
    usage_resource_id: str | None = Field(
        default=None, description="Only this usage resource, used or billed (default: all)."
    )
    request_id: str | None = Field(
        default=None, description="Key of the result rows (default: the run id)."
    )
    as_of: str | None = Field(
        default=None, description="Forecast as of this date, YYYY-MM-DD (default: today)."
    )
    forecast_window_days: int = Field(
        default=DEFAULT_WINDOW_DAYS, description="Trailing window of the burn rates, in days."
    )


def adhoc_dir() -> Path:
    """Beside the outbox of exported invoice lines: `<outbox>/../adhoc`."""
    return Path(outbox_dir()).parent / "adhoc"


@dg.asset(
    group_name="audit",
    deps=["liable_summaries", "ratable_summaries", "bucket_balances", "entitlement_ledger"],
    description="Ad hoc summary of one account over any dates (config in the launchpad).",
)
def adhoc_summary(
    context: dg.AssetExecutionContext,
    config: AdhocConfig,
    source: SourceDirectory,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    try:
        request = _request(config, context.run.run_id)
        adhoc.check_window_days(config.forecast_window_days, "forecast_window_days")
        catalog = source.catalog()
        adhoc.validate(request, catalog)
        store = warehouse.open()
        periods = _computed_periods(store, request)
        rows = [read_period_rows(store, p, request.account_id) for p in periods]
        balances = pd.concat([store.read_period("bucket_balances", p, {"account_id": request.account_id})
                              for p in periods], ignore_index=True)  # fmt: skip
        summary = adhoc.summarize_range(request, rows, balances, catalog)
    except adhoc.RequestError as error:
        raise dg.Failure(description=f"ad hoc summary not produced: {error}") from None
    traces = adhoc.traces_of(summary, rows, catalog)
    as_of = adhoc.parse_date(config.as_of, "as_of") if config.as_of else source.today()
    forecast_md = _forecast(store, request, catalog, as_of, config.forecast_window_days, source)
    report = adhoc.report(request, summary, traces, forecast_md)
    csv_path = _write(store, request, summary, report, context.run.run_id, as_of)
    return dg.MaterializeResult(metadata={
        "report": dg.MetadataValue.md(report), "request_id": request.request_id,
        "csv": dg.MetadataValue.path(str(csv_path)), "dagster/row_count": len(summary.usage),
        "bucket_rows": len(summary.buckets), "invoice_lines": len(summary.lines),
    })  # fmt: skip


def _request(config: AdhocConfig, run_id: str) -> adhoc.Request:
    return adhoc.Request(
        request_id=adhoc.check_request_id(config.request_id or run_id), account_id=config.account_id,
        start=adhoc.parse_date(config.start_date, "start_date"),
        end=adhoc.parse_date(config.end_date, "end_date"), granularity=config.granularity,
        asset_id=config.asset_id or None, usage_resource_id=config.usage_resource_id or None,
    )  # fmt: skip


def _computed_periods(store: Warehouse, request: adhoc.Request) -> list[str]:
    computed = store.periods("liable_summaries")
    wanted = adhoc.periods_of(request.start, request.end)
    periods = [p for p in wanted if p in computed]
    if not periods:
        held = f"{computed[0][:7]} to {computed[-1][:7]}" if computed else "no period yet"
        raise adhoc.RequestError(f"no data for {request.scope()}: the warehouse holds {held}")
    return periods


def _forecast(store: Warehouse, request: adhoc.Request, catalog: Catalog, as_of: pd.Timestamp,
              window_days: int, source: SourceDirectory) -> str:  # fmt: skip
    """The forecast section: the scope's buckets and lines, as of `as_of` in its period."""
    period = as_of.to_period("M").start_time
    if period.strftime("%Y-%m-%d") not in store.periods("bucket_balances"):
        return f"## Forecast\n\nNo forecast: period {period:%Y-%m} of {as_of:%Y-%m-%d} is not computed."
    state = read_state(store, period.strftime("%Y-%m-%d"), as_of, window_days, request.account_id)
    result = forecast(state, catalog, period, as_of, window_days, source.grace_days)
    return adhoc.forecast_markdown(
        adhoc.scoped_forecast(result, request, catalog), as_of, window_days
    )


def _write(store: Warehouse, request: adhoc.Request, summary: adhoc.Summary, report: str,
           run_id: str, as_of: pd.Timestamp) -> Path:  # fmt: skip
    folder = adhoc_dir().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, buckets_path, report_path = (
        _inside(folder, f"{request.request_id}{suffix}") for suffix in (".csv", "-buckets.csv", ".md")
    )  # fmt: skip
    adhoc.csv_rows(summary.usage).to_csv(csv_path, index=False)
    adhoc.csv_rows(summary.buckets).to_csv(buckets_path, index=False)
    report_path.write_text(report)
    key = {"request_id": request.request_id}
    audit_store.replace_rows(store.engine, "adhoc_requests", key, pd.DataFrame([{
        **key, "run_id": run_id, "requested_at": pd.Timestamp(dt.datetime.now(dt.UTC)),
        "account_id": request.account_id, "asset_id": request.asset_id,
        "usage_resource_id": request.usage_resource_id, "start_date": request.start,
        "end_date": request.end, "granularity": request.granularity.value, "as_of": as_of,
        "code_version": code_version(), "csv_path": str(csv_path),
    }]))  # fmt: skip
    audit_store.replace_rows(store.engine, "adhoc_summaries", key, summary.usage.assign(**key))
    audit_store.replace_rows(store.engine, "adhoc_bucket_balances", key,
                             summary.buckets.assign(**key))  # fmt: skip
    return csv_path


def _inside(folder: Path, name: str) -> Path:
    """`folder / name`, refused unless it stays in `folder` (a request id is checked already;
    this guards the folder against a link planted in it)."""
    path = (folder / name).resolve()
    if path.parent != folder:
        raise dg.Failure(description=f"ad hoc summary not produced: request_id: {name!r} would "
                                     f"be written outside {folder}")  # fmt: skip
    return path
