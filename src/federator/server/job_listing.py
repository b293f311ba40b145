"""What a ListJobs request asks for: its queue, filter and order, checked and bound into its page tokens.

A portal for ~1,000 organisations shows "my running jobs" or "newest first"; with a queue filter and oldest-first
order only, it paged through every job it could see on each refresh (outside QA, portal M6). The filter is
applied by the server after visibility (server/job_service.py asks the policy about each job it serves), so a
page, its length and its token say nothing of jobs the caller may not see. A page token names a position in
one order, so it is bound to the query it was made for (`Query.fingerprint`): used with another filter or
order, it would name a position in a sequence it was never in, and pages would repeat or skip jobs.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from federator.api import convert
from federator.api.v1 import jobs_pb2, types_pb2
from federator.jobfile import FieldProblem, queue_problem, shown
from federator.model import Job, JobPhase
from federator.model.array import array_id_problem
from federator.model.label_selector import Selector, SelectorError, parse
from federator.timestamps import time_problem

MAX_OWNER_CHARS = 256
MAX_PREFIX_CHARS = 253  # a job name's own limit: a longer prefix can match nothing
_PREFIX = re.compile(r"^[a-z0-9.-]*$")


def name_prefix_problem(prefix: str) -> str:
    """What is wrong with a job name prefix (ListJobs' filter.name_prefix, CancelJobs' name_prefix); "" if
    nothing."""
    if len(prefix) > MAX_PREFIX_CHARS:
        return f"must be at most {MAX_PREFIX_CHARS} characters (a job name's limit), got {len(prefix)}"
    if not _PREFIX.match(prefix):
        return f"must hold only what a job name may: lower-case letters, digits, '-' and '.', got {shown(prefix)}"
    return ""


class QueryError(ValueError):
    """A ListJobsRequest that asks for something malformed; `problems` name each bad field."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Query:
    """A checked ListJobsRequest, less its paging: which jobs, in which order."""

    queue: str = ""
    phases: frozenset[JobPhase] = frozenset()
    owner: str = ""
    namespace: str = ""
    name_prefix: str = ""
    submitted_since: float = 0.0
    newest_first: bool = False
    array_id: str = ""  # the tasks of one array (filter.array_id, since 0.16.0)
    label_selector: str = ""  # as sent, checked (filter.label_selector, since 0.17.0); `labels` is it parsed
    labels: Selector = Selector()

    @property
    def fingerprint(self) -> str:
        """A short digest of the query that a page token carries: same query, same fingerprint."""
        canon = json.dumps([self.queue, sorted(self.phases), self.owner, self.namespace, self.name_prefix,
                            self.submitted_since, self.newest_first]
                           + ([self.array_id] if self.array_id else [])  # a token of 0.15.0 still reads
                           + ([["labels", self.label_selector]] if self.label_selector else []),
                           separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:16]

    def takes(self, job: Job) -> bool:
        """Whether the job matches (visibility is the caller's to check: this is the filter only)."""
        spec = job.spec
        return ((not self.queue or spec.queue == self.queue)
                and (not self.phases or job.phase in self.phases)
                and (not self.owner or spec.recorded_user == self.owner)
                and (not self.namespace or spec.namespace == self.namespace)
                and spec.name.startswith(self.name_prefix)
                and job.submitted_at >= self.submitted_since
                and (not self.array_id or (spec.array is not None and spec.array.array_id == self.array_id))
                and self.labels.takes(spec.labels))

    def matching(self, jobs: Iterable[Job]) -> Iterator[Job]:
        return (job for job in jobs if self.takes(job))

    def applied(self) -> tuple[jobs_pb2.ListJobsFilter, jobs_pb2.ListOrder]:
        """The response's echo, built from the fields this server knows (never the request's message, whose
        unknown fields a newer client sent would be copied back as if applied)."""
        echo = jobs_pb2.ListJobsFilter(
            phases=[convert.phase_to_pb(p) for p in sorted(self.phases, key=list(JobPhase).index)],
            owner=self.owner, namespace=self.namespace, name_prefix=self.name_prefix,
            submitted_since=self.submitted_since, array_id=self.array_id, label_selector=self.label_selector)
        order = jobs_pb2.LIST_ORDER_NEWEST_FIRST if self.newest_first else jobs_pb2.LIST_ORDER_OLDEST_FIRST
        return echo, order


def query_of(request: jobs_pb2.ListJobsRequest) -> Query:
    """The request's query, every bad field named at once (QueryError)."""
    problems: list[FieldProblem] = []
    if request.queue and queue_problem(request.queue):  # a typo must not read as "no jobs there"
        problems.append(FieldProblem("queue", queue_problem(request.queue)))
    f = request.filter
    phases: set[JobPhase] = set()
    known = {int(v) for v in types_pb2.JobPhase.values()} - {types_pb2.JOB_PHASE_UNSPECIFIED}
    for i, value in enumerate(f.phases):
        if value in known:
            phases.add(convert.phase_from_pb(value))
        else:
            problems.append(FieldProblem(f"filter.phases[{i}]", _not_a_phase(value)))
    if len(f.owner) > MAX_OWNER_CHARS or not f.owner.isprintable():
        problems.append(FieldProblem("filter.owner", f"must be a user name of at most {MAX_OWNER_CHARS} printable "
                                                     f"characters, got {shown(f.owner)}"))
    if f.namespace and queue_problem(f.namespace):
        problems.append(FieldProblem("filter.namespace", queue_problem(f.namespace)))
    if name_prefix_problem(f.name_prefix):
        problems.append(FieldProblem("filter.name_prefix", name_prefix_problem(f.name_prefix)))
    if f.array_id and array_id_problem(f.array_id):
        problems.append(FieldProblem("filter.array_id", array_id_problem(f.array_id) or ""))
    labels = Selector()
    try:
        labels = parse(f.label_selector)
    except SelectorError as exc:
        problems.append(FieldProblem("filter.label_selector", str(exc)))
    since = f.submitted_since
    if (problem := time_problem(since)) is not None:  # past 9999 too (outside fuzz QA F1)
        problems.append(FieldProblem("filter.submitted_since", problem))
    if request.order not in jobs_pb2.ListOrder.values():
        problems.append(FieldProblem("order", f"{request.order} is not a ListOrder (0 to "
                                              f"{max(jobs_pb2.ListOrder.values())})"))
    if problems:
        raise QueryError(problems)
    return Query(queue=request.queue, phases=frozenset(phases), owner=f.owner, namespace=f.namespace,
                 name_prefix=f.name_prefix, submitted_since=float(since),
                 newest_first=request.order == jobs_pb2.LIST_ORDER_NEWEST_FIRST, array_id=f.array_id,
                 label_selector=f.label_selector, labels=labels)


def token_problem(text: str) -> FieldProblem:
    """A paging refusal ("page_size: ...", "page_token: ...") as its field and problem, the field said once (the
    description repeated it: "page_token: page_token: not a token", outside QA, portal m3)."""
    field, _, problem = text.partition(": ")
    return FieldProblem(field, problem)


def _not_a_phase(value: int) -> str:
    names = ", ".join(n for n in types_pb2.JobPhase.keys() if n != "JOB_PHASE_UNSPECIFIED")
    return f"must be one of {names}, got {types_pb2.JobPhase.Name(value) if value == 0 else value}"


__all__ = ["MAX_OWNER_CHARS", "MAX_PREFIX_CHARS", "Query", "QueryError", "name_prefix_problem", "query_of",
           "token_problem"]
