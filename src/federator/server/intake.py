"""Intake: how a job gets into the federator (Submit's path, API and Kubernetes mode alike).

Kept apart from the state machine (`server/federator.py`), which handles a job
once it is accepted. Intake validates a submission with the one validator of
job files, CRDs and the API (`jobfile.parse_job`, through `api_specs.py`), answers a repeated request
id with the job it created then, refuses a name held by an active job,
checks the accelerator models it names against the catalog and the fleet
(`fleet_models.py`), holds its pod templates to the federator's pod security
level and refuses finalizers and owner references in them (`templates.py`),
applies back-pressure (the federator's cap on pending jobs, then the job's queue's, then its
owner's over all their queues, so that one tenant cannot fill the federator and refuse every
other, not even by spreading over queues of its own invention; then the byte budgets of
unfinished jobs' specs, the federator's and the owner's, so that a few fat jobs cannot fill its
memory and disk either: server/job_bytes.py), and reserves the new
job (its name and request id) before its write so that a second submission while the
disk works is answered as a repeat.

Submit is on the hot path (docs/benchmarks.md, "The live federator at scale"):
everything here is an index lookup or a check of the spec itself, never a scan
over jobs.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from federator.jobfile import REQUEST_ID_ANNOTATION, JobFileError, shown
from federator.model import Job, JobHold, JobId, JobKind, JobPhase, JobSpec, Reason, ReasonCode
from federator.scheduler.residency import queue_fence, submit_warnings
from federator.security.authz import DELEGATE_ANNOTATION, Submitter, submitter_of
from federator.security.delegates import Budget, Delegate, budget
from federator.security.limits import BACK_PRESSURE, RejectReason
from federator.server.api_specs import checked
from federator.server.arrays import forged
from federator.server.clusters import FAILOVER_ANNOTATION, FAILOVER_POLICIES
from federator.server.dependencies import Visible, resolved, same_namespace
from federator.server.early_failures import EARLY_FAILURE_ANNOTATION, EARLY_FAILURE_POLICIES
from federator.server.fleet_models import FleetModels
from federator.server.intake_warnings import latency_warnings, queue_warnings, region_warnings
from federator.server.job_bytes import UnfinishedBytes
from federator.server.job_holds import held_reason
from federator.server.kept_room import KeptRoom
from federator.server.settle import unreported
from federator.server.submit_errors import (
    AlreadyExists,
    ByteBudgetFull,
    DelegateBudgetFull,
    QueueFull,
    QueuePendingLimit,
    RequestIdConflict,
    SubmitError,
    UserPendingLimit,
)
from federator.server.submit_room import queue_pending, user_bytes, user_pending
from federator.server.templates import (
    accelerator_problems,
    accelerator_warnings,
    owned_problems,
    pod_security_problems,
    rendezvous_warnings,
    template_key_warnings,
    template_shape_problems,
)
from federator.server.workload_roles import unequal_roles_warnings
from federator.store.codec import spec_bytes
from federator.store.errors import StoreError

if TYPE_CHECKING:
    from federator.server.federator import Federator

log = logging.getLogger("federator.server")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def rescaled(held: JobSpec, asked: JobSpec) -> bool:
    """Whether `asked` is `held` but for the replica count an inference job was scaled to since (server/scaling.py):
    the same file submitted again (its request id derived from its content) is the same request, answered with the
    job, not a conflict."""
    return held.kind is JobKind.INFERENCE and replace(asked, replicas=held.replicas) == held


def taken(namespace: str, name: str) -> str:
    """What a caller who may not see the job holding a name hears: nothing of that job, not even whether it has
    finished (an outsider learnt that from the difference between two refusals), nor that a job holds it."""
    return f"metadata.name: the name {name!r} is not available in namespace {namespace!r}; choose another name"


def _owned(source: str, owner: Submitter) -> str:
    """A per-user bound's source as a refusal tells it: a kubectl-made FederatedJob's owner is its namespace, which
    the flag's name would not lead anyone to guess. WhoAmI asks only for users, so it leaves this out."""
    if owner.user:
        return source
    return source + "; a FederatedJob made with kubectl has no user, so its namespace stands for one"


def _latest_first(job: Job) -> tuple[bool, float]:
    """Sort key: a name's active job wins over finished ones, then the latest."""
    return (not job.phase.is_terminal, job.submitted_at)


class Intake:
    """The federator's submit path and its indexes (request id -> job, name -> latest job)."""

    def __init__(self, fed: Federator) -> None:
        self.fed = fed
        # Shielded submit writes in flight (held: not collected), by their job's namespace and name (`arrivals`).
        self._writes: dict[tuple[str, str], set[asyncio.Future[None]]] = {}
        jobs = fed.jobs.values()
        # Request ids by owner (`submitter_of`, as the per-user cap counts): the CLI derives an id from a file's
        # content, the same for every user, so ids shared by every tenant let one take another's id first and
        # refuse their Submit for good. The same id from two owners names two jobs.
        self._by_request: dict[tuple[Submitter, str], JobId] = {
            (submitter_of(j.spec), rid): j.job_id for j in jobs if (rid := j.spec.annotation(REQUEST_ID_ANNOTATION))}
        # Each name's latest job (an active one if any: at most one job per name is active). Submit reads it
        # instead of scanning every job, whose cost grew with the backlog.
        self._by_name: dict[tuple[str, str], JobId] = {
            (j.spec.namespace, j.spec.name): j.job_id for j in sorted(jobs, key=_latest_first)}
        self.arriving = 0  # new jobs reserved whose write is on its way to disk (back-pressure counts them)
        self.bytes = UnfinishedBytes.of(jobs)  # what the byte budgets read (server/job_bytes.py)
        self.fleet = FleetModels()  # the models members report (cached), for the model check and warnings
        # A delegate's entry in the tenancy policy, by name (JobService sets it to the live policy's): what its
        # budget is read from. None: one user's caps (security/delegates.py `budget`).
        self.delegates: Callable[[str], Delegate | None] = lambda _name: None

    # -- lookups ------------------------------------------------------------------------------

    def latest_named(self, namespace: str, name: str) -> Job | None:
        """The latest job of that namespace and name (the active one, if any), without a scan."""
        return self.fed.jobs.get(self._by_name.get((namespace, name), JobId("")))

    def job_for_request(self, owner: Submitter, request_id: str) -> Job | None:
        """The job `owner`'s request id created, if the federator has seen it (another owner's id is not)."""
        return self.fed.jobs.get(self._by_request.get((owner, request_id), JobId(""))) if request_id else None

    def arrivals(self, namespace: str, name: str) -> list[asyncio.Future[None]]:
        """The writes of new jobs of that namespace and name still on their way to the store. Once one is done,
        its job is accepted or forgotten. In Kubernetes mode the FederatedJob controller waits for them before
        it decides about an object of that name it does not know: it may be the one the store is creating for
        the job, or a user's whose name the store's create is about to meet (backends/kube/controller.py)."""
        return [w for w in self._writes.get((namespace, name), ()) if not w.done()]

    def warnings(self, spec: JobSpec) -> list[str]:
        """What the user should hear about an accepted job that is valid but likely wrong, or will wait
        (SubmitResponse.warnings; a Warning Event on a FederatedJob)."""
        unknown = self.fleet.unknown(spec)  # accepted only because the fleet is not all known yet
        early = [f"{unknown}; accepted because not every member cluster has reported since the federator "
                 "started: check the name"] if unknown else []
        regions = {c.region for c in self.fed.clusters.values()}
        config = self.fed.scheduler.config
        members = ((c.name, c.region, c.state, c.capacity) for c in self.fed.clusters.values())
        legacy = config.legacy_vendor
        return early + template_key_warnings(spec) + accelerator_warnings(spec) + rendezvous_warnings(spec) \
            + unequal_roles_warnings(spec) \
            + self.fleet.warnings(spec, legacy) + self.fleet.fit_warnings(spec, members, legacy) \
            + latency_warnings(spec, config, regions) + queue_warnings(spec.queue, config) \
            + region_warnings(spec, regions, config) \
            + submit_warnings(spec.allowed_regions, spec.preferred_regions, queue_fence(config, spec.queue), regions)

    def fleet_settled(self) -> bool:
        """Whether a model no member has is really unknown: every cluster the federator expects (after a
        restart: its MemberCluster objects, the clusters holding placements), but the lost ones, has reported
        its pools. Until then an unknown model is a warning, not a refusal: its member may be reconnecting."""
        return not unreported(self.fed.clusters)

    # -- submit ---------------------------------------------------------------------------------

    def submit(self, spec: JobSpec, *, request_id: str = "", hold: JobHold | None = None,
               visible: Visible | None = None) -> Job:
        """Accept a job: stored before this returns.

        With a request id (or a spec carrying the request-id annotation), a
        submission the federator has seen returns the job it created then,
        whatever its phase, so a client that lost the reply can retry safely;
        the same id with a different spec raises RequestIdConflict. With `hold`, the job is held from its first
        write (server/job_holds.py); a replay answers the job as it is. `visible`: the jobs the submitter may see, of
        those a spec.dependsOn key names (server/dependencies.py); None: those of the spec's own namespace.
        """
        job, new = self._admit(spec, request_id, hold, visible)
        if new:
            try:
                self.fed.journal.write([job])
            except BaseException:
                self._forget(job)
                raise
            self._accepted(job)
        return job

    async def submit_async(self, spec: JobSpec, *, request_id: str = "", hold: JobHold | None = None,
                           visible: Visible | None = None, array: bool = False) -> Job:
        """`submit` for the gRPC edge: the write joins a group commit, and the loop serves others meanwhile.

        The job is reserved (its name and request id taken) before the write,
        so a second submission of it while the disk works is answered as a
        repeat, and it is a scheduling candidate only once it is durable.

        The write is shielded from the caller: a client killed while its job is on its way to the
        disk cancels this call, not the write. Cancelled, the call used to forget a job the disk then
        held, so the client's retry made a second job and a restart brought back the first."""
        job, new = self._admit(spec, request_id, hold, visible, array=array)
        if new:
            if array:  # a task of a Kubernetes-mode array (backends/kube/arrays.py): under its throttle before a cycle
                self.fed.arrays.admitted(job)
            key = (job.spec.namespace, job.spec.name)
            write = asyncio.ensure_future(self._commit(job))
            self._writes.setdefault(key, set()).add(write)
            write.add_done_callback(lambda w: self._written(key, w))
            await asyncio.shield(write)
        return job

    async def _commit(self, job: Job) -> None:
        try:
            await self.fed.journal.commit([job])
        except BaseException:
            self.fed.arrays.untrack(job.job_id)  # an array task never accepted (none is let go for it)
            self._forget(job)
            raise
        self._accepted(job)

    def _written(self, key: tuple[str, str], write: asyncio.Future[None]) -> None:
        """A shielded write's end: a failure is logged, since the caller it was raised to may have gone; a store
        that refused it (a full disk) was logged by the group commit, once per batch, and is not again."""
        named = self._writes.get(key, set())
        named.discard(write)
        if not named:
            self._writes.pop(key, None)
        if not write.cancelled() and write.exception() is not None and not isinstance(write.exception(), StoreError):
            log.warning("a submitted job's write failed: %s", write.exception())

    def check(self, spec: JobSpec, *, request_id: str = "", hold: JobHold | None = None,
              visible: Visible | None = None, array: bool = False) -> tuple[Job, bool]:
        """Every check `submit` makes, nothing reserved nor stored (SubmitRequest.validate_only:
        server/submit_check.py): (the job as it would be, its job_id empty, True) or (the job the request id made
        before, False); a refusal raises as `submit`'s does. `array`: a task of an array's check (server/arrays.py
        `check_array`)."""
        return self._admit(spec, request_id, hold, visible, array=array, reserve=False)

    def _admit(self, spec: JobSpec, request_id: str, hold: JobHold | None = None,
               visible: Visible | None = None, *, array: bool = False, reserve: bool = True) -> tuple[Job, bool]:
        """Validate a submission and reserve its job; (the job, True) or (the job seen before, False). `array`: a
        task of an array Submit (server/arrays.py), the only spec that may carry the array annotations. Without
        `reserve`, the checks only: the new job is made but not kept, with no id."""
        fed = self.fed
        spec = self._with_request_id(spec, request_id)
        if not array and forged(spec):
            self._reject(RejectReason.INVALID_JOB)
            raise SubmitError(forged(spec) or "")
        try:
            spec = checked(spec)
        except JobFileError as exc:
            self._reject(RejectReason.INVALID_JOB)
            raise SubmitError(str(exc)) from exc
        policy = spec.annotation(FAILOVER_ANNOTATION, "replace")
        if policy not in FAILOVER_POLICIES:
            self._reject(RejectReason.INVALID_JOB)
            raise SubmitError(f"metadata.annotations[{FAILOVER_ANNOTATION}]: must be one of "
                              f"{', '.join(FAILOVER_POLICIES)}, got {policy[:80]!r}")
        on_early = spec.annotation(EARLY_FAILURE_ANNOTATION, "retry")
        if on_early not in EARLY_FAILURE_POLICIES:
            self._reject(RejectReason.INVALID_JOB)
            raise SubmitError(f"metadata.annotations[{EARLY_FAILURE_ANNOTATION}]: must be one of "
                              f"{', '.join(EARLY_FAILURE_POLICIES)}, got {on_early[:80]!r}")
        problem = fed.limits.check_job(spec) or self._priority_problem(spec) or \
            fed.scheduler.config.run_limit_problem(spec.queue, spec.max_run_seconds) or \
            fed.scheduler.config.region_problem(spec.queue, spec.allowed_regions)  # its queue's allowedRegions
        if problem is not None:
            self._reject(RejectReason.LIMIT_EXCEEDED)
            raise SubmitError(problem)
        size = self._weight(spec)
        shape = template_shape_problems(spec) or accelerator_problems(spec)  # the latter reads a well-shaped one
        if shape:  # nothing of it could be rendered on a member: refused before its content is judged
            self._reject(RejectReason.INVALID_JOB)
            refused = JobFileError(shape)
            raise SubmitError(str(refused)) from refused
        owned, forbidden = owned_problems(spec), pod_security_problems(spec, policy=fed.limits.pod_security)
        if owned or forbidden:
            self._reject(RejectReason.POD_SECURITY if forbidden else RejectReason.INVALID_JOB)
            refused = JobFileError(owned + forbidden)
            raise SubmitError(str(refused)) from refused
        request_id = spec.annotation(REQUEST_ID_ANNOTATION)
        owner = submitter_of(spec)
        seen = self.job_for_request(owner, request_id)
        try:  # its keys as job ids (server/dependencies.py), before a replay compares the spec it kept
            spec = resolved(fed.jobs, spec, visible or same_namespace(spec), fed.dependencies.tasks_of)
        except SubmitError:
            if seen is None:
                self._reject(RejectReason.INVALID_JOB)
                raise
        if seen is not None:
            if seen.spec != spec and not rescaled(seen.spec, spec):
                fed.metrics.jobs_rejected.inc()
                raise RequestIdConflict(f"request_id: {request_id!r} was already used for job {seen.job_id} "
                                        f"({seen.spec.namespace}/{seen.spec.name}) with a different spec; "
                                        "use a new request id for a new job", about=seen,
                                        vague=f"request_id: {request_id!r} was already used for another job; "
                                              "use a new request id for a new job")
            log.info("submit with request id %s again: returning job %s (%s)", request_id, seen.job_id, seen.phase)
            return seen, False
        in_use = self.in_use(spec)
        if in_use is not None:
            fed.metrics.jobs_rejected.inc()
            raise in_use
        unknown = self.fleet.unknown(spec)
        if unknown and self.fleet_settled():
            self._reject(RejectReason.INVALID_JOB)
            raise SubmitError(unknown)
        # A held job is no cycle's candidate, yet it is pending and kept (server/job_holds.py): the exact per-queue
        # count holds it (and the jobs arriving), so held jobs cannot take the federator past its cap.
        pending = max(fed.cycles.pending_count + self.arriving, len(fed.cycles.by_queue))
        if pending >= fed.limits.max_pending_jobs:
            self._reject(RejectReason.QUEUE_FULL)
            retry = fed.limits.queue_full_retry_seconds
            raise QueueFull(f"the federator's queue is full: {pending} jobs are pending, its limit is "
                            f"{fed.limits.max_pending_jobs}; retry after {retry:g}s", retry)
        self._check_kept_room(spec.queue, owner, pending)
        self._check_queue_room(spec.queue)
        self._check_owner_room(owner)
        self._check_byte_room(owner, size)
        delegate = spec.annotation(DELEGATE_ANNOTATION)
        if delegate:
            self._check_delegate_room(delegate, size)
        reclaimed = fed.orphans.adoption.reapplied.reclaim(spec) if reserve else None  # its orphan's id, applied again
        job = Job(job_id=reclaimed or JobId(f"{spec.name}-{secrets.token_hex(3)}"), spec=spec, submitted_at=fed.clock(),
                  pending_reason=held_reason(hold) if hold is not None else Reason(
                      ReasonCode.WAITING, fed.settling.waiting(fed.clock()) or "waiting for the next scheduling cycle"),
                  hold=hold)
        if not reserve:
            return replace(job, job_id=JobId("")), True
        fed.jobs[job.job_id] = job
        self._by_name[(spec.namespace, spec.name)] = job.job_id
        if request_id:
            self._by_request[(owner, request_id)] = job.job_id
        self.arriving += 1
        self.bytes.enter(job.job_id, owner, size, delegate=delegate)
        fed.cycles.count_pending(job)  # counted from now, as `arriving` is: a burst of one queue or user is bounded too
        fed.dependencies.admitted(job)  # waits on the jobs its spec names, or not (server/dependencies.py)
        return job, True

    def in_use(self, spec: JobSpec) -> AlreadyExists | None:
        """The refusal of a name a job that has not ended holds (each task's, in an array's check), or None."""
        same = self.latest_named(spec.namespace, spec.name)
        if same is None or same.phase.is_terminal:
            return None
        # what to do, as for a finished job's name (admission.py): a job is not changed in place (outside QA HPC
        # H8: a pending job's file resubmitted with a new priority got this with no hint)
        return AlreadyExists(f"metadata.name: job {spec.namespace}/{spec.name} already exists "
                             f"({same.job_id}, {same.phase}) and has not ended; a job is not changed by "
                             f"submitting it again: to run the changed file, cancel it (federator cancel "
                             f"{spec.namespace}/{spec.name}; a pending job loses its place in the queue) and "
                             "submit again, or submit it under another name (--run-again is for a job that has "
                             "ended)", about=same, vague=taken(spec.namespace, spec.name))

    def _check_kept_room(self, queue: str, owner: Submitter, pending: int) -> None:
        """The last tenth of `--max-pending-jobs` is kept for the queues and owners holding little
        (server/kept_room.py), so a few floods cannot refuse every other tenant. Two count reads, no scan."""
        fed = self.fed
        said = KeptRoom.of(fed.limits.max_pending_jobs, len(fed.scheduler.config.queues)).refusal(
            pending=pending, queue=queue, queue_held=fed.cycles.by_queue.count(queue), owner=owner,
            owner_held=fed.cycles.by_owner.count(owner))
        if said is None:
            return
        self._reject(RejectReason.QUEUE_FULL)
        retry = fed.limits.queue_full_retry_seconds
        raise QueueFull(f"{said}; retry after {retry:g}s", retry)

    def _priority_problem(self, spec: JobSpec) -> str | None:
        """A priority above the queue's maxPriority (`SchedulerConfig.priority_problem`, which `sim` applies too)."""
        return self.fed.scheduler.config.priority_problem(spec.queue, spec.priority)

    def _check_queue_room(self, queue: str) -> None:
        """Refuse a new job of a queue holding as many pending jobs as it may: its own `maxPendingJobs` (policy
        file, Queue object), else the server's `--max-pending-jobs-per-queue`. One count read, no scan."""
        held = queue_pending(self.fed, queue)  # as WhoAmI reports it (server/submit_room.py)
        if held.used < held.limit:
            return
        self._reject(RejectReason.QUEUE_PENDING_LIMIT)
        raise QueuePendingLimit(queue=queue, pending=held.used, limit=held.limit, source=held.source,
                                retry_after=self.fed.limits.queue_full_retry_seconds)

    def _check_owner_room(self, owner: Submitter) -> None:
        """Refuse a new job of an owner (its recorded user; its namespace when no user submitted it, a kubectl-made
        FederatedJob) holding as many pending jobs over all queues as `--max-pending-jobs-per-user` allows.
        One count read, no scan."""
        held = user_pending(self.fed, owner)  # as WhoAmI reports it (server/submit_room.py)
        if held.used < held.limit:
            return
        self._reject(RejectReason.USER_PENDING_LIMIT)
        raise UserPendingLimit(owner=owner, pending=held.used, limit=held.limit, source=_owned(held.source, owner),
                               retry_after=self.fed.limits.queue_full_retry_seconds)

    def budget(self, delegate: str) -> Budget:
        """Delegate `delegate`'s budget under the live policy (its entry's, else one user's caps)."""
        limits = self.fed.limits
        return budget(delegate, self.delegates(delegate), per_user_jobs=limits.pending_per_user,
                      per_user_bytes=limits.max_unfinished_bytes_per_user)

    def _check_delegate_room(self, delegate: str, size: int) -> None:
        """Refuse a new job a delegate submits for anyone when the jobs it submitted hold its budget: pending jobs,
        then unfinished spec bytes. One count and one sum read, no scan."""
        fed = self.fed
        held = self.budget(delegate)
        pending = fed.cycles.by_delegate.count(delegate)
        if pending >= held.pending_jobs:
            self._reject(RejectReason.DELEGATE_PENDING_LIMIT)
            raise DelegateBudgetFull(delegate=delegate, held=pending, size=0, limit=held.pending_jobs,
                                     source=held.pending_source, retry_after=fed.limits.queue_full_retry_seconds)
        weight = self.bytes.delegate(delegate)
        if weight + size > held.unfinished_bytes:
            self._reject(RejectReason.DELEGATE_PENDING_LIMIT)
            raise DelegateBudgetFull(delegate=delegate, held=weight, size=size, limit=held.unfinished_bytes,
                                     source=held.bytes_source, retry_after=fed.limits.queue_full_retry_seconds)

    def _weight(self, spec: JobSpec) -> int:
        """The spec's bytes as the store writes them; a job over a byte budget by itself could never be accepted,
        so it is refused as over a limit now, never told to wait (a FederatedJob would wait forever)."""
        size = spec_bytes(spec)
        limits = self.fed.limits
        for limit, flag in ((limits.max_unfinished_bytes, "--max-unfinished-bytes"),
                            (limits.max_unfinished_bytes_per_user, "--max-unfinished-bytes-per-user")):
            if size > limit:
                self._reject(RejectReason.LIMIT_EXCEEDED)
                raise SubmitError(f"spec: the job weighs {size} bytes as stored, over {flag} ({limit}) by itself, "
                                  "so it could never be accepted; make its templates and annotations smaller")
        return size

    def _check_byte_room(self, owner: Submitter, size: int) -> None:
        """Refuse a new job whose spec would take every owner's unfinished jobs past `--max-unfinished-bytes`, or
        its owner's past `--max-unfinished-bytes-per-user`: back-pressure, gone as jobs finish (a job bigger than a
        budget by itself was refused as invalid: `_weight`). Two sums read, no scan."""
        fed = self.fed
        retry = fed.limits.queue_full_retry_seconds
        held = self.bytes.total
        if held + size > fed.limits.max_unfinished_bytes:
            self._reject(RejectReason.QUEUE_FULL)
            raise ByteBudgetFull(owner=None, held=held, size=size, limit=fed.limits.max_unfinished_bytes,
                                 source="--max-unfinished-bytes", retry_after=retry)
        own = user_bytes(fed, owner)  # as WhoAmI reports it (server/submit_room.py)
        if own.used + size > own.limit:
            self._reject(RejectReason.USER_PENDING_LIMIT)
            raise ByteBudgetFull(owner=owner, held=own.used, size=size, limit=own.limit,
                                 source=_owned(own.source, owner), retry_after=retry)

    def ended(self, job: Job) -> None:
        """A job finished (succeeded, failed, cancelled; its write may still be on its way): its spec no longer
        counts against the byte budgets."""
        self.bytes.leave(job.job_id)

    def _accepted(self, job: Job) -> None:
        """A new job is durable: count it, tell watchers, make it a scheduling candidate."""
        fed = self.fed
        self.arriving -= 1
        fed.metrics.jobs_submitted.labels(job.spec.queue).inc()
        if job.phase is JobPhase.PENDING:  # not cancelled while its write was on its way
            fed.cycles.pending(job)
        fed.notify([job])
        fed.orphans.adoption.reapplied.taken_back(job)  # a job applied again: its running placement is its own
        fed.wake()

    def _forget(self, job: Job) -> None:
        """A new job whose write failed: it was never accepted."""
        self.arriving -= 1
        self.bytes.leave(job.job_id)
        self.fed.cycles.uncount_pending(job.job_id)
        self.fed.jobs.pop(job.job_id, None)
        self.fed.notify([job])  # a Watch's snapshot may have shown it while its write was on its way: a removal
        key = (job.spec.namespace, job.spec.name)
        if self._by_name.get(key) == job.job_id:  # rare (a failed write): find the name's previous holder
            del self._by_name[key]
            named = [j for j in self.fed.jobs.named(job.spec.name) if j.spec.namespace == job.spec.namespace]
            if named:
                self._by_name[key] = max(named, key=_latest_first).job_id
        self._drop_request(job)

    def drop(self, job: Job) -> None:
        """A finished job removed by retention (server/retention.py): its name and request id are free. The
        oldest go first, so a name's earlier jobs are gone already and the name is simply free."""
        key = (job.spec.namespace, job.spec.name)
        if self._by_name.get(key) == job.job_id:
            del self._by_name[key]
        self._drop_request(job)

    def _drop_request(self, job: Job) -> None:
        key = (submitter_of(job.spec), job.spec.annotation(REQUEST_ID_ANNOTATION))
        if key[1] and self._by_request.get(key) == job.job_id:
            del self._by_request[key]

    def _with_request_id(self, spec: JobSpec, request_id: str) -> JobSpec:
        """The spec with its request id as an annotation; a malformed or contradictory id is refused."""
        carried = spec.annotation(REQUEST_ID_ANNOTATION)
        if not request_id:
            request_id = carried
        if not request_id:
            return spec
        if not _REQUEST_ID.fullmatch(request_id):
            self._reject(RejectReason.INVALID_JOB)
            raise SubmitError("request_id: must be 1 to 128 characters of A-Z a-z 0-9 . _ : -, "
                              f"got {shown(request_id)}")
        if carried and carried != request_id:
            self._reject(RejectReason.INVALID_JOB)
            raise SubmitError(f"request_id: {request_id!r} differs from the spec's annotation "
                              f"{REQUEST_ID_ANNOTATION}={shown(carried)}")
        annotations = dict(spec.annotations) | {REQUEST_ID_ANNOTATION: request_id}
        return replace(spec, annotations=tuple(sorted(annotations.items())))

    def _reject(self, reason: RejectReason) -> None:
        """Count a refusal by its reason; an invalid submission also in federator_jobs_rejected_total, back-pressure
        (a valid job told to come back later) not: that counter's rate is users' mistakes, not the federator's
        room."""
        if reason not in BACK_PRESSURE:
            self.fed.metrics.jobs_rejected.inc()
        self.fed.metrics.messages_rejected.labels(reason.value).inc()


__all__ = ["AlreadyExists", "ByteBudgetFull", "DelegateBudgetFull", "Intake", "QueueFull", "QueuePendingLimit",
           "RequestIdConflict", "SubmitError", "UserPendingLimit", "taken"]
