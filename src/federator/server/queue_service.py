"""QueueService.List: each queue's standing (weight, held, fair share, waiting and running, caps, the caller's own).

Why: a user could not see their queue's fair-share standing: `whoami` lists queue caps, `usage` accelerator-seconds,
and the fair share appeared only inside a pending job's reason; an SRE graphs it (`federator_queue_fair_share`), a
user has no Prometheus (outside QA, HPC H11). Slurm users run `sshare` and `sprio`; `federator get queues` reads this.

The queue figures are the metrics' own: one `state_sample` (server/state_sample.py), the computation a scrape of
/metrics makes, so what a user reads and what an SRE graphs agree. The caller's own standing (what they hold
against the queue's other owners, how many waiting jobs go before theirs) is `scheduler/owner_standing.py` over one
walk of the jobs. Who sees what is Submit's rule (`Authorizer.submit`, as WhoAmI lists the queues): an admin every
queue, a user those they may submit to, never another organisation's; a provider's certificate none.

Cost: the calls of the same second share one state sample (server/shared_sample.py: a crowd polling `get queues`
pays one sample, not one each; `sampled_at` says when it was taken), and each walks the jobs once more for the
page's queues, building the waiting line only where the caller waits (docs/benchmarks.md,
bench/queue_standing.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import grpc

from federator.api.v1 import identity_pb2, queues_pb2, queues_pb2_grpc
from federator.jobfile import FieldProblem, queue_problem
from federator.metrics import StateSample
from federator.model import MILLI, Job, JobPhase, placement_held_milli, placement_total
from federator.scheduler.owner_share import Held
from federator.scheduler.owner_standing import NOTHING, Waiting, holding_less, jobs_ahead
from federator.scheduler.standing import fair_shares
from federator.security.authz import Allowed, Principal, Submitter
from federator.security.provider_rights import RULE
from federator.server import submit_room
from federator.server.edge import Edge
from federator.server.errors import bad_request
from federator.server.paging import TOKEN_PROBLEM, PageTokenError, decode_token, encode_token
from federator.server.shared_sample import SharedSample

DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 1_000
OTHER_QUEUE = ("page_token: made for another queue than this request's; send the same queue as for the first page, "
               "or leave page_token empty to start again")


class QueueRequestError(ValueError):
    """A field of ListQueuesRequest this server cannot take; the message starts with the field."""

    @property
    def field(self) -> str:
        return str(self).partition(":")[0]


def bound(user: str) -> str:
    """What a page token is bound to: the RPC and the caller (whose visibility the pages were cut from)."""
    return f"queues.list\x00{user}"


def checked(request: queues_pb2.ListQueuesRequest, user: str) -> tuple[int, str]:
    """The page size, and the name the page starts after ("" for the first page); QueueRequestError for a bad
    field."""
    if request.page_size < 0:
        raise QueueRequestError(f"page_size: must not be negative, got {request.page_size}")
    if request.queue and queue_problem(request.queue):
        raise QueueRequestError(f"queue: {queue_problem(request.queue)}")
    after = ""
    if request.page_token:
        try:
            values = decode_token(request.page_token, bound=bound(user))
        except PageTokenError as exc:
            raise QueueRequestError(str(exc)) from exc
        if len(values) != 3 or values[0] != "q" or not isinstance(values[1], str) or not isinstance(values[2], str):
            raise QueueRequestError(TOKEN_PROBLEM)
        if values[2] != request.queue:
            raise QueueRequestError(OTHER_QUEUE)
        after = values[1]
    return min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE), after


@dataclass(slots=True)
class _Tally:
    """One queue's walk: CPU held, each owner's holding, the owners with work, the caller's jobs, the waiting line."""

    cpu_milli: int = 0
    held: dict[str, Held] = field(default_factory=dict)
    owners: set[str] = field(default_factory=set)
    mine: dict[JobPhase, int] = field(default_factory=lambda: defaultdict(int))
    # Each waiting job that may yet run, with its owner: put in line (`Waiting`) only where the caller waits too,
    # so a call builds no 100,000 objects for queues where nothing goes before anyone's of the caller's.
    pending: list[tuple[str, Job]] = field(default_factory=list)

    def line(self) -> list[Waiting]:
        return [Waiting(who, job.spec.priority, job.submitted_at, job.job_id) for who, job in self.pending]


def _tallies(jobs: Iterable[Job], queues: set[str], owner: str) -> dict[str, _Tally]:
    """Walk the jobs of `queues` once (`jobs`: the federator's job map's values)."""
    out = {q: _Tally() for q in queues}
    pending = JobPhase.PENDING
    for job in jobs:
        tally = out.get(job.spec.queue)
        if tally is None or not (job.phase is pending or job.phase.is_active):
            continue
        who = job.spec.owner
        tally.owners.add(who)
        if who == owner:
            tally.mine[job.phase] += 1
        if job.phase is pending:
            if job.pending_reason is None or job.pending_reason.never is None:  # never runnable: not in line
                tally.pending.append((who, job))
            continue
        acc, cpu = tally.held.get(who, NOTHING)
        for p in job.placements:
            milli = placement_total(p, job.spec).cpu_milli  # a gang of pod sets: each set at its ask
            acc, cpu = acc + placement_held_milli(p, job.spec), cpu + milli
            tally.cpu_milli += milli
        tally.held[who] = (acc, cpu)
    return out


class QueueService(Edge, queues_pb2_grpc.QueueServiceServicer):
    """List for a user (after delegation) or an admin; a provider's certificate is refused."""

    def __init__(self, edge: Edge) -> None:
        super().__init__(edge.fed, edge.auth, authz=edge.authz, audit=edge.audit)
        self.samples = SharedSample(edge.fed)  # one for the calls of the same second (shared_sample.py)

    async def List(self, request: queues_pb2.ListQueuesRequest,  # noqa: N802
                   context: grpc.aio.ServicerContext) -> queues_pb2.ListQueuesResponse:
        cluster = self.auth.cluster_reader(context.auth_context())
        if cluster is not None:
            await self.cluster_acts_for_no_user(context, cluster)
            await self.refuse(context, RULE, f"the certificate of cluster {cluster[:80]!r} may see no queue: queues "
                                             f"are the tenants' (rule: {RULE})", cluster=cluster[:80])
        who = await self.principal(context)
        try:
            size, after = checked(request, who.user)
        except QueueRequestError as exc:
            await context.abort_with_status(bad_request(str(exc), [FieldProblem(exc.field, str(exc))]))
            raise AssertionError("unreachable") from exc
        return self.answer(who, queue=request.queue, size=size, after=after)

    def answer(self, who: Principal, *, queue: str, size: int, after: str) -> queues_pb2.ListQueuesResponse:
        """One page of the queues `who` may see: the queue figures from the sample of this second (taken now if
        none is), the caller's own read now (on the loop: the state is the loop's)."""
        fed = self.fed
        taken = self.samples.read()
        sample, fleet = taken.sample, taken.fleet
        owner = f"user {who.user}"
        names = sorted(q for q in self.visible(who, sample) if (not queue or q == queue) and q > after)
        page, more = names[:size], len(names) > size
        tallies = _tallies(fed.jobs.values(), set(page), owner)
        shares = sample.queue_fair_share
        missing = [q for q in page if q not in shares]  # declared, with no series yet: their share by the same rule
        if missing:
            active = {name for (name, phase), n in sample.jobs.items()
                      if n and (phase == JobPhase.PENDING or JobPhase(phase).is_active)}
            shares = {**shares, **fair_shares(fed.scheduler.config, missing, active, fleet)}
        rows = [self.standing(q, sample, tallies[q], owner, shares[q]) for q in page]
        return queues_pb2.ListQueuesResponse(
            queues=rows, next_page_token=encode_token("q", page[-1], queue, bound=bound(who.user)) if more else "",
            sampled_at=taken.at, fleet_accelerators=fleet,
            user_pending_jobs=_limit(submit_room.user_pending(fed, Submitter(user=who.user))))

    def visible(self, who: Principal, sample: StateSample) -> set[str]:
        """The queues `who` may see: those they may submit to (Submit's rule), among the declared ones and those
        their own jobs name; for an admin, every queue the policy declares or a job names (`sample`'s jobs)."""
        declared = set(self.authz.policy.declared)
        if who.admin:
            return declared | set(self.fed.scheduler.config.queues) | {q for q, _ in sample.jobs}
        own = {j.spec.queue for j in self.fed.jobs.in_order(owner=who.user)}  # the owner's index: theirs alone
        return {q for q in declared | own if isinstance(self.authz.submit(who, q), Allowed)}

    def standing(self, q: str, sample: StateSample, tally: _Tally, owner: str, fair: float
                 ) -> queues_pb2.QueueStanding:
        """One queue's row: the sample's figures (the metrics'), its caps, and `owner`'s standing in it."""
        config = self.fed.scheduler.config
        qc = config.queue(q)
        quota = queues_pb2.QueueQuota(accelerators=[
            queues_pb2.AcceleratorQuota(model=m, accelerators=milli / MILLI)
            for m, milli in sorted(qc.quota.accelerator_milli.items())])
        if qc.quota.cpu_milli is not None:
            quota.cpu_cores = qc.quota.cpu_milli / 1000
        if qc.quota.memory_bytes is not None:
            quota.memory_bytes = qc.quota.memory_bytes
        mine = tally.held.get(owner, NOTHING)
        others = sum(acc for o, (acc, _) in tally.held.items() if o != owner)
        own = queues_pb2.OwnStanding(
            owner=owner, held_accelerators=mine[0] / MILLI, held_cpu_cores=mine[1] / 1000,
            pending_jobs=tally.mine[JobPhase.PENDING], placed_jobs=tally.mine[JobPhase.PLACED],
            running_jobs=tally.mine[JobPhase.PLACED] + tally.mine[JobPhase.RUNNING],
            others_held_accelerators=others / MILLI,
            owners=len(tally.owners), owners_holding_less=holding_less(owner, tally.owners, tally.held),
            jobs_ahead=jobs_ahead(owner, tally.line(), tally.held, by_share=qc.owner_share)
            if tally.mine[JobPhase.PENDING] else 0)
        return queues_pb2.QueueStanding(
            name=q, declared=q in self.authz.policy.declared or q in config.queues,
            weight=sample.queue_weight.get(q, qc.weight),
            held_accelerators=sample.queue_accelerators.get(q, 0.0), held_cpu_cores=tally.cpu_milli / 1000,
            fair_share_accelerators=fair, pending_jobs=sample.jobs.get((q, JobPhase.PENDING), 0),
            placed_jobs=sample.jobs.get((q, JobPhase.PLACED), 0),  # running: holding room, as a Queue's runningJobs
            running_jobs=sample.jobs.get((q, JobPhase.PLACED), 0) + sample.jobs.get((q, JobPhase.RUNNING), 0),
            never_runnable_jobs=sum(n for (name, _), n in sample.never_runnable.items() if name == q),
            oldest_pending_seconds=sample.oldest_pending.get(q, 0.0), quota=quota,
            pending_limit=_limit(submit_room.queue_pending(self.fed, q)),
            max_priority=config.max_priority(q)[0], max_run_seconds=config.max_run_seconds(q)[0],
            owner_share=qc.owner_share, own=own, allowed_regions=list(qc.allowed_regions))


def _limit(held: submit_room.Held) -> identity_pb2.SubmitLimit:
    return identity_pb2.SubmitLimit(limit=held.limit, used=held.used, source=held.source)


__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "QueueRequestError", "QueueService", "bound", "checked"]
