"""The member clusters a federator has seen, remembered across its restarts (SQLite mode).

Why: after a restart the federator's first placements wait for the clusters it expects back
(server/settle.py). From its jobs alone it knows only the clusters that hold its placements, so an
idle member was not waited for, and the first cluster to come back took the backlog the idle one
could have shared. In Kubernetes mode the MemberCluster objects are this memory; in SQLite mode it is
this table, in the same file as the jobs.

A member is written when its agent's session first reports (with its region and labels) and when it
goes Lost; a restart expects back the members that were not Lost and forgets the others, so a
cluster taken out of the federation is waited for by no restart after the grace time it took to go
Lost. A write is one small transaction per change of a member, not per report.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from federator.store.identity import identity
from federator.store.sqlite import close_sqlite, open_sqlite, write_all


@dataclass(frozen=True, slots=True)
class Member:
    """A member cluster as last seen: its region and labels from its agent's Hello, and whether it is Lost."""

    name: str
    region: str
    labels: Mapping[str, str] = field(default_factory=dict)
    lost: bool = False


class MemberStore(Protocol):
    def put(self, members: Iterable[Member], *, forget: Iterable[str] = ()) -> None:
        """Remember these members' current state (one transaction), then forget the members named in
        `forget` (another)."""

    def load(self) -> list[Member]: ...

    def close(self) -> None: ...


class SqliteMemberStore:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        # NORMAL: a member written just before a power cut may be forgotten, which costs one restart's wait
        # for it, never a job; and the write is not fsynced on the event loop.
        self._db = open_sqlite(path, synchronous="NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS members (name TEXT PRIMARY KEY, region TEXT NOT NULL, "
                         "labels TEXT NOT NULL, lost INTEGER NOT NULL)")
        self.file = identity(path, what="member store", say=False)  # the job store's says it (store/identity.py)

    def put(self, members: Iterable[Member], *, forget: Iterable[str] = ()) -> None:
        rows = [(m.name, m.region, json.dumps(dict(m.labels), sort_keys=True), int(m.lost)) for m in members]
        gone = [(name,) for name in forget]
        with self._lock:
            if self.file is not None and (rows or gone):
                self.file.check()
            if rows:
                write_all(self._db, "INSERT OR REPLACE INTO members VALUES (?, ?, ?, ?)", rows, what="member store")
            if gone:
                write_all(self._db, "DELETE FROM members WHERE name = ?", gone, what="member store")

    def load(self) -> list[Member]:
        with self._lock:
            rows = self._db.execute("SELECT name, region, labels, lost FROM members ORDER BY name").fetchall()
        return [Member(name, region, json.loads(labels), bool(lost)) for name, region, labels, lost in rows]

    def close(self) -> None:
        with self._lock:
            close_sqlite(self._db, self.file)
