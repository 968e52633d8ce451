"""Consumption management for usage-based products: usage events in, invoice-ready summaries out.

The package is in layers; a module imports only from its own layer or the layers below it:

- `domain/`: the rules, pure pandas in and out (no Dagster, no database, no files);
- `storage/`: the settings, the source files, the warehouse's tables and the lake's files;
- `quality/` and `closing/`, side by side and apart: the checks of a period, and its close and
  export to the billing outbox;
- `audit/`: lineage, traces, forecasts, ad hoc summaries and restatements;
- `defs/`: the Dagster assets, checks, jobs, schedules and sensor, which `definitions.py` gathers;
- `dashboard/` and `cli/`: the entry points, the usage dashboard and the `consumption-pipeline`
  program (the program starts the dashboard).

`lint-imports` (contracts in pyproject.toml) holds the layers, imports inside functions included.
"""
