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
- A key may name an array (the id `submit --array` printed, types.proto ArrayTask.array_id): the dependency is on
  every task of it, as Slurm's `afterok:ARRAY` (its job_array.html: judged on the highest exit code of any task).
  The array id itself is kept, not its tasks' ids (an array may have 1000 tasks; the 16 keys bound what is named),
  and judged against its tasks' phases (`_array_key`): afterok, every task Succeeded (one Failed or Cancelled fails
  the dependent at once); afterany, every task ended; afternotok, every task ended and at least one Failed or was
  Cancelled (all Succeeded fails the dependent).
- In Kubernetes mode a key may also name an array object of the dependent's namespace (`sweep`): its tasks carry
  the object's name (model/array.py ARRAY_NAME_ANNOTATION, backends/kube/arrays.py), so the key stands for that
  array, kept as its id (what a restart reads back, backends/kube/accepted.py), as if the id were named. Why: the
  id carries the array's uid, which a GitOps repository that makes both cannot write ahead. Until every task is
  accepted the dependent is not submitted (backends/kube/dependency_waits.py), so it never waits on some alone; a
  Submit naming an array by its id, which nothing holds back, waits on the tasks still to be accepted too
  (`Dependencies.unaccepted`, `_array_key`'s `missing`), and is told of each as it is accepted.
  A job of that name wins (a FederatedJob name is one object: a plain job and an array share it only while one
  is being replaced); two arrays of the name (one being replaced) are ambiguous.
  Standalone arrays have only their id.
- Dependents are judged when a job's change is announced (`Federator.notify`, what Watch hears), which for an
  agent's report of an end and for a Cancel is once that end is stored: a restart never finds a dependent placed
  behind a dependency whose end the store lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
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
from federator.model.array import ARRAY_ID_ANNOTATION, ARRAY_NAME_ANNOTATION
from federator.model.dependency import parse_dependency
from federator.server.job_keys import Ambiguous, resolve
from federator.server.job_table import JobTable
from federator.server.same_as_ends import SameAsEnds
from federator.server.submit_errors import SubmitError

if TYPE_CHECKING:
    from federator.server.federator import Federator

NEVER_SATISFIED = "DependencyNeverSatisfied"  # the first word of the message of a dependent failed for it (Slurm's)

Visible = Callable[[list[Job]], list[Job]]

_FAILED = frozenset({JobPhase.FAILED, JobPhase.CANCELLED})
# The ends of a named job that let its dependent go (Slurm's afterok, afternotok, afterany), and those after which
# it never can (the dependent then fails, DependencyNeverSatisfied): a job's dependency waits while neither holds
# (afterstart is judged on whether the job ever started, not on its phase alone: `started`)
SATISFIED: dict[Condition, frozenset[JobPhase]] = {
    Condition.AFTER_OK: frozenset({JobPhase.SUCCEEDED}),
    Condition.AFTER_NOT_OK: _FAILED,
    Condition.AFTER_ANY: frozenset({JobPhase.SUCCEEDED, *_FAILED}),
    Condition.AFTER_START: frozenset({JobPhase.RUNNING}),
}
NEVER: dict[Condition, frozenset[JobPhase]] = {
    Condition.AFTER_OK: _FAILED,
    Condition.AFTER_NOT_OK: frozenset({JobPhase.SUCCEEDED}),
    Condition.AFTER_ANY: frozenset(),
    Condition.AFTER_START: _FAILED,  # Failed or Cancelled with no Running report: `started` says
}


def started(job: Job) -> bool:
    """Whether `job` has started running (afterstart): it runs now, its current attempt was reported Running
    (started_at, kept by the store), an earlier attempt ran (ran_seconds), or it Succeeded (it ran, though a short
    job's member may report its end before any Running). A job that ran and has ended since started all the same;
    one that ended Failed or Cancelled without a Running report (cancelled while pending, failed at launch) never
    can."""
    return job.phase in (JobPhase.RUNNING, JobPhase.SUCCEEDED) or job.started_at > 0 or job.ran_seconds > 0


class DependencyNotFound(SubmitError):
    """A key of spec.dependsOn names no job the submitter may see (NOT_FOUND, as Get answers)."""


class DependencyEnded(SubmitError):
    """Under afterok, a named job has already failed or been cancelled: the job could never run
    (FAILED_PRECONDITION)."""


@dataclass(frozen=True, slots=True)
class _Key:
    """One key of a dependency judged now: why it can never be satisfied (None: it may yet be), what its part of
    the waiting message says (None: satisfied), and the jobs still waited on."""

    never: str | None = None
    waiting: str | None = None
    ids: tuple[JobId, ...] = ()


def _job_key(job_id: str, dependent: JobId, cond: Condition, other: Job | None) -> _Key:
    if other is None:  # removed by retention: its end unknown, only afterany takes it as ended
        if cond is Condition.AFTER_ANY:
            return _Key()
        return _Key(never=f"job {job_id} was removed (it ended before {dependent} could see how)")
    if cond is Condition.AFTER_START and started(other):
        return _Key()
    if cond is Condition.AFTER_START and other.phase.is_terminal:
        return _Key(never=f"job {job_id} ended {other.phase} before it started" + (
            f": {other.message}" if other.message else ""))
    if other.phase in NEVER[cond]:
        return _Key(never=f"job {job_id} ended {other.phase}" + (f": {other.message}" if other.message else ""))
    if other.phase in SATISFIED[cond]:
        return _Key()
    return _Key(waiting=f"{other.job_id} ({other.phase})", ids=(other.job_id,))


def _array_key(array_id: str, cond: Condition, tasks: list[tuple[JobId, Job | None]], missing: int = 0) -> _Key:
    """An array named as a key, judged against its tasks (see the module). A task removed by retention counts as
    ended, and under afterok as never satisfied, as a job key's does. `missing`: its tasks still to be accepted
    (Kubernetes mode, `Dependencies.unaccepted`), waited on as tasks not ended."""
    failed = [t for _, t in tasks if t is not None and t.phase in _FAILED]
    removed = [i for i, t in tasks if t is None]
    running = any(t is not None and not t.phase.is_terminal for _, t in tasks)
    if cond is Condition.AFTER_START:  # every task started; one ended unstarted (or removed) never can
        unstarted = [t for _, t in tasks if t is not None and not started(t)]
        ended = next((t for t in unstarted if t.phase.is_terminal), None)
        if ended is not None or removed:
            how = f"task {ended.job_id} ended {ended.phase} before it started" if ended is not None \
                else f"task {removed[0]} was removed"
            return _Key(never=f"array {array_id}: {how}")
        if unstarted or missing:
            said = f"{len(tasks) + missing} tasks, {missing} not accepted yet" if missing else f"{len(tasks)} tasks"
            return _Key(waiting=f"every task of array {array_id} to start ({said})", ids=(JobId(array_id),))
        return _Key()
    if cond is Condition.AFTER_OK and (failed or removed):
        how = f"task {failed[0].job_id} ended {failed[0].phase}" + (
            f": {failed[0].message}" if failed[0].message else "") if failed else f"task {removed[0]} was removed"
        return _Key(never=f"array {array_id}: {how}")
    if running or missing:
        said = f"{len(tasks) + missing} tasks, {missing} not accepted yet" if missing else f"{len(tasks)} tasks"
        return _Key(waiting=f"every task of array {array_id} ({said})", ids=(JobId(array_id),))
    if cond is Condition.AFTER_NOT_OK and not failed:
        return _Key(never=f"array {array_id}: every task of it ended, none Failed or Cancelled")
    return _Key()


def array_tasks(jobs: Mapping[JobId, Job], array_id: str) -> tuple[JobId, ...]:
    """The ids of an array's tasks the federator holds, in index order: from the job table's array index
    (server/array_index.py), else (a plain mapping) one scan of every job's annotations."""
    if isinstance(jobs, JobTable):
        found = [jobs[i] for i in jobs.arrays.tasks(array_id)]
    else:
        mark = (ARRAY_ID_ANNOTATION, array_id)
        found = [j for j in jobs.values() if mark in j.spec.annotations]
    return tuple(j.job_id for j in sorted(found, key=lambda j: j.spec.array.task_id))  # type: ignore[union-attr]


def named_arrays(jobs: Mapping[JobId, Job], namespace: str, name: str) -> tuple[str, ...]:
    """The ids of the arrays whose object is named `name` in `namespace` (Kubernetes mode: their tasks carry
    ARRAY_NAME_ANNOTATION, which only the controller sets on a task its array owns): from the job table's array
    index, else (a plain mapping) one scan of every job. Before the index, every key naming no job (a typo, a
    FederatedJob not accepted yet) walked all of them."""
    if isinstance(jobs, JobTable):
        return jobs.arrays.named(namespace, name)
    mark = (ARRAY_NAME_ANNOTATION, name)
    return tuple(sorted({j.spec.array.array_id for j in jobs.values() if j.spec.array is not None
                         and j.spec.namespace == namespace and mark in j.spec.annotations}))


def same_namespace(spec: JobSpec) -> Visible:
    """What a FederatedJob's spec.dependsOn may name: jobs of its own namespace (Kubernetes mode)."""
    return lambda jobs: [j for j in jobs if j.spec.namespace == spec.namespace]


def resolved(jobs: Mapping[JobId, Job], spec: JobSpec, visible: Visible,
             tasks_of: Callable[[str], tuple[JobId, ...]] | None = None) -> JobSpec:
    """`spec` with its dependency's keys resolved to job ids (server/job_keys.py) or array ids, or a SubmitError
    naming spec.dependsOn: a malformed one, an ambiguous name (of jobs, or of arrays: `named_arrays`, Kubernetes
    mode's array objects), a key naming no job or array `visible` lets the submitter see (DependencyNotFound),
    under afterok a job already Failed or Cancelled (DependencyEnded).
    `tasks_of`: an array's tasks (Dependencies.tasks_of, which remembers them: each of an array's thousand tasks
    submitted after another array resolves the same key); None: `array_tasks` of `jobs`."""
    spec = _same_as_resolved(jobs, spec, visible)
    tasks_of = tasks_of or (lambda key: array_tasks(jobs, key))
    value = spec.annotation(DEPENDS_ON_ANNOTATION)
    if not value:
        return spec
    dep = parse_dependency(value)
    if isinstance(dep, str):
        raise SubmitError(f"spec.dependsOn.{dep}")
    ids: list[str] = []
    for key in dep.jobs:
        tasks: tuple[JobId, ...]
        found = resolve(jobs, key, visible)
        if isinstance(found, Ambiguous):
            raise SubmitError(f"spec.dependsOn.jobs: {found.message}")
        array_id, tasks = key, ()
        if found is None and not (tasks := tuple(t for t in tasks_of(key) if t in jobs)):
            named = named_arrays(jobs, spec.namespace, key)  # Kubernetes mode: an array object's name
            if len(named) > 1:
                raise SubmitError(f"spec.dependsOn.jobs: {shown(key)} names {len(named)} arrays of namespace "
                                  f"{spec.namespace} ({', '.join(named)}: one is being replaced); name one by its "
                                  "array id (status.arrayId)")
            if named:
                array_id = named[0]
                tasks = tuple(t for t in tasks_of(array_id) if t in jobs)
        if tasks and visible([jobs[t] for t in tasks]):
            judged = _array_key(array_id, dep.condition, [(t, jobs[t]) for t in tasks])  # every task of it
            if judged.never is not None:
                raise DependencyEnded(f"spec.dependsOn.jobs: {judged.never}, so {dep.condition.value} can never be "
                                      "satisfied; name an array that may still satisfy it, or use afterany")
            if array_id not in ids:  # kept as the array's id (its name and its id wait on it once)
                ids.append(array_id)
            continue
        if found is None or not visible([found]):
            raise DependencyNotFound(f"spec.dependsOn.jobs: no job or array with id or name {shown(key)}")
        if dep.condition is Condition.AFTER_START and found.phase.is_terminal and not started(found):
            raise DependencyEnded(f"spec.dependsOn.jobs: job {found.job_id} ended {found.phase} before it started, "
                                  "so afterstart can never be satisfied; name a job that may still start")
        if dep.condition is not Condition.AFTER_START and found.phase in NEVER[dep.condition]:
            raise DependencyEnded(f"spec.dependsOn.jobs: job {found.job_id} has ended {found.phase}, so "
                                  f"{dep.condition.value} can never be satisfied; name a job that may still "
                                  f"{'fail' if dep.condition is Condition.AFTER_NOT_OK else 'succeed'}, "
                                  "or use afterany")
        if found.job_id not in ids:  # two keys of one job (its id and its name) wait on it once
            ids.append(found.job_id)
    kept = JobDependency(dep.condition, tuple(ids)).annotation()
    annotations = tuple(sorted({**dict(spec.annotations), DEPENDS_ON_ANNOTATION: kept}.items()))
    return replace(spec, annotations=annotations)


def _same_as_resolved(jobs: Mapping[JobId, Job], spec: JobSpec, visible: Visible) -> JobSpec:
    """`spec` with spec.clusters.sameAs's keys resolved to job ids (kept, so a later job of that name is never
    followed by mistake), or a SubmitError naming the key: one naming no job `visible` lets the submitter see
    (DependencyNotFound, NOT_FOUND as Get answers), an ambiguous name, a job that has ended (DependencyEnded: it
    will never hold a placement again; scheduler/same_as.py reads the placements)."""
    affinity = spec.clusters
    if not affinity.same_as:
        return spec
    ids: list[str] = []
    for i, key in enumerate(affinity.same_as):
        field = f"spec.clusters.sameAs[{i}]"
        found = resolve(jobs, key, visible)
        if isinstance(found, Ambiguous):
            raise SubmitError(f"{field}: {found.message}")
        if found is None and (tasks := [jobs[t] for t in array_tasks(jobs, key) if visible([jobs[t]])]):
            # an array the submitter may see: not "no job" (read as a typo), but what to name instead (new60b N5)
            raise SubmitError(f"{field}: {shown(key)} is an array, not a job, and sameAs names jobs; name the task "
                              f"it must run beside (such as {tasks[0].job_id})")
        if found is None or not visible([found]):
            raise DependencyNotFound(f"{field}: no job with id or name {shown(key)}")
        if found.phase.is_terminal:
            raise DependencyEnded(f"{field}: job {found.job_id} has ended {found.phase}, so it will never hold a "
                                  "placement to share; name a job that is pending or running")
        if found.job_id not in ids:  # its id and its name: one job
            ids.append(found.job_id)
    return replace(spec, clusters=replace(affinity, same_as=tuple(ids)))


class Dependencies:
    """The federator's waiting jobs: who waits on whom, judged on start and whenever a job changes."""

    def __init__(self, fed: Federator) -> None:
        self.fed = fed
        self._after: dict[JobId, set[JobId]] = {}  # a job -> the jobs that wait on it
        # a key no job has -> its array's tasks (none: not an array), once every task is accepted; dropped when
        # none is left (`_prune`)
        self._arrays: dict[str, tuple[JobId, ...]] = {}
        # Kubernetes mode: how many tasks of the array (namespace, id) are still to be accepted as jobs (each task is
        # an object accepted by its own worker; backends/kube/dependency_waits.py `unaccepted`). Standalone makes
        # every task in its Submit's one commit: none. A Submit naming an array by its id (`submit --after`) while
        # some were still to come waited on those accepted alone, and ran once they had ended.
        self.unaccepted: Callable[[str, str], int] = lambda namespace, array_id: 0
        # an array with tasks still to be accepted -> the jobs waiting on it, each told of a task accepted (`changed`)
        self._incomplete: dict[str, set[JobId]] = {}
        # (array id, condition) -> its judgement, while no job changed: the thousand tasks of an array after another
        # are judged against it once a change, not once each (`changed` clears it)
        self._judged: dict[tuple[str, Condition], _Key] = {}
        self._queue: list[Job] = []
        self._busy = False
        # jobs whose spec.clusters.sameAs names one that ended can never be placed: failed as a dependent is
        self.same_as = SameAsEnds(fed, self._fail)

    def start(self) -> None:
        """On start (the federator built): each waiting job judged against its dependencies' stored phases."""
        for job in list(self.fed.jobs.values()):
            if job.phase is JobPhase.PENDING and job.spec.depends_on is not None:
                self.admitted(job, tell=True)
        self.same_as.start()

    def admitted(self, job: Job, *, tell: bool = False) -> None:
        """A Pending job with a dependency is kept (intake reserves it; a restart loads it): it waits, or not.
        `tell`: a change is told to Watch (a new job is told by its submit)."""
        self.same_as.admitted(job)  # a follower of each job its spec.clusters.sameAs names (same_as_ends.py)
        dep = job.spec.depends_on
        if dep is None:
            return
        for key in dep.jobs:
            tasks, missing = self._lookup(key) if JobId(key) not in self.fed.jobs else ((JobId(key),), 0)
            for job_id in tasks:
                self._after.setdefault(job_id, set()).add(job.job_id)
            if missing:
                self._incomplete.setdefault(key, set()).add(job.job_id)
        self._judge(job, dep, tell=tell)

    def _lookup(self, key: str, *, remember_none: bool = True) -> tuple[tuple[JobId, ...], int]:
        """The tasks of the array `key` (a kept dependency's key) names, or () when it names none, and how many of
        its tasks are still to be accepted (`unaccepted`); remembered once every task is (an array's tasks are all
        made by its Submit; one removed since is judged as removed). `remember_none`: a key naming no array is
        remembered as such too."""
        found = self._arrays.get(key)
        if found is not None:
            return found, 0
        found = array_tasks(self.fed.jobs, key)
        missing = self.unaccepted(self.fed.jobs[found[0]].spec.namespace, key) if found else 0
        if not missing and (found or remember_none):
            self._arrays[key] = found
            self._incomplete.pop(key, None)
        return found, missing

    def tasks_of(self, key: str) -> tuple[JobId, ...]:
        """The tasks of the array a key Submit resolves names, held now: an array whose every task is accepted is
        remembered, a key naming none is not (a submitter's typos would grow the map)."""
        return self._lookup(key, remember_none=False)[0]

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
        self._judged.clear()
        if self._busy:
            return
        self._busy = True
        try:
            while self._queue:
                job = self._queue.pop()
                self._judged.clear()
                self.same_as.changed(job)  # a named job's end fails the jobs whose sameAs names it
                if (self._arrays or self._incomplete) and self.fed.jobs.get(job.job_id) is not job:
                    self._prune(job)
                task = job.spec.array
                if task is not None and task.array_id in self._incomplete and self.fed.jobs.get(job.job_id) is job:
                    # a task of an array some wait on accepted: they wait on it too, and are judged again now
                    self._after.setdefault(job.job_id, set()).update(self._incomplete[task.array_id])
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

    def _prune(self, gone: Job) -> None:
        """A job left the store (retention; its FederatedJob deleted): a remembered key that names it, or whose
        waiter it was, is dropped once none of its tasks is left, so the map never outgrows the arrays the store
        holds (a busy federator's months of arrays named by dependencies grew it for ever). Only a memory: a key
        named again is looked up again (the job table's array index, server/array_index.py)."""
        task = gone.spec.array
        dep = gone.spec.depends_on
        keys = ([task.array_id] if task is not None else []) + (list(dep.jobs) if dep is not None else [])
        jobs = self.fed.jobs
        for key in keys:
            tasks = self._arrays.get(key)
            if tasks is not None and not any(t in jobs for t in tasks):
                del self._arrays[key]
            waiters = self._incomplete.get(key)
            if waiters is not None:
                waiters.discard(gone.job_id)
                if not waiters or not array_tasks(jobs, key):
                    del self._incomplete[key]

    def _named(self, job: Job, key: str) -> Job | None:
        """The job `key` names: its id, else (a FederatedJob's spec.dependsOn read again after a restart) a name
        of the dependent's own namespace."""
        found = self.fed.jobs.get(JobId(key))
        if found is not None:
            return found
        named = resolve(self.fed.jobs, key, same_namespace(job.spec))
        return named if isinstance(named, Job) and named.spec.namespace == job.spec.namespace else None

    def _key(self, job: Job, key: str, cond: Condition) -> _Key:
        other = self._named(job, key)
        tasks, missing = self._lookup(key) if other is None else ((), 0)
        if not tasks:
            return _job_key(key, job.job_id, cond, other)
        judged = self._judged.get((key, cond))
        if judged is None:
            judged = self._judged[(key, cond)] = _array_key(key, cond, [(t, self.fed.jobs.get(t)) for t in tasks],
                                                            missing)
        return judged

    def _judge(self, job: Job, dep: JobDependency, *, tell: bool) -> None:
        judged = [self._key(job, key, dep.condition) for key in dep.jobs]
        for key in judged:
            if key.never is not None:
                self._fail(job, key.never)
                return
        waiting = [key for key in judged if key.waiting is not None]
        if not waiting:
            if job.waiting_on:
                self._release(job, dep)
            return
        reason = Reason(ReasonCode.DEPENDENCY, f"waiting for {dep.condition.value}: " + ", ".join(
            str(key.waiting) for key in waiting))
        first = not job.waiting_on
        job.waiting_on = tuple(i for key in waiting for i in key.ids)
        if first:  # no longer a candidate (partial.owes), nor parked, nor asked for its reason group
            self.fed.cycles.parked.unpark(job.job_id)
            self.fed.cycles.refresh.left(job.job_id)
        if job.hold is None and job.pending_reason != reason:
            job.pending_reason = reason
            if tell:
                # stored too, as a cycle's new reasons are (lazily): a FederatedJob's status is what the store writes,
                # and said "(Placed)" of a named job refused back to Pending for as long as it waited (new60b N9)
                self.fed.journal.enqueue_lazy([job])
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

    def _fail(self, job: Job, why: str) -> None:
        """A job it waits on ended as its condition can never take (afterok: Failed or Cancelled; afternotok:
        Succeeded), or is gone: it can never run, so it fails now."""
        fed = self.fed
        job.waiting_on = ()
        fed._finish(job, JobPhase.FAILED, f"{NEVER_SATISFIED}: {why}"[:1024])
        fed.journal.write_or_owe([job])
        fed.notify([job])  # its own dependents are judged in turn (`changed`)


__all__ = ["NEVER", "NEVER_SATISFIED", "SATISFIED", "Dependencies", "DependencyEnded", "DependencyNotFound",
           "array_tasks", "named_arrays", "resolved", "same_namespace", "started"]
