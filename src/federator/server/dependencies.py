"""Jobs that wait on other jobs (`sbatch --dependency=afterok:A`): kept waiting in the federator, released or failed
when what they wait on ends.

Why: a chain of jobs was `federator wait A --for Succeeded && federator submit -f b.yaml`, which needs the user's
shell up for the whole of A and loses the chain when a laptop sleeps (outside QA, HPC). A job's spec now names the
jobs it waits on and the condition (JobSpec.depends_on, model/dependency.py; the contract is types.proto
JobDependency), and the federator keeps the chain: across a restart too, since the dependency is part of the
stored spec and each waiting job is judged again on start against its dependencies' stored phases.

- Submit resolves each key to the job it names now (`resolved`), and keeps the ids: a key the submitter may not
  see is answered as no job (DependencyNotFound, NOT_FOUND); one that has already ended as the condition can never
  take (afterok: failed; afternotok: succeeded) is refused (DependencyEnded, FAILED_PRECONDITION). Every named job
  exists at Submit, so no chain loops.
- A waiting job carries `Job.waiting_on` (not stored: judged again on start). `partial.owes` is False for it, as
  for a held job, so no plan offers it to the pure scheduler; it is counted in the pending caps (it is kept) and
  in federator_pending_jobs{reason="Dependency"}, and left out of the oldest-pending age and the pending demand.
- Every change of a job is seen through `Federator.notify` (`changed`): when a named job ends, its dependents are
  judged. One that ended as the condition can never take (NEVER: afterok, Failed or Cancelled; afternotok,
  Succeeded), or was removed by retention before its end was seen (but under afterany), fails the dependent at once
  ("DependencyNeverSatisfied: ..."), which fails its own dependents in turn; when all ended as it asks (SATISFIED:
  afterok, all succeeded; afternotok, all failed or were cancelled; afterany, all ended) the job becomes a
  candidate of the next cycle. While it waits, its message
  follows its dependencies' phases.
- Dependents are judged when a job's change is announced (`Federator.notify`, what Watch hears), which for an
  agent's report of an end and for a Cancel is once that end is stored: a restart never finds a dependent placed
  behind a dependency whose end the store lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from federator.jobfile import shown
from federator.model import (
    DEPENDS_ON_ANNOTATION,
    Condition,
    Job,
    JobDependency,
    JobId,
    JobPhase,
    JobSpec,
    Reason,
    ReasonCode,
)
from federator.model.dependency import parse_dependency
from federator.server.job_keys import Ambiguous, resolve
from federator.server.submit_errors import SubmitError

if TYPE_CHECKING:
    from federator.server.federator import Federator

NEVER_SATISFIED = "DependencyNeverSatisfied"  # the first word of the message of a dependent failed for it (Slurm's)

Visible = Callable[[list[Job]], list[Job]]

_FAILED = frozenset({JobPhase.FAILED, JobPhase.CANCELLED})
# The ends of a named job that let its dependent go (Slurm's afterok, afternotok, afterany), and those after which
# it never can (the dependent then fails, DependencyNeverSatisfied): a job's dependency waits while neither holds
SATISFIED: dict[Condition, frozenset[JobPhase]] = {
    Condition.AFTER_OK: frozenset({JobPhase.SUCCEEDED}),
    Condition.AFTER_NOT_OK: _FAILED,
    Condition.AFTER_ANY: frozenset({JobPhase.SUCCEEDED, *_FAILED}),
}
NEVER: dict[Condition, frozenset[JobPhase]] = {
    Condition.AFTER_OK: _FAILED,
    Condition.AFTER_NOT_OK: frozenset({JobPhase.SUCCEEDED}),
    Condition.AFTER_ANY: frozenset(),
}


class DependencyNotFound(SubmitError):
    """A key of spec.dependsOn names no job the submitter may see (NOT_FOUND, as Get answers)."""


class DependencyEnded(SubmitError):
    """Under afterok, a named job has already failed or been cancelled: the job could never run
    (FAILED_PRECONDITION)."""


def same_namespace(spec: JobSpec) -> Visible:
    """What a FederatedJob's spec.dependsOn may name: jobs of its own namespace (Kubernetes mode)."""
    return lambda jobs: [j for j in jobs if j.spec.namespace == spec.namespace]


def resolved(jobs: Mapping[JobId, Job], spec: JobSpec, visible: Visible) -> JobSpec:
    """`spec` with its dependency's keys resolved to job ids (server/job_keys.py), or a SubmitError naming
    spec.dependsOn: a malformed one, an ambiguous name, a key naming no job `visible` lets the submitter see
    (DependencyNotFound), under afterok a job already Failed or Cancelled (DependencyEnded)."""
    value = spec.annotation(DEPENDS_ON_ANNOTATION)
    if not value:
        return spec
    dep = parse_dependency(value)
    if isinstance(dep, str):
        raise SubmitError(f"spec.dependsOn.{dep}")
    ids: list[str] = []
    for key in dep.jobs:
        found = resolve(jobs, key, visible)
        if isinstance(found, Ambiguous):
            raise SubmitError(f"spec.dependsOn.jobs: {found.message}")
        if found is None or not visible([found]):
            raise DependencyNotFound(f"spec.dependsOn.jobs: no job with id or name {shown(key)}")
        if found.phase in NEVER[dep.condition]:
            raise DependencyEnded(f"spec.dependsOn.jobs: job {found.job_id} has ended {found.phase}, so "
                                  f"{dep.condition.value} can never be satisfied; name a job that may still "
                                  f"{'fail' if dep.condition is Condition.AFTER_NOT_OK else 'succeed'}, "
                                  "or use afterany")
        if found.job_id not in ids:  # two keys of one job (its id and its name) wait on it once
            ids.append(found.job_id)
    kept = JobDependency(dep.condition, tuple(ids)).annotation()
    annotations = tuple(sorted({**dict(spec.annotations), DEPENDS_ON_ANNOTATION: kept}.items()))
    return replace(spec, annotations=annotations)


class Dependencies:
    """The federator's waiting jobs: who waits on whom, judged on start and whenever a job changes."""

    def __init__(self, fed: Federator) -> None:
        self.fed = fed
        self._after: dict[JobId, set[JobId]] = {}  # a job -> the jobs that wait on it
        self._queue: list[Job] = []
        self._busy = False

    def start(self) -> None:
        """On start (the federator built): each waiting job judged against its dependencies' stored phases."""
        for job in list(self.fed.jobs.values()):
            if job.phase is JobPhase.PENDING and job.spec.depends_on is not None:
                self.admitted(job, tell=True)

    def admitted(self, job: Job, *, tell: bool = False) -> None:
        """A Pending job with a dependency is kept (intake reserves it; a restart loads it): it waits, or not.
        `tell`: a change is told to Watch (a new job is told by its submit)."""
        dep = job.spec.depends_on
        if dep is None:
            return
        for key in dep.jobs:
            self._after.setdefault(JobId(key), set()).add(job.job_id)
        self._judge(job, dep, tell=tell)

    def released(self, job: Job) -> None:
        """A hold of `job` was let go (server/job_holds.py): while it still waits on others, its reason is theirs
        (Dependency), not "waiting for the next scheduling cycle"."""
        dep = job.spec.depends_on
        if job.waiting_on and dep is not None:
            self._judge(job, dep, tell=False)

    def changed(self, jobs: Iterable[Job]) -> None:
        """Jobs changed (Federator.notify): the dependents of each are judged again. Re-entrant calls (a failed
        dependent's own notify) are queued and worked here, so a long chain never recurses."""
        self._queue.extend(jobs)
        if self._busy:
            return
        self._busy = True
        try:
            while self._queue:
                job = self._queue.pop()
                if job.job_id not in self._after:
                    continue
                ended = job.phase.is_terminal or self.fed.jobs.get(job.job_id) is not job
                waiting = self._after.pop(job.job_id) if ended else self._after[job.job_id]
                for waiter_id in sorted(waiting):
                    waiter = self.fed.jobs.get(waiter_id)
                    if waiter is not None and waiter.phase is JobPhase.PENDING and waiter.waiting_on:
                        dep = waiter.spec.depends_on
                        if dep is not None:
                            self._judge(waiter, dep, tell=True)
        finally:
            self._busy = False

    def _named(self, job: Job, key: str) -> Job | None:
        """The job `key` names: its id, else (a FederatedJob's spec.dependsOn read again after a restart) a name
        of the dependent's own namespace."""
        found = self.fed.jobs.get(JobId(key))
        if found is not None:
            return found
        named = resolve(self.fed.jobs, key, same_namespace(job.spec))
        return named if isinstance(named, Job) and named.spec.namespace == job.spec.namespace else None

    def _judge(self, job: Job, dep: JobDependency, *, tell: bool) -> None:
        named = [(key, self._named(job, key)) for key in dep.jobs]
        for key, other in named:  # a job removed by retention: its end unknown, only afterany takes it as ended
            if (other is None and dep.condition is not Condition.AFTER_ANY) or \
                    (other is not None and other.phase in NEVER[dep.condition]):
                self._fail(job, key, other)
                return
        waiting = [(key, other) for key, other in named if other is not None
                   and other.phase not in SATISFIED[dep.condition]]
        if not waiting:
            if job.waiting_on:
                self._release(job, dep)
            return
        reason = Reason(ReasonCode.DEPENDENCY, f"waiting for {dep.condition.value}: " + ", ".join(
            f"{other.job_id} ({other.phase})" for _, other in waiting if other is not None))
        first = not job.waiting_on
        job.waiting_on = tuple(other.job_id for _, other in waiting if other is not None)
        if first:  # no longer a candidate (partial.owes), nor parked, nor asked for its reason group
            self.fed.cycles.parked.unpark(job.job_id)
            self.fed.cycles.refresh.left(job.job_id)
        if job.hold is None and job.pending_reason != reason:
            job.pending_reason = reason
            if tell:
                self.fed.notify([job])

    def _release(self, job: Job, dep: JobDependency) -> None:
        """Every job it waited on ended as its condition asks: a candidate of the next cycle, in its place."""
        fed = self.fed
        job.waiting_on = ()
        if job.hold is None:
            job.pending_reason = Reason(ReasonCode.WAITING, f"{dep.condition.value} satisfied ("
                                        f"{', '.join(dep.jobs)}); waiting for the next scheduling cycle")
        fed.arrays.released(job)  # an array's task: it competes for a slot of its throttle (server/arrays.py)
        fed.cycles.pending(job)
        fed.notify([job])
        fed.wake()

    def _fail(self, job: Job, key: str, other: Job | None) -> None:
        """A job it waits on ended as its condition can never take (afterok: Failed or Cancelled; afternotok:
        Succeeded), or is gone: it can never run, so it fails now."""
        fed = self.fed
        how = f"was removed (it ended before {job.job_id} could see how)" if other is None else \
            f"ended {other.phase}" + (f": {other.message}" if other.message else "")
        job.waiting_on = ()
        fed._finish(job, JobPhase.FAILED, f"{NEVER_SATISFIED}: job {key} {how}"[:1024])
        fed.journal.write_or_owe([job])
        fed.notify([job])  # its own dependents are judged in turn (`changed`)


__all__ = ["NEVER", "NEVER_SATISFIED", "SATISFIED", "Dependencies", "DependencyEnded", "DependencyNotFound", "resolved",
           "same_namespace"]
