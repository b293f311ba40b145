"""`JobService.CancelJobs`: every job of a queue a filter takes, cancelled by the federator and audited as one action.

Why: a bulk cancel (`federator cancel --queue Q --yes`, an operator offboarding an organisation) was a List and
one Cancel per job, so the audit log held a pile of single cancels and no record that one person cancelled an
organisation's work, with which filter, how many (outside QA, tenants F7). Here the server selects the jobs,
under the caller's visibility (as List shows them), and decides each one as a Cancel of it: the operation is one
`cancel.bulk` line (who, the filter, how many matched) at its first page, and each job keeps its own `cancel` line
with its outcome, both carrying the operation's id. A portal in another language gets it in one call per page.

Design (jobs.proto says it to clients):

- Paging by position, not by count: a page handles at most `max_jobs` matching jobs in submission order, and its
  token is the position after the last one handled, with the operation's id, its matched count and its filter.
  Jobs the caller may not cancel are skipped (REFUSED), so a later page never meets them again; a token made for
  another filter is refused, so a page cannot silently go on with a different selection.
- Each cancel is the single Cancel's (`Federator.cancel_async`: durable before any member hears of it, its write
  awaited while the event loop serves agent streams and other calls: server/cancelling.py). The store
  refusing one ends the page there (FAILED), its token pointing at that job: a retry goes on from it, and the jobs
  before it stay cancelled.
- Idempotent by construction: a cancelled job has ended, so no filter takes it again; a retried page answers what
  was left. No request id to remember.
- The loop yields to the event loop between jobs and during each job's write, so agent streams are served during a
  long page; a job that ends meanwhile (before its cancel is stored) is ENDED.
- Every bulk form the CLI has is one selection here (since 0.15.0, feature "jobs.cancel_bulk_select"): a name
  prefix and every queue (`all_queues`) too, so `federator cancel --all-queues --name-prefix P --yes` is one
  operation with one `cancel.bulk` line, not N single cancels an auditor cannot tie together (outside QA HPC).
  `all_queues` is a flag of its own, not an empty queue: a client that forgot its queue still cancels nothing.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc

from federator.api import convert
from federator.api.v1 import jobs_pb2
from federator.jobfile import FieldProblem, queue_problem
from federator.model import Job, JobPhase
from federator.model.label_selector import Selector, SelectorError, parse
from federator.security.authz import Allowed, Principal
from federator.server.arrays import array_id_problem
from federator.server.errors import bad_request
from federator.server.job_listing import name_prefix_problem
from federator.server.paging import PageTokenError, decode_token, encode_token
from federator.store.errors import StoreUnavailable

if TYPE_CHECKING:
    from federator.server.services import JobService

DEFAULT_MAX_JOBS = 100
MAX_MAX_JOBS = 500
"""A page's jobs are cancelled one durable write each: 500 is a few seconds of writes at most, and its answer a
few tens of kilobytes."""

ACTIVE = frozenset(p for p in JobPhase if not p.is_terminal)
OUTCOME = jobs_pb2.CancelOutcome


@dataclass(frozen=True, slots=True)
class Selection:
    """Which jobs a CancelJobs takes: of `queue` ("" with an array or `all_queues`: any), in one of `phases`,
    submitted by `owner` ("" = anyone), the tasks of `array_id` only when set (server/arrays.py), named starting
    with `name_prefix`."""

    queue: str
    phases: frozenset[JobPhase]
    owner: str
    array_id: str = ""
    name_prefix: str = ""
    all_queues: bool = False
    label_selector: str = ""  # as sent, checked (since 0.17.0); `labels` is it parsed
    labels: Selector = Selector()

    def takes(self, job: Job) -> bool:
        return (not self.queue or job.spec.queue == self.queue) and job.phase in self.phases and \
            (not self.owner or job.spec.recorded_user == self.owner) and \
            (not self.array_id or job.spec.array is not None and job.spec.array.array_id == self.array_id) and \
            job.spec.name.startswith(self.name_prefix) and self.labels.takes(job.spec.labels)

    def key(self) -> list[object]:
        """The filter as a token holds it (a filter of an older release's fields keeps that release's key, so its
        tokens still open after an upgrade)."""
        key: list[object] = [self.queue, sorted(p.value for p in self.phases), self.owner]
        key += [self.array_id] if self.array_id else []
        key += [["select", self.name_prefix, self.all_queues]] if self.name_prefix or self.all_queues else []
        return key + [["labels", self.label_selector]] if self.label_selector else key

    def audited(self) -> dict[str, str]:
        out = {"kind": "JobSelection", "queue": self.queue, "phases": ",".join(sorted(p.value for p in self.phases)),
               "owner": self.owner}
        out.update({"array_id": self.array_id} if self.array_id else {})
        out.update({"name_prefix": self.name_prefix} if self.name_prefix else {})
        out.update({"label_selector": self.label_selector} if self.label_selector else {})
        return {**out, "all_queues": "true"} if self.all_queues else out


@dataclass(frozen=True, slots=True)
class Position:
    """Where an operation stands: its id, its matched count, and the last job handled (None: none yet)."""

    operation: str
    matched: int
    after: tuple[float, str] | None


def selection(request: jobs_pb2.CancelJobsRequest) -> tuple[Selection | None, list[FieldProblem]]:
    """The request's filter, or the problems of its fields."""
    problems: list[FieldProblem] = []
    if request.array_id and array_id_problem(request.array_id):
        problems.append(FieldProblem("array_id", array_id_problem(request.array_id) or ""))
    if request.queue and request.all_queues:
        problems.append(FieldProblem("queue", "must be empty with all_queues (every queue): give one or the other"))
    elif not request.queue and not request.array_id and not request.all_queues:
        problems.append(FieldProblem("queue", "must not be empty: CancelJobs cancels the jobs of one queue (or of "
                                              "one array, array_id, or of every queue, all_queues)"))
    elif request.queue and queue_problem(request.queue):
        problems.append(FieldProblem("queue", queue_problem(request.queue)))
    phases: set[JobPhase] = set()
    for value in request.phases:
        try:
            phase: JobPhase | None = convert.phase_from_pb(value)
        except convert.WireError:
            phase = None
        if phase is None or phase not in ACTIVE:
            named = phase.value if phase is not None else f"value {value}"
            problems.append(FieldProblem("phases", f"{named} is not a phase a job can be cancelled in "
                                                   f"(one of {', '.join(sorted(p.value for p in ACTIVE))})"))
        else:
            phases.add(phase)
    if name_prefix_problem(request.name_prefix):
        problems.append(FieldProblem("name_prefix", name_prefix_problem(request.name_prefix)))
    labels = Selector()
    try:
        labels = parse(request.label_selector)
    except SelectorError as exc:
        problems.append(FieldProblem("label_selector", str(exc)))
    if request.max_jobs < 0:
        problems.append(FieldProblem("max_jobs", f"must not be negative, got {request.max_jobs}"))
    if problems:
        return None, problems
    return Selection(request.queue, frozenset(phases or ACTIVE), request.owner, request.array_id,
                     request.name_prefix, request.all_queues, request.label_selector, labels), []


def _bound(user: str) -> str:
    """What a CancelJobs token is bound to: the RPC and the caller. A token names an operation and its count, which
    go into audit lines, so one a client made up (or another user's) must not pass (portal re-test N1: a forged
    token cancelled jobs under an invented operation id and count). Sealed as every page token is
    (server/paging.py): unreadable, and refused unless this federator's key made it for this caller."""
    return f"jobs.cancel\x00{user}"


def position(token: str, chosen: Selection, user: str) -> Position:
    """The position a page token holds; PageTokenError unless this federator made it, for `user` and this
    filter."""
    values = decode_token(token, bound=_bound(user))
    problem = "page_token: not a token of a CancelJobs with this filter; use next_page_token of the previous page " \
              "with the same filter (queue, phases, owner, array_id, name_prefix, all_queues, label_selector), or " \
              "leave it empty to start"
    try:
        operation, matched, key, at, job_id = values
        if not (isinstance(operation, str) and isinstance(matched, int) and isinstance(at, int | float)
                and isinstance(job_id, str) and math.isfinite(float(at))):
            raise ValueError
    except (ValueError, TypeError) as exc:
        raise PageTokenError(problem) from exc
    if key != chosen.key():
        raise PageTokenError(problem)
    return Position(operation, matched, (float(at), job_id))


def token(pos: Position, chosen: Selection, user: str, at: float, job_id: str) -> str:
    return encode_token(pos.operation, pos.matched, chosen.key(), at, job_id, bound=_bound(user))


def _job_object(job: Job) -> dict[str, str]:
    return {"kind": "Job", "namespace": job.spec.namespace, "name": job.spec.name, "queue": job.spec.queue,
            "job_id": job.job_id}


def _result(job: Job, outcome: int, message: str = "") -> jobs_pb2.CancelJobResult:
    return jobs_pb2.CancelJobResult(job_id=job.job_id, namespace=job.spec.namespace, name=job.spec.name,
                                    outcome=outcome, message=message)  # type: ignore[arg-type]


async def cancel_jobs(edge: JobService, request: jobs_pb2.CancelJobsRequest,
                      context: grpc.aio.ServicerContext) -> jobs_pb2.CancelJobsResponse:
    """One page of a CancelJobs (see the module)."""
    who = await edge.principal(context)
    chosen, problems = selection(request)
    if chosen is None:
        message = "; ".join(str(p) for p in problems)
        edge.audit.record("cancel.bulk", identity=who, obj={"kind": "JobSelection", "queue": request.queue[:80]},
                          result="failed", code=grpc.StatusCode.INVALID_ARGUMENT.name, message=message)
        await context.abort_with_status(bad_request(message, problems))
        raise AssertionError("unreachable")
    try:
        pos = position(request.page_token, chosen, who.user) if request.page_token else None
    except PageTokenError as exc:
        await context.abort_with_status(bad_request(str(exc), [FieldProblem("page_token", str(exc))]))
        raise AssertionError("unreachable") from exc
    if pos is None:  # the operation starts: audited once, with what it takes now
        matched = sum(1 for job in edge._visible(who, queue=chosen.queue) if chosen.takes(job))
        pos = Position(f"bulk-{uuid.uuid4().hex[:16]}", matched, None)
        edge.audit.record("cancel.bulk", identity=who, obj={**chosen.audited(), "matched": str(matched)},
                          result="accepted", operation=pos.operation)
    size = min(request.max_jobs or DEFAULT_MAX_JOBS, MAX_MAX_JOBS)
    page = _taken(edge, who, chosen, pos, size + 1)
    more, page = len(page) > size, page[:size]
    results: list[jobs_pb2.CancelJobResult] = []
    last: Job | None = page[-1] if page else None  # the page's last in submission order: where the next starts
    for job in _waiting_first(page):
        outcome = await _cancel_one(edge, who, job, pos.operation)
        results.append(outcome)
        if outcome.outcome == OUTCOME.CANCEL_OUTCOME_FAILED:
            more, last = True, None  # the page ends here; the next starts where this one did (its cancelled: ended)
            break
    next_token = ""
    if more and last is not None:
        next_token = token(pos, chosen, who.user, last.submitted_at, last.job_id)
    elif more:  # a job of the page failed: the next page starts where this one did
        next_token = request.page_token or token(pos, chosen, who.user, float("-1e300"), "")
    return jobs_pb2.CancelJobsResponse(operation_id=pos.operation, matched=pos.matched, results=results,
                                       next_page_token=next_token)


def _waiting_first(page: list[Job]) -> list[Job]:
    """The page's jobs in the order they are cancelled: those not placed first, then the placed and running, each
    in submission order. Why: a running job's cancel frees its room (or an array's throttle slot), and a cycle
    between two cancels gave it to a job of the same selection about to be cancelled, launched on a member and
    torn down a moment later (outside QA new59 N1: a throttled array's next task was launched, a real batch Job
    made and deleted, before its own cancel)."""
    return sorted(page, key=lambda job: bool(job.placements))


def _taken(edge: JobService, who: Principal, chosen: Selection, pos: Position, limit: int) -> list[Job]:
    out: list[Job] = []
    for job in edge._visible(who, after=pos.after, queue=chosen.queue):
        if pos.after is not None and (job.submitted_at, job.job_id) <= pos.after:
            continue
        if chosen.takes(job):
            out.append(job)
            if len(out) == limit:
                break
    return out


async def _cancel_one(edge: JobService, who: Principal, job: Job, operation: str) -> jobs_pb2.CancelJobResult:
    """One selected job, decided and audited as a Cancel of it."""
    await asyncio.sleep(0)  # agent streams are served between a page's writes
    live = edge.fed.jobs.get(job.job_id)
    if live is None or live.phase.is_terminal:
        return _result(job, OUTCOME.CANCEL_OUTCOME_ENDED)
    decision = edge.authz.job(who, live, manage=True)
    if not isinstance(decision, Allowed):
        edge.audit.record("cancel", identity=who, obj=_job_object(live), result="refused",
                          code=grpc.StatusCode.PERMISSION_DENIED.name, rule=decision.rule.value,
                          message=decision.message, operation=operation)
        return _result(live, OUTCOME.CANCEL_OUTCOME_REFUSED, decision.message)
    try:
        done = await edge.fed.cancel_async(live.job_id)
    except StoreUnavailable as exc:  # nothing changed: the job runs on, and a retry of the page may succeed
        message = f"{exc}; the job was not cancelled"
        edge.audit.record("cancel", identity=who, obj=_job_object(live), result="failed",
                          code=grpc.StatusCode.UNAVAILABLE.name, message=message, operation=operation)
        return _result(live, OUTCOME.CANCEL_OUTCOME_FAILED, message)
    if done.phase is not JobPhase.CANCELLED:  # it ended while its cancel's write was awaited: its end stands
        return _result(done, OUTCOME.CANCEL_OUTCOME_ENDED)
    edge.audit.record("cancel", identity=who, obj=_job_object(done), result="accepted", rule=decision.rule.value,
                      operation=operation)
    return _result(done, OUTCOME.CANCEL_OUTCOME_CANCELLED)


__all__ = ["DEFAULT_MAX_JOBS", "MAX_MAX_JOBS", "Selection", "cancel_jobs", "selection"]
