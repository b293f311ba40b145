"""The placement list of the agent's reports, said as what changed when the federator takes that (PlacementDelta).

Why: every report listed every placement id the cluster holds, ~27 bytes each: 2,003 placements sent 26.7 KB/s
upstream at rest, past what a slow link to a remote member carries, and the queued reports held the stream's pings
until gRPC ended it (outside WAN QA W2, W3). Said as a change, a report at rest carries no id at all.

The rules are agent.proto's (PlacementDelta): a change only to a federator whose Welcome lists "placement-deltas"
(an older one reads an empty list as "nothing held"); the list in full in a stream's first report, after the
federator asks (PlacementListWanted), and every FULL_LIST_EVERY_SECONDS as a check; each change based on the
previous report of the stream that said a list. The federator checks each change against its own copy (count and
digest), so a disagreement is found at the next report, not at the next full list.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from federator.api.placement_lists import FULL_LIST_EVERY_SECONDS, PLACEMENT_DELTAS, digest, id_hash
from federator.api.v1 import agent_pb2


class SentList:
    """What this stream's reports said of the placement list: the base of the next change."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 full_every: float = FULL_LIST_EVERY_SECONDS) -> None:
        self.clock = clock
        self.full_every = full_every
        self.deltas = False  # this stream's federator takes them (its Welcome's features)
        self._ids: set[str] | None = None  # None: the next report says the list in full
        self._sequence = 0
        self._digest = 0
        self._full_at = 0.0

    def stream_up(self, welcome: agent_pb2.Welcome) -> None:
        """A new stream: its first report says the list in full; changes only if its federator takes them."""
        self.deltas = PLACEMENT_DELTAS in welcome.features
        self._ids = None

    def wanted(self) -> None:
        """The federator could not apply a change (PlacementListWanted): the next report says the list in full."""
        self._ids = None

    def shape(self, report: agent_pb2.CapacityReport) -> None:
        """Say `report`'s list (its placement_ids, in full as built) as a change where the rules allow."""
        if report.member_unreachable:
            return  # says no list, and is no base
        ids = set(report.placement_ids)
        now = self.clock()
        base = self._ids
        if not self.deltas or base is None or now - self._full_at >= self.full_every:
            self._ids, self._sequence, self._digest, self._full_at = ids, report.sequence, digest(ids), now
            return
        added, removed = sorted(ids - base), sorted(base - ids)
        value = self._digest
        for pid in (*added, *removed):
            value ^= id_hash(pid)
        del report.placement_ids[:]
        report.placement_delta.SetInParent()
        report.placement_delta.CopyFrom(agent_pb2.PlacementDelta(
            base_sequence=self._sequence, added=added, removed=removed, count=len(ids), digest=value))
        self._ids, self._sequence, self._digest = ids, report.sequence, value


__all__ = ["SentList"]
