"""Holding a stage in the middle of its write, so that a test can kill the run's process there.

The drawdown writes, in one transaction: usage_summaries (delete, insert), then entitlement_ledger
(delete, insert), then bucket_balances and the rollover buckets. Both stalls stop it inside that
transaction after usage_summaries is rewritten:

- PostgreSQL: the test holds an ACCESS EXCLUSIVE lock on entitlement_ledger, so the writer waits
  at `DELETE FROM entitlement_ledger`, as it would behind any other session holding that lock;
- SQLite, which has one writer at a time and nothing to wait for, a trigger on the first
  entitlement_ledger insert runs a query too long to ever finish.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

import sqlalchemy as sa

WAITING_WRITER = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock'
  AND query LIKE :statement
"""


class Stall:
    """`install()` before the run starts; `reached()` once the writer is stalled; `release()`
    after its process is killed."""

    def install(self) -> None: ...
    def reached(self) -> bool: ...
    def release(self) -> None: ...


class PostgresStall(Stall):
    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url)
        self.backend: int | None = None

    def install(self) -> None:
        self.conn = self.engine.connect()
        self.transaction = self.conn.begin()
        self.conn.exec_driver_sql("LOCK TABLE entitlement_ledger IN ACCESS EXCLUSIVE MODE")

    def reached(self) -> bool:
        with self.engine.connect() as conn:
            statement = "DELETE FROM entitlement_ledger%"
            self.backend = conn.execute(sa.text(WAITING_WRITER), {"statement": statement}).scalar()
        return self.backend is not None

    def release(self) -> None:
        """Drop the lock; the writer's server process then finds its client gone and rolls back."""
        self.transaction.rollback()
        self.conn.close()
        query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
        with self.engine.connect() as conn:
            _until(lambda: conn.execute(query, {"pid": self.backend or 0}).scalar() == 0)
        self.engine.dispose()


class SqliteStall(Stall):
    def __init__(self, path: str, drawdown_started: Callable[[], bool]) -> None:
        self.path = path
        self.drawdown_started = drawdown_started
        self.locked_since: float | None = None

    def install(self) -> None:
        with sqlite3.connect(self.path) as conn:
            conn.execute("CREATE TABLE stall_rows (x INTEGER)")
            conn.executemany("INSERT INTO stall_rows VALUES (?)", [(i,) for i in range(1000)])
            # 10**12 rows to count: the insert that fires it never returns
            conn.execute(
                "CREATE TRIGGER stall AFTER INSERT ON entitlement_ledger BEGIN "
                "SELECT count(*) FROM stall_rows a, stall_rows b, stall_rows c, stall_rows d; END"
            )

    def reached(self) -> bool:
        """The drawdown step has started and someone has held the write lock for 2 s: the
        drawdown's write of a few hundred rows takes milliseconds, unless it is stalled."""
        if not (self.drawdown_started() and self._write_locked()):
            self.locked_since = None
            return False
        self.locked_since = self.locked_since or time.monotonic()
        return time.monotonic() - self.locked_since >= 2

    def _write_locked(self) -> bool:
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError as error:
            if "locked" not in str(error):
                raise
            return True
        finally:
            conn.close()

    def release(self) -> None:
        with sqlite3.connect(self.path, timeout=60) as conn:
            conn.execute("DROP TRIGGER stall")
            conn.execute("DROP TABLE stall_rows")


def _until(done: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the stalled writer did not go away")
        time.sleep(0.2)
