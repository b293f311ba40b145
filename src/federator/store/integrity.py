"""Whether a SQLite file of the federator's is sound, and what an operator does when it is not.

Why: a store with damaged pages (bit rot, a bad disk, a torn copy) opened, loaded its jobs, and died on the
first read of a damaged page with a bare `sqlite3.DatabaseError` traceback; `federator backup` copied it page
for page and called the copy consistent (outside operator QA F6), so every nightly backup of a rotting store
looked fine until the day one was needed. SQLite's own checks read every page: `quick_check` (the b-trees'
structure, each page's content; a few tenths of a second for 200 MB, which the start's load of every job
reads anyway) at each start, and the full `integrity_check` (indexes against their tables too) on a backup's
copy, which nobody waits for.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SHOWN = 3  # problems named in the one line; `sqlite3 FILE 'PRAGMA integrity_check'` lists them all


def problems(db: sqlite3.Connection, *, full: bool = False) -> list[str]:
    """What SQLite's check finds wrong in the file behind `db` (its WAL's commits included); [] if sound.
    `full`: integrity_check, else quick_check. A check that cannot even run is a problem too."""
    pragma = "integrity_check" if full else "quick_check"
    try:
        rows = db.execute(f"PRAGMA {pragma}").fetchall()
    except sqlite3.DatabaseError as exc:  # "database disk image is malformed", "file is not a database"
        return [str(exc)]
    found = [str(row[0]) for row in rows]
    return [] if found == ["ok"] else found


def summary(found: list[str]) -> str:
    """The first problems SQLite named, in one line."""
    more = f" (and {len(found) - SHOWN} more)" if len(found) > SHOWN else ""
    return "; ".join(line.replace("\n", " ") for line in found[:SHOWN]) + more


def recovery(path: Path) -> str:
    """What to do about a damaged store at `path`: docs/reliability.md, "A corrupted store"."""
    return (f"stop here and restore: `federator restore --from COPY --db {path}` puts the newest `federator backup` "
            f"copy there, checked, this file and its -wal kept aside (by hand: the copy at {path} with no -wal or -shm "
            "beside it; check it first: `federator backup --db COPY --to CHECK.db` succeeds only on a sound one) and "
            f"start again; with no sound copy, `sqlite3 {path} .recover | sqlite3 recovered.db` salvages what it can "
            "(docs/reliability.md, \"A corrupted store\")")


__all__ = ["SHOWN", "problems", "recovery", "summary"]
