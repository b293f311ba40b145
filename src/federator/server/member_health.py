"""A member whose agent is connected but cannot reach the member's own API server.

Why: outside QA froze member-b's kube-apiserver (SIGSTOP, 90 s) while its agent kept its stream. The agent kept
reporting the capacity of its stale caches, so member-b stayed Ready, its report time advanced, its jobs said "2
replicas running", and a job submitted meanwhile was placed there and hung 30 s in the launch before it went
elsewhere. Now the agent says so (CapacityReport.member_unreachable, agent.proto) and this module applies it.

Decided: such a cluster is **Partitioned**, not a state of its own. The federator can no more see or act on the
member than when the stream is down, and every consequence is the partition's: no new work there, its jobs keep
their placements (they may well run on), Lost `--lost-after` after it became Partitioned, then the normal failover
(server/leases.py), and Ready again at its first report that says the API answers. A state of its own would have
repeated each of those rules in the leases, the scheduler, the state gauge, the MemberCluster CRD and every alert
and panel that reads states. What differs is *why*, and that is said where people look: `get clusters`
("Partitioned,APIUnreachable" and the agent's words), the MemberCluster status message, and the message of every
job placed there (server/job_message.py `cluster_note`).

Such a report renews the lease and nothing else: its capacity is stale by definition, so it is not taken (the
cluster's last report time stays when the member last answered), and it does not close a re-sync (an agent that
restarted while the API was away holds nothing it can vouch for: reconciling then would re-queue every placement
it runs). The reason kept is the agent's last word; a new stream starts afresh, and its first report says it again.
Since when is kept across streams: an agent that reconnects (after Lost) while the API is still away used to show
"unreachable since" the reconnect, hiding how long the member had been out (second QA round, R2).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from federator.model import ClusterState
from federator.server.clusters import ClusterRecord
from federator.server.outbox import EndCode, Ending
from federator.server.validation import agent_text
from federator.timestamps import utc_seconds

if TYPE_CHECKING:
    from federator.server.federator import Federator

log = logging.getLogger("federator.server")

MAX_REASON_CHARS = 1024
"""Of an agent's reason, what is kept (agent.proto CapacityReport.member_unreachable)."""


def reported(fed: Federator, rec: ClusterRecord, unreachable: str) -> bool:
    """Apply what a capacity report says of the member's API; True when it says unreachable, and the report is
    then done with (its capacity is not taken). A report that does not say so clears what an earlier one said;
    the caller then applies it as any report (which turns the cluster Ready)."""
    now = fed.clock()
    if not unreachable:
        if rec.unreachable:
            log.info("cluster %s: its agent reaches the member's API server again (unreachable since %s)",
                     rec.name, utc_seconds(rec.unreachable_since))
        rec.unreachable, rec.unreachable_since = "", 0.0  # also one kept from the last stream
        return False
    rec.last_seen_at = now  # the lease: the agent is there
    why = agent_text(unreachable[:MAX_REASON_CHARS])
    if not rec.unreachable:
        rec.unreachable_since = rec.unreachable_since or now  # kept from the last stream if it ended so
        log.warning("cluster %s: its agent cannot reach the member's API server: %s; no new work there (%s)",
                    rec.name, why, rec.state if rec.state is not ClusterState.READY else "now Partitioned")
    rec.unreachable = why
    if rec.state is ClusterState.READY:
        rec.state, rec.partitioned_at = ClusterState.PARTITIONED, now
    fed.metrics.agent_reports.labels(rec.name).inc()
    return True


def unreachable_note(rec: ClusterRecord) -> str:
    """What a job placed on the cluster says of it ("" when its agent reaches the member). Kept when the stream
    ends, as the last word from there; a new stream starts a new record, which its first report fills again."""
    if not rec.unreachable:
        return ""
    return f"{rec.name}'s agent cannot reach its API server since {utc_seconds(rec.unreachable_since)} " \
           f"({rec.unreachable})"


def lost_ending(rec: ClusterRecord, lost_after: float) -> Ending:
    """How the stream of a cluster that went Lost with its API unreachable ends: its agent re-syncs on a new one,
    which reconciles the failover once the member answers."""
    return Ending(EndCode.UNAVAILABLE,
                  f"cluster {rec.name} is Lost (its agent could not reach its API server for over {lost_after:g}s: "
                  f"{rec.unreachable[:200]}): its jobs are placed again elsewhere; reconnect and re-sync")


__all__ = ["MAX_REASON_CHARS", "lost_ending", "reported", "unreachable_note"]
