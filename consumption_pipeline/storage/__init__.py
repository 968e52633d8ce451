"""Where the data lives: the settings that locate it, the source files (sources.py), the
warehouse's SQL tables (tables.py, warehouse.py, staging.py), the lake's event-level files
(lake.py, wire.py) and the per-period locks that keep two writers apart (locks.py)."""
