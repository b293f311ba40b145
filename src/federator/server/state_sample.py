"""What a Prometheus scrape reports of the federator's state: clusters, jobs by phase and reason, queues' use.

Why a module of its own: it reads every cluster and every job, and is computed
on the event loop at each scrape (`metrics.watch_state`), so its cost is the
concern here, not the federator's state machine (server/federator.py).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING

from federator.metrics import ClusterSample, StateSample
from federator.model import MILLI, JobKind, JobPhase, ReasonCode, placement_held_milli
from federator.model.accelerator import DEFAULT_VENDOR
from federator.scheduler import Snapshot
from federator.scheduler.standing import fair_shares, fleet_of
from federator.server.outside_regions import counts as outside_counts
from federator.server.pending_demand import pending_accelerators
from federator.state_metrics import NO_VENDOR

if TYPE_CHECKING:
    from federator.server.federator import Federator


def state_sample(fed: Federator) -> StateSample:
    """Accelerators per cluster, vendor, model and state (free as the federator's reservations leave them),
    jobs per queue and phase, pending jobs per queue and reason, accelerators held per queue, and the age of each
    queue's oldest pending job."""
    now = fed.clock()
    snap = fed.snapshot()
    free_after = {c.name: c.capacity for c in snap.clusters}
    quarantined = fed.early.quarantine.current(now)
    cordoned = fed.cordons.since()  # an admin's cordon or its provider's maintenance (server/maintenance.py)
    draining = fed.drains.counts()  # jobs each admin's drain has left to move (server/drains.py)
    clusters = []
    for rec in fed.clusters.values():
        accelerators: dict[tuple[str, str, str], float] = {}
        cpu: dict[str, int] = {}
        if rec.capacity is not None:
            after = free_after.get(rec.name, rec.capacity)
            for pool in rec.capacity.accelerator_pools:
                v, m = pool.key
                reserved_pool = after.pool(m, v)
                free = reserved_pool.free_accelerators if reserved_pool else pool.free_accelerators
                # Whole-device equivalents (a MIG partition its unit_milli), so that sums over models are
                # accelerators: the dashboard's fleet total and the allocation ratios add every model's series.
                for state, units in (("total", pool.total_accelerators),
                                     ("allocatable", pool.allocatable_accelerators), ("free", free),
                                     ("reserved", pool.free_accelerators - free),
                                     ("quota_held", pool.quota_held_accelerators)):
                    accelerators[(v, m, state)] = pool.accelerator_milli_of(units) / MILLI
            cpu = {"allocatable": rec.capacity.cpu_milli_allocatable, "free": after.cpu_milli_free}
        clusters.append(ClusterSample(rec.name, rec.region, rec.state.value, rec.connected,
                                      max(0.0, now - rec.last_report_at) if rec.last_report_at else None,
                                      accelerators, cpu,
                                      quarantined=rec.name in quarantined,
                                      cordoned=rec.name in cordoned,
                                      cordoned_since=cordoned.get(rec.name, 0.0),
                                      certificate_not_after=rec.certificate_not_after,
                                      drain_jobs_left=draining.get(rec.name, 0),
                                      left_out={(r, why): n for r, why, n in rec.capacity.left_out}
                                      if rec.capacity is not None else {}))
    # One pass per figure with the counting done by Counter (in C): a scrape runs on the event loop and
    # walks every job, 100,000 of them with a national backlog. Phases and codes are StrEnums: as keys
    # they equal and print as their values.
    everything = list(fed.jobs.values())
    pending_phase, waiting = JobPhase.PENDING, ReasonCode.WAITING
    kinds = Counter([(job.spec.queue, job.phase, job.pending_reason and job.pending_reason.code)
                     for job in everything])
    jobs: Counter[tuple[str, str]] = Counter()
    pending: Counter[tuple[str, str]] = Counter()
    for (queue, phase, code), n in kinds.items():
        jobs[(queue, phase)] += n
        if phase is pending_phase:
            pending[(queue, code or waiting)] += n
    queue_accelerators: dict[str, float] = defaultdict(float)
    by_vendor: dict[tuple[str, str], float] = defaultdict(float)  # (queue, vendor): the same, by the pools' vendor
    replicas_waiting: dict[str, int] = defaultdict(int)
    replicas_short: dict[str, int] = defaultdict(int)
    running, inference = JobPhase.RUNNING, JobKind.INFERENCE
    holding = any(phase.is_active and phase is not pending_phase for _, phase, _ in kinds)
    for job in everything if holding else ():
        if job.phase is not pending_phase and job.phase.is_active:
            for p in job.placements:
                held = placement_held_milli(p, job.spec) / 1000  # a partition at its worth
                if held:
                    queue_accelerators[job.spec.queue] += held
                    by_vendor[(job.spec.queue, p.accelerator_vendor or DEFAULT_VENDOR)] += held
            replicas_waiting[job.spec.queue] += job.replicas_waiting
            if job.phase is running and job.spec.kind is inference:  # a serving job: how many of it do not serve
                replicas_short[job.spec.queue] += max(0, job.spec.replicas - job.replicas_ready)
    for queue in {q for q, _ in jobs}:
        queue_accelerators.setdefault(queue, 0.0)
        if not queue_accelerators[queue]:
            by_vendor[(queue, NO_VENDOR)] = 0.0
        replicas_waiting.setdefault(queue, 0)
        replicas_short.setdefault(queue, 0)
    # The age of each queue's oldest pending job: what FederatorJobsPendingTooLong alerts on (a standing backlog
    # is normal at national scale; a job that waits for hours is not). Only when some job is pending. A job the
    # scheduler judged can never run (Reason.never: over its queue's quota, or over what the fleet could hold
    # even empty) is counted apart: one such job kept the alert firing for its queue for good, hiding the
    # starvation of the queue's other jobs (outside QA, ops F9; outside SRE QA, F11). A held job (server/job_holds.py)
    # waits because its owner or an admin said so, for as long as they like: it is left out too (the pending gauge
    # counts it under its reason, Held), as is a job waiting on others to end (Dependency, server/dependencies.py),
    # and an array's task past its throttle (ArrayThrottle, server/arrays.py).
    first: dict[str, float] = {}
    never: Counter[tuple[str, str]] = Counter()
    for job in everything if pending else ():
        if job.phase is pending_phase and job.hold is None and not job.waiting_on and not job.throttled:
            queue = job.spec.queue
            if job.pending_reason is not None and job.pending_reason.never is not None:
                never[queue, job.pending_reason.never.value] += 1  # quota or fleet (NeverRunnable)
                continue
            first[queue] = min(first.get(queue, job.submitted_at), job.submitted_at)
    oldest = {queue: max(0.0, now - at) for queue, at in first.items()}
    weights, fair = _shares(fed, jobs, snap)
    wanted = pending_accelerators(everything, (p for rec in fed.clusters.values() if rec.capacity is not None
                                               for p in rec.capacity.accelerator_pools)) if pending else {}
    return StateSample(clusters, dict(jobs), dict(pending), dict(queue_accelerators), oldest, dict(replicas_waiting),
                       dict(replicas_short), weights, fair, dict(never), wanted,
                       outside_counts(everything, fed.scheduler.config) if holding else {}, dict(by_vendor))


def _shares(fed: Federator, jobs: Mapping[tuple[str, str], int], snap: Snapshot
            ) -> tuple[dict[str, float], dict[str, float]]:
    """Each queue's weight and weighted fair share in accelerators (configured queues and those with jobs)."""
    config = fed.scheduler.config
    queues = set(config.queues) | {q for q, _ in jobs}
    active = {q for (q, phase), n in jobs.items() if n and (phase == JobPhase.PENDING or JobPhase(phase).is_active)}
    return ({q: config.queue(q).weight for q in queues},
            fair_shares(config, queues, active, fleet_of(snap)))


__all__ = ["state_sample"]
