"""The unified usage dashboard: server-rendered pages over the warehouse of docs/rules.md "Outputs",
one per account and one per asset, reachable from a searchable index. Read only.

Routes: ``/`` (index, ``?q=`` searches, ``?period=YYYY-MM`` chooses the period),
``/accounts/{account_id}`` and ``/assets/{asset_id}`` (``?period=`` too). An unknown id or period
is a 404 page; any other failure a 500 page without internals.
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from consumption_pipeline.dashboard import alerts, data, formatting
from consumption_pipeline.dashboard.catalog import CatalogSource
from consumption_pipeline.dashboard.checks import CheckReader, check_keys
from consumption_pipeline.dashboard.store import ReadOnlyWarehouse
from consumption_pipeline.domain.catalog import CatalogError
from consumption_pipeline.storage.sources import SourceError

TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class Dashboard:
    """What every page reads from: the warehouse, the catalog and the Dagster instance."""

    store: ReadOnlyWarehouse
    catalog: CatalogSource
    checks: CheckReader


def create_app(dashboard: Dashboard) -> Starlette:
    templates = _environment()

    def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(templates.get_template(name).render(**context), status_code=status)

    def not_found(message: str) -> HTMLResponse:
        return render("not_found.html", 404, message=message)

    def index(request: Request) -> HTMLResponse:
        periods = dashboard.store.periods()
        period = _period(request, periods)
        search = request.query_params.get("q", "")
        rows = (
            data.index_rows(dashboard.store, dashboard.catalog.current(), period, search)
            if period
            else []
        )
        return render("index.html", periods=periods, period=period, search=search, rows=rows)

    def account(request: Request) -> HTMLResponse:
        account_id = request.path_params["account_id"]
        scope = data.find_account(dashboard.store, dashboard.catalog.current(), account_id)
        if scope is None:
            return not_found(f"No account “{account_id}” in the catalog or the warehouse.")
        return page(request, scope)

    def asset(request: Request) -> HTMLResponse:
        asset_id = request.path_params["asset_id"]
        scope = data.find_asset(dashboard.store, dashboard.catalog.current(), asset_id)
        if scope is None:
            return not_found(f"No asset “{asset_id}” in the catalog or the warehouse.")
        return page(request, scope)

    def page(request: Request, scope: data.Scope) -> HTMLResponse:
        store, catalog = dashboard.store, dashboard.catalog.current()
        periods = store.periods()
        period = _period(request, periods)
        if period is None:
            return render("empty.html")
        shown = data.history(periods, period)
        buckets = data.grants(store, catalog, scope, period)
        forecast = data.with_forecasts(store, buckets, period)
        assets = sorted(
            (a for a in catalog.assets.values() if a.account_id == scope.account.account_id),
            key=lambda a: a.asset_id,
        )
        return render(
            "scope.html", scope=scope, periods=periods, period=period,
            assets=assets, usage=data.usage(store, catalog, scope, shown), buckets=buckets,
            forecast=forecast, rates=data.rates(store, catalog, scope, period),
            covers=data.covered_by_others(store, catalog, scope, period),
            statements=data.wallet_statement(store, catalog, scope, period),
            invoices=data.invoices(store, catalog, scope, shown),
            integrity=data.integrity(store, catalog, scope, period),
            checks=dashboard.checks.report(period.isoformat()),
            alerts=[] if scope.asset else alerts.account_alerts(store, scope.account.account_id, period),
            alert_rules=[] if scope.asset else alerts.watching_rules(catalog, scope.account.account_id),
        )  # fmt: skip

    async def http_error(request: Request, error: HTTPException) -> HTMLResponse:
        if error.status_code == 404:
            return not_found(error.detail or "No such page.")
        return render("error.html", error.status_code, message=error.detail)

    async def server_error(request: Request, error: Exception) -> HTMLResponse:
        # Starlette re-raises the error after this page is sent: the server logs its traceback.
        if isinstance(error, CatalogError | SourceError):  # names the file, row and column
            message = f"The catalog cannot be read: {error}"
        else:
            message = "The page could not be built; the server's log has the details."
        return render("error.html", 500, message=message)

    return Starlette(
        routes=[
            Route("/", index),
            Route("/accounts/{account_id:path}", account),
            Route("/assets/{asset_id:path}", asset),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )


def _period(request: Request, periods: list[date]) -> date | None:
    """The period asked for (?period=YYYY-MM), else the latest the warehouse holds."""
    asked = request.query_params.get("period")
    if asked is None:
        return periods[-1] if periods else None
    for period in periods:
        if formatting.period(period) == asked:
            return period
    raise HTTPException(404, f"No billing period “{asked}” in the warehouse.")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        number=formatting.number, quantity=formatting.quantity, money=formatting.money,
        unit_price=formatting.unit_price, unit=formatting.unit_label, period=formatting.period,
    )  # fmt: skip
    env.globals.update(account_url=account_url, asset_url=asset_url, wrappable=wrappable)
    return env


def wrappable(identifier: str) -> Markup:
    """A long id (e.g. a bucket id) that may break after its colons."""
    return Markup(":<wbr>").join(escape(part) for part in identifier.split(":"))


def account_url(account_id: str, period: date | None = None) -> str:
    return _url(f"/accounts/{quote(account_id, safe='')}", period)


def asset_url(asset_id: str, period: date | None = None) -> str:
    return _url(f"/assets/{quote(asset_id, safe='')}", period)


def _url(path: str, period: date | None) -> str:
    return f"{path}?{urlencode({'period': formatting.period(period)})}" if period else path


def serve(dashboard: Dashboard, host: str, port: int) -> None:
    """Serve until interrupted. Port 0 takes a free port; the address is printed either way."""
    import uvicorn  # deferred: only serving needs the server (the tests build the app alone)

    app = create_app(dashboard)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    shown_host = f"[{host}]" if family == socket.AF_INET6 else host
    print(
        f"dashboard: http://{shown_host}:{listener.getsockname()[1]}/ "
        f"(warehouse {dashboard.store.shown_url})",
        file=sys.stderr,
        flush=True,
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[listener])


def open_dashboard(warehouse_url: str, source_dir: Path, home: Path | None) -> Dashboard:
    """Open the warehouse (read-only) and the catalog, failing early with a clear message."""
    store = ReadOnlyWarehouse(warehouse_url)
    catalog = CatalogSource(source_dir)
    catalog.current()
    return Dashboard(store, catalog, CheckReader(home, check_keys))
