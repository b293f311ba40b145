"""Which member clusters a restart expects back: the members remembered in a MemberStore.

The federator tells this what it sees of a member (its session's first report, its going Lost); a
write reaches the store at the next turn of the loop, so a thousand agents joining at once make one
transaction, not a thousand. See store/members.py for why and what is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from federator.store.members import Member, MemberStore

log = logging.getLogger("federator.server")


class Membership:
    __slots__ = ("dirty", "failing", "forget", "known", "store")

    def __init__(self, store: MemberStore | None) -> None:
        self.store = store
        self.known: dict[str, Member] = {m.name: m for m in store.load()} if store is not None else {}
        self.dirty: dict[str, Member] = {}
        self.forget: set[str] = set()  # members forgotten since the last flush (server/leases.py)
        self.failing = False  # the last flush failed: not said again (every turn) until one works

    def expected(self) -> list[Member]:
        """The members to expect back after a start: those that were not Lost."""
        return [m for m in self.known.values() if not m.lost]

    def seen(self, name: str, region: str, labels: Mapping[str, str]) -> None:
        """A member's session reported: remember it, with its region and labels as its agent gave them."""
        self._note(Member(name, region, dict(labels), lost=False))

    def lost(self, name: str, region: str, labels: Mapping[str, str]) -> None:
        """A member went Lost: a restart does not wait for it."""
        self._note(Member(name, region, dict(labels), lost=True))

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
