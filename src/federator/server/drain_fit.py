"""Which of a drain's jobs fit on no other cluster as the fleet is now: the ones a drain will leave pending.

Why: a drain's reply (and `federator drain` without --yes, its dry run) said how many jobs would move, not whether
they had anywhere to go. A gang of 64 H100s on the only cluster with 64 free H100s is ended by the drain and then
waits, Pending, for as long as no other cluster has that room: the operator learned it only afterwards, from the
job's reason. Now the reply names them before anything is ended (`DrainClusterResponse.no_room_elsewhere`).

How: one what-if of the pure placement engine (scheduler/), as the cycle would ask it once the drain ends them,
over the fleet as it is now less the drained cluster:

- the snapshot the cycle would read (room free now, what this federator has reserved taken off), without the
  drained cluster; the work placed elsewhere as it is (queue usage, preemption's candidates), the drained
  cluster's own work left out (it is what leaves), and the gangs' reserved room elsewhere kept;
- every job on the drained cluster asked together, in the cycle's order, each for what the drain ends of it: a
  training gang whole, a serving job the replicas of its part there (its parts elsewhere counting toward its
  minRegions), with the clusters it avoids (server/refusals.py) and its run bound where a maintenance window is
  ahead (server/maintenance_windows.py: a cluster whose window it would cross is no room for it);
- the policy's own scheduler (a new instance of its config, so no cache is shared with a cycle in flight),
  preemption as the policy allows it: a job that would preempt its way in is placed, not left pending;
- a job whose spec.clusters.sameAs names another of the drain's jobs (an RL rollout beside its learner) asked in a
  second what-if after them, over the room they left and beside where they went, as the cycle after theirs would
  place it: in one it would read the named jobs as holding nothing, and be named as fitting nowhere (new60b N4).

A job is named when not all of what the drain ends of it is placed. The jobs waiting now are not asked (they may
take some of that room first), nor room that comes later: it is the fleet as it is now, which is what the
operator can act on (free room first, or drain later). The engine runs on a worker thread, as the cycle does
(server/scheduling.py): a cluster of thousands of jobs is a cycle's worth of work, not to be done on the loop;
its inputs are built on the loop first, immutable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from federator.model import Job, JobId, JobSpec
from federator.scheduler import PlacementRequest, Scheduler
from federator.scheduler.alternatives import Assignment, accepted_models
from federator.scheduler.framework import Allocation
from federator.scheduler.snapshot import Snapshot
from federator.server.drain_surge import split, surges
from federator.server.maintenance_windows import windowed
from federator.server.partial import kept_replicas

if TYPE_CHECKING:
    from federator.server.federator import Federator

SHOWN = 100
"""Job ids a reply names at most (`no_room_elsewhere` says how many)."""


@dataclass(frozen=True, slots=True)
class NoRoom:
    """The jobs of a drain that fit on no other cluster now: how many, and the first `SHOWN` of their ids, in
    the order the drain ends them."""

    count: int = 0
    job_ids: tuple[str, ...] = ()


def requests_off(fed: Federator, cluster: str, left: Sequence[Job]) -> list[PlacementRequest]:
    """What the cycle would be asked for each of `left` (the jobs on `cluster`) once the drain ended its part."""
    now = fed.clock()
    out = []
    for job in left:
        avoid = tuple(sorted({cluster, *fed.refusals.avoided(job.job_id, now)}))
        if surges(job):  # a serving job: only its part on the drained cluster moves
            here, off = split(job, cluster)
            out.append(PlacementRequest(job.job_id, job.spec, sum(p.replicas for p in here), job.submitted_at,
                                        avoid_clusters=avoid, kept_regions=tuple(sorted({p.region for p in off})),
                                        kept_replicas=kept_replicas(job.spec, off)))
        else:
            out.append(PlacementRequest(job.job_id, job.spec, job.spec.replicas, job.submitted_at,
                                        avoid_clusters=avoid))
    return out


def _held(job_id: JobId, spec: JobSpec, a: Assignment, now: float) -> Allocation:
    """What a what-if's assignment would hold once placed, as `Cycles.running` says a placement holds."""
    resources = replace(spec.resources, accelerator_milli=a.accelerator_milli) if a.accelerator_milli else \
        spec.resources
    return Allocation(job_id, spec.queue, spec.priority, spec.preemptible, a.cluster, a.accelerator_model,
                      a.replicas, resources, now, accepted_models(spec, a.alternative), (), a.unit_milli, spec.owner)


async def no_room_elsewhere(fed: Federator, cluster: str, left: Sequence[Job]) -> NoRoom:
    """The jobs of `left` (on `cluster`, in drain order) the fleet less `cluster` has no room for now (module
    docstring)."""
    if not left:
        return NoRoom()
    requests = requests_off(fed, cluster, left)
    snapshot = Snapshot.of(c for c in fed.cycles.snapshot().clusters if c.name != cluster)
    running = tuple(a for a in fed.cycles.running() if a.cluster != cluster)
    reserved = fed.cycles.reserved
    reservations = tuple(r for r in reserved.current() if r.cluster != cluster)
    resting, now, config = reserved.resting(), fed.clock(), fed.scheduler.config
    asked_for, ahead = windowed(fed, requests)  # a cluster whose maintenance window a job would cross is no room

    moving = {job.job_id for job in left}
    # a job whose sameAs names one of the drain's own jobs follows it (new60b N4: counted as fitting nowhere, since
    # where the named job goes is not known until it is placed): asked after them, beside where they went
    following = [r for r in asked_for if moving & {JobId(k) for k in r.spec.clusters.same_as}]
    leading = [r for r in asked_for if r not in following]
    specs = {job.job_id: job.spec for job in left}

    def ask() -> set[str]:
        result = Scheduler(config).schedule(snapshot, leading, running=running, now=now,
                                            reservations=reservations, resting=resting, maintenance=ahead)
        decisions = list(result.decisions)
        if following:  # as the cycle after the one placing the named jobs would: beside where they went
            went = tuple(_held(d.job_id, specs[d.job_id], a, now) for d in decisions for a in d.assignments
                         if d.job_id in specs)
            decisions += Scheduler(config).schedule(result.snapshot, following, running=(*running, *went), now=now,
                                                    reservations=reservations, resting=resting,
                                                    maintenance=ahead).decisions
        asked = {r.job_id: r.replicas for r in requests}
        return {str(d.job_id) for d in decisions if sum(a.replicas for a in d.assignments) >= asked.get(d.job_id, 0)}

    placed = await asyncio.to_thread(ask)
    stuck = [str(job.job_id) for job in left if str(job.job_id) not in placed]
    return NoRoom(len(stuck), tuple(stuck[:SHOWN]))


__all__ = ["SHOWN", "NoRoom", "no_room_elsewhere", "requests_off"]
