"""Which accelerators a placement takes: the Assignment, and the job's alternatives across vendors.

A job may list alternatives (`spec.accelerators`: 8 x H100, or 16 x Ascend910B
with its own image), most preferred first. The cycle tries them in that order
as variants of one request, so a job pinned to one model behaves exactly as
before alternatives existed, and the Assignment records the one chosen: its
pool's vendor and resource name, the count per replica, and its index.
"""

from __future__ import annotations

from dataclasses import dataclass

from federator.model import ClusterInfo
from federator.scheduler.framework import PlacementRequest


@dataclass(frozen=True, slots=True)
class Assignment:
    """Replicas of one job bound to one cluster: becomes a Placement."""

    cluster: str
    region: str
    replicas: int
    accelerator_model: str
    accelerator_vendor: str = ""
    accelerator_resource: str = ""  # what the pods request: the pool's resource name
    accelerator_milli: int = 0  # per replica, under the chosen alternative
    alternative: int = 0  # index into spec.accelerators (0 when the spec lists none)


def assign(cluster: ClusterInfo, replicas: int, model: str, request: PlacementRequest) -> Assignment:
    """An Assignment naming the pool's vendor and resource, and the request's count per replica."""
    pool = cluster.capacity.pool(model) if model else None
    return Assignment(cluster.name, cluster.region, replicas, model,
                      pool.vendor if pool else "", pool.resource_name if pool else "",
                      request.accelerator_milli if model else 0, request.alternative)
