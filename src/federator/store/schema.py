"""The job store's schema version: what each release writes, and the step that takes an older file forward.

Why a version at all: a federator rewrites a whole job document whenever it stores the job, and writes only the
fields it knows. An older release started on a newer release's file therefore drops the newer fields for good
(outside operator QA F1: 0.5.0 on a 0.6.0 store stripped `spec.maxRunSeconds`, and the jobs ran unbounded ever
after, the newer release back or not). Every release refuses a file of a version above its own, with one line
(store/sqlite.py), so a release whose documents carry fields its predecessor drops bumps the version: the older
one then stops at start instead of quietly rewriting the store. Rolling back is restoring the backup taken
before the upgrade (docs/operators.md, "Upgrading to 0.7.0").

The versions:

- 1: 0.1 to 0.6.0. (0.6.0 added `spec.maxRunSeconds` and kept version 1: 0.5.0 cannot tell, see above.)
- 2: 0.7.0. Nothing in the file's layout changed; the bump is the refusal of 0.6.0 and 0.5.0, which read
  version 1 only and would strip what 0.6/0.7 documents carry.
- 3: 0.8.0. The members table (store/members.py) keeps what a restart lost of each member before: its agent's
  Hello features, the notAfter of the certificate it last presented, when it went Lost, and the Resizes it has
  not acknowledged (`MEMBER_COLUMNS`). 0.7.0 writes four values into a members row and would fail on the new
  columns, so it refuses the file instead. 0.8.0 also adds a table, reservation_holds (store/reservation_clocks.py: the
  clocks of gangs' reservations), which the store that uses it makes when it is missing, as the cordons' is.
  0.10.0 adds a members column, `last_report_at` (each member's last capacity report, kept coarsely: what a
  member that never comes back after a restart is billed to, server/silent_ends.py), and keeps version 3: 0.8.0
  and 0.9.0 name the columns they read and write, so they run on such a file, and what they leave stale or reset is
  a billing hint, not a field a job loses (docs/operators.md, "Upgrading to 0.10.0", says what a rollback does to
  it). The member store adds the column when a file lacks it (`add_member_columns`).
  0.11.0 keeps version 3 too: it adds a table, silent_cancels (store/silent_cancels.py: the usage ends awaited of
  placements cancelled on a silent member), made when missing as reservation_holds is, another, rebalance_moves
  (store/moves.py: when each job last moved), made the same way, and an index of the usage table, usage_cluster
  (accounting/store.py), made IF NOT EXISTS. 0.10.0 never reads the tables and keeps the index up to date as any,
  so it runs on such a file unharmed.
- 4: 0.15.0. Nothing in the file's layout changed; the bump is the refusal of 0.14.0 down to 0.8.0. 0.14.0 added
  job fields and kept version 3 (outside operator DR QA D7): 0.13.0 on a 0.14 file stripped `spec.regions.allowed`
  and holds from every job it rewrote, for good (a job allowed only in east ran in west, unflagged ever after) and
  ignored `dependsOn`. 0.14.0 itself carries the fields 0.15.0 does, but refusing it is the only way to make the
  older ones refuse: they read "up to 3" each. The rule from here on, held by tests/store/test_job_fields_pinned.py:
  a field added to a stored Job or JobSpec raises the version in the release that adds it, unless the release
  before reads and keeps it.

A file of an older version is taken forward when it is opened (`upgrade`), in one transaction: an upgrade needs
no step of the operator's, and the file says from then on which releases may open it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path

log = logging.getLogger("federator.store")
SCHEMA_VERSION = 4
# The members table (store/members.py), created here too so that the upgrade can take an older one forward.
MEMBERS_TABLE = ("CREATE TABLE IF NOT EXISTS members (name TEXT PRIMARY KEY, region TEXT NOT NULL, "
                 "labels TEXT NOT NULL, lost INTEGER NOT NULL, features TEXT NOT NULL DEFAULT '[]', "
                 "certificate_not_after REAL NOT NULL DEFAULT 0, lost_at REAL NOT NULL DEFAULT 0, "
                 "resizes_owed TEXT NOT NULL DEFAULT '[]', last_report_at REAL NOT NULL DEFAULT 0)")
# Added by step 3, with the defaults a member written by 0.7.0 takes: nothing known of it.
MEMBER_COLUMNS = {"features": "TEXT NOT NULL DEFAULT '[]'", "certificate_not_after": "REAL NOT NULL DEFAULT 0",
                  "lost_at": "REAL NOT NULL DEFAULT 0", "resizes_owed": "TEXT NOT NULL DEFAULT '[]'"}
# Added within version 3 (0.10.0), by whichever opens a file without them (`add_member_columns`), with the default a
# member written by 0.8.0 or 0.9.0 takes: nothing known. Within the version, since those releases read and write such
# a file unharmed: they name the columns they read and write, and a row they write takes the default. What they do
# not keep is a hint (store/members.py), never a job's field, so they need not refuse the file (module docstring).
MEMBER_COLUMNS_0_10 = {"last_report_at": "REAL NOT NULL DEFAULT 0"}


def _same_layout(_db: sqlite3.Connection) -> None:
    """1 -> 2 and 3 -> 4: the tables and the documents are unchanged (the documents' new fields are optional); the
    new number is the refusal of the releases before (module docstring)."""


def _member_facts(db: sqlite3.Connection) -> None:
    """2 -> 3: the members table gets the columns of what a restart used to lose (`MEMBER_COLUMNS`); a file
    without one yet gets the whole table."""
    if not _members_columns(db, MEMBER_COLUMNS):
        db.execute(MEMBERS_TABLE)


def add_member_columns(db: sqlite3.Connection) -> None:
    """The columns a version-3 file's members table may not have yet (`MEMBER_COLUMNS_0_10`), added; a file of an
    older version is taken forward by `upgrade` first (its members table is made whole by MEMBERS_TABLE then)."""
    _members_columns(db, MEMBER_COLUMNS_0_10)


def _members_columns(db: sqlite3.Connection, columns: Mapping[str, str]) -> bool:
    """Add those of `columns` (name: type and default) the members table lacks; False, adding none, when the file
    has no members table at all."""
    have = {name for _, name, *_ in db.execute("PRAGMA table_info(members)")}
    for name, kind in columns.items():
        if have and name not in have:
            db.execute(f"ALTER TABLE members ADD COLUMN {name} {kind}")
    return bool(have)


# from version N to N + 1, run inside the upgrade's transaction
STEPS: Mapping[int, Callable[[sqlite3.Connection], None]] = {1: _same_layout, 2: _member_facts, 3: _same_layout}
# The oldest release that reads SCHEMA_VERSION: what the upgrade's log line names.
READ_FROM = "0.15.0"


def upgrade(db: sqlite3.Connection, path: Path, found: int) -> None:
    """Take a file of schema version `found` (below SCHEMA_VERSION) forward, all steps or none."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for version in range(found, SCHEMA_VERSION):
            STEPS[version](db)
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    if str(path) != ":memory:":
        log.info("job store %s: schema version %d taken forward to %d; a federator older than %s refuses it from "
                 "now on (to roll back, restore the backup taken before the upgrade)", path, found, SCHEMA_VERSION,
                 READ_FROM)


__all__ = ["MEMBERS_TABLE", "MEMBER_COLUMNS", "MEMBER_COLUMNS_0_10", "READ_FROM", "SCHEMA_VERSION", "STEPS",
           "add_member_columns", "upgrade"]
