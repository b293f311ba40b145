"""Job arrays (`sbatch --array=0-99%10`): one Submit makes N task jobs at once, and the federator keeps the throttle.

Why: a parameter sweep was a shell loop of `federator submit` calls (~1 s each on a login node), and "at most 10 at
once" could not be said at all (outside QA, HPC H9). The throttle is kept here, not by the CLI, because it must hold
after the CLI has exited and across a federator restart. The contract is jobs.proto SubmitRequest.array and
types.proto ArrayTask; the task's annotations, model/array.py.

- `submit_array`: all or none. Each task is admitted as a Submit of it would be (Intake._admit: every check, the
  pending caps counting the tasks before it), then all are stored in one commit; a refusal of any, or a failed
  write, forgets every task it made. Each task keeps "<request_id>.<index>" as its request id, so a retry with the
  same request_id answers the tasks made before and never makes a second array.
- `Arrays`: the throttle. At most `max_running` tasks of an array are let go (candidates, placed or running); the
  others are Pending with `Job.throttled` set (reason ArrayThrottle): `partial.owes` is False for them, as for a
  held job, so no cycle places them. A held task, or one waiting on a dependency, takes no slot (Slurm's `%N`
  bounds running tasks): it is kept throttled and passed over, and once released (or its dependency met) it
  competes for a slot like the others. When a let-go task ends, is removed or held, the runnable throttled task of
  the lowest index is let go. Not stored: on start each array is judged again from its tasks' stored phases.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from federator.api import convert
from federator.api.v1 import jobs_pb2, types_pb2
from federator.jobfile import REQUEST_ID_ANNOTATION
from federator.model import Job, JobHold, JobId, JobPhase, JobSpec, Reason, ReasonCode
from federator.model.array import ARRAY_ANNOTATIONS, ArrayRequest, ArrayTask, array_id_problem, parse_indices
from federator.security.authz import submitter_of
from federator.server.dependencies import Visible
from federator.server.submit_errors import SubmitError
from federator.server.submit_room import queue_pending, user_pending

if TYPE_CHECKING:
    from federator.server.federator import Federator

YIELD_EVERY = 10  # tasks admitted between yields to the event loop: ~1 ms each
MAX_ARRAY_REQUEST_ID = 122  # a task's request id "<id>.<index>" stays within the 128 a request id may have


class ArrayUnsupported(SubmitError):
    """An array Submit where arrays are not served (Kubernetes mode without its controller's ArrayMaker):
    FAILED_PRECONDITION naming array."""


@dataclass(frozen=True, slots=True)
class Submitted:
    """What an array Submit answers: the array's id, its tasks in index order, and whether it was a retry."""

    array_id: str
    tasks: list[Job]
    replayed: bool


class ArrayMaker(Protocol):
    """Where an array is an object of its own (Kubernetes mode: a FederatedJob with spec.array,
    backends/kube/array_submit.py), an array Submit makes that object and answers its tasks once accepted;
    `submit_array` is the standalone way. `Arrays.maker` is None where arrays are not objects."""

    async def make(self, spec: JobSpec, request: ArrayRequest, *, request_id: str, hold: JobHold | None,
                   visible: Visible, taken: Callable[[JobSpec, str], SubmitError | None]) -> Submitted: ...


def array_request(pb: jobs_pb2.JobArray) -> ArrayRequest:
    """SubmitRequest.array, checked; SubmitError naming array.indices or array.max_running."""
    parsed = parse_indices(pb.indices, pb.max_running)
    if isinstance(parsed, str):
        raise SubmitError(parsed)
    return parsed


def forged(spec: JobSpec) -> str | None:
    """Why a submitted spec may not be taken as it is: it names an array itself (spec.array, or the annotations that
    keep it). Only an array Submit sets them, or a job could join another's array, be let go by its throttle and
    cancelled with it."""
    keys = [k for k, _ in spec.annotations if k in ARRAY_ANNOTATIONS]
    if not keys:
        return None
    return (f"spec.array: is set by the federator on the tasks of an array, not by a submitter (the spec carries "
            f"{keys[0]}); submit an array with SubmitRequest.array (federator submit --array)")


async def submit_array(fed: Federator, spec: JobSpec, request: ArrayRequest, *, request_id: str,
                       hold: JobHold | None, visible: Visible,
                       taken: Callable[[JobSpec, str], SubmitError | None]) -> Submitted:
    """Every task of the array accepted and stored, or none (see the module). `spec` is the owned spec of the
    request; `taken(task_spec, task_request_id)` is Submit's check of a task's name (server/admission.py)."""
    spec, rids, seen = _asked(fed, spec, request, request_id)
    intake = fed.intake
    earlier = seen[0].spec.array if seen else None
    array_id = earlier.array_id if earlier is not None else fed.arrays.new_id(spec.name)
    made: list[Job] = []
    kept: list[Job] = []
    try:
        for n, i in enumerate(request.indices):
            if n and n % YIELD_EVERY == 0:  # agent streams and other calls are served between the tasks' checks
                await asyncio.sleep(0)
            task_spec = _task_spec(spec, ArrayTask(array_id, i, request.max_running))
            refusal = taken(task_spec, rids[i])
            if refusal is not None:
                raise refusal
            job, new = intake._admit(task_spec, rids[i], hold, visible, array=True)
            (made if new else kept).append(job)
            if new:
                fed.arrays.admitted(job)
    except SubmitError as exc:
        _forget(fed, made)
        exc.args = (f"{exc}; array task {i} ({spec.name}-{i}): no task of the array was kept",)
        raise
    except BaseException:
        _forget(fed, made)
        raise
    if kept:  # a retry: the tasks made then (any this call made, for tasks retention removed since, are dropped)
        _forget(fed, made)
        return Submitted(array_id, kept, True)
    write = asyncio.ensure_future(fed.journal.commit(made))  # one commit: all durable, or none kept
    try:
        await asyncio.shield(write)
    except BaseException:
        if not write.done():  # the caller went away: the write goes on, and decides
            write.add_done_callback(lambda w: _settle(fed, made, w))
            raise
        _forget(fed, made)
        raise
    for job in made:  # no yield here: a caller gone at one would leave stored tasks never made candidates
        intake._accepted(job)
    return Submitted(array_id, made, False)


def check_array(fed: Federator, spec: JobSpec, request: ArrayRequest, *, request_id: str, hold: JobHold | None,
                visible: Visible, taken: Callable[[JobSpec, str], SubmitError | None]) -> tuple[Job, Job | None]:
    """An array Submit's check (SubmitRequest.validate_only, server/submit_check.py): the array's own checks, every
    task's name and request id, and every check of the first index's task, which stands for all (the tasks differ
    only by name and index, and no check or warning reads either). Nothing made. (that task as it would be, None),
    or (the first task a request id made before, that task) for an array made before; a refusal raises as
    `submit_array`'s would, naming the task. The pending caps over all the tasks are the Submit's to judge (all or
    none): checking them here would count as pending tasks that do not exist."""
    spec, rids, seen = _asked(fed, spec, request, request_id)
    if seen:
        return seen[0], seen[0]
    array_id = fed.arrays.new_id(spec.name)  # not kept: the Submit draws its own
    first: JobSpec | None = None
    for i in request.indices:
        task_spec = _task_spec(spec, ArrayTask(array_id, i, request.max_running))
        first = first or task_spec
        refusal = taken(task_spec, rids[i])
        if refusal is None and (refusal := fed.intake.in_use(task_spec)) is not None:
            fed.metrics.jobs_rejected.inc()  # as the Submit's _admit counts it
        if refusal is not None:
            refusal.args = (f"{refusal}; array task {i} ({task_spec.name}): no task of the array would be kept",)
            raise refusal
    assert first is not None  # parse_indices gives at least one index
    i = request.indices[0]
    try:
        job, _ = fed.intake.check(first, request_id=rids[i], hold=hold, visible=visible, array=True)
    except SubmitError as exc:
        exc.args = (f"{exc}; array task {i} ({first.name}): no task of the array would be kept",)
        raise
    return job, None


def _asked(fed: Federator, spec: JobSpec, request: ArrayRequest,
           request_id: str) -> tuple[JobSpec, dict[int, str], list[Job]]:
    """What an array Submit or its check reads first: the spec less its request-id annotation, each task's request
    id by index, and the tasks those ids made before (a retry); a SubmitError for a request id that cannot be an
    array's, or an array no wait could let in."""
    carried = spec.annotation(REQUEST_ID_ANNOTATION)  # a job file's own id: the array's, as request_id is
    if request_id and carried and carried != request_id:
        raise SubmitError(f"request_id: {request_id!r} differs from the spec's annotation "
                          f"{REQUEST_ID_ANNOTATION}={carried[:130]!r}")
    request_id = request_id or carried
    spec = replace(spec, annotations=tuple((k, v) for k, v in spec.annotations if k != REQUEST_ID_ANNOTATION))
    if len(request_id) > MAX_ARRAY_REQUEST_ID:
        raise SubmitError(f"request_id: at most {MAX_ARRAY_REQUEST_ID} characters with an array (each task keeps "
                          f"'<request_id>.<index>'), got {len(request_id)}")
    owner = submitter_of(spec)
    for cap in (queue_pending(fed, spec.queue), user_pending(fed, owner)):  # caps no wait could make room under
        if len(request.indices) > cap.limit:
            raise SubmitError(f"array.indices: {len(request.indices)} tasks, more than the {cap.limit} pending jobs "
                              f"{cap.source} allows at once, so no wait would let the array in; split it")
    rids = {i: f"{request_id}.{i}" if request_id else "" for i in request.indices}
    seen = [job for i in request.indices if (job := fed.intake.job_for_request(owner, rids[i])) is not None]
    return spec, rids, seen


def _task_spec(spec: JobSpec, task: ArrayTask) -> JobSpec:
    """The spec of one task: named `<name>-<index>`, carrying its array (model/array.py)."""
    return replace(spec, name=f"{spec.name}-{task.task_id}",
                   annotations=tuple(sorted({**dict(spec.annotations), **task.annotations()}.items())))


async def answered(tasks: list[Job]) -> list[types_pb2.Job]:
    """The tasks as SubmitResponse.array_jobs, converted a few at a time between yields to the event loop (1000 in
    one piece held it some 50 ms)."""
    out: list[types_pb2.Job] = []
    for n, job in enumerate(tasks):
        if n and n % (10 * YIELD_EVERY) == 0:
            await asyncio.sleep(0)
        out.append(convert.job_to_pb(job))
    return out


def _settle(fed: Federator, made: list[Job], write: asyncio.Future[None]) -> None:
    """A write whose caller went away: accepted if it landed, forgotten if not."""
    if write.cancelled() or write.exception() is not None:
        _forget(fed, made)
    else:
        for job in made:
            fed.intake._accepted(job)


def _forget(fed: Federator, made: list[Job]) -> None:
    """Tasks never accepted: out of the throttle's books first (none is let go for another's removal), then out."""
    for job in made:
        fed.arrays.untrack(job.job_id)
    for job in reversed(made):
        fed.intake._forget(job)


class Arrays:
    """The federator's arrays with a throttle: which tasks are let go, judged when a task ends and on start."""

    def __init__(self, fed: Federator) -> None:
        self.fed = fed
        self._tasks: dict[str, list[JobId]] = {}  # a throttled array's id -> its tasks, in index order
        self._array_of: dict[JobId, str] = {}
        self._busy = False
        self._queue: list[Job] = []
        self.maker: ArrayMaker | None = None  # Kubernetes mode's array Submit (ArrayMaker)

    def new_id(self, name: str) -> str:
        """A fresh array id, "<name>-<6 hex>": the form of a job id, and the id of no job or array now."""
        while True:
            array_id = f"{name}-{secrets.token_hex(3)}"
            if array_id not in self._tasks and JobId(array_id) not in self.fed.jobs:
                return array_id

    def start(self) -> None:
        """On start (the federator built): each array judged again from its tasks' stored phases: those placed or
        running are let go first, then the pending ones of the lowest indices up to the throttle."""
        arrays: dict[str, list[Job]] = {}
        for job in self.fed.jobs.values():
            task = job.spec.array
            if task is not None and task.max_running and not job.phase.is_terminal:
                arrays.setdefault(task.array_id, []).append(job)
        for jobs in arrays.values():
            jobs.sort(key=_index)
            for job in jobs:
                self._track(job)
            running = sum(1 for job in jobs if job.phase is not JobPhase.PENDING)
            for job in jobs:
                if job.phase is JobPhase.PENDING:
                    if running < _throttle(job) and _runnable(job):
                        running += 1
                    else:
                        self._throttle(job, tell=True)

    def admitted(self, job: Job) -> None:
        """A new task (submit_array, in index order): let go while its array is under its throttle, else held back."""
        task = job.spec.array
        if task is None or not task.max_running:
            return
        self._track(job)
        if not _runnable(job) or self.let_go(task.array_id) > task.max_running:
            self._throttle(job, tell=False)

    def let_go(self, array_id: str) -> int:
        """How many of an array's tasks are let go now: kept (not ended, not removed) and not throttled."""
        jobs = self.fed.jobs
        return sum(1 for job_id in self._tasks.get(array_id, ()) if (job := jobs.get(job_id)) is not None
                   and not job.phase.is_terminal and not job.throttled)

    def _passed_over(self, array_id: str) -> bool:
        """Whether any of the array's throttled tasks could not run if let go: held, or waiting on a dependency."""
        jobs = self.fed.jobs
        return any((job := jobs.get(job_id)) is not None and job.throttled and job.phase is JobPhase.PENDING
                   and not _runnable(job) for job_id in self._tasks.get(array_id, ()))

    def _room(self, array_id: str, limit: int) -> bool:
        """Whether fewer than `limit` of the array's tasks are let go; stops counting at `limit` (the let-go ones are
        mostly the lowest indices, so a release into a full array costs a few steps, not one per task)."""
        jobs, n = self.fed.jobs, 0
        for job_id in self._tasks.get(array_id, ()):
            job = jobs.get(job_id)
            if job is not None and not job.phase.is_terminal and not job.throttled:
                n += 1
                if n >= limit:
                    return False
        return True

    def changed(self, jobs: Iterable[Job]) -> None:
        """Jobs changed (Federator.notify): a let-go task that ended or was removed lets the next one go. Re-entrant
        calls (a let-go task's own notify) are queued and worked here."""
        if not self._array_of:
            return
        self._queue.extend(job for job in jobs if job.job_id in self._array_of)
        if self._busy:
            return
        self._busy = True
        try:
            while self._queue:
                job = self._queue.pop()
                gone = job.phase.is_terminal or self.fed.jobs.get(job.job_id) is not job
                if gone:
                    self._next(self.untrack(job.job_id))
                elif job.phase is JobPhase.PENDING and not job.throttled and not _runnable(job):
                    self._throttle(job, tell=False)  # a let-go task held: its slot goes to the next runnable one
                    self._next(self._array_of[job.job_id])
        finally:
            self._busy = False

    def _track(self, job: Job) -> None:
        task = job.spec.array
        assert task is not None
        self._tasks.setdefault(task.array_id, []).append(job.job_id)
        self._array_of[job.job_id] = task.array_id

    def untrack(self, job_id: JobId) -> str:
        array_id = self._array_of.pop(job_id, "")
        tasks = self._tasks.get(array_id, [])
        if job_id in tasks:
            tasks.remove(job_id)
        if not tasks:
            self._tasks.pop(array_id, None)
        return array_id

    def _next(self, array_id: str) -> None:
        """Let go the throttled tasks of the lowest indices while the array is under its throttle."""
        jobs = self.fed.jobs
        waiting = [job for job_id in self._tasks.get(array_id, ()) if (job := jobs.get(job_id)) is not None
                   and job.throttled and job.phase is JobPhase.PENDING and _runnable(job)]
        if not waiting:
            return
        room = _throttle(waiting[0]) - self.let_go(array_id)
        for job in waiting[:max(room, 0)]:
            self._release(job)
        passed = self._passed_over(array_id)
        for job in waiting[max(room, 0):]:  # the reason of those left says whether held ones are passed over
            reason = _throttled(job.spec.array, passed)  # type: ignore[arg-type]
            if job.pending_reason != reason:
                job.pending_reason = reason
                self.fed.notify([job])

    def _throttle(self, job: Job, *, tell: bool) -> None:
        task = job.spec.array
        assert task is not None
        job.throttled = True
        self.fed.cycles.parked.unpark(job.job_id)  # no longer a candidate (partial.owes), nor asked for its reason
        self.fed.cycles.refresh.left(job.job_id)
        if _runnable(job):
            job.pending_reason = _throttled(task, self._passed_over(task.array_id))
            if tell:
                self.fed.notify([job])

    def released(self, job: Job) -> None:
        """A hold of `job` was let go (server/job_holds.py), or its dependency met (server/dependencies.py): it
        competes for a slot; while its array's throttle still holds it back, its reason is the throttle
        (ArrayThrottle), not "waiting for the next scheduling cycle"."""
        task = job.spec.array
        if job.throttled and task is not None and _runnable(job) and job.job_id in self._array_of:
            passed = self._passed_over(task.array_id)
            job.pending_reason = _throttled(task, passed)
            if not passed or self._room(task.array_id, task.max_running):  # the others' reasons said it was passed
                self._next(task.array_id)

    def _release(self, job: Job) -> None:
        fed = self.fed
        job.throttled = False
        if job.hold is None:
            job.pending_reason = Reason(ReasonCode.WAITING, "let go by its array's throttle (a task ended); "
                                                            "waiting for the next scheduling cycle")
        fed.dependencies.released(job)  # still waiting on other jobs: its reason says so
        fed.cycles.pending(job)
        fed.notify([job])
        fed.wake()


def _throttled(task: ArrayTask, passed: bool) -> Reason:
    """ArrayThrottle's reason; while some tasks are held or wait on a dependency, it says they take no slot (a user
    who held some sees they are not what holds the others back). No indices: one task's release would change every
    other task's reason."""
    return Reason(ReasonCode.ARRAY_THROTTLE, f"array {task.array_id} runs at most {task.max_running} tasks at once "
                                             f"(%{task.max_running}); this one is let go when one of them ends"
                                             + ("; its held tasks, and those waiting on a dependency, take no slot "
                                                "and are passed over" if passed else ""))


def _runnable(job: Job) -> bool:
    """Whether a Pending task could run if let go: not held, not waiting on a dependency."""
    return job.hold is None and not job.waiting_on


def _index(job: Job) -> int:
    task = job.spec.array
    return task.task_id if task is not None else 0


def _throttle(job: Job) -> int:
    task = job.spec.array
    return task.max_running if task is not None else 0


__all__ = ["MAX_ARRAY_REQUEST_ID", "ArrayMaker", "ArrayUnsupported", "Arrays", "Submitted", "array_id_problem",
           "array_request", "answered", "check_array", "forged", "submit_array"]
