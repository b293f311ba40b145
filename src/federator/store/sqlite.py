"""The embedded job store: one SQLite file in WAL mode.

A job accepted by Submit is committed here before the reply goes out, so a
federator killed at any moment restarts with every accepted job and every
placement it had handed out (the fencing generations included).

One federator owns a file at a time (`lock.py`). What cannot be loaded stops
the start with one line naming the file and what is wrong (`StoreUnreadable`):
a file that holds no store, or a restored backup copy with another store's
`-wal` beside it (store/restore_checks.py, looked at read-only first), a
schema version newer than this code (store/schema.py; an older one is taken
forward), a file SQLite's quick_check finds damaged (store/integrity.py), a
`jobs` table of another layout, a row whose document is not a job. A single
bad row stops it too, by choice:
starting without that job would silently drop one that was accepted (and its
placements would run on, unfenced); the line names the row so an operator can
restore it or delete it knowingly (docs/reliability.md).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from federator.model import Job, JobId
from federator.paths import make_parent
from federator.store import integrity, restore_checks
from federator.store.codec import job_from_dict, job_to_dict
from federator.store.errors import StoreDamaged, StoreFileGone, StoreUnavailable, StoreUnreadable
from federator.store.identity import FileIdentity, FileState, identity
from federator.store.lock import StoreLock
from federator.store.schema import SCHEMA_VERSION, upgrade

log = logging.getLogger("federator.store")
_COLUMNS = ("job_id", "phase", "doc")


def open_sqlite(path: Path, *, synchronous: str) -> sqlite3.Connection:
    """A connection to a SQLite file of the federator's (jobs, members, usage: one file, a connection each): WAL,
    so readers never wait for the writer; autocommit, so each store says where its transactions are; usable
    from the group commit's thread. `synchronous`: FULL where a reply promises the write is on disk."""
    if str(path) != ":memory:":
        make_parent(path)
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    return db


def write_all(db: sqlite3.Connection, sql: str, rows: Sequence[tuple[object, ...]], *,
              what: str = "job store") -> None:
    """`sql` for every row in one transaction, all or none (the caller holds the connection's lock).

    A failed write is StoreUnavailable naming SQLite's cause ("database or disk is full"). The rollback
    is only tried while a transaction is open: on SQLITE_FULL or an I/O error SQLite has already rolled
    it back, and a ROLLBACK then fails with "no transaction is active", which hid the real cause."""
    if not rows:
        return
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(sql, rows)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    except sqlite3.DatabaseError as exc:  # OperationalError (full, I/O, locked) and its kin: nothing was written
        raise StoreUnavailable(f"{what}: {exc}") from None


def close_sqlite(db: sqlite3.Connection, file: FileIdentity | None) -> None:
    """Close a store's connection. If its path names another file by now (store/identity.py), its WAL is first
    emptied into the file it belongs to: SQLite left the `-wal` at the path, and the next start applied its
    pages to whatever file was there (a restored backup, a new empty store), which read the old jobs back or
    corrupted it."""
    if file is not None and file.state() is not FileState.SAME:
        try:
            busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as exc:
            busy = f"{exc}"
        if busy:
            log.error("%s: its -wal file %s-wal could not be emptied (%s): delete it before the next start, or it "
                      "is applied to the file now at the path", file.what, file.path, busy)
    db.close()


class JobStore(Protocol):
    def put(self, jobs: Iterable[Job]) -> None:
        """Persist these jobs' current state atomically."""

    def load(self) -> list[Job]: ...

    def close(self) -> None: ...


@runtime_checkable
class PrunedStore(Protocol):
    """A job store that removes finished jobs (server/retention.py): SQLite's. Kubernetes mode's is not one: there
    a job lives as long as its FederatedJob, which is the user's."""

    def delete(self, job_ids: Iterable[JobId]) -> None:
        """Remove these jobs atomically; StoreUnavailable leaves every one stored."""


class SqliteJobStore:
    """The job store in a SQLite file; ':memory:' (tests) is private to its process and takes no lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._owner = None if str(path) == ":memory:" else StoreLock(path)
        if self._owner is not None:
            make_parent(path)
            self._owner.acquire()  # before anything is read or written: a second federator stops here
        # A mistyped --db, the default in another working directory, an emptyDir after a move: a new store
        # starts with no job, and its agents' placements are orphans to it (server/orphans.py). Said loudly.
        self.created = self._owner is not None and not path.exists()
        try:
            if self._owner is not None and not self.created:  # read-only looks first (store/restore_checks.py)
                restore_checks.refuse_unfit(path)
            self._db = self._connect()
            try:
                self._open_schema()
                # Writes stop if the path stops naming this file (deleted or replaced): store/identity.py.
                self.file: FileIdentity | None = identity(path, what="job store")
                self._rescued = False  # the lost -wal's content was copied into the file (`rescue`)
            except BaseException:
                self._db.close()
                raise
        except BaseException:
            if self._owner is not None:
                self._owner.release()
            raise
        if self.created:
            log.warning("creating a new, empty job store at %s: no file was there. If this federator ran before, "
                        "--db names the wrong path (its jobs, and what its agents run, are unknown to this store)",
                        path.resolve())

    def _connect(self) -> sqlite3.Connection:
        """The store's connection; a file SQLite finds damaged on its first read is StoreDamaged."""
        try:
            return open_sqlite(self.path, synchronous="FULL")  # an accepted job is on disk before the reply
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_CORRUPT:
                raise  # "file is not a database" and the like: serve names the file and the cause
            raise StoreDamaged(f"job store {self.path} is damaged ({exc}): {integrity.recovery(self.path)}") from None

    def _open_schema(self) -> None:
        """Create the tables of a new file; take an older version's forward (store/schema.py); refuse a file
        this version cannot read (StoreUnreadable) or SQLite finds damaged (StoreDamaged)."""
        db = self._db
        found_wrong = integrity.problems(db)
        if found_wrong:
            raise StoreDamaged(f"job store {self.path} is damaged (SQLite's quick_check: "
                               f"{integrity.summary(found_wrong)}): {integrity.recovery(self.path)}")
        db.execute("CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, phase TEXT NOT NULL, doc TEXT NOT NULL)")
        columns = {name for _, name, *_ in db.execute("PRAGMA table_info(jobs)")}
        missing = [c for c in _COLUMNS if c not in columns]
        if missing:
            raise StoreUnreadable(f"job store {self.path}: its jobs table has no column {', '.join(missing)} "
                                  f"(it has {', '.join(sorted(columns))}): not a federator job store of a "
                                  "version this one reads")
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        (found,) = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(found) if str(found).strip().isdigit() else None
        if version is None or version > SCHEMA_VERSION:
            raise StoreUnreadable(f"job store {self.path}: schema version {str(found)[:40]!r} found, this federator "
                                  f"reads versions up to {SCHEMA_VERSION}: use the federator that wrote it")
        if version < 1:  # no federator writes it (they start at 1); the upgrade's steps ended in a KeyError
            raise StoreUnreadable(f"job store {self.path}: schema version {version} found, which no federator writes "
                                  f"(they start at 1): restore the store from a backup")
        if version < SCHEMA_VERSION:
            upgrade(db, self.path, version)
        restore_checks.first_open(db, self.path, version)

    def rescue(self) -> bool:
        """If the file's -wal was deleted or replaced (store/identity.py), copy what the lost one holds into the
        file now (a checkpoint through this connection, which still has it open), so a crash loses nothing
        acknowledged. Called every few seconds (server/app.py), and before each write (`_checked`); True once
        it has."""
        if self.file is None or self._rescued:
            return self._rescued
        with self._lock:
            self._rescue_if(self.file.state())
        return self._rescued

    def _rescue_if(self, state: FileState) -> None:
        """The checkpoint of `rescue`, with the lock held and the file's state read."""
        if state is not FileState.WAL_LOST or self._rescued:
            return
        busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        self._rescued = not busy
        if self._rescued:
            log.error("job store %s: its -wal file was lost; every job it held is now in the file itself", self.path)

    def _checked(self) -> None:
        """Before a write, with the lock held: one look at the file (store/identity.py); a lost -wal is rescued
        first, and StoreFileGone unless the path still names the file with its -wal."""
        if self.file is None:
            return
        state = self.file.state()
        self._rescue_if(state)
        if state is not FileState.SAME:
            raise StoreFileGone(self.file.message(state))

    def put(self, jobs: Iterable[Job]) -> None:
        """StoreUnavailable if the write failed; then none of these jobs' new state is stored."""
        rows = [(j.job_id, j.phase.value, json.dumps(job_to_dict(j), separators=(",", ":"))) for j in jobs]
        with self._lock:
            if rows:
                self._checked()
            write_all(self._db, "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?)", rows)

    def delete(self, job_ids: Iterable[JobId]) -> None:
        """StoreUnavailable if the delete failed; then every one of these jobs is still stored."""
        rows = [(str(i),) for i in job_ids]
        with self._lock:
            if rows:
                self._checked()
            write_all(self._db, "DELETE FROM jobs WHERE job_id = ?", rows)

    def load(self) -> list[Job]:
        """Every job; StoreUnreadable naming the first row that is not one (see the module docstring)."""
        with self._lock:
            try:
                rows = self._db.execute("SELECT rowid, job_id, doc FROM jobs ORDER BY rowid").fetchall()
            except sqlite3.DatabaseError as exc:  # damaged since the check at open: the same line
                raise StoreDamaged(f"job store {self.path} is damaged ({exc}): "
                                   f"{integrity.recovery(self.path)}") from None
        jobs = []
        for rowid, job_id, doc in rows:
            try:
                jobs.append(job_from_dict(json.loads(doc)))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise StoreUnreadable(
                    f"job store {self.path}: row {rowid} (job {str(job_id)[:80]!r}) cannot be read: {_why(exc)}; "
                    "restore the file from a backup, or delete that row knowingly (docs/reliability.md)") from None
        return jobs

    def close(self) -> None:
        with self._lock:
            close_sqlite(self._db, self.file)
            if self._owner is not None:
                self._owner.release()


def _why(exc: Exception) -> str:
    """A decoder's complaint in a few words: a KeyError's message is only the key."""
    if isinstance(exc, KeyError):
        return f"its document has no {exc.args[0]!r}"
    if isinstance(exc, json.JSONDecodeError):
        return f"its document is not JSON ({exc.msg} at character {exc.pos})"
    return f"{type(exc).__name__}: {str(exc)[:200]}"
