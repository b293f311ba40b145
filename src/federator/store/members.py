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

Kept with each member besides (schema version 3, store/schema.py), what a restart lost before and what its agent
cannot tell a restarted federator at once, or ever:
- its agent's Hello features: a job scaled down before the agent is back shrinks its part there in place, as it
  would have before the restart (server/shrink.py `elastic_parts`), instead of stopping it (outside QA F11);
- the notAfter of the client certificate it last presented: an agent whose certificate expired cannot connect to
  say it again, and FederatorClusterCertificateExpired needs the series (metrics.py);
- when it went Lost: a Lost member is remembered as Lost (its alert, `get clusters`) and forgotten after
  --forget-lost-after from then, not from the restart;
- the Resizes its agent has not acknowledged (`ClusterRecord.resizes_owed`): should the agent come back without
  the resize feature, those parts run at their old count and are replaced (server/shrink.py `resend`);
- (0.10.0) its last capacity report, coarsely: a member that never comes back after a restart has its placements
  billed to it (server/silent_ends.py), not to the restart. Kept coarsely because a write per report per member
  was too dear: the time is written when it has moved on by `REPORT_KEPT_EVERY` seconds, with the members' write
  the loop already makes each turn (server/membership.py), so the time kept is up to that much (and a turn) older
  than the real last report, and the bill up to that much shorter, never longer.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from federator.store.identity import identity
from federator.store.schema import MEMBERS_TABLE, add_member_columns
from federator.store.sqlite import close_sqlite, open_sqlite, write_all


@dataclass(frozen=True, slots=True)
class Member:
    """A member cluster as last seen: its region, labels and features from its agent's Hello, whether (since
    when) it is Lost, its agent's certificate's notAfter (0: none seen), and the Resizes it has not acknowledged."""

    name: str
    region: str
    labels: Mapping[str, str] = field(default_factory=dict)
    lost: bool = False
    features: frozenset[str] = frozenset()
    certificate_not_after: float = 0.0
    lost_at: float = 0.0
    resizes_owed: frozenset[str] = frozenset()
    last_report_at: float = 0.0  # its last capacity report as kept (module docstring); 0: none kept


REPORT_KEPT_EVERY = 30.0
"""Seconds a member's last report time moves on before it is written again (module docstring)."""


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
        self._db.execute(MEMBERS_TABLE)  # an older file's is taken forward by the job store's open (schema.py)
        add_member_columns(self._db)  # a 0.8/0.9 file's (version 3 still) gets the columns 0.10 added
        self.file = identity(path, what="member store", say=False)  # the job store's says it (store/identity.py)

    def put(self, members: Iterable[Member], *, forget: Iterable[str] = ()) -> None:
        rows = [(m.name, m.region, json.dumps(dict(m.labels), sort_keys=True), int(m.lost),
                 json.dumps(sorted(m.features)), m.certificate_not_after, m.lost_at, json.dumps(sorted(m.resizes_owed)),
                 m.last_report_at)
                for m in members]
        gone = [(name,) for name in forget]
        with self._lock:
            if self.file is not None and (rows or gone):
                self.file.check()
            if rows:
                write_all(self._db, "INSERT OR REPLACE INTO members (name, region, labels, lost, features, "
                          "certificate_not_after, lost_at, resizes_owed, last_report_at) VALUES "
                          "(?, ?, ?, ?, ?, ?, ?, ?, ?)", rows,
                          what="member store")
            if gone:
                write_all(self._db, "DELETE FROM members WHERE name = ?", gone, what="member store")

    def load(self) -> list[Member]:
        with self._lock:
            rows = self._db.execute("SELECT name, region, labels, lost, features, certificate_not_after, lost_at, "
                                    "resizes_owed, last_report_at FROM members ORDER BY name").fetchall()
        return [Member(name, region, json.loads(labels), bool(lost), frozenset(json.loads(features)), float(not_after),
                       float(lost_at), frozenset(json.loads(owed)), float(reported))
                for name, region, labels, lost, features, not_after, lost_at, owed, reported in rows]

    def close(self) -> None:
        with self._lock:
            close_sqlite(self._db, self.file)
