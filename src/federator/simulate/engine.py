"""The discrete-event simulator: the real scheduler against simulated clusters.

Clusters are `backends/sim` NodeSets (node-level truth: which accelerator of which
node a replica sits on); the scheduler sees only their resource model, as the
federator sees agents' reports, and every decision is bound on the nodes. A
bind the nodes refuse (the model is coarser than the nodes) sends the job
back to pending, as an agent's refusal does.

Two modes:
  - fill: every job is offered once, in arrival order, in batches of
    `batch` jobs per cycle, with no departures (how accelerator-packing studies
    measure fragmentation): the allocation ratio at the end is the score;
  - replay: arrivals and departures in time order, a cycle every
    `cycle_interval` simulated seconds while anything changed.

A job Submit would refuse under the policy (a priority above its queue's
maxPriority: `SchedulerConfig.priority_problem`, the server's own check) is
never offered: it is counted in `jobs_refused_at_submit`, by the words Submit
would answer, so the simulation admits what the server admits (outside QA F6).
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from federator.backends.sim.fgd import DemandLearner
from federator.backends.sim.fleet import ClusterSpec
from federator.backends.sim.nodes import NodeSet
from federator.model import MILLI, ClusterInfo, JobId
from federator.model.cluster import held_milli
from federator.scheduler import Allocation, Arrival, CycleResult, PlacementRequest, Scheduler, Snapshot
from federator.scheduler.demand import DemandMemory
from federator.scheduler.reservation import Reservation
from federator.scheduler.tuning import Tuner
from federator.simulate.traces import SimJob

MODES = ("fill", "replay")
Progress = Callable[[int, int], None]  # (jobs offered or time reached, total)


@dataclass(slots=True)
class _Cluster:
    spec: ClusterSpec
    nodes: NodeSet
    info: ClusterInfo | None = None  # cached resource model; None when the nodes changed


@dataclass(slots=True)
class _Job:
    job: SimJob
    job_id: JobId
    order: int
    placed: list[tuple[str, str, int]] = field(default_factory=list)  # (cluster, bind key, gpu milli)
    placed_at: float = -1.0
    allocations: list[Allocation] = field(default_factory=list)
    ever_placed: bool = False
    offered: bool = False


@dataclass(frozen=True, slots=True)
class SimReport:
    mode: str
    clusters: int
    nodes: int
    jobs_total: int
    jobs_placed: int
    jobs_pending: int
    # Jobs Submit would refuse under the policy, and how many for each refusal (Submit's words)
    jobs_refused_at_submit: int
    refused_at_submit_reasons: Mapping[str, int]
    accelerator_capacity: float
    accelerator_allocated: float
    accelerator_allocation_ratio: float
    accelerator_allocation_ratio_peak: float
    placements: int
    placements_per_second: float
    decision_latency_p50_seconds: float
    decision_latency_p99_seconds: float
    scheduler_seconds: float
    wall_seconds: float
    cycles: int
    refused: int
    preemptions: int
    pending_reasons: Mapping[str, int]
    series: tuple[tuple[float, float], ...] = ()  # (time or jobs offered, allocation ratio)
    # Per region, allocated / total accelerators when the run ends (fill: the state the ratio above is of;
    # replay: the last moment): whether the work went where the accelerators were idle.
    accelerator_allocation_ratio_by_region: Mapping[str, float] = field(default_factory=dict)
    # Scarcity's scale the rollouts chose last (scheduler/tuning.py), how many ran, and their time (not
    # in scheduler_seconds: they run between cycles)
    scarcity_scale: float = 0.0
    rollouts: int = 0
    rollout_seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        out = {k: getattr(self, k) for k in self.__slots__ if k != "series"}  # type: ignore[attr-defined]
        out["pending_reasons"] = dict(self.pending_reasons)
        out["refused_at_submit_reasons"] = dict(self.refused_at_submit_reasons)
        out["accelerator_allocation_ratio_by_region"] = dict(self.accelerator_allocation_ratio_by_region)
        return out


class Simulation:
    def __init__(self, fleet: Mapping[str, ClusterSpec], jobs: Sequence[SimJob], *,
                 scheduler: Scheduler | None = None, fit: str = "fgd", seed: int = 0, batch: int = 1000,
                 cycle_interval: float = 10.0, history: Sequence[SimJob] = ()) -> None:
        self.scheduler = scheduler or Scheduler()
        self.tuner = Tuner(self.scheduler.config)  # Scarcity's scale, by rollout between cycles
        self.tuning_seconds = 0.0
        # FGD's target workload: the work offered to the federation so far, one learner for every cluster
        # (a cluster that learned only what the federator routed to it would bind for a skewed slice)
        self.learner = DemandLearner() if fit == "fgd" else None
        # The arrivals that ended, which the demand remembers (scheduler/demand.py); `history` is work that
        # ran before the simulation starts (yesterday's), for the federator and the FGD binders alike
        self.memory = DemandMemory()
        for h in history:
            self.memory.add(Arrival.of(h.spec))
            if self.learner is not None:
                self.learner.observe(h.spec.resources, h.spec.accelerator_models)
        self.clusters = {name: _Cluster(spec, NodeSet.of(spec.nodes, fit=fit, seed=seed + i, learner=self.learner))
                         for i, (name, spec) in enumerate(sorted(fleet.items()))}
        # Submit's policy checks first: a job the server refuses never reaches its scheduler
        self.refused_at_submit: Counter[str] = Counter()
        admitted = []
        for j in jobs:
            problem = self.scheduler.config.priority_problem(j.spec.queue, j.spec.priority) or \
                self.scheduler.config.run_limit_problem(j.spec.queue, j.spec.max_run_seconds)
            if problem is None:
                admitted.append(j)
            else:
                self.refused_at_submit[problem] += 1
        self.jobs = [_Job(j, JobId(j.spec.name), i) for i, j in enumerate(admitted)]
        self.batch = max(1, batch)
        self.cycle_interval = cycle_interval
        self.capacity_milli = sum(c.nodes.accelerator_milli_total() for c in self.clusters.values())
        self.allocated_milli = sum(c.nodes.accelerator_milli_used() for c in self.clusters.values())
        self.placements = 0
        self.refused = 0
        self.preempted = 0
        self.cycles = 0
        self.scheduler_seconds = 0.0
        self.latencies: list[float] = []
        self.series: list[tuple[float, float]] = []
        self.pending_reasons: dict[JobId, str] = {}
        self.queue_series: list[tuple[float, dict[str, int]]] = []  # replay: (time, queue -> milli-devices held)
        self._running: dict[JobId, _Job] = {}
        self.replaying = False
        self.reservations: tuple[Reservation, ...] = ()  # the last cycle's, handed to the next
        self.resting: Mapping[JobId, float] = {}  # gangs whose hold ran out, until when: handed on too

    # -- the cycle ----------------------------------------------------------

    def snapshot(self) -> Snapshot:
        infos = []
        for name, c in self.clusters.items():
            if c.info is None:
                c.info = ClusterInfo(name, c.spec.region, labels=c.spec.labels, capacity=c.nodes.capacity())
            infos.append(c.info)
        return Snapshot(tuple(infos))

    def cycle(self, pending: Sequence[_Job], now: float) -> tuple[list[_Job], list[_Job]]:
        """One scheduling cycle over `pending`; returns (placed, still pending)."""
        by_id = {j.job_id: j for j in pending}
        if self.learner is not None:
            for j in pending:
                if not j.offered:
                    j.offered = True
                    self.learner.observe(j.job.spec.resources, j.job.spec.accelerator_models)
        # Fill offers in list order with no clock (now 0: no wait reaches a reservation's threshold); a replay's
        # waits are its clock's, which reservations read (scheduler/reservation.py).
        requests = [PlacementRequest(j.job_id, j.job.spec, j.job.spec.replicas,
                                     j.job.arrival if self.replaying else float(j.order)) for j in pending]
        running = [a for j in self._running.values() for a in j.allocations]
        recent = self.memory.arrivals()
        if self.tuner.due():
            started = time.perf_counter()
            self.tuner.tune(self.snapshot(), requests, running, recent)
            self.tuning_seconds += time.perf_counter() - started
        started = time.perf_counter()
        result: CycleResult = self.scheduler.schedule(self.snapshot(), requests, running=running, now=now,
                                                      recent=recent, scarcity_scale=self.tuner.scale,
                                                      reservations=self.reservations, resting=self.resting)
        self.reservations, self.resting = result.reservations, result.resting
        self.scheduler_seconds += time.perf_counter() - started
        self.tuner.placed(sum(a.replicas for d in result.decisions for a in d.assignments))
        self.cycles += 1
        self.latencies.extend(result.decision_seconds)
        for p in result.preemptions:
            victim = self._running.get(p.job_id)
            if victim is not None:
                self._unbind(victim)
                self.preempted += 1
                by_id[victim.job_id] = victim
        placed = []
        for d in result.decisions:
            job = by_id[d.job_id]
            if self._bind(job, d.assignments, now):
                placed.append(job)
            else:
                self.refused += 1
        done = {j.job_id for j in placed}
        still = [j for j in by_id.values() if j.job_id not in done]
        for job_id, reason in result.pending.items():
            self.pending_reasons[job_id] = reason.code.value
        return placed, still

    def _bind(self, job: _Job, assignments: Sequence[object], now: float) -> bool:
        spec = job.job.spec
        for a in assignments:
            cluster = self.clusters[a.cluster]  # type: ignore[attr-defined]
            key = f"{job.job_id}/{len(job.placed)}"
            res = replace(spec.resources, accelerator_milli=a.accelerator_milli)  # type: ignore[attr-defined]
            why = cluster.nodes.bind(key, replicas=a.replicas, resources=res,  # type: ignore[attr-defined]
                                     accelerator_model=a.accelerator_model, wanted=spec.accelerator_models)  # type: ignore[attr-defined]
            cluster.info = None
            if why is not None:
                self._unbind(job)
                self.pending_reasons[job.job_id] = "RefusedByCluster"
                return False
            milli = held_milli(res.accelerator_milli, a.unit_milli) * a.replicas  # type: ignore[attr-defined]
            job.placed.append((a.cluster, key, milli))  # type: ignore[attr-defined]
            job.allocations.append(Allocation(job.job_id, spec.queue, spec.priority, spec.preemptible,
                                              a.cluster, a.accelerator_model, a.replicas, res, now,  # type: ignore[attr-defined]
                                              spec.accelerator_models, unit_milli=a.unit_milli,  # type: ignore[attr-defined]
                                              owner=spec.owner))
            self.allocated_milli += milli
        job.placed_at = now
        job.ever_placed = True
        self.placements += 1
        self._running[job.job_id] = job
        self.pending_reasons.pop(job.job_id, None)
        return True

    def _unbind(self, job: _Job) -> None:
        for cluster, key, milli in job.placed:
            self.clusters[cluster].nodes.unbind(key)
            self.clusters[cluster].info = None
            self.allocated_milli -= milli
        job.placed = []
        job.allocations = []
        self._running.pop(job.job_id, None)

    def ratio(self) -> float:
        return self.allocated_milli / self.capacity_milli if self.capacity_milli else 0.0

    # -- modes --------------------------------------------------------------

    def run(self, mode: str = "fill", *, progress: Progress | None = None) -> SimReport:
        if mode not in MODES:
            raise ValueError(f"mode: must be one of {', '.join(MODES)}, got {mode!r}")
        started = time.perf_counter()
        self.replaying = mode == "replay"
        peak = self._fill(progress) if mode == "fill" else self._replay(progress)
        wall = time.perf_counter() - started
        pending = [j for j in self.jobs if j.job_id not in self._running and not j.ever_placed]
        reasons = Counter(self.pending_reasons.get(j.job_id, "Waiting") for j in pending)
        lat = sorted(self.latencies)
        if mode == "replay" and self.series:
            ratio = _time_average(self.series)
        else:
            ratio = self.ratio()
        return SimReport(
            mode=mode, clusters=len(self.clusters), nodes=sum(len(c.spec.nodes) for c in self.clusters.values()),
            jobs_total=len(self.jobs) + self.refused_at_submit.total(),
            jobs_placed=sum(j.ever_placed for j in self.jobs), jobs_pending=len(pending),
            jobs_refused_at_submit=self.refused_at_submit.total(),
            refused_at_submit_reasons=dict(sorted(self.refused_at_submit.items())),
            accelerator_capacity=self.capacity_milli / MILLI, accelerator_allocated=ratio * self.capacity_milli / MILLI,
            accelerator_allocation_ratio=round(ratio, 6), accelerator_allocation_ratio_peak=round(peak, 6),
            placements=self.placements,
            placements_per_second=self.placements / self.scheduler_seconds if self.scheduler_seconds else 0.0,
            decision_latency_p50_seconds=_quantile(lat, 0.50), decision_latency_p99_seconds=_quantile(lat, 0.99),
            scheduler_seconds=self.scheduler_seconds, wall_seconds=wall, cycles=self.cycles, refused=self.refused,
            preemptions=self.preempted, pending_reasons=dict(sorted(reasons.items())), series=tuple(self.series),
            accelerator_allocation_ratio_by_region=self.ratio_by_region(),
            scarcity_scale=self.tuner.scale, rollouts=self.tuner.rollouts, rollout_seconds=self.tuning_seconds,
        )

    def ratio_by_region(self) -> dict[str, float]:
        """Allocated / total accelerators per region now, sorted by region; regions without accelerators
        are left out."""
        used: dict[str, int] = {}
        total: dict[str, int] = {}
        for c in self.clusters.values():
            region = c.spec.region
            used[region] = used.get(region, 0) + c.nodes.accelerator_milli_used()
            total[region] = total.get(region, 0) + c.nodes.accelerator_milli_total()
        return {r: round(used[r] / total[r], 6) for r in sorted(total) if total[r]}

    def _fill(self, progress: Progress | None) -> float:
        retry: list[_Job] = []
        total = len(self.jobs)
        self.series.append((0.0, self.ratio()))
        for start in range(0, total, self.batch):
            offered = retry + self.jobs[start:start + self.batch]
            refused_before = self.refused
            _placed, still = self.cycle(offered, now=0.0)
            # jobs the nodes refused get another offer next cycle, once; the rest stay pending for good
            retry = [j for j in still if self.pending_reasons.get(j.job_id) == "RefusedByCluster"] \
                if self.refused > refused_before else []
            self.series.append((float(min(start + self.batch, total)), self.ratio()))
            if progress:
                progress(min(start + self.batch, total), total)
        for _ in range(3):
            if not retry:
                break
            _placed, still = self.cycle(retry, now=0.0)
            retry = [j for j in still if self.pending_reasons.get(j.job_id) == "RefusedByCluster"]
        return max(r for _, r in self.series)

    def _replay(self, progress: Progress | None) -> float:
        events: list[tuple[float, int, int, _Job]] = []  # (time, 0=departure/1=arrival, seq, job)
        for j in self.jobs:
            heapq.heappush(events, (j.job.arrival, 1, j.order, j))
        end = max((j.job.arrival for j in self.jobs), default=0.0)
        pending: dict[JobId, _Job] = {}
        seq = len(self.jobs)
        now = events[0][0] if events else 0.0
        peak = self.ratio()
        while events:
            changed = False
            while events and events[0][0] <= now:
                _, kind, _, job = heapq.heappop(events)
                if kind == 1:
                    pending[job.job_id] = job
                elif job.job_id in self._running and job.placed_at + (job.job.duration or 0) <= now:
                    self._unbind(job)
                    self.memory.add(Arrival.of(job.job.spec))
                changed = True
            if changed and pending:
                placed, still = self.cycle(list(pending.values()), now)
                pending = {j.job_id: j for j in still}
                for job in placed:
                    if job.job.duration is not None:
                        seq += 1
                        heapq.heappush(events, (now + job.job.duration, 0, seq, job))
            ratio = self.ratio()
            peak = max(peak, ratio)
            self.series.append((now, ratio))
            held: Counter[str] = Counter()
            for job in self._running.values():
                held[job.job.spec.queue] += sum(milli for _, _, milli in job.placed)
            self.queue_series.append((now, dict(held)))
            if progress:
                progress(int(min(now, end)), int(end))
            if events:
                now = max(now + self.cycle_interval, events[0][0])
        return peak


def _quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(q * len(values)))]


def _time_average(series: Sequence[tuple[float, float]]) -> float:
    """Mean allocation ratio over simulated time (each sample holds until the next)."""
    if len(series) < 2:
        return series[0][1] if series else 0.0
    span = series[-1][0] - series[0][0]
    if span <= 0:
        return series[-1][1]
    return sum((t2 - t1) * r for (t1, r), (t2, _) in zip(series, series[1:], strict=False)) / span
