"""Moving serving replicas back near their users, make before break: the rebalancer of the scheduling turn.

Why: see server/rebalance.py (which jobs, how many replicas, whether a move is better). This module runs the moves,
once per scheduling turn, after the turn's cycle has placed what waits (server/scheduling.py, `Cycles`):

1. Follow the moves in flight. A move's new replicas are a normal placement of the job, appended at its next
   generation, so for a while the job holds more replicas than it asked. Once every new part serves (Running, all
   replicas ready), the surplus is taken as a scale-down takes it (server/shrink.py `plan_down`: the nearest
   kept, the farthest shrink in place where their agent can resize, else stop), stored before any agent hears of
   it. If the new parts fail, are refused or stopped (their placements superseded as any part is), nothing is
   taken away: the job serves where it was, and says so.
2. Start new moves, never at anyone's expense: a job still waiting that could be placed now wins (the moves
   wait a turn), the moves' one cycle preempts no one, keeps clear of room held for waiting gangs, counts each
   surge against its queue's quota (the job's running parts count as usage, so a surge over the quota does not
   fit), and at most `rebalance.maxMovesPerMinute` moves start fleet-wide in any minute. One move per job at a
   time, and none within `rebalance.quietSeconds` of its last. A job its cycle found no room for is asked again
   after `RETRY_SECONDS`, or sooner when a cluster joins (or comes back): each ask is a scheduler call on the
   loop, and a busy fleet's reports change its room every few seconds.

Restart safety: moves in flight are not stored; the surge placement is. After a restart a job holding more than its
count is found by the same scan (`surplus`), and once its newest parts (the surge: the highest generation) serve,
the surplus is taken as above, the nearest kept: never ignored, and never by stopping the new near replicas for
being new. When each job last moved is stored (store/moves.py; Kubernetes mode, its FederatedJob status:
backends/kube/move_times.py), so a job moved just before a restart or a change of leader keeps its quiet time after
it, and the moves of the restart's minute count against maxMovesPerMinute (each job's last move in it counted as
one started: fewer moves, never more); standalone, that write is the job store's writer thread's, in order with the
jobs' (store/group_commit.py `write_beside`), never an SQLite transaction on the event loop. A job with a part on a
cluster being drained is left to the drain (server/drain_surge.py), whose surplus is the drained part, whatever the
scale-down would choose.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

from federator.model import ClusterState, Job, JobId, JobKind, Placement, Reason, ReasonCode
from federator.scheduler import Decision, Scheduler, SchedulerConfig, may_spread
from federator.server import nearness, rebalance, shrink
from federator.server.job_message import job_message, placements_message
from federator.server.maintenance_windows import windowed
from federator.server.new_placements import new_placements
from federator.server.orders import LaunchOrder, Order
from federator.server.partial import owes, rest_request, supersede_part
from federator.server.rebalance import Candidate, Why
from federator.server.reservations import KeptReservations
from federator.server.scaling import scaled
from federator.store.errors import StoreUnavailable
from federator.store.group_commit import freeze
from federator.store.moves import MoveStore, SqliteMoveStore

if TYPE_CHECKING:
    from federator.server.federator import Federator

log = logging.getLogger("federator.server")
WINDOW_SECONDS = 60.0  # maxMovesPerMinute's minute
RETRY_SECONDS = 60.0  # a job no room was found for is asked again after this
# More jobs waiting than this after the turn's cycle and no move starts: the check that none of them could take the
# room is a scheduler call over all of them, on the loop, and a national backlog must not pay a second cycle there.
WAITING_BOUND = 256


@dataclass(frozen=True, slots=True)
class Move:
    """A move in flight: its new parts (placement ids), and the words the job's message says it in."""

    new: frozenset[str]
    replicas: int  # launched
    asked: int  # the job's spec.replicas when it started: a scale meanwhile ends the move (the scale chose)
    why: Why
    leaving: tuple[str, ...]
    to: tuple[str, ...]


class Rebalancer:
    """The moves in flight, the fleet-wide rate, and each job's last move (module docstring)."""

    def __init__(self, fed: Federator) -> None:
        self.fed = fed
        self.moves: dict[JobId, Move] = {}
        self.started: deque[float] = deque()  # when each move of the last minute started
        self.last: dict[JobId, float] = {}  # when each job last moved (started or ended a move)
        self.tried: dict[JobId, float] = {}  # when a cycle last found no room for a job
        self._scheduler: Scheduler | None = None
        self._config: SchedulerConfig | None = None
        self._store: MoveStore | None = None  # where `last` is kept across a restart (store/moves.py)
        self._failing = False  # the last write failed: not said again until one works

    def attach(self, store: MoveStore, *, now: float) -> None:
        """Keep each job's last move in `store`, and take up those it kept: their quiet times go on, and the
        moves of the last minute count against maxMovesPerMinute."""
        self._store = store
        self.last = store.load()
        self.started = deque(sorted(t for t in self.last.values() if now - WINDOW_SECONDS < t <= now))

    @property
    def store(self) -> MoveStore | None:
        """Where the last moves are kept (None: nowhere); Kubernetes mode's controller flushes its writes."""
        return self._store

    def _moved(self, job_id: JobId, at: float) -> None:
        """A job started or ended a move at `at`: its quiet time runs from then, stored. A failed write is said
        once and the moves go on (the time is kept in memory: a restart meanwhile forgets it, as before 0.11.0)."""
        self.last[job_id] = at
        self._keep({job_id: at})

    def _keep(self, moved: dict[JobId, float], forget: Sequence[JobId] = ()) -> None:
        store = self._store
        if store is None or not (moved or forget):
            return
        kept = partial(self._kept, len(moved) + len(forget))
        if isinstance(store, SqliteMoveStore):  # an SQLite transaction: on the job store's writer thread, not the loop
            self.fed.journal.write_beside(partial(store.put, moved, forget=forget), kept)
            return
        try:  # Kubernetes mode's only buffers (backends/kube/move_times.py): its controller writes them
            store.put(moved, forget=forget)
        except Exception as exc:
            kept(exc)
            return
        kept(None)

    def _kept(self, n: int, error: BaseException | None) -> None:
        """A write of `n` move times ended with `error` (None: kept); sqlite3.Error, OSError or StoreError: the moves
        go on either way, said once until a write works."""
        if error is None:
            self._failing = False
            return
        if not self._failing:
            log.warning("cannot store when %d job(s) last moved: %s", n, error)
        self._failing = True

    def scheduler(self, config: SchedulerConfig) -> Scheduler:
        """The policy's scheduler without preemption: a move evicts nobody."""
        if self._scheduler is None or config is not self._config:
            self._scheduler, self._config = Scheduler(replace(config, preemption=False)), config
        return self._scheduler

    # -- one turn ---------------------------------------------------------------------------

    def turn(self, active: Sequence[Job], candidates: Sequence[JobId], reserved: KeptReservations) -> None:
        """Follow the moves in flight (and any surplus a restart left), then start what the rate allows.
        `candidates`: the jobs the cycle still owes a placement and did not park; `reserved`: the gangs'
        reservations."""
        fed = self.fed
        now = fed.clock()
        jobs = fed.jobs
        policy = fed.scheduler.config.rebalance
        latency = fed.scheduler.config.latency_ms
        ready = {name: rec.region for name, rec in fed.clusters.items()
                 if rec.state is ClusterState.READY and rec.capacity is not None}
        moves: list[Candidate] = []
        while self.started and self.started[0] <= now - WINDOW_SECONDS:
            self.started.popleft()
        budget = policy.max_moves_per_minute - len(self.started)
        # forget what no longer bounds anything: these hold only the moves of the last quiet time, and the asks
        # of the last minute
        quiet = {j: t for j, t in self.last.items() if now - t < policy.quiet_seconds}
        if len(quiet) != len(self.last):
            self._keep({}, [j for j in self.last if j not in quiet])
        self.last = quiet
        self.tried = {j: t for j, t in self.tried.items() if now - t < RETRY_SECONDS}
        # Past the bound the fleet is contended: what waits goes first, and no cycle runs on the loop; so no move
        # is looked for either (each is a nearness ranking and a scale-down plan per job, per turn).
        may_move = budget > 0 and len(candidates) <= WAITING_BOUND
        draining = fed.cordons.draining()
        for job in active:
            if fed.stored_first.busy(job.job_id):
                continue  # a move's start or end on its way to the disk: decided on once it lands
            if draining and any(p.cluster in draining and p.phase.is_active for p in job.placements):
                # A drain moves it (server/drain_surge.py), and ends exactly the drained cluster's part: a surplus
                # taken here by the scale-down's choice could stop the new replicas and keep the drained ones.
                self.moves.pop(job.job_id, None)
                continue
            move = self.moves.get(job.job_id)
            if move is not None or surplus(job):
                self._follow(job, move)
            elif may_move and rebalance.settled(job) and rebalance.wanted(job) and \
                    now - self.last.get(job.job_id, -1e18) >= policy.quiet_seconds and \
                    now - self.tried.get(job.job_id, -1e18) >= RETRY_SECONDS:
                c = rebalance.candidate(job, ready, latency, elastic=self._elastic(job),
                                        avoided=fed.refusals.avoided(job.job_id, now))
                if c is not None:
                    moves.append(c)
        for job_id in [j for j in self.moves if (kept := jobs.get(j)) is None or not kept.phase.is_active]:
            del self.moves[job_id]  # ended or queued again whole: nothing to follow
        if not moves or not may_move:
            return
        reserving = set(reserved.gangs())
        gangs = [rest_request(w, fed.refusals.avoided(job_id, now)) for job_id in reserving
                 if (w := jobs.get(job_id)) is not None and owes(w)]
        waiting = [rest_request(w, fed.refusals.avoided(job_id, now)) for job_id in candidates
                   if job_id not in reserving and (w := jobs.get(job_id)) is not None and owes(w)]
        reservations, resting = reserved.current(), reserved.resting()
        scheduler = self.scheduler(fed.scheduler.config)
        snapshot, running = fed.cycles.snapshot(), fed.cycles.running()
        if waiting:  # a job still waiting that could be placed now wins: the moves wait for a later turn
            asked, ahead = windowed(fed, [*waiting, *gangs])  # maintenance windows (maintenance_windows.py)
            first = scheduler.schedule(snapshot, asked, running=running, now=now,
                                       reservations=reservations, resting=resting, maintenance=ahead)
            ids = {r.job_id for r in waiting}
            if any(d.job_id in ids for d in first.decisions):
                fed.wake()
                return
        moves = sorted(moves, key=lambda c: (c.request.submitted_at, c.job_id))[:budget]
        ids = {c.job_id for c in moves}
        asked, ahead = windowed(fed, [*(c.request for c in moves), *(r for r in gangs if r.job_id not in ids)])
        result = scheduler.schedule(snapshot, asked, running=running, now=now, reservations=reservations,
                                    resting=resting, maintenance=ahead)
        decided = {d.job_id: d for d in result.decisions}
        for c in moves:
            d = decided.get(c.job_id)
            mover = fed.jobs.get(c.job_id)
            if d is None or mover is None or not self._start(mover, c, d, now):
                self.tried[c.job_id] = now

    # -- starting a move --------------------------------------------------------------------

    def _start(self, job: Job, c: Candidate, d: Decision, now: float) -> bool:
        """Place the new parts of a move (stored before any agent hears of them, the write awaited off the loop:
        server/stored_first.py); whether it was decided. It counts against maxMovesPerMinute from then, stored or
        not (fewer moves, never more)."""
        fed = self.fed
        spec = job.spec
        if not rebalance.settled(job) or not rebalance.landed(c, d.assignments):
            return False
        live = [p for p in job.placements if p.phase.is_active]
        added = [(a.region, a.replicas) for a in d.assignments]
        if not rebalance.better(live, added, spec.replicas, spec.min_regions, c.near, self._elastic(job)):
            return False
        n = sum(a.replicas for a in d.assignments)
        to = tuple(sorted({a.region for a in d.assignments}))
        said = rebalance.moving_words(n, c.leaving, to, c.why)

        stored = freeze(job)
        stored.generation += 1
        stored.placements = [*stored.placements, *new_placements(job.job_id, stored.generation, d.assignments)]
        stored.message = f"{said}; {placements_message(stored)}"
        self.started.append(now)

        def apply() -> None:  # stored: the move starts
            job.generation = stored.generation
            new = new_placements(job.job_id, job.generation, d.assignments)
            job.placements = [*job.placements, *new]
            job.message = stored.message
            orders: list[tuple[str, Order]] = []
            for p in new:
                fed.placement_index.add(p.placement_id, job.job_id)
                orders.append((p.cluster, LaunchOrder(p, spec)))
            fed.cycles._held(job)  # a preemptible job's new parts may be preempted, as the cycle's are
            self.moves[job.job_id] = Move(frozenset(p.placement_id for p in new), n, spec.replicas, c.why, c.leaving,
                                          to)
            self._moved(job.job_id, now)
            self.tried.pop(job.job_id, None)
            fed.metrics.rebalance_moves.labels("started").inc()
            log.info("job %s: %s", job.job_id, said)
            for cluster, order in orders:
                fed.send(cluster, order)
            fed.notify([job])

        def failed(error: StoreUnavailable | None) -> None:  # not started; asked again after RETRY_SECONDS
            if error is not None:
                log.warning("job %s: a move not stored (%s): not started", job.job_id, error)
            self.tried[job.job_id] = fed.clock()

        return fed.stored_first.run(job, stored, apply=apply, failed=failed)  # durable before any agent hears of it

    def _elastic(self, job: Job) -> frozenset[str]:
        """The ids of the job's parts that may shrink in place (a brought workload's never do)."""
        return shrink.elastic_parts(self.fed, job) if not job.spec.workload_json else frozenset()

    # -- following one ----------------------------------------------------------------------

    def _follow(self, job: Job, move: Move | None) -> None:
        """A move in flight (or, with `move` None, a surplus a restart left): take the surplus once the new parts
        serve; end it without taking anything when they are gone."""
        if move is not None and move.asked != job.spec.replicas:
            del self.moves[job.job_id]  # scaled meanwhile: the scale chose which parts stay
            return
        live = [p for p in job.placements if p.phase.is_active]
        new = [p for p in live if p.placement_id in move.new] if move is not None else newest(job)
        if move is not None and not new:
            self._failed(job, move)
            return
        if not all(rebalance.serving(p) for p in new):
            return  # make before break: nothing is taken while a new part starts
        self._trim(job, move, live, new)

    def _failed(self, job: Job, move: Move) -> None:
        """The new parts ended before they served (refused, failed, stopped, not started in time): the job keeps
        its replicas where they were, and says so."""
        fed = self.fed
        del self.moves[job.job_id]
        self._moved(job.job_id, fed.clock())
        said = (f"could not move {move.replicas} replica{'s' if move.replicas != 1 else ''} to "
                f"{' and '.join(move.to)}: they keep serving in {' and '.join(move.leaving)}")
        if not job.replicas_waiting and job.pending_reason is not None and \
                len({p.region for p in job.placements if p.phase.is_active}) >= job.spec.min_regions:
            job.pending_reason = None  # the new part's end, not a shortfall: the job has all it asked
        job.message = f"{said}; {job_message(job, fed.clusters, lost_after=fed.lost_after_seconds)}"
        fed.metrics.rebalance_moves.labels("failed").inc()
        log.info("job %s: %s", job.job_id, said)
        fed.journal.write_or_owe([job], then=fed.notify)

    def _trim(self, job: Job, move: Move | None, live: Sequence[Placement], new: Sequence[Placement]) -> None:
        """Take the surplus over the job's count (`live`: its live parts, `new` the move's), as a scale-down would:
        stored first, then Resize or Cancel."""
        fed = self.fed
        spec = job.spec
        near = nearness.of(spec, (p.region for p in live), fed.scheduler.config.latency_ms)
        spans = len({p.region for p in live})
        plan = shrink.plan_down(live, spec.replicas, min(spec.min_regions, spans), self._elastic(job), near)
        if move is not None:
            del self.moves[job.job_id]
        if not plan:
            return
        taken = sum(p.replicas for p in plan.dropped) + sum(p.replicas - plan.shrunk[p.placement_id]
                                                            for p in live if p.placement_id in plan.shrunk)
        gone = {p.placement_id for p in plan.dropped} | set(plan.shrunk)
        leaving = tuple(sorted({p.region for p in live if p.placement_id in gone}))
        to = move.to if move is not None else tuple(sorted({p.region for p in new}))
        why = move.why if move is not None else Why.NEARER
        said = rebalance.moved_words(taken, leaving, to, why)
        reason = Reason(ReasonCode.WAITING, said)
        before = job.pending_reason  # fewer regions than minRegions (scheduler/spread.py) stays said if still so
        keep = before if before is not None and before.code is ReasonCode.REGION_UNAVAILABLE else None
        stored = scaled(fed, job, spec, plan.dropped, reason, shrunk=plan.shrunk)
        self._restate(stored, said, keep)

        def apply() -> None:  # stored: the surplus is taken
            resizes = shrink.shrink(job, plan.shrunk, reason=said)
            cancels: list[tuple[str, Order]] = []
            if resizes and not plan.dropped:
                job.generation += 1  # as a scale-down does: a cycle planned before sees the parts as they were
            if plan.dropped:
                cancels = supersede_part(fed, job, {p.placement_id for p in plan.dropped}, reason, surged=True) or []
                job.generation += 1
            self._restate(job, said, keep)
            self._moved(job.job_id, fed.clock())
            fed.metrics.rebalance_moves.labels("completed").inc()
            log.info("job %s: %s", job.job_id, said)
            shrink.owe(fed, resizes)  # until acknowledged, across a restart too
            for cluster, order in (*resizes, *cancels):
                fed.send(cluster, order)
            fed.notify([job])

        def failed(error: StoreUnavailable | None) -> None:  # followed again next turn
            if error is not None:
                log.warning("job %s: the end of a move not stored (%s): tried again next turn", job.job_id, error)
            if move is not None:
                self.moves[job.job_id] = move

        fed.stored_first.run(job, stored, apply=apply, failed=failed)  # durable first, off the loop


    def _restate(self, job: Job, said: str, keep: Reason | None) -> None:
        """The job's reason and message once its surplus is taken: no reason when it has all it asked for, else
        the fewer-regions one it had; the message says what moved."""
        if not job.replicas_waiting:
            spans = len({p.region for p in job.placements if p.phase.is_active})
            job.pending_reason = keep if spans < job.spec.min_regions else None
        fed = self.fed
        job.message = f"{said}; {job_message(job, fed.clusters, lost_after=fed.lost_after_seconds)}"


def surplus(job: Job) -> bool:
    """Whether a serving job holds more replicas than it asks (a move's surge, in flight or left by a restart; or
    a drain's, of a single replica too, left by an Uncordon mid-surge: server/drain_surge.py)."""
    return job.phase.is_active and (may_spread(job.spec) or job.spec.kind is JobKind.INFERENCE) and \
        sum(p.replicas for p in job.placements if p.phase.is_active) > job.spec.replicas


def newest(job: Job) -> list[Placement]:
    """The live parts of the job's highest generation: a surge left by a restart is the newest placement made."""
    live = [p for p in job.placements if p.phase.is_active]
    top = max((p.generation for p in live), default=0)
    return [p for p in live if p.generation == top]


__all__ = ["RETRY_SECONDS", "WINDOW_SECONDS", "Move", "Rebalancer", "newest", "surplus"]
