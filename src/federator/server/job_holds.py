"""Holding a waiting job, and releasing it: a Pending job the cycle never places until it is let go.

Why: a Slurm user's `sbatch --hold` and `scontrol hold/release` (outside QA, HPC H8): submit a pipeline's jobs ahead
and let each go when its data is ready, keep a job queued while its input is fixed, or (an admin) hold a user's work
during an incident, all without cancelling the job and so losing its place and its history. A Kubernetes user has
the same through a FederatedJob's spec.held (backends/kube/controller.py).

What a hold is: `Job.hold` (who, when, whether an admin held another user's job), stored with the job, so it
survives a restart; the job stays Pending, with pending_reason code Held naming who held it and when. A held job
asks for nothing: `partial.owes` is False for it, so no plan offers it to the pure scheduler, no cycle's decision
for it is taken (one planned before the hold), it holds no gang reservation (scheduler/reservation.py ends one whose
job leaves the requests) and it weighs in no queue's or owner's fair share; the pending counts that bound what one
user or queue may keep waiting (Submit's caps) still count it, since it is kept, and a held job could otherwise be
a way past them. Release makes it a candidate again, in its place: its submission time, and so its order within
its queue, is what it was.

Only a Pending job is held: a Placed or Running one is refused (`HoldProblem.NOT_PENDING`), as Slurm refuses
`scontrol hold` of a running job, rather than stopped and re-queued held as Kubernetes' `suspend` would: a hold
never costs work that runs, and stopping is what Cancel does. Both verbs are idempotent: a held job held again,
or a job not held released, is answered unchanged; an admin's hold over an owner's hold makes it an admin's.

The hold takes effect in memory before its write (the job is then no cycle's candidate) and is undone if the
write fails; the call answers only once it is durable. A Watch may so show a hold the store then refused, and
then its undo: the job as it is, each time. A release is stored first, as a Cancel is
(server/cancelling.py), and only then does the job become a candidate: a release that was not stored never lets
a job run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from federator.model import Job, JobHold, JobId, JobPhase, Reason, ReasonCode
from federator.store.errors import StoreUnavailable
from federator.store.group_commit import freeze
from federator.timestamps import utc_seconds

if TYPE_CHECKING:
    from federator.server.federator import Federator


class HoldProblem(StrEnum):
    """Why a hold or release is refused; the edge maps each to a status (server/hold_calls.py)."""

    NOT_PENDING = "NotPending"  # FAILED_PRECONDITION: only a Pending job is held
    ADMIN_HOLD = "AdminHold"  # PERMISSION_DENIED: an admin held it, and only an admin releases it


class HoldRefused(ValueError):
    """A hold or release refused; the message names the job, its phase or who held it, and what to do."""

    def __init__(self, problem: HoldProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Actor:
    """Who holds or releases: the user, and whether an admin acts on a job that is not their own."""

    user: str
    admin: bool = False


def held_reason(hold: JobHold) -> Reason:
    """A held job's pending reason: who held it, when, and who may let it go."""
    who = f"admin {hold.by}" if hold.admin else hold.by
    release = "an admin releases it" if hold.admin else "`federator release` lets it be placed"
    return Reason(ReasonCode.HELD, f"held by {who} at {utc_seconds(hold.at)}; it is not placed until released "
                                   f"({release})")


def refusal(job: Job) -> HoldRefused | None:
    """Why `job` may not be held now, or None. Pure: the caller raises it."""
    if job.phase is JobPhase.PENDING:
        return None
    what = "it has ended" if job.phase.is_terminal else \
        "it holds room in a member cluster and keeps it (cancel it to stop it; a hold never stops work that runs)"
    return HoldRefused(HoldProblem.NOT_PENDING, f"job {job.job_id} is {job.phase}: only a Pending job may be held; "
                                                f"{what}")


def _same_or_stronger(held: JobHold | None, actor: Actor) -> bool:
    return held is not None and (held.admin or not actor.admin)


async def hold_async(fed: Federator, job: Job, actor: Actor) -> Job:
    """Hold `job`, its write awaited off the event loop (JobService.Hold: server/hold_calls.py; a FederatedJob's
    spec.held: backends/kube/holds.py). HoldRefused for a job that is not Pending; StoreUnavailable leaves it as it
    was. A job held already is answered as it is."""
    problem = refusal(job)
    if problem is not None:
        raise problem
    if _same_or_stronger(job.hold, actor):
        return job
    new = JobHold(by=actor.user, at=fed.clock(), admin=actor.admin)
    was = _take(fed, job, new)
    try:
        await fed.journal.commit([job])  # the live state, held: a later write of the job holds it too
    except StoreUnavailable:
        _undo(fed, job, new, was)
        raise
    return job


def _take(fed: Federator, job: Job, new: JobHold) -> tuple[JobHold | None, Reason | None]:
    """The hold takes effect: the job leaves the cycle's candidates (`partial.owes`) and its parking, and is no
    longer asked for its reason group (server/reason_refresh.py). What it had before, for `_undo`."""
    was = (job.hold, job.pending_reason)
    job.hold = new
    job.pending_reason = held_reason(new)
    fed.cycles.parked.unpark(job.job_id)
    fed.cycles.refresh.left(job.job_id)
    fed.notify([job])
    return was


def _undo(fed: Federator, job: Job, new: JobHold, was: tuple[JobHold | None, Reason | None]) -> None:
    """A hold whose write failed: the job is as it was (unless something else changed its hold meanwhile)."""
    if job.hold is not new:
        return
    job.hold, job.pending_reason = was
    if job.phase is JobPhase.PENDING and job.hold is None:
        fed.cycles.pending(job)
        fed.wake()
    fed.notify([job])


def _released(fed: Federator, job: Job, actor: Actor) -> Job | None:
    """The released copy to store, None when there is no hold to release; HoldRefused for an admin's hold that
    `actor` (not an admin) may not release."""
    held = job.hold
    if held is None or job.phase is not JobPhase.PENDING:  # a job cancelled while held keeps the hold it ended under
        return None
    if held.admin and not actor.admin:
        raise HoldRefused(HoldProblem.ADMIN_HOLD, f"job {job.job_id} was held by admin {held.by} at "
                                                  f"{utc_seconds(held.at)}: only an admin may release it")
    out = freeze(job)
    out.hold = None
    out.pending_reason = Reason(ReasonCode.WAITING, f"released by {actor.user} at {utc_seconds(fed.clock())}; "
                                                    "waiting for the next scheduling cycle")
    return out


def _let_go(fed: Federator, job: Job, stored: Job, held: JobHold, *, newest: bool) -> Job:
    """The stored release takes effect: a candidate of the next cycle, in its place. If the job changed meanwhile
    (cancelled, or held anew), it is answered as it is."""
    if fed.jobs.get(job.job_id) is not job or job.hold is not held:
        return job
    job.hold = None
    job.pending_reason = stored.pending_reason
    fed.dependencies.released(job)  # still waiting on other jobs: its reason says so (server/dependencies.py)
    fed.arrays.released(job)  # still past its array's throttle: its reason says so (server/arrays.py)
    if job.phase is JobPhase.PENDING:
        fed.cycles.pending(job)
        fed.orphans.adoption.release(job)  # a placement of it runs (a release undone by a restore): adopted
    if not newest:  # a write of the held job landed after the release's: the store holds what memory does again
        fed.journal.write_or_owe([job])
    fed.notify([job])
    fed.wake()
    return job


async def release_async(fed: Federator, job: Job, actor: Actor) -> Job:
    """Release `job`, its write awaited off the event loop (JobService.Release, spec.held set false). A job not held
    is answered as it is; StoreUnavailable leaves it held."""
    stored = _released(fed, job, actor)
    if stored is None:
        return job
    held = job.hold
    assert held is not None
    newest = await fed.journal.commit_newest([stored])
    return _let_go(fed, job, stored, held, newest=newest)


class WantedHolds:
    """Holds asked of a job that was not Pending, and refused, but still declared: a FederatedJob's spec.held: true
    set on a Placed or Running job (backends/kube/holds.py). The object keeps saying held, so when the job waits
    again (a re-queue: its cluster lost, a drain) it is held then, in the re-queue itself (server/requeue.py), before
    any cycle can place it: Slurm's `scontrol requeuehold`. A gRPC Hold refused is the caller's answer, and is not
    kept: a re-queue of such a job holds nothing, as Slurm's plain requeue. Not stored: a restart's controller reads
    spec.held again, is refused again, and so keeps it again."""

    def __init__(self) -> None:
        self._wanted: dict[JobId, JobHold] = {}

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._wanted

    def want(self, job_id: JobId, hold: JobHold) -> None:
        self._wanted[job_id] = hold

    def drop(self, job_id: JobId) -> None:
        """spec.held set back to false (or the job gone): a later re-queue holds nothing."""
        self._wanted.pop(job_id, None)

    def requeued(self, fed: Federator, job: Job) -> None:
        """`job` waits again after a re-queue (Pending, not yet written): held now if a hold of it is wanted."""
        wanted = self._wanted.pop(job.job_id, None)
        if wanted is None or job.hold is not None:
            return
        job.hold = replace(wanted, at=fed.clock())
        job.pending_reason = held_reason(job.hold)
        fed.cycles.parked.unpark(job.job_id)
        fed.cycles.refresh.left(job.job_id)


def hold_at_submit(fed: Federator, user: str) -> JobHold:
    """The hold a `submit --hold` (SubmitRequest.hold, a FederatedJob made with spec.held) gives its job: its
    owner's, from its first write."""
    return JobHold(by=user, at=fed.clock())


__all__ = ["Actor", "HoldProblem", "HoldRefused", "WantedHolds", "held_reason", "hold_async", "hold_at_submit",
           "refusal", "release_async"]
