"""JobService: the job API (proto/federator/v1/jobs.proto).

It translates wire messages to domain calls on `Federator` and domain errors to gRPC status codes, with the
ErrorInfo details the contract names; each call is decided by `security.authz` at this edge.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial

import grpc

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2
from federator.jobfile import REQUEST_ID_ANNOTATION, FieldProblem, JobFileError, shown
from federator.model import Job, JobHold, JobId, JobSpec
from federator.scheduler.residency import queue_fence
from federator.security.audit import AuditLog
from federator.security.auth import Authenticator
from federator.security.authz import Allowed, Authorizer, Denied, Principal, stamp_owner, submitter_of
from federator.security.limits import RejectReason
from federator.server import log_follow, logs, watch_stream
from federator.server.admission import name_taken
from federator.server.api_specs import kindless_problems
from federator.server.arrays import ArrayUnsupported, Submitted, answered, array_request, forged, submit_array
from federator.server.audit_trail import promised
from federator.server.cancel_jobs import cancel_jobs
from federator.server.dependencies import DependencyEnded, DependencyNotFound
from federator.server.edge import Edge
from federator.server.errors import Exhausted, PressedLimit, bad_request, cut, exhausted, problems_of
from federator.server.federator import Federator
from federator.server.hold_calls import hold_call, release_call
from federator.server.intake import (
    AlreadyExists,
    ByteBudgetFull,
    DelegateBudgetFull,
    QueueFull,
    QueuePendingLimit,
    RequestIdConflict,
    SubmitError,
    UserPendingLimit,
)
from federator.server.job_holds import hold_at_submit
from federator.server.job_keys import Ambiguous, resolve
from federator.server.job_listing import Query, QueryError, query_of, token_problem
from federator.server.job_table import View
from federator.server.log_polls import LogPolls
from federator.server.namespace_gate import NamespaceGate
from federator.server.paging import PageTokenError, page
from federator.server.scaling import ScaleProblem, ScaleRefused
from federator.server.submit_check import ACTION as CHECK
from federator.server.submit_check import check_submit
from federator.server.watch_encodings import JobEncodings
from federator.server.watch_seats import Seats
from federator.store.errors import NameTaken, StoreRefused, StoreUnavailable


def _job_object(job: Job | None, spec: JobSpec | None = None, key: str = "") -> dict[str, str]:
    """What an audit line says a job is."""
    spec = job.spec if job is not None else spec
    obj = {"kind": "Job"}
    if spec is not None:
        obj |= {"namespace": spec.namespace, "name": spec.name, "queue": spec.queue}
    if job is not None:
        obj["job_id"] = job.job_id
    elif key:
        obj["job_id"] = key
    return obj


def _follow(follow: bool) -> dict[str, str]:
    """What an audit line of `logs` adds for a follow (jobs.proto FollowLogs: audited once per follow)."""
    return {"follow": "true"} if follow else {}


def _holder_told(exc: NameTaken, may_see: Callable[[Job], bool], fed: Federator) -> str:
    """What a Submit refused for a name another FederatedJob holds tells its caller: the holding job only to a
    caller who may see it (as `SubmitError.told`); tenants share namespaces."""
    other = fed.jobs.get(JobId(exc.holder)) if exc.holder else None
    shown = str(exc) if other is None or may_see(other) else exc.vague
    return f"{shown}; the job was not accepted"


def _pressed(exc: QueueFull) -> dict[str, str]:
    """ErrorInfo.metadata of a back-pressure refusal: "limit", which cap or budget it met (jobs.proto, Submit), and
    for a delegate's budget "delegate", its name (the caller's own identity: nothing another caller's)."""
    if isinstance(exc, DelegateBudgetFull):
        limit = PressedLimit.DELEGATE_BYTES if exc.size else PressedLimit.DELEGATE
        return {"limit": limit.value, "delegate": exc.delegate}
    return {"limit": _limit_of(exc).value}


def _refused_object(rule: str, pb: types_pb2.JobSpec) -> dict[str, str]:
    """ErrorInfo.metadata naming what a Submit's PERMISSION_DENIED refused: the field and the value the caller sent
    (its queue; its namespace for a namespace rule), nothing of the policy or of other tenants."""
    queue = pb.queue or "default"
    if rule in ("queue-namespaces", "namespace-selector", "reserved-namespace"):
        return {"field": "spec.namespace", "namespace": pb.namespace, "queue": queue}
    return {"field": "spec.queue", "queue": queue}


def _limit_of(exc: QueueFull) -> PressedLimit:
    """ErrorInfo.metadata["limit"] of a back-pressure refusal: which cap or budget it met (jobs.proto, Submit)."""
    if isinstance(exc, QueuePendingLimit):
        return PressedLimit.QUEUE
    if isinstance(exc, UserPendingLimit):
        return PressedLimit.USER
    if isinstance(exc, ByteBudgetFull):
        return PressedLimit.FEDERATOR_BYTES if exc.owner is None else PressedLimit.USER_BYTES
    return PressedLimit.FEDERATOR


def _spec_of(pb: types_pb2.JobSpec) -> JobSpec:
    """The submitted spec; a WireError when it cannot be read. Without a kind the rest of a spec cannot be
    read as one job, yet the client should hear everything else that is wrong with it in the same answer:
    the kind's problem comes with what the spec gets wrong under either kind (api_specs.kindless_problems)."""
    try:
        return convert.spec_from_pb(pb)
    except convert.WireError as exc:
        problem = str(exc)
        if not problem.startswith("spec.kind: "):
            raise
        kinds = []
        # A workload brings its own kind (an unknown enum value beside it is the only thing wrong with the kind).
        for kind in (types_pb2.JOB_KIND_UNSPECIFIED,) if pb.workload_json else \
                (types_pb2.JOB_KIND_TRAINING, types_pb2.JOB_KIND_INFERENCE):
            copy = types_pb2.JobSpec()
            copy.CopyFrom(pb)
            copy.kind = kind
            kinds.append(convert.spec_from_pb(copy))
        problems = [FieldProblem("spec.kind", problem.removeprefix("spec.kind: ")), *kindless_problems(kinds)]
        every = JobFileError(problems)
        raise convert.WireError(str(every)) from every


class JobService(Edge, jobs_pb2_grpc.JobServiceServicer):
    """The job API. Each call is decided by `security.authz` at this edge: Submit by the queue's access list
    (and, in Kubernetes mode, `namespaces`: may the job be made in its host namespace), Get/List/Watch/Cancel
    by whose job it is, Cancel and Scale by whether they may manage it. Submit, Cancel and Scale, accepted or
    refused, are audited."""

    def __init__(self, federator: Federator, auth: Authenticator | None = None, *,
                 authz: Authorizer | None = None, audit: AuditLog | None = None,
                 namespaces: NamespaceGate | None = None) -> None:
        super().__init__(federator, auth, authz=authz, audit=audit)
        self.namespaces = namespaces
        self.watch_seats = Seats(federator.limits.max_watches_per_user, federator.limits.max_watches,
                                 federator.metrics.watch_streams)  # per user and in all (watch_seats.py)
        self.log_follows = log_follow.FollowSeats(federator.limits.max_log_follows_per_user,
                                                  federator.limits.max_log_follows, federator.metrics.log_follows)
        self.log_polls = LogPolls(federator, lambda: log_follow.FOLLOW_POLL_SECONDS)  # shared, paced (log_polls.py)
        self.logs_rate = log_follow.LogsRate()  # the unary Logs, per user (log_follow.py)
        self.watch_encodings = JobEncodings(federator.history.newest)  # shared by the streams (watch_encodings.py)
        # A delegate's budget is read from the live policy's entry (a reload changes it from the next Submit)
        federator.intake.delegates = lambda name: self.authz.policy.delegates.get(name)

    async def Submit(self, request: jobs_pb2.SubmitRequest,  # noqa: N802
                     context: grpc.aio.ServicerContext) -> jobs_pb2.SubmitResponse:
        who = await self.principal(context)
        await self.sized(context, "submit", request)
        code, message, rule, job, spec = grpc.StatusCode.OK, "", "", None, None
        told = ""  # what the caller hears, where the audit line holds more (SubmitError.told)
        pressed: QueueFull | None = None  # back-pressure: answered with its ErrorInfo and RetryInfo
        replayed: Job | None = None
        array: Submitted | None = None
        problems: list[FieldProblem] = []
        try:
            spec = _spec_of(request.spec)
            decision: Allowed | Denied = self.authz.submit(who, spec.queue)
            if isinstance(decision, Allowed) and self.namespaces is not None:
                decision = await self.namespaces.refusal(spec) or decision
            elif isinstance(decision, Allowed):  # standalone: the namespace is the queue's (security/namespaces.py)
                placed = self.authz.place(who, spec)
                decision, spec = (placed, spec) if isinstance(placed, Denied) else (decision, placed)
            rule = decision.rule.value
            if isinstance(decision, Denied):
                code, message = grpc.StatusCode.PERMISSION_DENIED, decision.message
            else:
                owned = stamp_owner(spec, who)  # a request id is its owner's own (intake.py)
                if request.HasField("array") and (problem := forged(owned)) is not None:
                    raise SubmitError(problem)  # an array's tasks take their spec.array from the federator alone

                def taken_by(task: JobSpec, rid: str) -> SubmitError | None:
                    return name_taken(self.fed, task, request_id=rid, run_again=request.run_again, may_manage=lambda
                                      last: isinstance(self.authz.job(who, last, manage=True), Allowed))
                held = hold_at_submit(self.fed, who.user) if request.hold else None  # server/job_holds.py
                if request.validate_only:  # checked, nothing kept (server/submit_check.py)
                    if request.HasField("array"):
                        self._arrays_served()
                    job, replayed = check_submit(self.fed, request, owned, held,
                                                 lambda named: self.authz.visible(who, named), taken_by)
                elif request.HasField("array"):  # N tasks, all or none (server/arrays.py)
                    array = await self._array(request, owned, held, who, taken_by)
                    job, replayed = array.tasks[0], array.tasks[0] if array.replayed else None
                else:
                    taken = taken_by(owned, request.request_id)
                    if taken is not None:
                        raise taken
                    replayed = self.fed.intake.job_for_request(
                        submitter_of(owned), request.request_id or spec.annotation(REQUEST_ID_ANNOTATION))
                    job = await self.fed.intake.submit_async(owned, request_id=request.request_id, hold=held,
                                                             visible=lambda named: self.authz.visible(who, named))
        except QueueFull as exc:
            code, message, pressed = grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), exc
        except (AlreadyExists, RequestIdConflict) as exc:  # the audit keeps the whole message; the caller, its own
            code = grpc.StatusCode.ALREADY_EXISTS if isinstance(exc, AlreadyExists) else \
                grpc.StatusCode.FAILED_PRECONDITION
            message, told = str(exc), exc.told(lambda other: bool(self.authz.visible(who, [other])))
        except StoreUnavailable as exc:  # retryable: with the same request id a retry cannot make two jobs
            code, message = grpc.StatusCode.UNAVAILABLE, f"{exc}; the job was not accepted"
        except NameTaken as exc:  # Kubernetes mode: a FederatedJob that is not this job's holds the name
            code, message = grpc.StatusCode.ALREADY_EXISTS, f"{exc}; the job was not accepted"
            told = _holder_told(exc, lambda other: bool(self.authz.visible(who, [other])), self.fed)
        except StoreRefused as exc:  # not retryable as it stands (a namespace the host cluster lacks, say)
            code, message = grpc.StatusCode.FAILED_PRECONDITION, f"{exc}; the job was not accepted"
        except DependencyNotFound as exc:  # another tenant's job is answered as no job (server/dependencies.py)
            code, message = grpc.StatusCode.NOT_FOUND, str(exc)
        except (DependencyEnded, ArrayUnsupported) as exc:
            code, message = grpc.StatusCode.FAILED_PRECONDITION, str(exc)
        except (SubmitError, convert.WireError) as exc:
            if isinstance(exc, convert.WireError):
                self.rejected(RejectReason.MALFORMED)
            code, message = grpc.StatusCode.INVALID_ARGUMENT, cut(str(exc))
            problems = problems_of(exc)
        result = "accepted" if code is grpc.StatusCode.OK else \
            "refused" if code is grpc.StatusCode.PERMISSION_DENIED else "failed"
        obj: dict[str, object] = dict(_job_object(job, spec))
        if spec is not None:  # what it was promised, beside where the trail says it ran (server/audit_trail.py)
            obj |= promised(spec, queue_fence(self.fed.scheduler.config, spec.queue))
        if array:  # one line an array
            obj |= {"array_id": array.array_id, "tasks": str(len(array.tasks))}
        self.audit.record(CHECK if request.validate_only else "submit", identity=who, obj=obj, result=result,
                          code=code.name, rule=rule, message=message, request_id=request.request_id)
        if job is None and code is grpc.StatusCode.INVALID_ARGUMENT:
            await context.abort_with_status(bad_request(message, problems))  # the bad fields, as data
        if job is None and pressed is not None:
            await context.abort_with_status(exhausted(message, Exhausted.BACK_PRESSURE, retry_after=pressed.retry_after,
                                                      metadata=_pressed(pressed)))
        if job is None and code is grpc.StatusCode.PERMISSION_DENIED:
            await self.refuse(context, rule, message, **_refused_object(rule, request.spec))
        if job is None:
            await context.abort(code, cut(told or message))
            raise AssertionError("unreachable")
        return jobs_pb2.SubmitResponse(job=convert.job_to_pb(job), replayed=replayed is not None,
                                       warnings=self.fed.intake.warnings(job.spec),
                                       array_id=array.array_id if array else "",
                                       array_jobs=await answered(array.tasks) if array else [])

    async def _array(self, request: jobs_pb2.SubmitRequest, owned: JobSpec, held: JobHold | None, who: Principal,
                     taken: Callable[[JobSpec, str], SubmitError | None]) -> Submitted:
        """An array Submit's tasks (server/arrays.py); in Kubernetes mode, the array's FederatedJob's (ArrayMaker)."""
        self._arrays_served()
        submit = self.fed.arrays.maker.make if self.namespaces is not None and self.fed.arrays.maker else \
            partial(submit_array, self.fed)
        return await submit(owned, array_request(request.array), request_id=request.request_id, hold=held,
                            visible=lambda named: self.authz.visible(who, named), taken=taken)

    def _arrays_served(self) -> None:
        """Refuse an array Submit, or its check, in Kubernetes mode with no array maker (kubernetes.md)."""
        if self.namespaces is not None and self.fed.arrays.maker is None:
            raise ArrayUnsupported("array: job arrays are served in store mode, or in Kubernetes mode with its "
                                   "FederatedJob controller (a FederatedJob with spec.array: docs/kubernetes.md)")

    async def _find(self, who: Principal, key: str, context: grpc.aio.ServicerContext, *,
                    manage: bool = False, verb: str = "") -> tuple[Job | None, Denied | None]:
        """The job `key` names (an id, namespace/name, or a name: server/job_keys.py), or why not; a name in
        several namespaces the caller may see ends the call with FAILED_PRECONDITION listing them."""
        job = resolve(self.fed.jobs, key, lambda named: self.authz.visible(who, named))
        if job is None:
            return None, None
        if isinstance(job, Ambiguous):
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, job.message)
            raise AssertionError("unreachable")
        decision = self.authz.job(who, job, manage=manage, verb=verb)
        if isinstance(decision, Denied) and not self.authz.visible(who, [job]):
            # One the caller may not see is answered as one nobody has (NOT_FOUND): a refusal confirmed another
            # tenant's job name (outside QA F1). The refusal, naming the job, is for the audit line only.
            return None, Denied(decision.rule, f"{decision.message} (job {job.job_id}; answered as no job)")
        return job, decision if isinstance(decision, Denied) else None

    @staticmethod
    async def _need_job_id(job_id: str, context: grpc.aio.ServicerContext) -> None:
        """An empty job_id is a client's mistake, not a job nobody has: it read as NOT_FOUND "no job ... ''"."""
        if not job_id:
            problem = FieldProblem("job_id", "must not be empty")
            await context.abort_with_status(bad_request(str(problem), [problem]))

    async def Get(self, request: jobs_pb2.GetJobRequest,  # noqa: N802
                  context: grpc.aio.ServicerContext) -> types_pb2.Job:
        who = await self.principal(context)
        await self._need_job_id(request.job_id, context)
        job, denied = await self._find(who, request.job_id, context)
        if job is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no job with id or name {shown(request.job_id)}")
            raise AssertionError("unreachable")
        if denied is not None:
            await self.refuse(context, denied.rule.value, denied.message, job_id=job.job_id)
        return convert.job_to_pb(job)

    def _visible(self, who: Principal, *, after: tuple[float, str] | None = None, queue: str = "",
                 query: Query | None = None) -> Iterator[Job]:
        """The jobs `who` may see, in submission order after `after` (or as `query` orders and filters them): the
        table's index says where to look, the policy decides each job served (so an index fault can only hide a
        job, never show one), and the filter applies to what the policy lets through."""
        query = query or Query(queue=queue)
        seen = self.authz.view(who)
        view = None if seen is None else View(*seen)
        for job in query.matching(self.fed.jobs.in_order(after=after, view=view, queue=query.queue, owner=query.owner,
                                                         newest_first=query.newest_first)):
            if view is None or self.authz.visible(who, [job]):
                yield job

    async def List(self, request: jobs_pb2.ListJobsRequest,  # noqa: N802
                   context: grpc.aio.ServicerContext) -> jobs_pb2.ListJobsResponse:
        who = await self.principal(context)
        try:  # the server's message limit: a page never passes what the contract tells a client to accept
            query = query_of(request)
            got = page(lambda after: self._visible(who, after=after, query=query),
                       page_size=request.page_size, page_token=request.page_token,
                       max_bytes=self.fed.limits.max_message_bytes, fingerprint=query.fingerprint,
                       caller=who.user, newest_first=query.newest_first)
        except (QueryError, PageTokenError) as exc:
            found = exc.problems if isinstance(exc, QueryError) else [token_problem(str(exc))]
            await context.abort_with_status(bad_request("; ".join(str(p) for p in found), found))
            raise AssertionError("unreachable") from exc
        applied_filter, applied_order = query.applied()
        return jobs_pb2.ListJobsResponse(jobs=got.jobs, next_page_token=got.next_token,
                                         applied_filter=applied_filter, applied_order=applied_order)

    async def _to_manage(self, who: Principal, job_id: str, action: str,
                         context: grpc.aio.ServicerContext) -> tuple[Job, str]:
        """The job a Cancel or Scale (`action`, as audited) names, and the rule that lets `who` manage it; the call
        ends NOT_FOUND or PERMISSION_DENIED otherwise, audited as such."""
        await self._need_job_id(job_id, context)
        job, denied = await self._find(who, job_id, context, manage=True, verb=action)
        if job is None:
            message = f"no job with id or name {shown(job_id)}"
            self.audit.record(action, identity=who, obj=_job_object(None, key=job_id), result="failed",
                              code=grpc.StatusCode.NOT_FOUND.name, rule=denied.rule.value if denied else "",
                              message=denied.message if denied else message)
            await context.abort(grpc.StatusCode.NOT_FOUND, message)
            raise AssertionError("unreachable")
        if denied is not None:
            self.audit.record(action, identity=who, obj=_job_object(job), result="refused",
                              code=grpc.StatusCode.PERMISSION_DENIED.name, rule=denied.rule.value,
                              message=denied.message)
            await self.refuse(context, denied.rule.value, denied.message, job_id=job.job_id, action=action)
        decision = self.authz.job(who, job, manage=True)
        return job, decision.rule.value if isinstance(decision, Allowed) else ""

    async def Cancel(self, request: jobs_pb2.CancelJobRequest,  # noqa: N802
                     context: grpc.aio.ServicerContext) -> types_pb2.Job:
        who = await self.principal(context)
        job, rule = await self._to_manage(who, request.job_id, "cancel", context)
        if job.phase.is_terminal:  # nothing stopped: an auditor must not read that the caller ended it (QA C5)
            self.audit.record("cancel", identity=who, obj=_job_object(job), result="unchanged", rule=rule,
                              message=f"already {job.phase.value}: nothing to cancel")
            return convert.job_to_pb(job)
        try:
            job = await self.fed.cancel_async(job.job_id)
        except StoreUnavailable as exc:  # nothing changed: the job runs on as before, and a retry may succeed
            message = f"{exc}; the job was not cancelled"
            self.audit.record("cancel", identity=who, obj=_job_object(job), result="failed",
                              code=grpc.StatusCode.UNAVAILABLE.name, message=message)
            await context.abort(grpc.StatusCode.UNAVAILABLE, message)
            raise AssertionError("unreachable") from exc
        self.audit.record("cancel", identity=who, obj=_job_object(job), result="accepted", rule=rule)
        return convert.job_to_pb(job)

    async def CancelJobs(self, request: jobs_pb2.CancelJobsRequest,  # noqa: N802
                         context: grpc.aio.ServicerContext) -> jobs_pb2.CancelJobsResponse:
        """Every job of a queue a filter takes, selected under the caller's visibility, each decided and audited
        as a Cancel of it and the whole as one `cancel.bulk` (server/cancel_jobs.py)."""
        return await cancel_jobs(self, request, context)

    async def Scale(self, request: jobs_pb2.ScaleJobRequest,  # noqa: N802
                    context: grpc.aio.ServicerContext) -> types_pb2.Job:
        """An inference job's new replica count (server/scaling.py), decided and audited as a Cancel is."""
        who = await self.principal(context)
        job, rule = await self._to_manage(who, request.job_id, "scale", context)
        asked = {**_job_object(job), "replicas": str(request.replicas), "was": str(job.spec.replicas)}
        try:
            job = await self.fed.scale_async(job.job_id, request.replicas)
        except ScaleRefused as exc:
            code = grpc.StatusCode.INVALID_ARGUMENT if exc.problem is ScaleProblem.INVALID else \
                grpc.StatusCode.FAILED_PRECONDITION
            self.audit.record("scale", identity=who, obj=asked, result="failed", code=code.name, message=str(exc))
            if code is grpc.StatusCode.INVALID_ARGUMENT:
                await context.abort_with_status(bad_request(str(exc), [FieldProblem("replicas", str(exc))]))
            await context.abort(code, cut(str(exc)))
            raise AssertionError("unreachable") from exc
        except StoreUnavailable as exc:  # nothing changed and no member was told: a retry may succeed
            message = f"{exc}; the job was not scaled"
            self.audit.record("scale", identity=who, obj=asked, result="failed",
                              code=grpc.StatusCode.UNAVAILABLE.name, message=message)
            await context.abort(grpc.StatusCode.UNAVAILABLE, message)
            raise AssertionError("unreachable") from exc
        self.audit.record("scale", identity=who, obj=asked, result="accepted", rule=rule)
        return convert.job_to_pb(job)

    async def Hold(self, request: jobs_pb2.HoldJobRequest,  # noqa: N802
                   context: grpc.aio.ServicerContext) -> types_pb2.Job:
        """Keep a Pending job from being placed until released (server/job_holds.py, server/hold_calls.py)."""
        return await hold_call(self, request, context)

    async def Release(self, request: jobs_pb2.ReleaseJobRequest,  # noqa: N802
                      context: grpc.aio.ServicerContext) -> types_pb2.Job:
        """Let a held job be placed again."""
        return await release_call(self, request, context)

    async def Logs(self, request: jobs_pb2.JobLogsRequest,  # noqa: N802
                   context: grpc.aio.ServicerContext) -> jobs_pb2.JobLogsResponse:
        """The tail of a job's output, read by the agents of the clusters it ran on (server/logs.py). Who may Get
        the job may read it; every call is audited, as a Cancel is."""
        who = await self.principal(context)
        await self._need_job_id(request.job_id, context)
        pace = self.logs_rate.take(who.user)
        if pace is not None:
            self.audit.record("logs", identity=who, obj=_job_object(None, key=request.job_id), result="refused",
                              code=grpc.StatusCode.RESOURCE_EXHAUSTED.name, message=str(pace.details))
            await context.abort_with_status(pace)
        try:
            want = logs.bounds(replica=request.replica if request.HasField("replica") else None,
                               container=request.container, tail_lines=request.tail_lines,
                               limit_bytes=request.limit_bytes, max_message_bytes=self.fed.limits.max_message_bytes)
        except logs.BoundsError as exc:
            problem = FieldProblem(exc.field, str(exc).removeprefix(f"{exc.field}: "))
            await context.abort_with_status(bad_request(str(exc), [problem]))
            raise AssertionError("unreachable") from exc
        job, _ = await self.logs_job(who, request.job_id, context)
        got = await logs.gather(self.fed, job, want)
        decision = self.authz.job(who, job, manage=False)
        self.audit.record("logs", identity=who, obj={**_job_object(job), "replicas_read": str(len(got.logs))},
                          result="accepted", rule=decision.rule.value if isinstance(decision, Allowed) else "")
        return jobs_pb2.JobLogsResponse(
            logs=[jobs_pb2.JobLog(cluster=t.cluster, placement_id=t.placement_id, replica=t.replica, pod=t.pod,
                                  container=t.container, text=t.text, truncated=t.truncated, error=t.error)
                  for t in got.logs],
            errors=[jobs_pb2.JobLogsError(cluster=u.cluster, placement_id=u.placement_id, message=u.message)
                    for u in got.unread],
            tail_lines=want.tail_lines, limit_bytes=want.limit_bytes)

    async def FollowLogs(self, request: jobs_pb2.FollowLogsRequest,  # noqa: N802
                         context: grpc.aio.ServicerContext) -> AsyncIterator[jobs_pb2.FollowLogsMessage]:
        """A job's output as it is written, bounded (server/log_follow.py)."""
        async for message in log_follow.follow(self, request, context):
            yield message

    async def logs_job(self, who: Principal, key: str, context: grpc.aio.ServicerContext, *,
                       follow: bool = False) -> tuple[Job, dict[str, str]]:
        """The job whose logs `who` asks for, and what its audit line says it is; a job not found, refused or
        never placed ends the call (audited `logs`, as every call is)."""
        await self._need_job_id(key, context)
        job, denied = await self._find(who, key, context)
        if job is None or denied is not None:
            code = grpc.StatusCode.NOT_FOUND if job is None else grpc.StatusCode.PERMISSION_DENIED
            self.audit.record("logs", identity=who, obj=_job_object(job, key=key) | _follow(follow),
                              result="failed" if job is None else "refused", code=code.name,
                              rule=denied.rule.value if denied else "",
                              message=denied.message if denied else "no such job")
            if job is None:
                await context.abort(code, f"no job with id or name {shown(key)}")
            assert denied is not None and job is not None
            await self.refuse(context, denied.rule.value, denied.message, job_id=job.job_id)
            raise AssertionError("unreachable")
        if not job.placements:  # a job put back to Pending keeps no placement: where it ran before is not known
            message = f"job {job.job_id} has never been placed: no logs yet" if not job.ran_seconds else \
                f"job {job.job_id} has no placement now: it ran before and waits to be placed again (the federator " \
                "keeps no record of where its earlier attempts ran); no logs until it is placed again"
            self.audit.record("logs", identity=who, obj=_job_object(job) | _follow(follow), result="failed",
                              code=grpc.StatusCode.FAILED_PRECONDITION.name, message=message)
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, message)
        return job, _job_object(job) | _follow(follow)

    async def Watch(self, request: jobs_pb2.WatchJobsRequest,  # noqa: N802
                    context: grpc.aio.ServicerContext) -> AsyncIterator[types_pb2.Job]:
        """A snapshot, then changes; bookmarks, revisions and resume on request (server/watch_stream.py)."""
        async for pb in watch_stream.jobs(self, request, context):
            yield pb

    async def WatchBatches(self, request: jobs_pb2.WatchJobsRequest,  # noqa: N802
                           context: grpc.aio.ServicerContext) -> AsyncIterator[jobs_pb2.JobBatch]:
        """Watch, several Jobs a message: a snapshot costs the loop a turn per batch, not per job."""
        async for batch in watch_stream.batches(self, request, context):
            yield batch
