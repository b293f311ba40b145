"""When a placement ended that no agent said ended: its member went Lost, or its agent re-synced without it.

Why a module of its own: a placement's end is what its usage record closes at (accounting/meter.py). An agent
that says how a placement ended says when (JobUpdate.ended_at, server/end_times.py). A placement superseded
because its member went Lost (server/leases.py), or because its agent came back without it (Federator._resync),
has no such word, and was billed to the re-queue: the member's --lost-after grace (120 s by default) and any
outage before it counted as run time, on a member nobody heard from.

The rule: such a placement ended at the last time the federator knew it running, `last_known_running`: its
member's last capacity report (CapacityReport.placement_ids names every placement the member holds; a report
sent while its agent could not reach the member's API does not count, server/member_health.py), and never
before its usage record began (the meter's clamp). Not later: nothing said it ran on, and the bill never runs
past what the federator knows, as end_times.py's clamp never lengthens one. It may in fact have run on (a
partition, not a crash) until its agent fenced it, unbilled: that time ran a copy the federator had already
given up on and placed again elsewhere.

Across a restart the report time is the one kept: in standalone mode the members store keeps each member's
(store/members.py), written when it has moved on by 30 s with the members' write the loop makes each turn (a
write per report per member was too dear); in Kubernetes mode a MemberCluster's status.lastReportTime, rewritten
at least every 30 s (backends/kube/member_clusters.py `MemberClusters.write`). So a member that never comes back after a
restart is billed to its last report as kept, at most about 30 s short of the real one, never to the restart
(billed there before 0.10.0 in standalone mode). A placement that started after the time kept is billed from its
start (the meter's clamp): its Running report is the last the federator knew of it. Where no time is known (a
store written before 0.10.0) the placement ended when the federator stopped hearing of its member: the restart.
"""

from __future__ import annotations

from collections.abc import Iterable

from federator.model import Placement
from federator.server.clusters import ClusterRecord


def last_known_running(rec: ClusterRecord, *, now: float) -> float:
    """When the federator last knew `rec`'s placements running: its last report, else when it began waiting for
    the member (a restart), never after `now`."""
    return min(rec.last_report_at or rec.partitioned_at or now, now)


def ended_silently(placements: Iterable[Placement], rec: ClusterRecord, *, now: float) -> None:
    """Date the end of `rec`'s placements among `placements` that no agent said ended, before they are superseded
    (Federator.supersede and server/partial.py tell the usage meter each one's `ended_at`)."""
    at = last_known_running(rec, now=now)
    for p in placements:
        if p.cluster == rec.name and not p.ended_at:
            p.ended_at = at


__all__ = ["ended_silently", "last_known_running"]
