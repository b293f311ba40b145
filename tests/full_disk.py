"""A job store whose disk fills up and frees again, without root or a mount.

Why not `PRAGMA max_page_count`: whether a write then needs a new page depends on the free space
left in the pages it touches, so the same test would pass or fail with the size of a job's
document. This stands in for SQLITE_FULL as SQLite reports it: the statement fails with
"database or disk is full" *and SQLite has already rolled the transaction back*, which is what made
the old ROLLBACK fail with "cannot rollback - no transaction is active" and hide the cause.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from federator.store import SqliteJobStore
from federator.store.reservation_clocks import SqliteReservationClockStore
from federator.store.silent_cancels import SqliteSilentCancelStore


class FullDisk:
    """Wraps a SqliteJobStore's connection (or a store's beside it: the reservations' clocks', the awaited usage
    ends'); while `full`, a write fails at `at` ("COMMIT" or the rows' insert)."""

    def __init__(self, store: SqliteJobStore | SqliteReservationClockStore | SqliteSilentCancelStore, *,
                 at: str = "COMMIT") -> None:
        self.db: sqlite3.Connection = store._db
        self.at = at
        self.full = False
        self.refused = 0
        store._db = self  # type: ignore[assignment]

    def _fail(self) -> None:
        self.refused += 1
        self.db.execute("ROLLBACK")  # SQLite ends the transaction itself on SQLITE_FULL
        raise sqlite3.OperationalError("database or disk is full")

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if self.full and self.at == "COMMIT" and sql == "COMMIT":
            self._fail()
        return self.db.execute(sql, *args)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        if self.full and self.at == "INSERT":
            self._fail()
        return self.db.executemany(sql, rows)

    @property
    def in_transaction(self) -> bool:
        return self.db.in_transaction

    def close(self) -> None:
        self.db.close()
