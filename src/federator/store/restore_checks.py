"""What a file at `--db` must be before the federator opens it read-write: a store, and with no other store's `-wal`.

Why before: SQLite's first read-write open of a file applies whatever `-wal` sits beside it (it checks the WAL's
frames against the WAL's own header, never against the file), checkpoints it into the file and deletes it when the
last connection closes; and it makes any file it is given into a database. Outside operator DR QA found both:

- D3: a backup copied over `--db` with the crashed store's `-wal` still beside it either came back as the crashed
  store (the "restore" restored nothing) or was damaged, and by the time the start said so the stale `-wal` was
  merged into the copy and gone. A copy `federator backup` made carries a mark in its `meta` table
  (`BACKUP_MARK`, the time its snapshot was taken), which the first federator to open it removes: a file that still
  carries it was never run on, so a `-wal` beside it cannot be its own, and the start stops, leaving every file as
  it is (`refuse_unfit`). The mark is read from the file alone (`immutable=1`, which never looks at the `-wal`).
  That holds only where every release that can run the file removes the mark: 0.14.0 (schema version 3) does not
  know it and keeps it (outside upgrade QA U3: after a rollback to 0.14.0 on a marked copy and a crash of 0.14.0,
  the next upgrade was refused with advice to move the store's own `-wal` aside, which dropped every job 0.14.0
  took). So a copy is marked only at a schema version from `MARK_CLEARED_FROM` on (cli/backup.py), and a mark
  found on a file below it (put there by 0.15.0's `federator backup`) says when the copy was taken, not that
  nothing ran on it since: its `-wal` is refused only when it cannot be one an older release wrote there (it holds
  a newer schema version than the file, or was last written before the file was put there).
- D9: a `--db` of zero bytes (a copy that died on a full disk, a `> db` slip) or a copy of the file without its
  `-wal` (every commit of a store that never checkpointed lives there: the file alone holds no table) started as a
  new, empty store without the WARNING a new path gets, and every running job of the federation became an orphan.
  An existing file holding no table (its own `-wal` read too, read-only) is no store: the start stops, naming the
  likely causes. Deleting the file is the one way to start a new store there: the same as a path with no file.

The checks read only (`mode=ro` and `immutable=1` connections write neither the file nor its `-wal`); a file SQLite
cannot read at all is left to the read-write open, whose messages name it (store/sqlite.py).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from urllib.parse import quote

from federator.store.errors import StoreUnreadable

log = logging.getLogger("federator.store")
# In the meta table of a copy `federator backup` wrote (cli/backup.py): when its snapshot was taken, UTC ISO 8601.
BACKUP_MARK = "backup_taken_at"
# The first schema version whose releases (0.15.0 on) remove BACKUP_MARK when they first run on a copy. A release
# that runs an older version (0.14.0 and before: 3) keeps the mark while it writes the file.
MARK_CLEARED_FROM = 4


def read_only(path: Path, *, with_wal: bool = True) -> sqlite3.Connection:
    """A connection that never writes `path` nor its `-wal`: `mode=ro` reads the `-wal`'s commits (SQLite may make
    a `-shm` beside it, an index it rebuilds from the `-wal`); `with_wal=False` (`immutable=1`) reads the file alone."""
    mode = "mode=ro" if with_wal else "immutable=1"
    return sqlite3.connect(f"file:{quote(str(path.absolute()))}?{mode}", uri=True)


def hot_wal(path: Path) -> Path | None:
    """The `-wal` beside `path` if it holds anything (an empty one, left by a clean stop, applies nothing)."""
    wal = Path(f"{path}-wal")
    try:
        return wal if wal.stat().st_size > 0 else None
    except FileNotFoundError:
        return None


def backup_mark(path: Path) -> str | None:
    """The BACKUP_MARK in the file alone (its `-wal` not read), None if it has none or no meta table."""
    try:
        db = read_only(path, with_wal=False)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (BACKUP_MARK,)).fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None


def schema_version(path: Path, *, with_wal: bool) -> int | None:
    """The store's meta.schema_version, read from the file alone or with its `-wal`'s commits; None when there is
    none or it cannot be read (no meta table, not a number, not SQLite's)."""
    try:
        db = read_only(path, with_wal=with_wal)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return int(row[0]) if row and str(row[0]).strip().isdigit() else None


def _wal_may_be_its_own(path: Path, wal: Path) -> bool:
    """A marked file of a schema version below MARK_CLEARED_FROM: a release that keeps the mark (0.14.0) may have
    run on it since the copy was put there, so its `-wal` may be that run's (U3). It is not when the store read with
    the `-wal` is of another schema version than the file alone (a newer release's store wrote that -wal), nor when
    the `-wal` was last written before the file was put there or last written (its inode's change time: a `cp`, a
    rename or a checkpoint sets it, and no tool sets it back): a run on the file writes its -wal after both."""
    found = schema_version(path, with_wal=False)
    if found is None or found >= MARK_CLEARED_FROM:
        return False  # every release that runs this file removes the mark first: nothing ran on it
    if schema_version(path, with_wal=True) != found:
        return False
    return wal.stat().st_mtime_ns >= path.stat().st_ctime_ns


def refuse_unfit(path: Path) -> None:
    """StoreUnreadable, every file left as it is, if the existing file at `path` holds no store (D9) or is a backup
    copy never run on with a `-wal` beside it (D3). Called before the store's read-write open."""
    wal = hot_wal(path)
    mark = backup_mark(path)
    if mark is not None and wal is not None and _wal_may_be_its_own(path, wal):
        log.warning("job store %s: a `federator backup` copy taken %s, of schema version %s, which a release before "
                    "0.15.0 runs without removing that mark: %s beside it is taken as the store's own (a run of "
                    "such a release since the copy was put there)", path, mark,
                    schema_version(path, with_wal=False), wal)
    elif mark is not None and wal is not None:
        raise StoreUnreadable(
            f"job store {path} is a `federator backup` copy (taken {mark}) that no federator has run on, and {wal} "
            f"beside it is another store's (the one it replaces): started, SQLite would apply that -wal to the copy. "
            f"Move {wal.name} and {path.name}-shm aside (keep them until the restore is known good) and start "
            "again (docs/operators.md, \"Restoring the store\")")
    if path.stat().st_size == 0 and wal is None:
        raise StoreUnreadable(
            f"job store {path} is an empty file (0 bytes), not a job store: a copy or restore that did not finish "
            f"(a full disk?) or a truncation. Restore the newest `federator backup` copy there; to start a new, empty "
            f"store knowingly, delete {path} (a path with no file starts one)")
    try:
        db = read_only(path)
        try:
            tables = db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return  # not SQLite's, or unreadable: the read-write open names the cause
    if not tables:
        why = (f"{wal} beside it holds no table either" if wal is not None else
               f"no -wal beside it: a copy of the file taken without its {path.name}-wal (a store that never "
               "checkpointed keeps every commit there), or a file made by something else")
        raise StoreUnreadable(
            f"job store {path} exists but holds no job store ({why}). Restore the newest `federator backup` copy "
            f"there (`cp` of a store's file alone is not a backup); to start a new, empty store knowingly, delete "
            f"{path} (a path with no file starts one)")


def first_open(db: sqlite3.Connection, path: Path, found: int = MARK_CLEARED_FROM) -> None:
    """On a file that carries BACKUP_MARK (a restored copy's first start), remove the mark and checkpoint at once, so
    that from now on a `-wal` beside the file is its own (a crash's, applied as ever), and say which snapshot it is.
    `found` is the schema version the file had before this start took it forward: below MARK_CLEARED_FROM, a release
    that keeps the mark may have run on the copy, and the start says it cannot tell."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", (BACKUP_MARK,)).fetchone()
    if row is None:
        return
    db.execute("DELETE FROM meta WHERE key = ?", (BACKUP_MARK,))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if found < MARK_CLEARED_FROM:
        log.warning("job store %s: a `federator backup` copy taken %s, of schema version %d: a release before 0.15.0 "
                    "may have run on it since (it keeps that mark), so it may hold jobs accepted after that moment, "
                    "or not; jobs it has no record of that its agents run are orphaned (see --orphan-grace)",
                    path, row[0], found)
        return
    log.warning("job store %s: a `federator backup` copy taken %s, run on for the first time: what the federator "
                "accepted after that moment is not in it (jobs submitted since are unknown here; what its agents "
                "run of them is orphaned, see --orphan-grace)", path, row[0])


__all__ = ["BACKUP_MARK", "MARK_CLEARED_FROM", "backup_mark", "first_open", "hot_wal", "read_only", "refuse_unfit",
           "schema_version"]
