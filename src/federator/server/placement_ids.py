"""What a placement id says of its job: `JOB.gGEN.CLUSTER`, and `:N` after it for a second placement on one cluster.

A module of its own because the orphans' bookkeeping (orphans.py), the adoption of a restored or re-applied job's
running work (adoption.py, reapplied.py) and the agent stream (agent_service.py) all read ids this way, and orphans.py
holds the adoption: reading an id from there made an import cycle.
"""

from __future__ import annotations

import re

from federator.model import JobId

_GENERATION = re.compile(r"^(?P<job>.+)\.g(?P<gen>\d+)$")


def head(placement_id: str) -> str:
    """A placement id without the `:N` a second placement on one cluster carries: JOB.gGEN.CLUSTER."""
    rest, colon, n = placement_id.rpartition(":")
    return rest if colon and n.isdigit() else placement_id


def job_of(placement_id: str, cluster: str) -> tuple[JobId, int] | None:
    """The job id and generation a placement id of `cluster` names (JOB.gGEN.CLUSTER, and `:N` after it for a
    second one there); None for an id of another form (made up, or another cluster's)."""
    first = head(placement_id)
    suffix = f".{cluster}"
    if not first.endswith(suffix):
        return None
    m = _GENERATION.match(first[:-len(suffix)])
    return (JobId(m["job"]), int(m["gen"])) if m else None


__all__ = ["head", "job_of"]
