"""Which member clusters a restart expects back: the members remembered in a MemberStore.

The federator tells this what it sees of a member (its session's first report, its going Lost); a
write reaches the store at the next turn of the loop, so a thousand agents joining at once make one
transaction, not a thousand. See store/members.py for why and what is kept.

At a start, `restore` rebuilds a record of each member from what was kept: those not Lost are expected back
(Partitioned until their agent reports), the Lost ones stay Lost until --forget-lost-after forgets them, and
both carry their agent's features, certificate notAfter and the Resizes it had not acknowledged, as they did
before the restart, and their last capacity report as kept (store/members.py: coarsely, `reported`), what a member
that never comes back is billed to (server/silent_ends.py).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from federator.model import AgentFeature
from federator.server.clusters import awaited
from federator.store.members import REPORT_KEPT_EVERY, Member, MemberStore

if TYPE_CHECKING:
    from federator.server.clusters import ClusterRecord

log = logging.getLogger("federator.server")


class Membership:
    __slots__ = ("dirty", "failing", "forget", "known", "store")

    def __init__(self, store: MemberStore | None) -> None:
        self.store = store
        self.known: dict[str, Member] = {m.name: m for m in store.load()} if store is not None else {}
        self.dirty: dict[str, Member] = {}
        self.forget: set[str] = set()  # members forgotten since the last flush (server/leases.py)
        self.failing = False  # the last flush failed: not said again (every turn) until one works

    def restore(self, clusters: dict[str, ClusterRecord], *, now: float) -> None:
        """The members remembered, as records of clusters whose agent has not connected to this federator: those
        not Lost Partitioned from `now` (expected back), the Lost ones Lost since they went Lost."""
        for m in self.known.values():
            if m.name in clusters:
                continue
            rec = awaited(m.name, region=m.region, labels=dict(m.labels), now=now, lost=m.lost,
                          last_report_at=min(m.last_report_at, now))
            if m.lost and m.lost_at:
                rec.lost_at = m.lost_at
            rec.features = AgentFeature.parse(m.features)
            rec.certificate_not_after = m.certificate_not_after
            rec.resizes_owed = set(m.resizes_owed)
            clusters[m.name] = rec
            if m.lost and not m.lost_at:
                # Lost before a store kept the time (schema 3): Lost from this start, and kept so, or every restart
                # began its --forget-lost-after again and it was never forgotten (outside upgrade QA F1).
                self._note(_member(rec, lost=True))

    def seen(self, rec: ClusterRecord) -> None:
        """A member's session reported: remember it as its agent's Hello gave it."""
        self._note(_member(rec, lost=False))

    def lost(self, rec: ClusterRecord) -> None:
        """A member went Lost: a restart does not wait for it."""
        self._note(_member(rec, lost=True))

    def reported(self, rec: ClusterRecord) -> None:
        """A member's capacity report was taken: its time is written when it has moved on by REPORT_KEPT_EVERY
        since the time kept, with the next flush (the loop's turn), not at every report (store/members.py)."""
        known = self.known.get(rec.name)
        if known is not None and rec.last_report_at - known.last_report_at >= REPORT_KEPT_EVERY:
            self._note(replace(known, last_report_at=rec.last_report_at))

    def changed(self, rec: ClusterRecord) -> None:
        """What is kept of a member changed between its reports (the Resizes owed it): remember it anew. A member
        the store does not know yet (its session has not reported) is written at its first report."""
        if (known := self.known.get(rec.name)) is not None:
            self._note(_member(rec, lost=known.lost))  # Lost or not as last said (`seen` comes before Ready)

    def forgotten(self, name: str) -> None:
        """A member forgotten: the store no longer remembers it either."""
        if self.store is None or self.known.pop(name, None) is None:
            return
        self.dirty.pop(name, None)
        self.forget.add(name)

    def _note(self, member: Member) -> None:
        if self.store is None or self.known.get(member.name) == member:
            return
        self.forget.discard(member.name)
        self.known[member.name] = self.dirty[member.name] = member

    def flush(self) -> None:
        """Write what changed since the last flush. A failed write is kept and tried again at the next one:
        the members are a hint for a restart's wait, and a full disk must not stop the loop."""
        if not (self.dirty or self.forget) or self.store is None:
            return
        try:
            self.store.put(self.dirty.values(), forget=self.forget)
        except Exception as exc:  # sqlite3.Error, OSError or StoreError: the loop goes on either way
            if not self.failing:
                log.warning("cannot remember %d member cluster(s) in the store, will retry: %s",
                            len(self.dirty) + len(self.forget), exc)
            self.failing = True
            return
        self.failing = False
        self.dirty.clear()
        self.forget.clear()


def _member(rec: ClusterRecord, *, lost: bool) -> Member:
    return Member(rec.name, rec.region, dict(rec.labels), lost=lost, features=frozenset(f.value for f in rec.features),
                  certificate_not_after=rec.certificate_not_after, lost_at=rec.lost_at if lost else 0.0,
                  resizes_owed=frozenset(rec.resizes_owed), last_report_at=rec.last_report_at)
