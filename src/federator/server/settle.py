"""A start's first placements wait for the member clusters the federator expects back.

Why: after a restart the federator knows which clusters it expects (every member it remembers that was
not Lost, store/members.py, and any holding its placements; in Kubernetes mode every MemberCluster),
but their agents reconnect one by one over a few seconds. A cycle that ran as soon as the first of
them reported placed the whole pending backlog on that one cluster, as far as it had room, and on none
of the others, which were not Ready yet. kube-scheduler waits for its caches to sync before it
schedules, for the same reason.

So the federator's loop places nothing until every expected cluster has reported (or is Lost), or until
`--settle-seconds` pass with none of them coming back (from the start, then from the latest one back; at most
six times `--settle-seconds` in all), whichever comes first; and never holds again after that. A
federator that expects no cluster (a new one, on an empty store) does not wait. Leases, reports, submissions and cancels
go on meanwhile; only the cycle waits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from federator.model import ClusterState

if TYPE_CHECKING:  # the CLI reads the default from here, and needs none of the server's modules for it
    from federator.server.clusters import ClusterRecord

log = logging.getLogger("federator.server")

DEFAULT_SETTLE_SECONDS = 10.0
EXTEND_FACTOR = 6  # the wait goes on while clusters come back, to at most this many times --settle-seconds


def unreported(clusters: Mapping[str, ClusterRecord]) -> list[str]:
    """The clusters expected but not heard from: no capacity report yet, and not Lost."""
    return sorted(name for name, rec in clusters.items() if rec.capacity is None and rec.state is not ClusterState.LOST)


class Settling:
    """Whether the loop still holds placing after a start (see the module docstring). Latches: once the
    fleet has settled or the time is up, it never holds again."""

    __slots__ = ("cap", "deadline", "held", "known", "left", "seconds", "settled")

    def __init__(self, started: float, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = started + seconds
        # While clusters keep coming back the wait goes on, `seconds` after the latest, up to this: 243 agents
        # reconnect at about 20 a second, and a fixed 10 s placed the backlog without 149 of them (outside SRE).
        self.cap = started + max(EXTEND_FACTOR * seconds, seconds)
        self.left: int | None = None  # how many were missing at the last look
        self.settled = seconds <= 0
        self.held = False  # whether it has held at all (so the release is worth a log line)
        # Whether every cluster expected back is registered yet: in Kubernetes mode the MemberClusters are
        # listed after the loop starts (server/app.py clears this until then).
        self.known = True

    def holding(self, now: float, missing: Callable[[], Iterable[str]]) -> bool:
        """Whether to skip this cycle: some expected cluster (`missing()`, read only while unsettled) has not
        reported, and the time is not up."""
        if self.settled:
            return False
        names = list(missing())
        if self.left is not None and len(names) < self.left:  # progress: another came back
            self.deadline = max(self.deadline, min(self.cap, now + self.seconds))
        self.left = len(names)
        if (not names and self.known) or now >= self.deadline:
            self.settled = True
            if self.held and names:
                log.warning("placing without %d member cluster(s) that have not reported since the start: %s",
                            len(names), _names(names))
            elif self.held:
                log.info("every expected member cluster has reported: placing")
            return False
        if not self.held and names:
            self.held = True
            log.info("holding placements for up to %.0fs until %d expected member cluster(s) report: %s",
                     self.deadline - now, len(names), _names(names))
        return True


    def waiting(self, now: float) -> str | None:
        """What a job submitted now waits for, while the loop holds (None otherwise): said in its pending
        reason, so `federator get jobs` during the wait does not promise the next cycle."""
        if self.settled or not self.held:
            return None
        return (f"waiting up to {max(0.0, self.deadline - now):.0f}s for the member clusters expected back "
                "after the federator's start to report")


def _names(names: list[str], most: int = 10) -> str:
    return ", ".join(names[:most]) + (", ..." if len(names) > most else "")
