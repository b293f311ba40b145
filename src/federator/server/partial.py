"""When one cluster's part of a spread job ends, only that part is placed again.

Why: an inference job's replicas spread over clusters and regions (`scheduler.may_spread`), one placement per
cluster. When one of those clusters was Lost, refused or stopped its part, or did not start it in time
(server/leases.py, server/federator.py, server/start_deadline.py), the federator superseded *every* placement
of the job and queued it whole: losing one region deleted and re-created the serving replicas in every other
healthy region, an outage amplifier.

The rule (`supersede_part`):

- A job that may spread and keeps at least one live placement: the ended placements alone are superseded (a
  cancel order to their cluster, that cluster's acks of them forgotten, their room released). The others keep
  their ids, generations and phases, and get no order. The job stays Placed or Running as they say, with its
  message saying "3 of 4 replicas placed; 1 waiting: <why>" (`model.shortfall`), and owes the rest.
- Otherwise (a training gang, a single replica, or nothing live left) the whole job is queued again, as before.

What a job owes is derived from its placements (`Job.replicas_waiting`: spec.replicas less theirs), so it is
stored wherever the placements are (SQLite, a FederatedJob's status): a restart rebuilds the job short and a
candidate for the rest (server/scheduling.py, `Cycles`), with nothing placed twice. The cycle asks for the rest
only (`rest_request`): replicas = what is missing, the live placements' regions counting toward minRegions, the
queue's quota and share counting what the job holds plus the rest. New placements get the job's next
generation and are appended; the kept ones keep theirs, so a job's placements may carry different generations.
Fencing stays by placement id: a report of a superseded placement names an id no longer in the job (the
superseded one's generation is older than any placement made after it), and its cluster is told to stop it.

Every placement superseded, here or by `Federator.supersede`, is told to `Federator.on_superseded` before it leaves
the job, so the usage meter closes its record at the placement's own end (`Placement.ended_at`: its agent's word,
or server/silent_ends.py for a Lost member's), not at the re-queue; one whose end nobody dated ends now.

Preemption stops a spread job's part alone too: the cycle takes each cluster's part as a victim of its own
(scheduler/preemption.py `victim_units`), and the commit supersedes only the placements on that cluster (server/
scheduling.py). Cancel cancels every live placement (server/federator.py). A failed part is placed again alone
too (server/early_failures.py).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

from federator.model import Job, JobPhase, JobSpec, Placement, Reason
from federator.scheduler import Decision, PlacementRequest, may_spread
from federator.server.clusters import forget_acks
from federator.server.job_message import job_message
from federator.server.orders import CancelOrder, Order

if TYPE_CHECKING:
    from federator.server.federator import Federator


def owes(job: Job) -> bool:
    """Whether the cycle should place (part of) a job: Pending and not held (server/job_holds.py: a held job asks for
    nothing, so no plan offers it and no cycle's decision for it is taken; nor is a job that waits on others,
    server/dependencies.py, nor an array's task past its throttle, server/arrays.py), or Placed/Running short of
    replicas."""
    return (job.phase is JobPhase.PENDING and job.hold is None and not job.waiting_on and not job.throttled) or \
        job.replicas_waiting > 0


def missing(job: Job) -> int:
    """Replicas a cycle's decision for the job must place now: all for a Pending job, else the rest."""
    return job.spec.replicas - sum(p.replicas for p in job.placements)


def fits_what_is_missing(decision: Decision, owed: int, spec: JobSpec | None = None) -> bool:
    """Whether a cycle's decision places what the job owes as planned: all of it, or part of it with the reason the
    rest waits (`Decision.short`: the rest of a running inference job takes what fits, scheduler/spread.py), or an
    elastic gang (`spec`, model/elastic.py) whole at a count from its minimum up, in one cluster. More, or less
    without a reason, means the job changed while the cycle ran: the decision is dropped."""
    placing = sum(a.replicas for a in decision.assignments)
    if spec is not None and spec.elastic and owed == spec.replicas and len(decision.assignments) == 1:
        return spec.min_replicas <= placing <= owed
    return placing == owed or (decision.short is not None and 0 < placing < owed)


def kept_regions(job: Job) -> tuple[str, ...]:
    """The regions of a job's live placements, which count toward its minRegions."""
    return tuple(sorted({p.region for p in job.placements if p.phase.is_active}))


def rest_request(job: Job, avoid: tuple[str, ...]) -> PlacementRequest:
    """The request a cycle places for a job it `owes`: the whole of a Pending job, the rest of a short one."""
    return PlacementRequest(job.job_id, job.spec, missing(job), job.submitted_at, avoid_clusters=avoid,
                            kept_regions=kept_regions(job), kept_replicas=kept_replicas(job.spec, job.placements))


def kept_replicas(spec: JobSpec, placements: Iterable[Placement]) -> tuple[tuple[str, int], ...]:
    """For a job with spec.regions.weights, the replicas `placements` (its live ones that stay) hold per region,
    so the rest makes up each region's share (scheduler/weights.py); () for any other job, whose requests stay the
    shape they were."""
    if not spec.region_weights:
        return ()
    held: dict[str, int] = {}
    for p in placements:
        if p.phase.is_active:
            held[p.region] = held.get(p.region, 0) + p.replicas
    return tuple(sorted(held.items()))


def supersede_part(fed: Federator, job: Job, ended: Collection[str], reason: Reason, *,
                   surged: bool = False) -> list[tuple[str, Order]] | None:
    """Supersede only the placements `ended` of a spread job whose other parts stay live, and owe their replicas;
    the cancel orders to send once the job is stored. None when the whole job must be queued again instead (a
    gang, a single replica, nothing else live, or none of `ended` is the job's): the caller does that. `surged`:
    a drain's surge placed the others (server/drain_surge.py), so a single replica's new part is kept too."""
    gone = [p for p in job.placements if p.placement_id in ended]
    kept = [p for p in job.placements if p.placement_id not in ended]
    if not (may_spread(job.spec) or surged) or not gone or not any(p.phase.is_active for p in kept):
        return None
    cancels: list[tuple[str, Order]] = [(p.cluster, CancelOrder(p.placement_id, f"superseded: {reason.message}"))
                                        for p in gone if not p.phase.is_terminal]
    forget_acks(fed.clusters, gone)
    fed.cycles.released(job, gone)
    fed.on_superseded(gone)  # each at its own end (`ended_at`), for its usage record
    if not job.replicas_waiting:  # owing nothing until now: a wait begins (what WAIT counts; Job.waiting_since)
        job.waiting_since = fed.clock()
    job.placements = kept
    job.pending_reason = reason
    # What the live placements say: Running when every one that is not done runs (as `_derive_phase` says).
    job.phase = JobPhase.RUNNING if all(p.phase in (JobPhase.RUNNING, JobPhase.SUCCEEDED) for p in kept) \
        else JobPhase.PLACED
    job.message = job_message(job, fed.clusters, lost_after=fed.lost_after_seconds)
    fed.cycles.rest(job)
    return cancels


__all__ = ["fits_what_is_missing", "kept_regions", "missing", "owes", "rest_request", "supersede_part"]
