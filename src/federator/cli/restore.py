"""`federator restore --from COPY --db DB`: put a backup copy in place of a stopped federator's store, in one step.

    federator restore --from /backups/federator-20261205T190000Z.db --db /var/lib/federator/federator.db

Why a command (outside operator DR QA D3): the host runbook was three steps an operator under pressure gets wrong,
each seen in the round: a crashed store's `DB-wal` left beside the copy (SQLite applied it to the copy: the restore
came back as the crashed store, or damaged), the backup `mv`ed into place (the only backup then changed by the first
start), and no check of the copy before the old store was gone. This does them in the safe order:

1. refuse while a federator holds DB (its lock, store/lock.py), and hold that lock meanwhile so none starts;
2. copy COPY beside DB with `federator backup` (cli/backup.py): COPY is only read, the copy is checked
   (integrity_check) and keeps COPY's snapshot time, or its lack of one (a `cp`, or a 0.14.0 `federator backup`,
   records none: the restore's own time is no snapshot's); a copy 0.14.0 can run (schema version 3) is left with
   no mark, since 0.14.0 keeps one and the next upgrade then took its own `-wal` for another store's (outside
   upgrade QA U3); a bad COPY stops here, with nothing at DB moved;
3. move DB, DB-wal and DB-shm into `DB.replaced-STAMP/` (kept, never deleted: they may hold the only record of
   what the crashed store acknowledged), then rename the checked copy to DB. A failure moves them back.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from federator.cli.backup import BackupFailed, backup
from federator.store.errors import StoreInUse
from federator.store.lock import StoreLock
from federator.store.restore_checks import backup_mark


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("restore", help="put a backup copy in place of a stopped federator's store (standalone), "
                                       "the old store and its -wal kept aside")
    p.add_argument("--from", dest="source", type=Path, required=True, metavar="COPY",
                   help="the backup copy (only read: it stays your backup)")
    p.add_argument("--db", type=Path, default=Path("federator.db"),
                   help="the store to replace, as serve's --db (default %(default)s); the federator must be stopped")
    p.set_defaults(func=_restore)


def restore(source: Path, db: Path, *, now: datetime | None = None) -> tuple[int, Path | None]:
    """Put a checked copy of `source` at `db`; the jobs it holds, and the folder the replaced files went to (None
    when there were none). ValueError, BackupFailed or StoreInUse with every file as it was."""
    if source.absolute() == db.absolute():
        raise ValueError(f"--from and --db are one file ({db}): give the backup copy")
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    if not db.parent.is_dir():
        raise ValueError(f"--db: {db.parent} is not a directory")
    lock = StoreLock(db)
    lock.acquire()  # StoreInUse while a federator runs on it; held, no federator starts on it meanwhile
    try:
        checked = db.with_name(f".{db.name}.restore-{stamp}")
        jobs = backup(source, checked, mark=False)  # source only read; checked written, checked, or nothing left
        try:
            aside = _move_aside(db, db.with_name(f"{db.name}.replaced-{stamp}"))
            try:
                os.rename(checked, db)
            except OSError:
                _move_back(db, aside)
                raise
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                checked.unlink()
            raise
    finally:
        lock.release()
    return jobs, aside


def _move_aside(db: Path, folder: Path) -> Path | None:
    there = [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]
    if not there:
        return None
    folder.mkdir()
    for path in there:
        os.rename(path, folder / path.name)
    return folder


def _move_back(db: Path, folder: Path | None) -> None:
    if folder is None:
        return
    for path in folder.iterdir():
        os.rename(path, db.with_name(path.name))
    folder.rmdir()


def _restore(args: argparse.Namespace) -> int:
    try:
        jobs, aside = restore(args.source, args.db)
    except (ValueError, BackupFailed, StoreInUse, OSError) as exc:
        said = str(exc)  # the copy is `federator backup`'s: its --db is our --from, its --to our --db
        said = "--from: " + said[6:] if said.startswith("--db: ") else "--db: " + said[6:] if said.startswith(
            "--to: ") else said
        print(f"federator restore: {said}; nothing was changed", file=sys.stderr)
        return 1
    taken = backup_mark(args.source) or (f"at an unknown time: {args.source} records none (a `cp` of a store, "
                                         "or a copy by a federator before 0.15.0)")
    kept = (f"; the replaced store is in {aside}/ (keep it until the restore is known good)" if aside else
            "; nothing was there before")
    print(f"{args.db}: restored from {args.source} ({jobs} jobs, a snapshot taken {taken}){kept}. Start the federator: "
          "jobs accepted after the snapshot are not in it (docs/operators.md, \"Restoring the store\")")
    return 0


__all__ = ["register", "restore"]
