"""A real store file with damaged pages, as bit rot, a bad disk or a torn copy leave it (outside operator QA F6).

The pages are overwritten in the middle of the file, past the header and the schema on page 1, so SQLite opens
it and reads some jobs before it meets the damage: the case that ended in a traceback. The bytes are fixed, not
random, so every run damages the same way.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from federator.model import Job, JobId
from federator.store import SqliteJobStore

from builders import job

PAGES = 20


def damaged_store(path: Path, *, jobs: int = 600) -> Path:
    """A store at `path` with `jobs` jobs (every one checkpointed into the file), then PAGES of it overwritten."""
    store = SqliteJobStore(path)
    store.put([Job(JobId(f"d-{i:04d}-1"), job(f"d-{i:04d}"), submitted_at=float(i)) for i in range(jobs)])
    store.close()  # the last connection's close empties the -wal into the file
    size = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
    total = path.stat().st_size // size
    assert total > PAGES + 10, f"{total} pages: too few to damage some and keep the header"
    start = total // 3
    with path.open("r+b") as f:
        f.seek(start * size)
        f.write(bytes((i * 37 + 11) % 256 for i in range(size)) * PAGES)
    return path
