"""Overlapping writers of one period cannot change a bill: real processes started together, on
SQLite and PostgreSQL, end in exactly the tables of one run; the warehouse refuses a row twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from consumption_pipeline.storage.locks import PeriodLocked
from consumption_pipeline.storage.settings import DEFAULT_SOURCE
from consumption_pipeline.storage.warehouse import Warehouse, WarehouseError
from consumption_pipeline_tests.e2e.conftest import fresh_warehouse
from consumption_pipeline_tests.production.conftest import assert_same_tables
from consumption_pipeline_tests.snapshots import snapshot

PERIODS = ["2026-09-01", "2026-10-01", "2026-11-01"]
AS_OF = "2026-12-20"  # every sample period final: the status does not depend on the day
OCT = "2026-10-01"


def cli_run(url: str, home: Path) -> subprocess.Popen:
    """`consumption-pipeline run` over the sample in a process of its own."""
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "CONSUMPTION_AS_OF": AS_OF}
    command = [sys.executable, "-m", "consumption_pipeline.cli", "run",
               "--source", str(DEFAULT_SOURCE), "--warehouse", url]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finished(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err.decode()
    return out.decode()


@pytest.fixture(scope="module")
def one_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """What one run alone leaves, per backend (computed once for the module)."""
    alone: dict[str, dict] = {}
    for backend in ("sqlite", "postgresql"):
        folder = tmp_path_factory.mktemp(f"alone-{backend}")
        with fresh_warehouse(backend, folder) as url:
            finished(cli_run(url, folder / "home"))
            alone[backend] = snapshot(url, PERIODS)
            Warehouse(url).engine.dispose()
    yield alone


@pytest.mark.parametrize(
    ("backend", "shared_home", "offset"),
    [("sqlite", False, 0.0), ("postgresql", False, 0.0), ("postgresql", True, 2.5)],
    ids=["sqlite", "postgresql", "postgresql-shared-home-later"],
)
def test_two_runs_started_together_leave_the_tables_of_one_run(
    tmp_path: Path, one_run: dict, backend: str, shared_home: bool, offset: float
):
    with fresh_warehouse(backend, tmp_path) as url:
        first = cli_run(url, tmp_path / "home-1")
        time.sleep(offset)
        second = cli_run(url, tmp_path / ("home-1" if shared_home else "home-2"))
        invoices = finished(first), finished(second)
        together = snapshot(url, PERIODS)
        Warehouse(url).engine.dispose()
    assert invoices[0] == invoices[1]
    assert sum(len(frame) for frame in one_run[backend].values()) > 0
    assert_same_tables(together, one_run[backend])


# A writer that reads a period's count, thinks, and writes it back one higher: without the lock,
# writers side by side read the same count and an increment is lost.
INCREMENT = textwrap.dedent("""
    import random, sys, time
    import pandas as pd
    from consumption_pipeline.storage.warehouse import Warehouse

    url, lake, name, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    store = Warehouse(url, lake)
    random.seed(name)
    for i in range(rounds):
        time.sleep(random.uniform(0, 0.05))
        with store.period_lock("2026-10-01", f"run {name}-{i} (step count)"):
            rows = store.read_period("ingest_reconciliation", "2026-10-01")
            count = int(rows["events_read"].iloc[0]) if len(rows) else 0
            time.sleep(random.uniform(0, 0.02))
            store.replace_period("2026-10-01", {"ingest_reconciliation": pd.DataFrame(
                {"events_read": [count + 1]})})
""")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_writers_of_one_period_take_turns_from_read_to_write(tmp_path: Path, backend: str):
    # 4 processes x 10 read-increment-write rounds at random offsets: 40, none lost.
    with fresh_warehouse(backend, tmp_path) as url:
        Warehouse(url, str(tmp_path / "lake")).engine.dispose()  # the schema, made once
        writers = [
            subprocess.Popen(
                [sys.executable, "-c", INCREMENT, url, str(tmp_path / "lake"), f"w{n}", "10"]
            )  # fmt: skip
            for n in range(4)
        ]
        assert [w.wait(timeout=300) for w in writers] == [0, 0, 0, 0]
        store = Warehouse(url, str(tmp_path / "lake"))
        assert store.read_period("ingest_reconciliation", OCT)["events_read"].tolist() == [40]
        store.engine.dispose()


HOLD = textwrap.dedent("""
    import sys, time
    from consumption_pipeline.storage.warehouse import Warehouse

    store = Warehouse(sys.argv[1], sys.argv[2])
    with store.period_lock("2026-10-01", "run 1234abcd (step drawdown)"):
        print("held", flush=True)
        time.sleep(600)
""")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_held_period_names_its_holder_and_a_killed_holder_releases_it(
    tmp_path: Path, backend: str
):
    with fresh_warehouse(backend, tmp_path) as url:
        lake = str(tmp_path / "lake")
        holder = subprocess.Popen([sys.executable, "-c", HOLD, url, lake], stdout=subprocess.PIPE)
        try:
            assert holder.stdout.readline() == b"held\n"
            store = Warehouse(url, lake)
            with (
                pytest.raises(PeriodLocked) as refused,
                store.period_lock(OCT, "run 5678efgh (step drawdown)", wait=0.5),
            ):
                pytest.fail("the period was held by another process")
            message = str(refused.value)
            assert message.startswith(
                "period 2026-10 is being written by run 1234abcd (step drawdown) (pid "
                f"{holder.pid} on "
            )
            assert message.endswith(
                "run 5678efgh (step drawdown) waited 0.5 s for it: run it again when that run "
                "has finished"
            )
            with store.period_lock("2026-11-01", "run 5678efgh (step drawdown)", wait=0.5):
                pass  # another period is free
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait()
        # The kernel (flock) or the server (advisory lock) drops a dead holder's lock at once.
        with store.period_lock(OCT, "run 5678efgh (step drawdown)", wait=5):
            pass
        store.engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_warehouse_refuses_a_summary_twice(tmp_path: Path, backend: str):
    with fresh_warehouse(backend, tmp_path) as url:
        store = Warehouse(url, str(tmp_path / "lake"))
        twice = pd.DataFrame({"summary_id": ["s1", "s1"], "account_id": ["ACME", "ACME"]})
        with pytest.raises(WarehouseError, match="replacing period 2026-10 of table usage_summ"):
            store.replace_period(OCT, {"usage_summaries": twice})
        assert store.read_period("usage_summaries", OCT).empty
        # A liable line without an asset is one line too: NULL asset ids compare equal here.
        line = pd.DataFrame({"account_id": ["ACME"] * 2, "usage_resource_id": ["credits"] * 2,
                             "line_type": ["usage"] * 2})  # fmt: skip
        with pytest.raises(WarehouseError, match="of table liable_summaries"):
            store.replace_period(OCT, {"liable_summaries": line})
        store.engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_older_warehouse_gains_its_keys_or_names_the_rows_that_break_them(
    tmp_path: Path, backend: str
):
    with fresh_warehouse(backend, tmp_path) as url:
        lake = str(tmp_path / "lake")
        store = Warehouse(url, lake)
        with store.engine.begin() as conn:  # as a warehouse from before the keys
            conn.exec_driver_sql("DROP INDEX uq_usage_summaries_key")
            for _ in range(2):
                conn.execute(sa.text("INSERT INTO usage_summaries (period, summary_id) "
                                     "VALUES (:p, 's1')"), {"p": pd.Timestamp(OCT).date()})  # fmt: skip
        store.engine.dispose()
        with pytest.raises(WarehouseError) as refused:
            Warehouse(url, lake)
        assert str(refused.value).endswith(
            "table usage_summaries holds rows whose key (period, summary_id) repeats, at period "
            "2026-10 (written by overlapping runs): delete those rows of usage_summaries and run "
            "their periods again"
        )
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM usage_summaries")
        store.engine.dispose()
        store = Warehouse(url, lake)  # the key is back: a repeated row is refused again
        with pytest.raises(WarehouseError, match="of table usage_summaries"):
            store.replace_period(OCT, {"usage_summaries": pd.DataFrame({"summary_id": ["a", "a"]})})
        store.engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_read_only_warehouse_is_named_when_a_stage_would_write_it(tmp_path: Path, backend: str):
    with fresh_warehouse(backend, tmp_path) as url:
        lake = str(tmp_path / "lake")
        Warehouse(url, lake).engine.dispose()  # its tables exist
        if backend == "sqlite":
            path = url.removeprefix("sqlite:///")
            read_only, reason = (
                f"sqlite:///file:{path}?mode=ro&uri=true",
                "attempt to write a readonly database",
            )
        else:
            with sa.create_engine(url, isolation_level="AUTOCOMMIT").connect() as conn:
                database = conn.exec_driver_sql("SELECT current_database()").scalar()
                conn.exec_driver_sql(
                    f'ALTER DATABASE "{database}" SET default_transaction_read_only = on'
                )
            read_only, reason = url, "cannot execute DELETE in a read-only transaction"
        store = Warehouse(read_only, lake)
        shown = store.shown_url
        with pytest.raises(PeriodLocked) as refused, store.period_lock(OCT, "run r (step s)"):
            pytest.fail("the lock was recorded in a read-only warehouse")
        assert str(refused.value) == (
            f"period 2026-10: warehouse {shown} cannot record who writes it: {reason}"
        )
        with pytest.raises(WarehouseError) as refused:
            store.replace_period(OCT, {"ingest_reconciliation": pd.DataFrame({"events_read": [1]})})
        assert str(refused.value) == f"warehouse {shown}: replacing period 2026-10: {reason}"
        store.engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_older_warehouse_gains_the_newer_columns_and_keeps_its_rows(tmp_path: Path, backend):
    with fresh_warehouse(backend, tmp_path) as url:
        lake = str(tmp_path / "lake")
        store = Warehouse(url, lake)
        with store.engine.begin() as conn:  # as a warehouse from before contracts could change
            conn.exec_driver_sql("DROP TABLE entitlement_buckets")
            conn.exec_driver_sql("CREATE TABLE entitlement_buckets (period DATE, bucket_id TEXT, "
                                 "origin TEXT, granted NUMERIC(28, 6))")  # fmt: skip
            conn.execute(sa.text("INSERT INTO entitlement_buckets VALUES (:p, 'b1', 'grant', 5)"),
                         {"p": pd.Timestamp(OCT).date()})  # fmt: skip
        store.engine.dispose()
        again = Warehouse(url, lake)
        columns = {c["name"] for c in sa.inspect(again.engine).get_columns("entitlement_buckets")}
        assert {"grant_type", "commitment_rate", "change_id", "credit_id", "reason"} <= columns
        old = again.read_period("entitlement_buckets", OCT)
        assert old[["bucket_id", "origin", "granted"]].values.tolist() == [["b1", "grant", 5.0]]
        assert old["grant_type"].isna().all()
        again.engine.dispose()
