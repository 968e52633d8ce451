"""`consumption-pipeline dashboard`: serve the usage dashboard over a warehouse, read-only."""

from __future__ import annotations

import argparse

from consumption_pipeline.cli.instance import source_folder
from consumption_pipeline.dashboard.checks import dagster_home
from consumption_pipeline.storage import objects
from consumption_pipeline.storage.settings import Settings, flag, port, warehouse_url

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050


def add_dashboard_command(commands: argparse._SubParsersAction) -> None:
    env = Settings.from_env()
    dashboard = commands.add_parser(
        "dashboard", help="serve the usage dashboard (accounts, assets, buckets, rates, invoices)"
    )
    dashboard.add_argument(
        "--warehouse",
        type=flag(warehouse_url),
        default=env.warehouse_url,
        help="SQLAlchemy URL (default: %(default)s)",
    )
    dashboard.add_argument(
        "--source", help="source directory, for names, units, policies and rate rows "
        f"(default: {env.source_dir})",
    )  # fmt: skip
    dashboard.add_argument(
        "--host", default=DEFAULT_HOST, help="address to listen on (default: %(default)s)"
    )
    dashboard.add_argument(
        "--port", type=flag(port), default=DEFAULT_PORT, help="port, 0 for any free one "
        "(default: %(default)s)",
    )  # fmt: skip
    dashboard.add_argument(
        "--dagster-home", help="Dagster instance with the asset-check results "
        "(default: $DAGSTER_HOME, else data/dagster_home)",
    )  # fmt: skip
    dashboard.set_defaults(command=run_dashboard)


def run_dashboard(args: argparse.Namespace) -> int:
    # Deferred: the web stack loads for this command alone.
    from consumption_pipeline.dashboard.app import open_dashboard, serve

    # An object-store source: the catalog as copied now (the server reads local files).
    source = objects.local_folder(source_folder(args.source))
    dashboard = open_dashboard(args.warehouse, source, dagster_home(args.dagster_home))
    serve(dashboard, args.host, args.port)
    return 0
