"""The scheduling cycle of the live federator: planned on the event loop, computed off it, committed on it.

Why: a cycle over a big backlog takes seconds, and the event loop also serves
Submit, every agent's stream and its keepalives. A cycle run on the loop
stalled them all (an agent's lease could run out while the federator was
busy). Here a cycle has three steps:

1. `plan` (loop, cheap): an immutable `CyclePlan`: the clusters' snapshot,
   the candidate jobs' requests, the running allocations, and each candidate
   job's fencing generation as it was.
2. `compute` (a worker thread; cycle_plan.py): the pure scheduler over the plan. It reads
   nothing the loop changes: the snapshot and requests are frozen values.
3. `commit` (loop; cycle_commit.py): decisions are applied only to jobs that are still what
   the plan saw (still Pending, same generation), on clusters still Ready; the
   changed jobs are written in one group commit, and only then are launch
   orders sent (for placements still current after the write).

A cycle whose write fails (the disk is full) keeps its placements in memory
and sends none of its orders until the store takes it (unwritten_cycle.py).
What a cycle sees of the fleet, each member less what the federator reserved
since its report, is cycle_snapshot.py's.

At most one cycle runs at a time; whatever arrives meanwhile (submissions,
reports) sets the wake flag and is taken by the next cycle: arrivals coalesce.

A cycle costs what changed: a job the scheduler could not place is parked
(`parking.py`) and left out of later plans until room may exist for it, so a
cycle over 100,000 waiting jobs happens when capacity grows, not on every
submission. Parked jobs keep the pending reason their last cycle gave them, until a report changes what
it tells of: then one job of each group told alike is asked again, for all of them (reason_refresh.py).

The GIL: the worker is a thread, so pure-Python scheduling still competes with
the loop for the interpreter. The federator lowers the switch interval (see
`SWITCH_INTERVAL_SECONDS`) so the loop gets the interpreter back within a
fraction of a millisecond when a stream has something to do; docs/benchmarks.md
measures agent report latency during a 100,000-job cycle.
"""

from __future__ import annotations

import asyncio
import heapq
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING

from federator.model import (
    Job,
    JobId,
    JobPhase,
    JobSpec,
    Placement,
    placement_resources,
)
from federator.scheduler import (
    Allocation,
    Arrival,
    CycleResult,
    PlacementRequest,
    Snapshot,
)
from federator.scheduler.alternatives import accepted_models
from federator.scheduler.demand import RECENT_ARRIVALS, DemandMemory
from federator.scheduler.tuning import Tuner
from federator.server.cycle_commit import CycleCommit
from federator.server.cycle_plan import CyclePlan, compute
from federator.server.cycle_snapshot import active_by_cluster, fleet_snapshot, reserved_info
from federator.server.giving_up import give_up
from federator.server.maintenance_windows import bounded, run_bound, windowed
from federator.server.moving import room_for
from federator.server.new_placements import new_placements, placement_ids
from federator.server.orders import LaunchOrder, Order
from federator.server.parking import ParkingLot
from federator.server.partial import kept_regions, missing, owes, rest_request
from federator.server.pending_counts import PendingCounts, delegate_of, queue_of, submitter
from federator.server.reason_refresh import ReasonRefresh
from federator.server.rebalancing import Rebalancer
from federator.server.requeue import regained
from federator.server.reservations import KeptReservations
from federator.server.unwritten_cycle import Unwritten, UnwrittenCycle
from federator.store.errors import StoreUnavailable

if TYPE_CHECKING:
    from federator.server.federator import Federator

# The interpreter's default (5 ms) lets a cycle thread hold the GIL for 5 ms each time the loop
# wants it back, many times per request; 0.5 ms keeps a stream's turn short at a small cost to the cycle.
SWITCH_INTERVAL_SECONDS = 0.0005
COMMIT_SLICE = 2_000  # jobs committed between two turns of the event loop
# The least time from one cycle's start to the next one's when something woke it (a Submit, a report): changes that
# come meanwhile ride the next cycle together. Every Submit woke a cycle of its own, about 57 a second under a
# flood with agents connected, which took half the federator's CPU from the Submits (outside QA, scale F2); an
# idle federator still places a lone Submit at once (its last cycle began long ago).
WAKE_GAP_SECONDS = 0.05


class Cycles(CycleCommit):
    """The federator's cycle machinery: candidate and active job indexes, parking (their bookkeeping:
    cycle_indexes.py), the plan, the commit (cycle_commit.py), the worker."""

    def __init__(self, fed: Federator) -> None:
        self.fed = fed
        self.parked = ParkingLot()
        self.refresh = ReasonRefresh()  # parked jobs' reasons, true to the reports (reason_refresh.py)
        # Exact pending counts, per queue and per owner: what Submit's caps read (intake.py). Both follow a job
        # through `count_pending` and `uncount_pending` only, so they cannot disagree about which jobs wait.
        self.by_queue = PendingCounts(queue_of)
        self.by_owner = PendingCounts(submitter)
        self.by_delegate = PendingCounts(delegate_of, uncounted="")  # a delegate's budget (intake.py)
        self._candidates: dict[JobId, None] = {}  # pending jobs not parked (may hold stale ids; pruned in plan)
        self._active: dict[JobId, None] = {}  # jobs that may hold active placements (pruned lazily)
        # Each pending job's request, kept across cycles (its spec and submission time never change): a plan
        # after every parked job comes back builds no 100,000 new objects on the loop.
        self._requests: dict[JobId, PlacementRequest] = {}
        self._executor: ThreadPoolExecutor | None = None
        # Per cluster, the active placements of preemptible jobs (kept until released, so never too few): a job
        # may fit a cluster by preempting them, which the cluster's reported room does not show (`reported`).
        self._preemptible: dict[str, set[str]] = defaultdict(set)
        self.cycles = 0
        self.wake_gap = WAKE_GAP_SECONDS
        self.writes = UnwrittenCycle(fed.journal, send=self._send, counted=self._counted)  # a cycle the disk refused
        # The jobs that ended lately (scheduler/demand.py: the demand's memory of what arrives), rebuilt from
        # the store's ended jobs on a restart, so a new leader does not steer by a handful of pending jobs.
        self.memory = DemandMemory()
        self.tuner = Tuner(fed.scheduler.config)
        self.reserved = KeptReservations()  # gangs' reservations, cycle to cycle (none after a restart: chosen again)
        self.rebalancer = Rebalancer(fed)  # serving replicas moved back near their users (server/rebalancing.py)
        ended = []
        for job in fed.jobs.values():
            if job.phase is JobPhase.PENDING:
                self._candidates[job.job_id] = None
                self.count_pending(job)
                self.reserved.waiting(job)
            elif job.phase.is_active:
                self._active[job.job_id] = None
                self._held(job)
                if job.replicas_waiting:  # short of the replicas a lost part held (server/partial.py): owed still
                    self._candidates[job.job_id] = None
            elif job.phase.is_terminal:
                ended.append(job)
        # the newest that the memory holds, oldest first: a store of a million ended jobs is not sorted whole
        for job in reversed(heapq.nlargest(RECENT_ARRIVALS, ended, key=lambda j: (j.finished_at, j.job_id))):
            self.memory.add(Arrival.of(job.spec))
        fed.metrics.watch_demand(self.memory.__len__)
        fed.metrics.watch_reservations(self.reserved.count, self.reserved.held_accelerators, self.reserved.unwritten)

    # -- the three steps ------------------------------------------------------------------

    def active_jobs(self) -> list[Job]:
        jobs = self.fed.jobs
        out = []
        for job_id in list(self._active):
            job = jobs.get(job_id)
            if job is None or not job.phase.is_active:
                del self._active[job_id]
            else:
                out.append(job)
        return out

    def answer_moves(self) -> None:
        """Answer the agents that asked to move a placement their member's queue holds (server/moving.py), before
        the cycle plans: a job moved is Pending again, and this cycle places it. One cycle over every ask, on the
        loop; there are asks only after an admission timeout (minutes), so mostly there is nothing to do."""
        fed = self.fed
        if not len(fed.moves):
            return
        overdue = fed.moves.take(fed.jobs)
        if not overdue:
            return
        now = fed.clock()
        gangs = [rest_request(job, fed.refusals.avoided(job.job_id, now)) for job_id in self.reserved.gangs()
                 if (job := fed.jobs.get(job_id)) is not None and owes(job)]
        targets = room_for(fed.moves.scheduler(fed.scheduler.config), self.snapshot(), self.running(), overdue,
                           lambda job_id: fed.refusals.avoided(job_id, now), now,
                           reserving=gangs, reservations=self.reserved.current(), resting=self.reserved.resting(),
                           windowed=lambda asked: windowed(fed, asked))
        for job, ask in overdue:
            fed.answer_move(job, ask, targets.get(job.job_id, ""))

    def rebalance(self) -> None:
        """After the turn's cycle: serving replicas moved back near their users in the room it left, the jobs
        still waiting and not parked competing first (server/rebalancing.py)."""
        self.rebalancer.turn(self.active_jobs(), [j for j in self._candidates if j not in self.parked], self.reserved)

    def running(self) -> list[Allocation]:
        """What the placed jobs hold: queue usage and preemption's candidates."""
        return [Allocation(job.job_id, job.spec.queue, job.spec.priority, job.spec.preemptible, p.cluster,
                           p.accelerator_model, p.replicas, placement_resources(p, job.spec), job.placed_at,
                           accepted_models(job.spec, p.alternative), p.nodes, p.unit_milli, job.spec.owner,
                           job.spec.pod_sets if p.replicas == job.spec.replicas else ())
                for job in self.active_jobs() for p in job.placements if p.phase.is_active]

    def active_by_cluster(self) -> dict[str, list[tuple[Placement, JobSpec]]]:
        """The active placements of each cluster, with their jobs' specs."""
        return active_by_cluster(self.active_jobs())

    reserved_info = staticmethod(reserved_info)  # a cluster less what its report does not count yet

    def snapshot(self) -> Snapshot:
        """Member clusters as last reported, less what this federator has reserved since (cycle_snapshot.py)."""
        return fleet_snapshot(self.fed, self.active_by_cluster())

    def plan(self) -> CyclePlan:
        self.parked.mark()  # what frees room from here on may outdate this cycle's verdicts (commit_pending)
        jobs = self.fed.jobs
        requests: list[PlacementRequest] = []
        generations: dict[JobId, int] = {}
        now = self.fed.clock()
        cache = self._requests
        policy = self.fed.scheduler.config.reservations
        back = self.reserved.due(now, policy.after_seconds)  # taken off its heap even when reservations are off
        back = back if policy.max_reservations else []
        for job_id in [*self.reserved.gangs(), *back]:  # reserving room, or due to ask for it: reservations.py
            if job_id in self.parked:
                self.parked.unpark(job_id)
                self._candidates[job_id] = None
        for job_id in self.refresh.ask(now, self.parked):  # one of each group a report may have made untrue
            self.parked.unpark(job_id)
            self._candidates[job_id] = None
        ahead = self.fed.cordons.ahead()  # maintenance windows to come: each request carries its run bound then
        config = self.fed.scheduler.config
        for job_id in list(self._candidates):
            job = jobs.get(job_id)
            if job is None or not owes(job) or (
                    job.phase is JobPhase.PENDING and (why := self.fed.refusals.given_up(job_id)) is not None
                    and give_up(self.fed, job, why)):  # no member takes it: it fails (server/giving_up.py)
                self._candidates.pop(job_id, None)  # a job given up has left them already
                cache.pop(job_id, None)
                continue
            avoid = self.fed.refusals.avoided(job.job_id, now)
            request = cache.get(job_id)
            if request is None or request.spec is not job.spec or request.avoid_clusters != avoid or \
                    request.replicas != missing(job) or request.kept_regions != kept_regions(job):
                request = cache[job_id] = rest_request(job, avoid)  # the whole job, or the rest of a short one
            if (held := regained(self.fed, job, avoid, now)) is not request.regain:
                request = cache[job_id] = replace(request, regain=held)  # the count it regains: elastic_regain.py
            if ahead or request.run_seconds:
                request = cache[job_id] = bounded(request, run_bound(config, job) if ahead else 0)
            requests.append(request)
            generations[job.job_id] = job.generation
        for job in self.active_jobs():
            generations[job.job_id] = job.generation
        running = self.running()
        scheduler = self.fed.scheduler
        if self.tuner.config is not scheduler.config:
            if self.tuner.config.scarcity_scales == scheduler.config.scarcity_scales:
                self.tuner.config = scheduler.config  # a Queue changed: the choice and its pace stand
            else:  # the policy's scales changed: they are what is tried now
                self.tuner = Tuner(scheduler.config)
        return CyclePlan(self.snapshot(), tuple(requests), tuple(running), self.fed.clock(), scheduler,
                         generations, self.memory.arrivals(), self.tuner, self.reserved.current(),
                         self.reserved.resting(), ahead, self.parked.summary.summary())

    # -- running them -------------------------------------------------------------------------

    def run_once(self) -> CycleResult:
        """One cycle on the caller's thread (tests, the simulator): plan, compute, commit, write, send.

        StoreUnavailable if its write (or an earlier cycle's, tried first) failed: its orders wait."""
        if self.writes.waiting is not None:
            self.writes.retry()
        started = time.perf_counter()
        self.answer_moves()
        plan = self.plan()
        result = compute(plan)
        changed, orders = self.commit(plan, result)
        changed += self.commit_pending(plan, list(result.pending.items()))
        changed += self.told()[0]
        self.writes.write(changed, orders, result)  # durable before any agent hears of it
        self._finish(changed, orders, result, started)
        self.rebalance()
        return result

    async def paced(self, began: float) -> None:
        """Until `wake_gap` after `began`, the loop's time the last cycle's turn began (WAKE_GAP_SECONDS)."""
        rest = began + self.wake_gap - asyncio.get_running_loop().time()
        if rest > 0:
            await asyncio.sleep(rest)

    async def run_once_async(self) -> CycleResult | None:
        """One cycle with its computation on the worker thread; the loop serves streams meanwhile. None if no
        cycle ran: an earlier cycle's write still fails, or this one's did (its orders wait; module docstring)."""
        if self.writes.waiting is not None and not await self.writes.retry_async():
            return None
        started = time.perf_counter()
        self.answer_moves()
        plan = self.plan()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="federator-cycle")
            if sys.getswitchinterval() > SWITCH_INTERVAL_SECONDS:
                sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        result = await asyncio.get_running_loop().run_in_executor(self._executor, compute, plan)
        changed, orders = self.commit(plan, result)
        try:
            await self.fed.journal.commit(changed)  # durable before any agent hears of it
        except StoreUnavailable as exc:
            self.writes.keep(changed, orders, result, exc)
            return None
        self._finish(changed, orders, result, started)
        # Pending reasons last, in slices: after a cycle over 100,000 jobs they are most of the work, no
        # order waits for them, and the loop serves streams between slices. Their writes are lazy: not
        # awaited, and behind every Submit (a reason is recomputed by the next cycle after a crash).
        pending = list(result.pending.items())
        for i in range(0, len(pending), COMMIT_SLICE):
            reasons = self.commit_pending(plan, pending[i:i + COMMIT_SLICE])
            if reasons:
                self.fed.journal.enqueue_lazy(reasons)
                self.fed.notify(reasons)
            await asyncio.sleep(0)
        more = True
        while more:  # the groups of parked jobs whose reason one of them was given anew: as lazy, in slices
            reasons, more = self.told(COMMIT_SLICE)
            if reasons:
                self.fed.journal.enqueue_lazy(reasons)
                self.fed.notify(reasons)
            await asyncio.sleep(0)
        self.rebalance()
        return result

    @property
    def unwritten(self) -> Unwritten | None:
        """A cycle waiting for the disk (unwritten_cycle.py), if any: the store's health reads it."""
        return self.writes.waiting

    def _counted(self, cycles: int) -> None:
        self.cycles += cycles  # a cycle the disk refused is not one until it is stored

    def _finish(self, changed: list[Job], orders: list[tuple[str, Order]], result: CycleResult,
                started: float) -> None:
        fed = self.fed
        self._send(changed, orders)
        fed.last_cycle = result
        fed.metrics.observe_cycle(time.perf_counter() - started, result.phase_seconds)

    def _send(self, changed: list[Job], orders: list[tuple[str, Order]]) -> None:
        """A stored cycle's orders, and its news to watchers."""
        for cluster, order in orders:
            if isinstance(order, LaunchOrder) and not self._current(order.placement):
                continue  # cancelled (or re-queued) while its write was on its way to disk
            self.fed.send(cluster, order)
        self.fed.notify(changed)

    def _current(self, placement: Placement) -> bool:
        job = self.fed.jobs.get(placement.job_id)
        return job is not None and job.phase.is_active and any(
            p.placement_id == placement.placement_id and p.phase.is_active for p in job.placements)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


# new_placements and placement_ids live in server/new_placements.py, CyclePlan and compute in cycle_plan.py;
# adoption.py and tests import them from here
__all__ = ["SWITCH_INTERVAL_SECONDS", "CyclePlan", "Cycles", "compute", "new_placements", "placement_ids"]
