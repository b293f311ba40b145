"""Scaling a serving job: a new replica count for an inference job whose running parts keep serving.

Why: a job's spec was immutable, so an inference user who wanted more (or fewer) replicas deleted the job and
made it again, losing every serving replica meanwhile. A spread job is already made of parts, one placement per
cluster, and owes what its placements lack (server/partial.py: `Job.replicas_waiting`, `rest_request`,
`supersede_part`); scaling builds on exactly that:

- Up: the stored spec gets the new count, and the job owes the difference. Its placements keep their ids,
  generations and phases and get no order; the cycle places the rest only, admitted against the queue's quota and
  share as any rest is.
- Down: a part whose agent can resize (Hello.features "resize") shrinks in place: it keeps its id and gets a
  Resize order (server/shrink.py, `plan_down`). Other parts are superseded whole (a cancel order to their
  cluster, as `supersede_part` sends) until the live placements hold no more than the new count
  (`parts_to_drop` when no part can shrink), chosen so that as many replicas as possible keep serving, the
  Running ones and then those nearest the users (server/nearness.py: the farthest and non-preferred stop
  first), and minRegions stays reachable; what is then owed is placed as the rest. On an agent without the
  feature a part of 3 on a job scaled from 6 to 4 may be replaced by a new part of 1, as before. A job with
  spec.regions.weights keeps, in each region, at most that region's share of the new count instead (its ratio:
  server/shrink.py, `plan_down`), its parts planned so whether they can shrink in place or not.
- A Pending job (nothing placed yet) simply gets the new count.

Only inference work whose replica count is its own may be scaled (`refusal`): a training gang's size is fixed
(it runs all or nothing, its rendezvous sized for it), and a job that embeds its workload takes its replicas from
the workload's pod sets. The count is held to what a submit allows (the job file validator and the federator's
limits), and to the job's minRegions.

Durable first, as a Cancel is (server/cancelling.py): the scaled job is built on a copy (`scaled`) and written
before the live job changes or any agent hears of it; a write that fails leaves the job as it was. The gRPC Scale
awaits that write off the event loop (`scale_async`; it held the loop for the fsync, every stream waiting). A restart
after the write rebuilds the job with the new spec and only the kept placements: short, it is a candidate for the
rest (server/scheduling.py, `Cycles`), and a superseded part its member still runs is fenced when that member's
agent reports it (its id is no longer the job's).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from enum import StrEnum
from itertools import combinations
from typing import TYPE_CHECKING

from federator.jobfile import JobFileError
from federator.model import Job, JobId, JobKind, JobPhase, JobSpec, Placement, Reason, ReasonCode
from federator.security.limits import Limits
from federator.server import nearness, shrink
from federator.server.api_specs import checked
from federator.server.cancelling import ROUNDS
from federator.server.job_message import job_message
from federator.server.nearness import ANYWHERE, Nearness
from federator.server.orders import Order
from federator.server.partial import owes, supersede_part
from federator.server.run_limits import paused
from federator.store.errors import StoreUnavailable
from federator.store.group_commit import freeze

if TYPE_CHECKING:
    from federator.server.federator import Federator

EXACT_PARTS = 12  # up to this many parts, every set of them is tried (4,096 at most); past it, a greedy choice


class ScaleProblem(StrEnum):
    """Why a scale is refused; the edge maps each to a status (job_service: INVALID_ARGUMENT, FAILED_PRECONDITION)."""

    INVALID = "Invalid"  # the count itself: not 1 to the limit, or below minRegions
    NOT_SCALABLE = "NotScalable"  # the job: a training gang, or replicas that come from spec.workload
    FINISHED = "Finished"  # the job has ended: there is nothing to scale


class ScaleRefused(ValueError):
    """A scale refused; the message names the field and the problem."""

    def __init__(self, problem: ScaleProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


def refusal(job: Job, replicas: int, limits: Limits) -> ScaleRefused | None:
    """Why `job` may not be scaled to `replicas`, or None. Pure: the caller raises it."""
    spec = job.spec
    if job.phase.is_terminal:
        return ScaleRefused(ScaleProblem.FINISHED, f"job {job.job_id} is {job.phase}; only a job that has not "
                                                   "ended may be scaled")
    if spec.kind is not JobKind.INFERENCE:
        return ScaleRefused(ScaleProblem.NOT_SCALABLE, f"spec.kind: job {job.job_id} is {spec.kind.value} work, "
                            "whose gang size is fixed; only inference jobs may be scaled")
    if spec.workload_json:
        return ScaleRefused(ScaleProblem.NOT_SCALABLE, "spec.replicas: is derived from spec.workload (its pod "
                            "sets); change the workload's replicas by making the job again")
    if replicas < 1:
        return ScaleRefused(ScaleProblem.INVALID, f"replicas: must be at least 1, got {replicas}")
    if replicas < spec.min_regions:
        return ScaleRefused(ScaleProblem.INVALID, f"replicas: {replicas} is below the job's "
                            f"spec.regions.minRegions ({spec.min_regions}); each region needs a replica")
    wanted = replace(spec, replicas=replicas)
    problem = limits.check_job(wanted)  # the federator's limits, as a submit meets them
    if problem is None:
        problem = _file_problem(wanted)
    return ScaleRefused(ScaleProblem.INVALID, problem) if problem is not None else None


def _file_problem(spec: JobSpec) -> str | None:
    """What the job file validator, which every submit passes, says of the spec with its new count (the bound of
    spec.replicas): only its replicas changed, so only that can be wrong."""
    try:
        checked(spec)
    except JobFileError as exc:
        return str(exc)
    return None


def parts_to_drop(placements: Sequence[Placement], replicas: int, min_regions: int,
                  near: Nearness = ANYWHERE) -> tuple[Placement, ...]:
    """The parts to supersede so that the placements hold no more than `replicas`. The kept ones, in this order:
    hold as many replicas as may be (what is not kept is owed, and placed anew); then as many Running replicas
    (they serve now, a part still starting does not); then the replicas nearest the users by `near`: in the
    job's preferred regions, then in its users' region, then nearer by the policy's latencies, so the
    farthest and non-preferred parts are stopped first (server/nearness.py); then as many regions; then the
    oldest. Always leaving minRegions reachable (their regions plus one per replica still owed). Every set of
    parts is tried for a job of up to EXACT_PARTS parts (one per cluster); past that, a greedy choice."""
    if sum(p.replicas for p in placements) <= replicas:
        return ()
    keep = _best_kept(placements, replicas, min_regions, near) if len(placements) <= EXACT_PARTS else \
        _greedy_kept(placements, replicas, min_regions, near)
    kept = {p.placement_id for p in keep}
    return tuple(p for p in placements if p.placement_id not in kept)


def _reachable(kept: Sequence[Placement], replicas: int, min_regions: int) -> bool:
    held = sum(p.replicas for p in kept)
    return held <= replicas and len({p.region for p in kept}) + (replicas - held) >= min_regions


def _worth(kept: Sequence[Placement], near: Nearness) -> tuple[int, ...]:
    return (sum(p.replicas for p in kept), sum(p.replicas for p in kept if p.phase is JobPhase.RUNNING),
            *near.worth((p.region, p.replicas) for p in kept), len({p.region for p in kept}),
            -sum(p.generation for p in kept))


def _best_kept(placements: Sequence[Placement], replicas: int, min_regions: int,
               near: Nearness) -> Sequence[Placement]:
    best: Sequence[Placement] = ()  # keeping nothing always reaches minRegions: replicas >= minRegions
    for size in range(1, len(placements) + 1):
        for kept in combinations(placements, size):
            if _reachable(kept, replicas, min_regions) and _worth(kept, near) > _worth(best, near):
                best = kept
    return best


def _greedy_kept(placements: Sequence[Placement], replicas: int, min_regions: int,
                 near: Nearness) -> list[Placement]:
    kept: list[Placement] = []
    """Running parts first, then the nearest, then one part per region before the others (big and old first);
    each kept only if the count and minRegions stay within reach with it (keeping nothing always is)."""
    for p in shrink.greedy_order(placements, near):
        if _reachable([*kept, p], replicas, min_regions):
            kept.append(p)
    return kept


def scaled(fed: Federator, job: Job, spec: JobSpec, dropped: Sequence[Placement], reason: Reason, *,
           shrunk: Mapping[str, int] | None = None) -> Job:
    """What `job` becomes with `spec`, without the parts `dropped` and with the parts `shrunk` at their new counts:
    a copy, for the store; `job` is untouched. The same state `supersede_part` (or, with nothing live left,
    `Federator.supersede`) and `shrink.shrink` give the live job."""
    out = freeze(job)
    out.spec = spec
    if shrunk:
        shrink.shrink(out, shrunk, reason="")
        if not dropped:
            out.generation += 1  # see `scale`
    if not dropped:
        if out.phase.is_active:
            _restate(fed, out)
        return out
    gone = {p.placement_id for p in dropped}
    kept = [p for p in out.placements if p.placement_id not in gone]
    out.pending_reason = reason
    out.generation += 1  # see `scale`
    if not any(p.phase.is_active for p in kept):
        out.placements, out.phase, out.placed_at, out.message = [], JobPhase.PENDING, 0.0, ""
        paused(out, fed.clock())  # as `Federator.supersede` stops the live job's run-time clock
        return out
    out.placements = kept
    out.phase = JobPhase.RUNNING if all(p.phase in (JobPhase.RUNNING, JobPhase.SUCCEEDED) for p in kept) \
        else JobPhase.PLACED
    _restate(fed, out)
    return out


def _restate(fed: Federator, job: Job) -> None:
    """A placed job's message for its new count; no pending reason once it owes nothing."""
    if not job.replicas_waiting:
        job.pending_reason = None
    job.message = job_message(job, fed.clusters, lost_after=fed.lost_after_seconds)


def scale(fed: Federator, job: Job, replicas: int) -> Job:
    """Scale `job` to `replicas`: stored before the live job changes or any agent hears of it, blocking until
    stored (the Kubernetes controller, scripts, tests). ScaleRefused (the message names the field) leaves it
    untouched, as StoreUnavailable does; the current count returns it as is."""
    decided = _decided(fed, job, replicas)
    if decided is None:
        return job
    stored, apply = decided
    fed.journal.write([stored])  # durable first; StoreUnavailable: unchanged
    return apply()


class Scalings:
    """One awaited Scale of a job at a time: two at once would each find the other's write queued behind its own,
    and decide again, round after round."""

    def __init__(self) -> None:
        self._locks: dict[JobId, tuple[asyncio.Lock, list[int]]] = {}  # the lock, and how many hold or wait for it

    @asynccontextmanager
    async def one(self, job_id: JobId) -> AsyncIterator[None]:
        lock, users = self._locks.setdefault(job_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._locks[job_id]


async def scale_async(fed: Federator, job_id: JobId, replicas: int) -> Job:
    """`scale` with its write awaited off the event loop (the gRPC edge): the loop serves every stream meanwhile.
    One Scale of a job at a time. Should the job change while its write is awaited (an agent's update, a Cancel, a
    re-queue), or be written again, the scale is decided again from the job as it is then (refused if it ended) and
    written again, as a Cancel is (server/cancelling.py); the last of ROUNDS is written holding the loop."""
    async with fed.scalings.one(job_id):
        wrote = False  # a scaled copy is durable (then overtaken): a failure after it writes the live job again
        for _ in range(ROUNDS):
            job = fed.get(job_id)
            decided = _decided(fed, job, replicas)
            if decided is None:
                return job
            stored, apply = decided
            basis = freeze(job)
            try:
                newest = await fed.journal.commit_newest([stored])
            except StoreUnavailable:
                if wrote:
                    fed.journal.write_or_owe([job])
                raise
            wrote = True
            if newest and fed.jobs.get(job_id) is job and freeze(job) == basis:
                return apply()
        job = fed.get(job_id)
        try:
            return scale(fed, job, replicas)
        except StoreUnavailable:
            fed.journal.write_or_owe([job])
            raise


def _decided(fed: Federator, job: Job, replicas: int) -> tuple[Job, Callable[[], Job]] | None:
    """The scaled copy to store and what applies it to `job` once stored; None when the count is the job's.
    ScaleRefused when it may not be scaled so."""
    problem = refusal(job, replicas, fed.limits)
    if problem is not None:
        raise problem
    if replicas == job.spec.replicas:
        return None
    was = job.spec.replicas
    spec = replace(job.spec, replicas=replicas)
    elastic = shrink.elastic_parts(fed, job) if job.phase.is_active and replicas < was else frozenset()
    near = nearness.of(spec, (p.region for p in job.placements), fed.scheduler.config.latency_ms)
    # A weighted job keeps each region's share (server/shrink.py, `_weighted`), whether its parts can shrink or not.
    weighted = bool(spec.region_weights) and job.phase.is_active and replicas < was
    plan = shrink.plan_down(job.placements, replicas, spec.min_regions, elastic, near, weights=spec.region_weights,
                            group=spec.group_size) if elastic or weighted else \
        shrink.DownPlan(parts_to_drop(job.placements, replicas, spec.min_regions, near)
                        if job.phase.is_active else ())
    dropped = plan.dropped
    said = shrink.summary(job, was, replicas, plan, waiting=shrink.away(fed, job))
    reason = Reason(ReasonCode.WAITING, f"{said}; the replicas owed are placed again" if plan.shrunk else
                    f"scaled from {was} to {replicas} replicas: whole parts were stopped (a part cannot shrink in "
                    "place), and the replicas owed are placed again")
    stored = scaled(fed, job, spec, dropped, reason, shrunk=plan.shrunk)
    # A placed job that owed nothing and owes replicas now (or is queued again whole) waits from now: WAIT counts
    # from the scale-up (Job.waiting_since), not from the submission. A Pending job, or one already short of
    # replicas it keeps, waits on from when it began.
    if job.phase.is_active and (stored.phase is JobPhase.PENDING or (owes(stored) and not job.replicas_waiting)):
        stored.waiting_since = fed.clock()
    if plan and stored.phase.is_active:
        stored.message = f"{said}; {stored.message}" if stored.message else said

    def apply() -> Job:
        cancels: list[tuple[str, Order]] = []
        resizes = shrink.shrink(job, plan.shrunk, reason=said)  # StoreUnavailable above: nothing changed
        if resizes and not dropped:
            job.generation += 1  # as for a drop below: a cycle planned before this sees the parts as they were
        if dropped:  # under the old spec, whose replicas were spread (more than the new count, at least 1)
            part = supersede_part(fed, job, {p.placement_id for p in dropped}, reason)
            # None: nothing live is kept, and the job is queued again whole, for the new count
            cancels = part if part is not None else fed.supersede(job, reason)
            # A cycle planned before this (it runs off the loop) may preempt the parts it knew: at the next generation
            # its verdicts on the job are stale (Cycles.commit), and the next cycle sees the job as it is.
            job.generation += 1
        job.spec = spec
        job.waiting_since = stored.waiting_since  # as stored (supersede_part and supersede above set their own)
        if job.phase is JobPhase.PENDING:
            fed.cycles.pending(job)  # parked for a count that no longer holds: a candidate again
        else:
            _restate(fed, job)
            if plan:
                job.message = f"{said}; {job.message}" if job.message else said
            if job.replicas_waiting:
                fed.cycles.rest(job)
        shrink.count(fed, shrunk=len(resizes), stopped=len(dropped))
        shrink.owe(fed, resizes)  # until acknowledged, across a restart too
        for cluster, order in (*resizes, *cancels):
            fed.send(cluster, order)
        fed.notify([job])
        fed.wake()
        return job

    return stored, apply


__all__ = ["EXACT_PARTS", "ScaleProblem", "ScaleRefused", "parts_to_drop", "refusal", "scale", "scale_async",
           "scaled", "Scalings"]
