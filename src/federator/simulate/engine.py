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
from federator.model import MILLI, ClusterInfo, JobId, Reason, ReasonCode
from federator.model.cluster import held_milli
from federator.scheduler import Allocation, Arrival, CycleResult, PlacementRequest, Scheduler, Snapshot
from federator.scheduler.alternatives import accepted_models
from federator.scheduler.demand import DemandMemory
from federator.scheduler.reservation import Reservation
from federator.scheduler.tuning import Tuner
from federator.simulate.outcomes import Held, JobRecord, models_asked, wait_summary
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
    placed: list[tuple[str, str, int, str]] = field(default_factory=list)  # (cluster, bind key, milli, model)
    placed_at: float = -1.0
    first_placed_at: float = -1.0
    ended_at: float = -1.0  # departed, or preempted and not placed again
    preempted: int = 0
    where: tuple[tuple[str, str, int], ...] = ()  # the last placement's (cluster, model, milli) per assignment
    accelerator_hours: float = 0.0  # held while placed, every run of it (replay)
    cost: float = 0.0  # the same at its clusters' price-per-accelerator-hour labels (unpriced clusters: 0)
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
    # Per region, allocated / total accelerators: the same kind of figure as accelerator_allocation_ratio (fill:
    # at the end; replay: the time average over the run, outside planners' QA P2): whether the work went where
    # the accelerators were idle.
    accelerator_allocation_ratio_by_region: Mapping[str, float] = field(default_factory=dict)
    # Scarcity's scale the rollouts chose last (scheduler/tuning.py), how many ran, and their time (not
    # in scheduler_seconds: they run between cycles)
    scarcity_scale: float = 0.0
    rollouts: int = 0
    rollout_seconds: float = 0.0
    # What a planner reads beside the ratio (simulate/outcomes.py; outside planners' QA P1, P11): accelerators
    # the members' own work held from the start (a fleet's busyGpus; in accelerator_allocated), capacity /
    # allocated / idle per region and per model (as the ratio: fill at the end, replay time averages), the jobs'
    # waits (replay), pending jobs no wait could place (by federator_never_runnable_jobs' reason), one example
    # per pending code in the scheduler's words, and each queue's accelerators held over a replay
    accelerator_allocated_outside: float = 0.0
    # Replay: the workload's accelerator-hours (the members' own work left out) and their cost at the clusters'
    # federator.io/price-per-accelerator-hour labels (clusters without one count 0; fill has no clock: 0)
    workload_accelerator_hours: float = 0.0
    workload_cost: float = 0.0
    accelerators_by_region: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    accelerators_by_model: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    wait_seconds: Mapping[str, object] = field(default_factory=dict)
    jobs_never_runnable: Mapping[str, int] = field(default_factory=dict)
    pending_examples: Mapping[str, str] = field(default_factory=dict)
    queue_series: tuple[tuple[float, Mapping[str, float]], ...] = ()  # (time, queue -> accelerators held)
    jobs: tuple[JobRecord, ...] = ()  # one per admitted job (`federator sim --jobs-out`); not in to_json

    def to_json(self) -> dict[str, object]:
        """Every field but `jobs`, the timelines as lists of [x, value] pairs last (they are long)."""
        out = {k: getattr(self, k) for k in self.__slots__  # type: ignore[attr-defined]
               if k not in ("series", "queue_series", "jobs")}
        for k, v in out.items():
            if isinstance(v, Mapping):
                out[k] = {a: dict(b) if isinstance(b, Mapping) else b for a, b in v.items()}
        out["series"] = [[x, r] for x, r in self.series]
        out["queue_series"] = [[t, dict(q)] for t, q in self.queue_series]
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
                self.learner.observe_job(h.spec)  # its alternatives' counts too (fgd.shapes_of)
        self.clusters = {name: _Cluster(spec, NodeSet.of(spec.nodes, fit=fit, seed=seed + i, learner=self.learner))
                         for i, (name, spec) in enumerate(sorted(fleet.items()))}
        # Submit's policy checks first: a job the server refuses never reaches its scheduler
        self.refused_at_submit: Counter[str] = Counter()
        admitted = []
        for j in jobs:
            problem = self.scheduler.config.priority_problem(j.spec.queue, j.spec.priority) or \
                self.scheduler.config.run_limit_problem(j.spec.queue, j.spec.max_run_seconds) or \
                self.scheduler.config.region_problem(j.spec.queue, j.spec.allowed_regions)
            if problem is None:
                admitted.append(j)
            else:
                self.refused_at_submit[problem] += 1
        self.jobs = [_Job(j, JobId(j.spec.name), i) for i, j in enumerate(admitted)]
        self.batch = max(1, batch)
        self.cycle_interval = cycle_interval
        self.capacity_milli = sum(c.nodes.accelerator_milli_total() for c in self.clusters.values())
        self.allocated_milli = sum(c.nodes.accelerator_milli_used() for c in self.clusters.values())
        self.outside_milli = self.allocated_milli  # the members' own work (busyGpus), held throughout
        self.by_region, self.by_model = self._held()
        self.prices = {name: p for name, info in zip(self.clusters, self.snapshot().clusters, strict=True)
                       if (p := info.price_per_accelerator_hour) is not None}
        self.placements = 0
        self.started = 0  # jobs placed at least once (a progress bar's "jobs started")
        self.refused = 0
        self.preempted = 0
        self.cycles = 0
        self.scheduler_seconds = 0.0
        self.latencies: list[float] = []
        self.series: list[tuple[float, float]] = []
        self.pending_reasons: dict[JobId, str] = {}
        self.pending_why: dict[JobId, Reason] = {}  # the same, with the scheduler's words and whether it is never
        self.queue_series: list[tuple[float, dict[str, int]]] = []  # replay: (time, queue -> milli-devices held)
        self._running: dict[JobId, _Job] = {}
        self.replaying = False
        self.reservations: tuple[Reservation, ...] = ()  # the last cycle's, handed to the next
        self.resting: Mapping[JobId, float] = {}  # gangs whose reservation ran out, until when: handed on

    def _held(self) -> tuple[Held, Held]:
        """Capacity and what is held from the start, per region and per model, read through the nodes' own calls
        (NodeSet.accelerator_milli_total / accelerator_milli_used, whole and by model), so they add up to
        accelerator_capacity and the busy accelerators the ratio counts."""
        region_cap: dict[str, int] = {}
        model_cap: dict[str, int] = {}
        region, model = Held(region_cap), Held(model_cap)
        for c in self.clusters.values():
            r = c.spec.region
            region_cap[r] = region_cap.get(r, 0) + c.nodes.accelerator_milli_total()
            region.add(r, c.nodes.accelerator_milli_used())
            for name in c.nodes.models():
                model_cap[name] = model_cap.get(name, 0) + c.nodes.accelerator_milli_total(model=name)
                model.add(name, c.nodes.accelerator_milli_used(model=name))
        region.capacity = {k: v for k, v in region_cap.items() if v}
        region.now = {k: v for k, v in region.now.items() if k in region.capacity}
        model.capacity = {k: v for k, v in model_cap.items() if v}
        return region, model

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
                    self.learner.observe_job(j.job.spec)
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
                victim.preempted += 1
                self._ran(victim, now)
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
            self.pending_why[job_id] = reason
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
                self.pending_reasons[job.job_id] = ReasonCode.REFUSED_BY_CLUSTER.value
                self.pending_why[job.job_id] = Reason(ReasonCode.REFUSED_BY_CLUSTER, f"{a.cluster} refused it: {why}")  # type: ignore[attr-defined]
                return False
            milli = held_milli(res.accelerator_milli, a.unit_milli) * a.replicas  # type: ignore[attr-defined]
            job.placed.append((a.cluster, key, milli, a.accelerator_model))  # type: ignore[attr-defined]
            self.by_region.add(cluster.spec.region, milli)
            self.by_model.add(a.accelerator_model, milli)  # type: ignore[attr-defined]
            job.allocations.append(Allocation(job.job_id, spec.queue, spec.priority, spec.preemptible,
                                              a.cluster, a.accelerator_model, a.replicas, res, now,  # type: ignore[attr-defined]
                                              accepted_models(spec, a.alternative),  # type: ignore[attr-defined]
                                              unit_milli=a.unit_milli,  # type: ignore[attr-defined]
                                              owner=spec.owner))
            self.allocated_milli += milli
        job.placed_at = now
        if not job.ever_placed:
            job.first_placed_at = now
            self.started += 1
        job.ever_placed = True
        job.ended_at = -1.0
        job.where = tuple((c, m, milli) for c, _, milli, m in job.placed)
        self.placements += 1
        self._running[job.job_id] = job
        self.pending_reasons.pop(job.job_id, None)
        self.pending_why.pop(job.job_id, None)
        return True

    def _ran(self, job: _Job, now: float) -> None:
        """The job's run since its placement ended at `now` (it departed, was preempted, or the replay ended):
        its accelerator-hours and their cost, counted."""
        job.ended_at = now
        for cluster, _, milli in job.where:
            hours = milli / MILLI * max(0.0, now - job.placed_at) / 3600
            job.accelerator_hours += hours
            job.cost += hours * self.prices.get(cluster, 0.0)

    def _unbind(self, job: _Job) -> None:
        for cluster, key, milli, model in job.placed:
            self.clusters[cluster].nodes.unbind(key)
            self.clusters[cluster].info = None
            self.allocated_milli -= milli
            self.by_region.add(self.clusters[cluster].spec.region, -milli)
            self.by_model.add(model, -milli)
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
        averaged = mode == "replay" and bool(self.series)
        if averaged:  # what still runs ran until the last cycle
            for j in self._running.values():
                self._ran(j, self.series[-1][0])
                j.ended_at = -1.0
        ratio = _time_average(self.series) if averaged else self.ratio()
        regions = self.by_region.table(averaged=averaged)
        records = tuple(self._record(j) for j in self.jobs)
        never = Counter(self.pending_why[j.job_id].never for j in pending
                        if j.job_id in self.pending_why and self.pending_why[j.job_id].never is not None)
        examples: dict[str, str] = {}
        for r in records:
            if r.reason_code and r.reason_code not in examples:
                examples[r.reason_code] = f"{r.job}: {r.reason}" if r.reason else r.job
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
            accelerator_allocation_ratio_by_region={r: v["allocation_ratio"] for r, v in regions.items()},
            scarcity_scale=self.tuner.scale, rollouts=self.tuner.rollouts, rollout_seconds=self.tuning_seconds,
            accelerator_allocated_outside=self.outside_milli / MILLI, accelerators_by_region=regions,
            workload_accelerator_hours=round(sum(j.accelerator_hours for j in self.jobs), 6),
            workload_cost=round(sum(j.cost for j in self.jobs), 6),
            accelerators_by_model=self.by_model.table(averaged=averaged),
            wait_seconds=wait_summary(records) if mode == "replay" else {},
            jobs_never_runnable={str(k): n for k, n in sorted(never.items())},
            pending_examples=dict(sorted(examples.items())),
            queue_series=tuple((t, {q: m / MILLI for q, m in sorted(held.items())}) for t, held in self.queue_series),
            jobs=records,
        )

    def _record(self, j: _Job) -> JobRecord:
        """The job's outcome (simulate/outcomes.py): times only in a replay, which has a clock."""
        timed = self.replaying
        placed = j.ever_placed
        why = None if placed or j.job_id in self._running else self.pending_why.get(j.job_id)
        code = "" if placed else (why.code.value if why else self.pending_reasons.get(j.job_id, "Waiting"))
        clusters = list(dict.fromkeys(c for c, _, _ in j.where))
        return JobRecord(
            job=str(j.job_id), queue=j.job.spec.queue, models_asked=models_asked(j.job.spec),
            model="|".join(dict.fromkeys(m for _, m, _ in j.where if m)),
            cluster="|".join(clusters),
            region="|".join(dict.fromkeys(self.clusters[c].spec.region for c in clusters)),
            accelerators=sum(m for _, _, m in j.where) / MILLI,
            arrival=j.job.arrival if timed else None,
            start=j.first_placed_at if timed and placed else None,
            end=j.ended_at if timed and placed and j.ended_at >= 0 else None,
            wait_seconds=round(j.first_placed_at - j.job.arrival, 6) if timed and placed else None,
            accelerator_hours=round(j.accelerator_hours, 6) if timed else None,
            cost=round(j.cost, 6) if timed else None,
            preemptions=j.preempted, reason_code=code, reason=why.message if why else "",
            never=str(why.never) if why and why.never is not None else "",
        )

    def ratio_by_region(self) -> dict[str, float]:
        """Allocated / total accelerators per region now, sorted by region; regions without accelerators
        are left out."""
        return {r: v["allocation_ratio"] for r, v in self.by_region.table(averaged=False).items()}

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
        retried = bool(retry)
        for _ in range(3):
            if not retry:
                break
            _placed, still = self.cycle(retry, now=0.0)
            retry = [j for j in still if self.pending_reasons.get(j.job_id) == "RefusedByCluster"]
        if retried:  # the retries' placements are in the end state: sampled, so the peak and the plot have them
            self.series.append((float(total), self.ratio()))
        return max(r for _, r in self.series)

    def _replay(self, progress: Progress | None) -> float:
        events: list[tuple[float, int, int, _Job]] = []  # (time, 0=departure/1=arrival, seq, job)
        for j in self.jobs:
            heapq.heappush(events, (j.job.arrival, 1, j.order, j))
        # progress runs to the earliest the replay could end: the last arrival, or a departure after it
        end = max((j.job.arrival + (j.job.duration or 0.0) for j in self.jobs), default=0.0)
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
                    self._ran(job, now)
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
            self.by_region.sample(now)
            self.by_model.sample(now)
            held: Counter[str] = Counter()
            for job in self._running.values():
                held[job.job.spec.queue] += sum(milli for _, _, milli, _ in job.placed)
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
