"""UsageService: `federator usage` reads accelerator-seconds from the usage store.

A transport like the others (`edge.py`) (same authentication edge);
the sums are `accounting.summarize`, the records come from the store, so a
report after a restart includes everything used before it.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence

import grpc

from federator.accounting import Dimension, SqliteUsageStore, UsageRecord, UsageRow, known_where, summarize
from federator.api import convert
from federator.api.v1 import types_pb2, usage_pb2, usage_pb2_grpc
from federator.catalog import catalog
from federator.jobfile import FieldProblem, queue_problem, shown
from federator.model import Job, JobId
from federator.security.authz import Authorizer, Principal, owner_of
from federator.security.limits import valid_cluster_name
from federator.security.provider_rights import RULE, ProviderCaller
from federator.security.provider_usage import billed_to, usage_refusal
from federator.server.clusters import ClusterRecord
from federator.server.edge import Edge
from federator.server.errors import bad_request
from federator.server.usage_names import billed_there, unknown_cluster
from federator.timestamps import time_problem, utc_exact


def _row(row: UsageRow, phase: types_pb2.JobPhase = types_pb2.JOB_PHASE_UNSPECIFIED) -> usage_pb2.UsageRow:
    return usage_pb2.UsageRow(key=row.key, accelerator_seconds=row.accelerator_seconds,
                              micro_accelerator_seconds=row.micro, placements=row.placements, keys=row.keys,
                              phase=phase)


def phase_now(jobs: Mapping[JobId, Job], by: Sequence[Dimension]) -> Callable[[UsageRow], types_pb2.JobPhase]:
    """A row's job's phase as the federator keeps the job now (UsageRow.phase; usage records keep none: a user
    reconciling a month asked which rows succeeded, failed or were cancelled, outside QA HPC), UNSPECIFIED for a
    job no longer kept or a row not grouped by job. Only rows of jobs the caller may see reach here
    (`visible_records`: the rule `get jobs` follows), so the phase tells nothing `get jobs` would not."""
    at = list(by).index(Dimension.JOB) if Dimension.JOB in by else -1

    def phase(row: UsageRow) -> types_pb2.JobPhase:
        job = jobs.get(JobId(row.keys[at])) if 0 <= at < len(row.keys) else None
        return convert.phase_to_pb(job.phase) if job is not None else types_pb2.JOB_PHASE_UNSPECIFIED
    return phase


def region_now(clusters: Mapping[str, ClusterRecord]) -> Callable[[str], str]:
    """A cluster's region as the federator knows it now ("" for one it no longer knows): what a usage record
    written before 0.14.0, which kept none, is grouped under (accounting.known_where)."""
    return lambda name: rec.region if (rec := clusters.get(name)) is not None else ""


def vendor_now(clusters: Mapping[str, ClusterRecord]) -> Callable[[str, str], str]:
    """A model's vendor: the cluster's pool of that model as reported now, else the accelerator catalog's entry,
    else "" (a record of 0.13.0 or older, or a placement that named none)."""
    def vendor(name: str, model: str) -> str:
        rec = clusters.get(name)
        for pool in (rec.capacity.accelerator_pools if rec is not None and rec.capacity is not None else ()):
            if pool.accelerator_model == model:
                return pool.vendor
        entry = catalog().find_model(model) if model else None
        return entry.vendor if entry is not None else ""
    return vendor


def dimensions(request: usage_pb2.UsageRequest) -> tuple[tuple[Dimension, ...], list[FieldProblem]]:
    """The dimensions asked for, `by` (one, as before 0.14.0) or `group_by` (several), and what is wrong with them."""
    if request.by and request.group_by:
        return (), [FieldProblem("group_by", "give by or group_by, not both (group_by of one dimension is by)")]
    if len(request.group_by) > len(Dimension):  # each at most once: a longer list is junk, not named item by item
        return (), [FieldProblem("group_by", f"at most {len(Dimension)} dimensions, each once, got "
                                             f"{len(request.group_by)}")]
    field, names = ("group_by", list(request.group_by)) if request.group_by else ("by", [request.by] if request.by
                                                                                   else [])
    dims: list[Dimension] = []
    problems = []
    for i, name in enumerate(names):
        where = f"{field}[{i}]" if field == "group_by" else field
        try:
            dim = Dimension(name)
        except ValueError:
            problems.append(FieldProblem(where, f"must be one of {', '.join(d.value for d in Dimension)}, "
                                                f"got {shown(name)}"))
            continue
        if dim in dims:
            problems.append(FieldProblem(where, f"{dim.value} is given twice"))
        dims.append(dim)
    return tuple(dims), problems


def visible_records(authz: Authorizer, who: Principal, records: Sequence[UsageRecord],
                    jobs: Mapping[JobId, Job]) -> list[UsageRecord]:
    """The records of the jobs `who` may see, by the rule `get jobs` follows (`Authorizer.sees_owner`): their own,
    and those of a user they share a group of tenancy.groups with (jobs: view or manage). A member of an org's
    group saw the group's jobs but only their own usage (tenant QA F3). The groups stamped on a job count while
    the federator still knows it; past that, the policy's groups of the record's user."""
    if who.admin:
        return list(records)
    seen: dict[tuple[str, str], bool] = {}
    out = []
    for r in records:
        key = (r.user, r.job_id)
        if key not in seen:
            job = jobs.get(JobId(r.job_id))
            recorded = owner_of(job.spec)[1] if job is not None else frozenset()
            seen[key] = authz.sees_owner(who, r.user, recorded)
        if seen[key]:
            out.append(r)
    return out


def unvouched(records: Sequence[UsageRecord], until: float, clusters: Mapping[str, ClusterRecord],
              report_interval: float, unsettled: Container[str] = ()) -> bool:
    """Whether a record in the window is still open on a member not heard from since (about) the window's end: its
    end may yet come, earlier than now, and change the window's sum (outside billing re-test N3: a window read
    while an agent was dead said 80.0 and complete; once its member was Lost, 59.656). A member's capacity report
    within two report intervals of `until` vouches for its running placements through it. So is one closed at a
    cancel while its member was silent, its end not known yet (`unsettled`: server/silent_cancels.py): it may move
    earlier."""
    if unsettled and any(r.placement_id in unsettled for r in records):
        return True
    grace = 2 * report_interval
    for r in records:
        if r.end is None and r.start < until:
            member = clusters.get(r.cluster)
            if member is None or member.last_report_at < until - grace:
                return True
    return False


class UsageService(Edge, usage_pb2_grpc.UsageServiceServicer):
    """Admins see all usage; a user the usage of the jobs they may see (`visible_records`); a provider, with one
    of its clusters' certificates, its own clusters' usage by cluster, model or provider (provider_usage.py)."""

    def __init__(self, edge: Edge, store: SqliteUsageStore) -> None:
        super().__init__(edge.fed, edge.auth, authz=edge.authz, audit=edge.audit)
        self.usage = store

    async def Get(self, request: usage_pb2.UsageRequest,  # noqa: N802
                  context: grpc.aio.ServicerContext) -> usage_pb2.UsageResponse:
        peer = self.auth.cluster_caller(context.auth_context())  # a provider's: security/provider_usage.py
        provider = ProviderCaller(peer.identity.name, peer.issuer) if peer and peer.identity else None
        if provider is not None:
            await self.cluster_acts_for_no_user(context, provider.cluster)
        who = await self.principal(context) if provider is None else None
        # every bad field at once, as List names them (outside QA, portal m3)
        by, problems = dimensions(request)
        if request.queue and queue_problem(request.queue):  # a typo'd queue must not read as zero spend
            problems.append(FieldProblem("queue", queue_problem(request.queue)))
        if request.cluster and not valid_cluster_name(request.cluster):
            problems.append(FieldProblem("cluster", f"{shown(request.cluster)} is not a member cluster's name "
                                                    "(lower-case letters, digits, '-' and '.', at most 63)"))
        now = self.fed.clock()
        since, until = request.since, request.until or now
        times = [FieldProblem(field, problem) for field, value in (("since", since), ("until", until))
                 if (problem := time_problem(value)) is not None]  # past 9999 too (outside fuzz QA F1)
        if not times and until <= since:
            times.append(FieldProblem("until", f"must be after since ({utc_exact(until)} is not after "
                                               f"{utc_exact(since)})"))  # dates: a person reads it (HPC QA H7)
        problems += times
        if problems:
            await context.abort_with_status(bad_request("; ".join(str(p) for p in problems), problems))
        if provider is not None:
            payee = provider.provider  # a cluster moved from it answers what was billed to it (usage_names.py)
            refusal = usage_refusal(provider, by=[d.value for d in by], queue=request.queue, cluster=request.cluster,
                                    trust=self.auth.trust,
                                    billed_there=lambda name: billed_there(self.usage, payee, name))
            if refusal:
                await self.refuse(context, RULE, refusal, cluster=provider.cluster)
        # Nothing after the call is counted yet: the answer says so (until clamped, incomplete) rather than
        # naming a window not over (outside billing QA F5: an invoice exported mid-month read as the whole month).
        incomplete = until > now
        until = max(since, min(until, now))
        places = bool({Dimension.REGION, Dimension.VENDOR} & set(by))  # a look-up a record (store.py `query`)
        records = self.usage.query(since=since, until=until, cluster=request.cluster, places=places)  # by its index
        unknown = unknown_cluster(request.cluster, members=self.fed.clusters, window=records, store=self.usage)
        if unknown is not None:  # a typo'd cluster must not read as zero spend either (server/usage_names.py)
            await context.abort_with_status(bad_request(str(unknown), [unknown]))
        if request.queue:
            records = [r for r in records if r.queue == request.queue]
        if who is not None:
            records = visible_records(self.authz, who, records, self.fed.jobs)
        else:
            assert provider is not None
            records = [r for r in records if billed_to(provider, r)]
        incomplete = incomplete or unvouched(records, until, self.fed.clusters, self.fed.report_interval,
                                             self.fed.silent_cancels)
        if places:  # a record of 0.13.0 or older kept neither
            records = known_where(records, region_of=region_now(self.fed.clusters),
                                  vendor_of=vendor_now(self.fed.clusters))
        report = summarize(records, since=since, until=until, now=now, by=by)
        phase = phase_now(self.fed.jobs if who is not None else {}, by)
        return usage_pb2.UsageResponse(since=since, until=until, by=request.by,
                                       rows=[_row(r, phase(r)) for r in report.rows],
                                       total=_row(report.total), incomplete=incomplete,
                                       group_by=list(request.group_by))


__all__ = ["UsageService", "dimensions", "phase_now", "region_now", "unvouched", "vendor_now", "visible_records"]
