"""How a member's silence ages it: Ready -> Partitioned -> Lost -> forgotten.

- Ready -> Partitioned: its stream dropped, or no message for `--lease-seconds`. Its jobs keep running; it gets
  no new work.
- Ready -> Partitioned also when its agent says it cannot reach the member's API server (server/member_health.py),
  and Lost after `--lost-after` the same way.
- Partitioned -> Lost: away for `--lost-after`, counted from its agent's last message if that came after it was
  Partitioned (`away_since`): an agent re-syncing thousands of placements over a slow link is heard all along,
  though only the report that ends its re-sync makes it Ready, and it went Lost mid-re-sync with "0s without a
  message", every job there placed again (outside WAN QA W1). An agent that reports its member's API unreachable is
  heard too, and is Lost --lost-after from when it said so. Its jobs are placed again elsewhere (unless their failover
  policy says keep), their placements there billed to its last report (server/silent_ends.py); a silent agent
  that wakes up must reconnect and re-sync.
- Lost -> forgotten: Lost for `--forget-lost-after` with no placement held there. Why: a national network
  retires clusters and a provider renames them, and a Lost cluster was kept until the federator restarted: in
  `get clusters`, in every scrape (its state, capacity and per-cluster counters), in FederatorClusterLost,
  which fired for a retired cluster for ever. Forgetting loses nothing a job needs: no placement is there, and
  an agent that comes back later is a new member like any other (it reports, and is Ready again). A cluster
  still holding a `keep` job's placement is never forgotten: that job waits for it.

In Kubernetes mode an operator forgets a Lost cluster at once with `kubectl delete mc NAME`
(backends/kube/controller.py tells `forget` when it finds the object gone); in standalone mode with `federator
forget NAME` (ClusterService.Forget), which waited a day before (outside provider QA, F5).
"""

from __future__ import annotations

import itertools
import logging
from typing import TYPE_CHECKING

from federator.model import ClusterState, Reason, ReasonCode
from federator.security.limits import RejectReason
from federator.server import seals
from federator.server.clusters import FAILOVER_ANNOTATION, ClusterRecord
from federator.server.member_health import lost_ending
from federator.server.outbox import lost
from federator.server.placement_lists import AskReason
from federator.server.silent_ends import ended_silently

if TYPE_CHECKING:
    from federator.server.federator import Federator

log = logging.getLogger("federator.server")

DEFAULT_FORGET_LOST_AFTER_SECONDS = 86_400.0
"""A day: longer than an outage a provider repairs, and a retired cluster's alert ends the next day."""
PER_CLUSTER_COUNTERS = ("agent_reports", "agent_connects", "placement_start_timeouts", "placement_early_failures",
                        "placements_lost", "cluster_quarantines", "cluster_quarantines_capped", "inconsistent_reports",
                        "job_updates_limited", "agent_duplicates_refused", "reports_clamped", "drained_placements",
                        "region_changes_refused")
"""Metrics labelled by the cluster alone, whose series a forgotten cluster leaves (placement_moves has a result)."""


def away_since(rec: ClusterRecord) -> float:
    """When a Partitioned cluster's time to Lost began: when it was Partitioned, or its agent's last message if
    later. The fencing rule (docs/reliability.md, "Pauses") is that the federator re-places a cluster's jobs no
    sooner than --lost-after after it last heard the agent, not after the agent's lease first ran out. Except
    while its agent says it cannot reach the member's API (server/member_health.py): those reports are messages,
    and the cluster is still Lost --lost-after after it was Partitioned, as documented."""
    return rec.partitioned_at if rec.unreachable else max(rec.partitioned_at, rec.last_seen_at)


def holding(fed: Federator) -> set[str]:
    """The clusters where a job not finished still has a placement that is not."""
    return {p.cluster for job in fed.jobs.values() if not job.phase.is_terminal
            for p in job.placements if not p.phase.is_terminal}


def forgettable(rec: ClusterRecord, *, now: float, after: float) -> bool:
    """Lost, with no agent connected, for longer than `after` (0: never)."""
    return after > 0 and rec.state is ClusterState.LOST and not rec.connected and now - rec.lost_at > after


def why_not_forgettable(fed: Federator, name: str) -> str:
    """Why an operator may not forget `name` now ("" when they may): `federator forget` (ClusterService.Forget)
    is --forget-lost-after's forgetting without its wait, and holds to the rest of its rules."""
    rec = fed.clusters.get(name)
    if rec is None:
        return f"the federator knows no cluster {name!r}"
    if rec.state is not ClusterState.LOST:
        return (f"cluster {name!r} is {rec.state.value}, not Lost: only a Lost cluster may be forgotten (stop its "
                f"agent and wait --lost-after, or cordon it to keep new work off)")
    if rec.connected:
        return f"cluster {name!r} has its agent connected again: it is not gone"
    waiting = sorted(str(job.job_id) for job in fed.jobs.values() if not job.phase.is_terminal
                     and any(p.cluster == name and not p.phase.is_terminal for p in job.placements))
    if waiting:
        more = f" and {len(waiting) - 5} more" if len(waiting) > 5 else ""
        return (f"cluster {name!r} still holds placements of {len(waiting)} job(s) not finished "
                f"({', '.join(waiting[:5])}{more}; a failover: keep job waits for it): cancel them first")
    return ""


def forgotten_by_kubectl(name: str) -> str:
    """Why `federator forget` is refused in Kubernetes mode, and what forgets a cluster there: deleting its
    MemberCluster (backends/kube/member_clusters.py). The objects are the record of the members there:
    a forget over gRPC drops the cluster from the registry, and its object goes only where the federator's Role
    may delete it (an older one may not); left, a restart or a new leader reads it back as a Lost member. One
    way, too, so who may forget a member is the host cluster's RBAC, and its audit log says who did, as for
    `kubectl patch mc` cordons."""
    return (f"this federator runs in Kubernetes mode, where the MemberCluster objects are the record of the member "
            f"clusters: forget {name!r} with `kubectl delete mc {name}` once it is Lost (the federator then forgets "
            f"it, as soon as no unfinished job has a placement there; the object of a cluster not Lost is made "
            f"again)")


class Leases:
    """The state transitions of `check` and the forgetting, for one federator."""

    def __init__(self, fed: Federator, *, forget_after: float = DEFAULT_FORGET_LOST_AFTER_SECONDS) -> None:
        self.fed = fed
        self.forget_after = forget_after

    def check(self) -> None:
        """Ready -> Partitioned when the stream drops or the lease runs out; Partitioned -> Lost after the grace
        time; Lost -> forgotten after `forget_after`. Then the jobs on a cluster whose state changed say so in
        their message."""
        fed = self.fed
        now = fed.clock()
        for rec in list(fed.clusters.values()):
            # Time the loop itself was stalled is not the agent's silence: its messages waited unread meanwhile.
            if rec.state is ClusterState.READY and rec.connected and \
                    now - rec.last_seen_at - fed.stalls.since(rec.last_seen_at) > fed.lease_seconds:
                rec.state = ClusterState.PARTITIONED
                rec.partitioned_at = now
                log.warning("cluster %s Partitioned: no message for %.1fs", rec.name, now - rec.last_seen_at)
            away = away_since(rec)
            if rec.state is ClusterState.PARTITIONED and \
                    now - away - fed.stalls.since(away) > fed.lost_after_seconds:
                rec.state = ClusterState.LOST
                rec.lost_at = now
                log.warning("cluster %s Lost after %.1fs Partitioned (its last message %.1fs ago)", rec.name,
                            now - rec.partitioned_at, now - rec.last_seen_at)
                fed.membership.lost(rec)
                fed.silent_cancels.lost(rec)  # what was cancelled there meanwhile ended at its last report
                if rec.connected:  # a silent agent that wakes up must reconnect and re-sync
                    fed.close_stream(rec, lost_ending(rec, fed.lost_after_seconds) if rec.unreachable
                                     else lost(rec.name, now - rec.last_seen_at))
                self._fail_over(rec)
        stale = [rec.name for rec in fed.clusters.values() if forgettable(rec, now=now, after=self.forget_after)]
        if stale:
            held = holding(fed)
            for name in stale:
                self.forget(name, f"Lost for more than {self.forget_after:g}s (--forget-lost-after)", held=held)
        fed.notes.refresh()

    def _fail_over(self, rec: ClusterRecord) -> None:
        """Re-place the jobs of a Lost cluster whose failover policy allows it."""
        for job in list(self.fed.jobs.values()):
            if job.phase.is_terminal or not any(p.cluster == rec.name and p.phase.is_active for p in job.placements):
                continue
            if job.spec.annotation(FAILOVER_ANNOTATION, "replace") == "keep":
                log.info("job %s stays on Lost cluster %s (failover: keep)", job.job_id, rec.name)
                continue
            ended = {p.placement_id for p in job.placements if p.cluster == rec.name}  # a spread job keeps the rest
            ended_silently(job.placements, rec, now=self.fed.clock())  # billed to its last report (silent_ends.py)
            self.fed.requeue(job, Reason(ReasonCode.CLUSTER_NOT_READY,
                                         f"{rec.name} was Lost; re-placing (was generation {job.generation})"),
                             ended=ended)

    def forget(self, name: str, why: str, *, held: set[str] | None = None) -> bool:
        """Drop a Lost, disconnected cluster that holds no placement from everything kept of it: the registry,
        the fleet's models, the members a restart expects, its per-cluster metric series. False (and nothing
        changes) when it is not such a cluster. `held`: `holding(fed)` when the caller has it (one pass over
        the jobs for every cluster a turn forgets, not one each)."""
        fed = self.fed
        rec = fed.clusters.get(name)
        if rec is None or rec.state is not ClusterState.LOST or rec.connected or \
                name in (held if held is not None else holding(fed)):
            return False
        del fed.clusters[name]
        fed.intake.fleet.gone(name)
        fed.notes.gone(name)
        fed.early.quarantine.forget(name)
        fed.membership.forgotten(name)
        fed.orphans.forget(name)
        fed.cordons.maintenance.forget(name)  # an agent that comes back says it again (server/maintenance.py)
        for counter in PER_CLUSTER_COUNTERS:
            _remove(getattr(fed.metrics, counter), name)
        for result in ("moved", "kept"):
            _remove(fed.metrics.placement_moves, name, result)
        for reason in RejectReason:
            _remove(fed.metrics.agent_reports_refused, name, reason.value)
            _remove(fed.metrics.agent_messages_refused, name, reason.value)
        for ask in AskReason:
            _remove(fed.metrics.placement_list_asks, name, ask.value)
        for word, why in itertools.product(("launch", "job_ended"), (seals.UNSEALED, seals.OTHER_KEY, seals.WRONG)):
            _remove(fed.metrics.agent_unproven_words, name, word, why)
        fed.metrics.clusters_forgotten.inc()
        log.warning("cluster %s forgotten: %s; an agent that connects as %s later joins as a new member",
                    name, why, name)
        return True


def _remove(metric: object, *labels: str) -> None:
    try:
        metric.remove(*labels)  # type: ignore[attr-defined]
    except KeyError:  # never had that series
        pass


__all__ = ["DEFAULT_FORGET_LOST_AFTER_SECONDS", "Leases", "away_since", "forgettable", "forgotten_by_kubectl",
           "holding", "why_not_forgettable"]
