"""The placement records a scheduler decision becomes: their ids and their fields.

Why a module of its own: the cycle (server/scheduling.py), the rebalancer (server/rebalancing.py), a drain's
surge (server/drain_surge.py) and adoption all turn assignments into placements, and the cycle imports the
rebalancer. Kept in scheduling.py, the rebalancer could reach it only through an import deferred into a function
body: an import cycle hidden from the linter (tests/test_static_checks.py now refuses one).
"""

from __future__ import annotations

from collections.abc import Sequence

from federator.model import JobId, Placement, PlacementId
from federator.scheduler import Assignment


def placement_ids(job_id: JobId, generation: int, clusters: Sequence[str]) -> list[PlacementId]:
    """The ids of a decision's placements: JOB.gGEN.CLUSTER, and `:2`, `:3`, ... after it for a second and later
    placement on the same cluster (an inference job whose replicas one cluster hosts on two accelerator models).
    One id for both made the agent take the second launch for the first, and that replica never ran. A colon,
    since a cluster's name never has one: `.2` after cluster `east` would be the id of cluster `east.2`."""
    seen: dict[str, int] = {}
    out = []
    for cluster in clusters:
        seen[cluster] = n = seen.get(cluster, 0) + 1
        out.append(PlacementId(f"{job_id}.g{generation}.{cluster}" + (f":{n}" if n > 1 else "")))
    return out


def new_placements(job_id: JobId, generation: int, assignments: Sequence[Assignment]) -> list[Placement]:
    """The placements a decision's assignments become, at the job's new `generation`."""
    ids = placement_ids(job_id, generation, [a.cluster for a in assignments])
    return [Placement(placement_id=pid, job_id=job_id, cluster=a.cluster, region=a.region, replicas=a.replicas,
                      accelerator_model=a.accelerator_model, generation=generation,
                      accelerator_vendor=a.accelerator_vendor, accelerator_resource=a.accelerator_resource,
                      accelerator_milli=a.accelerator_milli, alternative=a.alternative, unit_milli=a.unit_milli)
            for a, pid in zip(assignments, ids, strict=True)]


__all__ = ["new_placements", "placement_ids"]
