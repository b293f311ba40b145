"""`federator backup`: a consistent, checked copy of the federator's SQLite file, safe while it runs.

    federator backup --db /var/lib/federator/federator.db --to /backups/federator-2026-12-04.db

Why not `cp`: the store runs in WAL mode, so the newest commits live in `federator.db-wal` until a checkpoint
moves them into the file. A copy of the file alone (after a crash, or of a running federator) loaded 258 and 262
of 301 acknowledged jobs (outside operator QA). This uses SQLite's online backup, which copies the database as
one transaction sees it, the WAL's commits included, while the federator goes on writing. The copy holds the
jobs, the members and the usage records; restore it by stopping the federator and putting the copy at its --db
path (with no stale `-wal` or `-shm` file beside it).

Why the copy is checked: the online backup copies pages as they are, damaged ones too, and a job count reads
past them, so a rotting store's nightly backups all said "a consistent copy" (outside operator QA F6). The copy
passes SQLite's `integrity_check` or is deleted and the command fails, naming whether the store itself is damaged.

Why `--db` is only ever read (outside operator DR QA D3): it is opened read-only, so a check of a copy
(`federator backup --db COPY --to CHECK.db`) leaves COPY byte for byte as it was; it used to open it read-write,
and SQLite applied a stale `-wal` beside it (another store's) into the copy, deleted it, and called the result
good. A `-wal` beside a `--db` no federator holds is refused, named, unless `--own-wal` says it is the store's own
(a crash's last commits, copied too). The copy's `meta` says when its snapshot was taken (store/restore_checks.py:
the mark by which a start tells a restored copy's stale neighbour), on a store of schema version 4 or later only:
0.14.0 (version 3) would run on a marked copy and keep the mark, which then named its own `-wal` another store's
(outside upgrade QA U3). A copy of a copy keeps the first's mark, or its lack of one: `federator restore` copies
through here and must not stamp its own time on a copy taken at a time no one recorded. A copy holding no job is
said on stderr (D9): a `cp`-made file, or the wrong `--db`, looked like any good backup.

Why a temporary name: the copy is written beside `--to` and renamed to it once checked, so a failed run (a full
disk: QA F12 found a 0-byte `--to` left behind, which the next cron run refused as existing) leaves nothing at
`--to`, and a file at `--to` is always a whole, checked copy.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from federator.store import integrity
from federator.store.lock import held
from federator.store.restore_checks import BACKUP_MARK, MARK_CLEARED_FROM, hot_wal, read_only

DAMAGED = "{db} itself is damaged: keep your last good backup, and see docs/reliability.md, \"A corrupted store\""


class BackupFailed(Exception):
    """The copy was not written, or not sound; nothing is left at --to. The message is one line."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("backup", help="copy the federator's SQLite store consistently, even while it runs, and "
                                      "check the copy")
    p.add_argument("--db", type=Path, default=Path("federator.db"), help="the store (default %(default)s)")
    p.add_argument("--to", type=Path, required=True, metavar="FILE", help="the copy to write (must not exist)")
    p.add_argument("--own-wal", action="store_true",
                   help="the -wal beside --db is its own (the federator on it crashed): copy its commits too. Without "
                        "it, a -wal beside a --db no federator runs on is refused (it may be another store's: a "
                        "restored copy's stale neighbour). --db and its -wal are only read, either way")
    p.set_defaults(func=_backup)


def backup(db: Path, to: Path, *, own_wal: bool = False, mark: bool = True) -> int:
    """Copy `db` to `to` (which must not exist), check the copy, and return the number of jobs in it; `db` is only
    read. `mark=False` (a restore: `db` is itself a copy) adds no snapshot time where `db` has none. ValueError for
    bad arguments (a -wal beside an unheld `db` without `own_wal`), BackupFailed for a copy that could not be written
    or is damaged."""
    if not db.is_file():
        raise ValueError(f"--db: {db} is not a file")
    wal = hot_wal(db)
    if wal is not None and not own_wal and not held(db):
        raise ValueError(f"--db: {wal} is beside {db} and no federator runs on it: a crashed store's last commits, or "
                         f"another store's -wal left beside a restored copy. If it is {db.name}'s own, pass --own-wal "
                         f"(both are only read); if {db} is a backup copy, move {wal.name} and {db.name}-shm aside")
    if to.exists():
        raise ValueError(f"--to: {to} exists; give a new file (a backup never overwrites one)")
    if not to.parent.is_dir():
        raise ValueError(f"--to: {to.parent} is not a directory")
    try:
        fd, name = tempfile.mkstemp(dir=to.parent, prefix=f".{to.name}.", suffix=".partial")
    except OSError as exc:
        raise BackupFailed(f"--to: cannot write in {to.parent}: {exc.strerror or exc}") from None
    os.close(fd)
    partial = Path(name)
    try:
        _copy(db, partial, mark=mark)
        _check(db, partial)
        jobs = _count(db, partial)
        try:  # a link, not a rename: it fails if --to was made meanwhile (someone's, not ours to replace)
            os.link(partial, to)
        except FileExistsError:
            raise BackupFailed(f"--to: {to} appeared while the copy was written; the copy was not kept") from None
        except OSError:  # a filesystem without hard links: the check, then the rename, as close as it gets
            if to.exists():
                raise BackupFailed(f"--to: {to} appeared while the copy was written; the copy was not kept") from None
            partial.rename(to)
        _remove(partial)
        _sync_dir(to.parent)
    except BaseException:
        _remove(partial)
        raise
    return jobs


def _copy(db: Path, partial: Path, *, mark: bool) -> None:
    """SQLite's online backup of `db` (read-only) into `partial`, marked with the snapshot's time (`mark`) unless `db`
    carries a mark already; a copy of a schema version below MARK_CLEARED_FROM carries no mark (0.14.0 runs it and
    would keep one: store/restore_checks.py)."""
    try:
        source = read_only(db)
        try:
            target = sqlite3.connect(partial)
            try:
                taken = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # the backup reads at one moment: now
                source.backup(target)
                version = target.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() if (
                    target.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
                ) else None
                if version is not None and str(version[0]).isdigit() and int(version[0]) >= MARK_CLEARED_FROM:
                    if mark:  # a copy of a copy keeps the first's time: it is that snapshot
                        target.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (BACKUP_MARK, taken))
                elif version is not None:  # 0.14.0 would run on it, keeping a mark (0.15.0's backup put one on)
                    target.execute("DELETE FROM meta WHERE key = ?", (BACKUP_MARK,))
                target.commit()
            finally:
                target.close()
        finally:
            source.close()
    except (sqlite3.Error, OSError) as exc:
        if getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            raise BackupFailed(f"reading {db} failed: {exc}: {DAMAGED.format(db=db)}") from None
        raise BackupFailed(f"--to: writing the copy in {partial.parent} failed: {exc}; nothing was kept") from None


def _count(db: Path, partial: Path) -> int:
    """The jobs in the (checked) copy; BackupFailed when it has no jobs table (`db` is a SQLite file, but not a
    federator's store: it was a traceback)."""
    copy = sqlite3.connect(partial)
    try:
        return int(copy.execute("SELECT count(*) FROM jobs").fetchone()[0])
    except sqlite3.Error as exc:
        raise BackupFailed(f"--db: {db} is not a federator job store ({exc}); nothing was kept") from None
    finally:
        copy.close()


def _check(db: Path, partial: Path) -> None:
    """BackupFailed unless the copy passes integrity_check; the message says whether `db` itself is damaged."""
    found = _problems(partial, full=True)
    if not found:
        return
    source = _problems(db, full=False)
    whose = (DAMAGED.format(db=db) if source else f"{db} passes quick_check, so the copy was damaged on its way to "
             f"{partial.parent} (check that disk) and can be taken again")
    raise BackupFailed(f"the copy of {db} fails SQLite's integrity_check ({integrity.summary(found)}); it was "
                       f"deleted: {whose}")


def _problems(path: Path, *, full: bool) -> list[str]:
    try:
        db = read_only(path)
    except sqlite3.Error as exc:
        return [str(exc)]
    try:
        return integrity.problems(db, full=full)
    finally:
        db.close()


def _sync_dir(directory: Path) -> None:
    """The rename on disk (the copy's own pages are: SQLite synced them at the backup's commit)."""
    with contextlib.suppress(OSError):  # a filesystem that cannot open a directory: the rename stands anyway
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove(partial: Path) -> None:
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm"), Path(f"{partial}-journal")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def _backup(args: argparse.Namespace) -> int:
    # The copy is the store as of one moment between these two: every job accepted before `began` is in it, one
    # accepted after `ended` is not. A disaster's list of lost jobs is the audit log's submits since `began`
    # (outside DR QA, D8: the copy's time was left to guess).
    began = datetime.now(UTC)
    try:
        jobs = backup(args.db, args.to, own_wal=args.own_wal)
    except (ValueError, BackupFailed) as exc:
        print(f"federator backup: {exc}", file=sys.stderr)
        return 1
    ended = datetime.now(UTC)
    print(f"{args.to}: {jobs} jobs (a consistent copy of {args.db}, integrity_check ok), the store as of a moment "
          f"between {began.isoformat(timespec='milliseconds')} and {ended.isoformat(timespec='milliseconds')}: "
          "jobs accepted since the first may be missing from it")
    if not jobs:
        print(f"federator backup: WARNING: the copy holds no job. If the federator on {args.db} has jobs, this is not "
              "its store (the wrong --db, or a `cp` of the file without its -wal)", file=sys.stderr)
    return 0


__all__ = ["BackupFailed", "backup", "register"]
