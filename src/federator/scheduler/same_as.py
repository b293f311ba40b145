"""The SameAs filter: a job goes only to a cluster where every job its spec.clusters.sameAs names holds a placement.

Why: an RL post-training pipeline split into jobs (a learner gang, rollout workers, a reward-model server) streams
weights over one cluster's fabric, so its roles must share a cluster; a `spec.clusters.names` pin chosen by hand
cannot follow the learner wherever the scheduler put it (outside QA qaml60 E3). `sameAs` (model/cluster_affinity.py,
types.proto ClusterAffinity.same_as) names those jobs; Submit resolves them to ids (server/dependencies.py).

The filter reads where the named jobs are from the cycle's context (`CycleContext.placed`, which `cycle.prescore`
builds from the allocations every placing path hands the scheduler: the cycle, a re-queue, preemption, a drain's
surge, the rebalancer, a scale-up), never from a store or a member: the scheduler stays pure. A named job with no
allocation (Pending, waiting, ended, or being moved this very call) holds no cluster, and the job waits, its reason
naming the job (a named job that ended fails a job with nothing placed: server/same_as_ends.py). A hard bound,
always on (residency.ALWAYS_FILTERS). Its verdict is constant within a cycle but not across cycles (a named job may
be placed or moved between them): verdicts.Verdicts keys it by what it read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from federator.model import ClusterInfo, JobId, Reason, ReasonCode
from federator.scheduler.framework import Allocation, CycleContext, PlacementRequest

FIELD = "spec.clusters.sameAs"


def placed(requests: Iterable[PlacementRequest], running: Sequence[Allocation]) -> Mapping[JobId, frozenset[str]]:
    """The clusters each job some request's sameAs names holds a placement on now (only those: a cycle of jobs
    naming none builds nothing)."""
    named = {JobId(k) for r in requests for k in r.spec.clusters.same_as}
    if not named:
        return {}
    out: dict[JobId, set[str]] = {j: set() for j in named}
    for a in running:
        if a.job_id in out and a.replicas > 0:
            out[a.job_id].add(a.cluster)
    return {j: frozenset(c) for j, c in out.items()}


@dataclass(frozen=True, slots=True)
class SameAs:
    """A Filter: only clusters where every job named by the request's spec.clusters.sameAs holds a placement."""

    name: str = "SameAs"

    def filter(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> Reason | None:
        for key in request.spec.clusters.same_as:
            clusters = ctx.placed.get(JobId(key), frozenset())
            if cluster.name not in clusters:
                # "none now", never "yet": the scheduler sees placements, not phases, and a named job that ended holds
                # none for ever (a job with nothing placed then fails, server/same_as_ends.py; new60b N1)
                where = f"it holds one on {', '.join(sorted(clusters))}" if clusters else "it holds none now"
                return Reason(ReasonCode.CLUSTER_AFFINITY,
                              f"{cluster.name}: job {key} holds no placement here ({FIELD}; {where})")
        return None


__all__ = ["FIELD", "SameAs", "placed"]
