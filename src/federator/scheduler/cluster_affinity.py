"""The ClusterAffinity filter: a job's replicas go only to the clusters its spec.clusters allows.

Why: `spec.clusters` (model/cluster_affinity.py) is a hard bound, like `spec.regions.allowed`: an organisation
whose data may go only to certain providers' clusters, or a job pinned to named members. So the filter is always
on (residency.ALWAYS_FILTERS: a policy's `filters` list cannot drop it) and every path that places runs it (a
scheduler cycle: the first placement, a re-queue, preemption, a drain's surge, the rebalancer, a scale-up);
training gangs and inference replicas alike. It reads only the cluster's name and the labels its agent reported,
which no tenant sets, and the request's spec: its verdict is constant for a cycle (plugins.CYCLE_CONSTANT_FILTERS)
and part of the request's fit shape (framework.PlacementRequest.fit_shape).

A cluster it rejects says so as ClusterAffinity with what the cluster lacks, so that a job no cluster matches
reads "ClusterAffinity: 0/2 clusters fit: west-1: has no label ..." rather than a want of room. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from federator.model import ClusterInfo, Reason, ReasonCode
from federator.scheduler.framework import CycleContext, PlacementRequest


@dataclass(frozen=True, slots=True)
class ClusterAffinity:
    """A Filter: only clusters the job's spec.clusters allows (names, and a selector over the agent's labels)."""

    name: str = "ClusterAffinity"

    def filter(self, request: PlacementRequest, cluster: ClusterInfo, ctx: CycleContext) -> Reason | None:
        affinity = request.spec.clusters
        if not affinity.bounds:
            return None
        why = affinity.refusal(cluster.name, dict(cluster.labels))
        return None if why is None else Reason(ReasonCode.CLUSTER_AFFINITY, f"{cluster.name}: {why}")


__all__ = ["ClusterAffinity"]
