"""The federator's state machine: jobs, clusters, placements, and the scheduling loop.

No gRPC here: the transports (`server/services.py`) call these methods and drain each agent's outbox. Every
change to a job is written to the store before it is acknowledged to anyone.

Clusters move Ready -> Partitioned (stream dropped or lease expired: jobs keep running, no new work) -> Lost
(partitioned past the grace time: jobs are re-placed elsewhere with a new fencing generation, unless their failover
policy says keep). When an agent comes back it re-syncs (see `report`): placements that were superseded are
cancelled, launch orders lost in flight are sent again (launch is idempotent per placement id), and a job whose
placement the cluster no longer holds is re-queued. See docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Iterable

from federator.jobfile import REQUEST_ID_ANNOTATION, shown
from federator.metrics import Metrics, StateSample
from federator.model import (
    ClusterCapacity,
    ClusterState,
    Job,
    JobId,
    JobPhase,
    JobSpec,
    Placement,
    Reason,
    ReasonCode,
)
from federator.scheduler import CycleResult, Scheduler, SchedulerConfig, Snapshot
from federator.security.limits import Limits
from federator.server import member_health, shrink
from federator.server.arrays import Arrays
from federator.server.cancelling import UserCancels
from federator.server.clusters import (
    FAILOVER_ANNOTATION,
    OUTBOX_LIMIT,
    ClusterRecord,
    awaited,
    expected_back,
    forget_acks,
    report_gate,
)
from federator.server.cordons import Cordons
from federator.server.dependencies import Dependencies
from federator.server.drains import Drains
from federator.server.early_failures import EarlyFailurePolicy, EarlyFailures
from federator.server.end_times import ClampLog, latest_end, placement_end
from federator.server.intake import Intake
from federator.server.job_holds import WantedHolds
from federator.server.job_message import ClusterNotes, job_message
from federator.server.job_table import JobTable
from federator.server.leases import DEFAULT_FORGET_LOST_AFTER_SECONDS, Leases
from federator.server.membership import Membership
from federator.server.moving import Ask, Moves, kept_message, moved_reason, still_kept
from federator.server.orders import CancelOrder, LaunchOrder, Order
from federator.server.orphans import Orphans
from federator.server.outbox import Ending, overloaded, superseded
from federator.server.placement_index import PlacementIndex
from federator.server.refusals import DEFAULT_REFUSAL_COOLDOWN_SECONDS, STOPPED_CHARS, RecentRefusals
from federator.server.replica_counts import UNSAID, ReplicaCounts
from federator.server.requeue import requeue, supersede
from federator.server.restored_ends import end_restored
from federator.server.run_limits import RunLimits
from federator.server.scaling import Scalings, scale, scale_async
from federator.server.scheduling import Cycles
from federator.server.settle import Settling, unreported
from federator.server.silent_cancels import SilentCancels
from federator.server.silent_ends import ended_silently
from federator.server.stalls import LoopStalls
from federator.server.start_deadline import DEFAULT_START_TIMEOUT_SECONDS, StartDeadline
from federator.server.state_sample import state_sample
from federator.server.stored_first import StoredFirst
from federator.server.watch_history import WatchHistory
from federator.store import JobStore
from federator.store.group_commit import GroupCommit
from federator.store.members import MemberStore
from federator.woken import woken

log = logging.getLogger("federator.server")


class NotFound(KeyError):
    pass


class Federator:
    def __init__(
        self,
        *,
        store: JobStore,
        scheduler: Scheduler | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        report_interval: float = 2.0,
        lease_seconds: float = 10.0,
        lost_after_seconds: float = 120.0,
        cycle_interval: float = 1.0,
        limits: Limits | None = None,
        refusal_cooldown: float = DEFAULT_REFUSAL_COOLDOWN_SECONDS,
        settle_seconds: float = 0.0,
        members: MemberStore | None = None,
        forget_lost_after: float = DEFAULT_FORGET_LOST_AFTER_SECONDS,
        start_timeout: float = DEFAULT_START_TIMEOUT_SECONDS,
        early_failures: EarlyFailurePolicy | None = None,
        orphan_grace: float = 0.0,
    ) -> None:
        self.store = store
        self.scheduler = scheduler or Scheduler()
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.report_interval = report_interval
        self.lease_seconds = lease_seconds
        self.lost_after_seconds = lost_after_seconds
        self.cycle_interval = cycle_interval
        self.limits = limits or Limits()
        self.refusals = RecentRefusals(refusal_cooldown)
        self.end_clamps = ClampLog()  # agents' end times out of their window: logged once while it lasts
        self.moves = Moves()  # placements agents asked to move (JobUpdate.admission_overdue), answered each turn
        self.jobs = JobTable(store.load())  # by id, and in submission order and by owner (server/job_table.py)
        self.placement_index = PlacementIndex(self.jobs.values())  # every placement of a live job (placement_index.py)
        self.journal = GroupCommit(store)  # every job write goes through it, in order
        # Told of the placements a re-queue drops, each dated (`ended_at`; 0: now): the usage meter (accounting.attach)
        self.on_superseded: Callable[[Iterable[Placement]], None] = lambda gone: None
        self.cycles = Cycles(self)
        self.intake = Intake(self)  # the submit path and its indexes (server/intake.py)
        self.dependencies = Dependencies(self)  # jobs waiting on others' ends (server/dependencies.py)
        self.wanted_holds = WantedHolds()  # spec.held: true refused while the job ran: held at its re-queue
        self.arrays = Arrays(self)  # arrays' tasks past their throttle (server/arrays.py)
        self.cancels = UserCancels(self)  # a user's Cancel: stored first, awaited off the loop (server/cancelling.py)
        self.scalings = Scalings()  # one awaited Scale of a job at a time (server/scaling.py)
        self.stored_first = StoredFirst(self)  # moves' and surges' changes, stored first off the loop (stored_first.py)
        self.notes = ClusterNotes(self)  # a placed job says when its cluster is not Ready (server/job_message.py)
        self.clusters: dict[str, ClusterRecord] = {}
        self.stalls = LoopStalls(clock)  # the loop's own stalls, not charged to leases (server/stalls.py)
        self.leases = Leases(self, forget_after=forget_lost_after)  # Partitioned, Lost, forgotten
        self.starts = StartDeadline(self, timeout=start_timeout)  # placements their cluster does not start
        self.run_limits = RunLimits(self)  # jobs past their spec.max_run_seconds fail (server/run_limits.py)
        self.early = EarlyFailures(self, early_failures)  # failed soon after starting: once more; quarantine
        self.silent_cancels = SilentCancels(self)  # cancelled while their member was silent (usage: its end)
        self.orphans = Orphans(self, grace=orphan_grace)  # placements of jobs the store never knew (server/orphans.py)
        self.cordons = Cordons(on_release=self.early.released, clock=lambda: self.clock())  # server/cordons.py
        self.drains = Drains(self)  # admins' drains, held with the cordons: their jobs moved off (server/drains.py)
        self._sessions = 0
        self._wake = asyncio.Event()
        self.history = WatchHistory(start=int(self.clock() * 1e6))  # every change, numbered (watch_history.py)
        self.last_cycle: CycleResult | None = None
        self.metrics.watch_state(self.sample)
        self.metrics.queue_label.define(lambda: self.scheduler.config.queues)  # never folded into `other`
        self.membership = Membership(members)  # SQLite mode: the members a restart expects back
        self.membership.restore(self.clusters, now=self.clock())  # what was kept of each, features and all
        self.clusters.update(expected_back(self.jobs.values(), known=self.clusters, now=self.clock()))
        # The loop's first placements wait for the clusters expected back (server/settle.py); 0: never.
        self.settling = Settling(self.clock(), settle_seconds)
        self.dependencies.start()  # each waiting job judged against what the store holds
        self.arrays.start()  # each array's throttle judged again from its tasks' stored phases

    # -- the job API ------------------------------------------------------

    def submit(self, spec: JobSpec, *, request_id: str = "") -> Job:
        """Accept a job, stored before this returns (see `Intake.submit`)."""
        return self.intake.submit(spec, request_id=request_id)

    async def submit_async(self, spec: JobSpec, *, request_id: str = "") -> Job:
        """Accept a job through a group commit (the gRPC edge and the Kubernetes controller)."""
        return await self.intake.submit_async(spec, request_id=request_id)

    def current_phase(self, cluster: str, placement_id: str) -> JobPhase | None:
        """The phase of a placement that is current on `cluster`, or None if it is not."""
        job = self.jobs.get(self.placement_index.get(placement_id, JobId("")))
        p = next((p for p in job.placements if p.placement_id == placement_id), None) if job else None
        return p.phase if p is not None and p.cluster == cluster else None

    def get(self, key: str) -> Job:
        if key in self.jobs:
            return self.jobs[JobId(key)]
        named = self.jobs.named(key)
        if not named:
            raise NotFound(f"no job with id or name {shown(key)}")
        return max(named, key=lambda j: j.submitted_at)

    def list_jobs(self, queue: str = "") -> list[Job]:
        return list(self.jobs.in_order(queue=queue))

    def cancel(self, key: str) -> Job:
        """Durable first, blocking until stored (server/cancelling.py): StoreUnavailable leaves the job as it was."""
        return self.cancels.cancel(key)

    async def cancel_async(self, key: str) -> Job:
        """`cancel` with its write awaited off the loop (the gRPC edge; server/cancelling.py)."""
        return await self.cancels.cancel_async(key)

    def scale(self, key: str, replicas: int) -> Job:
        """An inference job's new replica count, stored first (server/scaling.py); ScaleRefused names the field."""
        return scale(self, self.get(key), replicas)

    async def scale_async(self, key: str, replicas: int) -> Job:
        """`scale` with its write awaited off the loop (the gRPC edge; server/scaling.py)."""
        return await scale_async(self, self.get(key).job_id, replicas)

    def end_watches(self) -> None:
        """The federator is stopping: every Watch ends with a status saying so, not cut by the server's stop."""
        self.history.end()

    # -- agents -----------------------------------------------------------

    def connect(self, *, cluster: str, region: str, labels: dict[str, str]) -> ClusterRecord:
        """A new agent stream. A second stream for the same cluster replaces the first (a second agent's was
        refused before: server/duplicates.py). The cluster keeps its state (Partitioned, Lost) until the session's
        first capacity report, which is when the federator re-syncs with it."""
        self._sessions += 1
        old = self.clusters.get(cluster)
        if old is not None and old.connected:
            self.close_stream(old, superseded(cluster))  # the newest stream wins; the older one is told so
        now = self.clock()
        rec = ClusterRecord(name=cluster, region=region, labels=dict(labels), connected=True,
                            session=self._sessions, last_report_at=now, last_seen_at=now,
                            reports=report_gate(self.limits, old.reports if old is not None else None))
        if old is not None:
            rec.capacity = old.capacity
            rec.acked, rec.resizes_owed = old.acked, old.resizes_owed  # its re-sync settles both
            rec.state = old.state
            rec.partitioned_at, rec.lost_at, rec.ready_at = old.partitioned_at, old.lost_at, old.ready_at
            rec.unreachable_since = old.unreachable_since  # since when, if the new stream's reports say so again
            rec.last_report_at = old.last_report_at
        self.clusters[cluster] = rec
        self.metrics.agent_connects.labels(cluster).inc()
        self.metrics.cluster_counters_from_zero(cluster)  # increase() sees a cluster's first timeout, quarantine
        for result in ("moved", "kept"):  # each from 0: the panel and increase() see a cluster before its first move
            self.metrics.placement_moves.labels(cluster, result)
        log.info("cluster %s (%s) connected, session %d", cluster, region, rec.session)
        return rec

    def disconnect(self, rec: ClusterRecord) -> None:
        if self.clusters.get(rec.name) is not rec:
            return
        rec.connected = False
        rec.disconnected_at = self.clock()
        if rec.state is ClusterState.READY:
            rec.state = ClusterState.PARTITIONED
            rec.partitioned_at = rec.disconnected_at
        log.warning("cluster %s disconnected: %s", rec.name, rec.state)

    def heard(self, rec: ClusterRecord) -> None:
        """Any message renews the agent's lease."""
        rec.last_seen_at = self.clock()

    def report(self, rec: ClusterRecord, capacity: ClusterCapacity, *, unreachable: str = "") -> None:
        """A capacity report. Only a cluster becoming Ready, or one whose placements left it, wakes the
        scheduler at once: with hundreds of agents reporting every second, routine reports wait for the
        next periodic cycle. `unreachable`: the agent cannot reach its member's API (server/member_health.py)."""
        if member_health.reported(self, rec, unreachable):
            return  # Partitioned; a stale capacity, not taken
        previous, rec.capacity = rec.capacity, capacity
        rec.last_seen_at = self.clock()  # last_report_at below: a re-sync dates what is gone by the report before
        self.intake.fleet.reported(rec.name, capacity, rec.region)
        self.cycles.reported(rec.name, previous, capacity)
        if not rec.resynced:
            rec.resynced = True
            self.membership.seen(rec)
            self._resync(rec, capacity)
            self.wake()
        else:
            self.orphans.cancel_strays(rec, capacity.placement_ids)
            if previous is not None and previous.placement_ids - capacity.placement_ids:
                self.wake()  # placements left the cluster: their capacity is free for waiting jobs now
        self.silent_cancels.reported(rec, capacity.placement_ids)  # before the time moves: server/silent_cancels.py
        rec.last_report_at = self.clock()
        self.membership.reported(rec)  # kept coarsely: what a member never back after a restart is billed to
        if rec.connected and rec.state is not ClusterState.READY:
            log.info("cluster %s is Ready (was %s)", rec.name, rec.state)
            rec.state, rec.ready_at = ClusterState.READY, self.clock()
            self.cycles.capacity_changed(everything=True)
            self.wake()
        self.metrics.agent_reports.labels(rec.name).inc()

    def job_update(self, rec: ClusterRecord, placement_id: str, phase: JobPhase, message: str, *,
                   admission_overdue: bool = False, counts: ReplicaCounts = UNSAID, lost: bool = False,
                   ended_at: float = 0.0, job_ended: bool = False) -> None:
        """`ended_at`: JobUpdate.ended_at, when a final phase was reached (0: not said), checked in end_times.py;
        `job_ended`: JobUpdate.job_ended (server/restored_ends.py)."""
        rec.last_seen_at = self.clock()
        self.orphans.heard(rec, placement_id, phase)  # a cancel kept for this cluster: confirmed if it ended
        self.silent_cancels.heard(rec, placement_id, phase, ended_at)  # cancelled on a silent member: its end
        job_id = self.placement_index.get(placement_id)
        job = self.jobs.get(job_id) if job_id else None
        placement = next((p for p in job.placements if p.placement_id == placement_id), None) if job else None
        if job is None or placement is None or placement.cluster != rec.name:
            order = None if phase.is_terminal else self.orphans.fence_one(rec.name, placement_id)
            if order is not None:  # superseded (an older generation), or an orphan past its grace: fence it
                self.send(rec.name, order)
            return
        rec.seen.add(placement_id)  # only ours: the re-sync reads it, and made-up ids must not fill memory
        if job.phase.is_terminal or placement.phase.is_terminal:
            if not phase.is_terminal:
                self.send(rec.name, CancelOrder(placement_id, f"job is {job.phase}", job_ended=job.phase.is_terminal))
            return
        if phase.is_terminal:  # its end as its agent says, within [start, now]: an end heard late is not billed late
            placement.ended_at = placement_end(job, ended_at, learned=self.clock(), cluster=rec.name,
                                               placement_id=placement_id, metrics=self.metrics,
                                               clamps=self.end_clamps)  # re-queued too
        if phase is JobPhase.CANCELLED and job_ended:  # a federator ended the job: a store older than that
            return end_restored(self, rec, job, placement, message)
        if phase is JobPhase.CANCELLED:  # stopped by the cluster itself (it fenced itself, or was evicted)
            rec.acked.discard(placement_id)
            self.refusals.note(job.job_id, rec.name, self.clock(), message, counted=True)
            self.requeue(job, Reason(ReasonCode.REFUSED_BY_CLUSTER, f"{rec.name} stopped placement {placement_id}: "
                                      f"{message[:STOPPED_CHARS]}"), ended={placement_id}, stopped={placement_id})
            return
        rec.acked.add(placement_id)
        if admission_overdue and phase is JobPhase.PLACED:  # the member's queue holds it: the next turn answers
            self.moves.ask(job.job_id, Ask(rec.name, placement_id, message))
            self.wake()
        if phase is placement.phase:  # the same phase: no message keeps the one it had, and a kept note stays
            message = still_kept(placement.message, message, rec.name) if message else placement.message
        if not counts.apply(placement) and placement.phase is phase and placement.message == message:
            return  # a resync repeating what is already on disk (a new replica count alone is news: F2)
        said = self.early.seen(rec, job, placement, phase, message, lost=lost)  # server/early_failures.py
        if said is None:
            return  # Failed soon after it started: the job is queued again
        placement.phase, placement.message = phase, said
        self.run_limits.started(job, phase)  # Running: this attempt's run-time clock, stored with the job below
        self._derive_phase(job, ended=placement.ended_at or None)
        self.journal.write_or_owe([job], then=self.notify)  # off the loop; a full disk delays it (paid), never loses it
        if phase.is_terminal:
            self.wake()

    def answer_move(self, job: Job, ask: Ask, target: str) -> None:
        """The answer to an agent that asked to move a placement its member's queue holds (server/moving.py):
        queued again for `target`'s room, the holder avoided a while; or, with no target, left in that queue."""
        if target:
            log.info("job %s: moving placement %s off %s, whose queue holds it; %s can run it now", job.job_id,
                     ask.placement_id, ask.cluster, target)
            self.metrics.placement_moves.labels(ask.cluster, "moved").inc()
            self.refusals.note(job.job_id, ask.cluster, self.clock(), ask.message)
            self.requeue(job, Reason(ReasonCode.REFUSED_BY_CLUSTER, moved_reason(ask, target, STOPPED_CHARS)),
                         ended={ask.placement_id})
            return
        self.metrics.placement_moves.labels(ask.cluster, "kept").inc()
        for p in job.placements:
            if p.placement_id == ask.placement_id:
                p.message = kept_message(ask)
        self._derive_phase(job)
        self.journal.write_or_owe([job], then=self.notify)

    def refused(self, rec: ClusterRecord, placement_id: str, message: str) -> None:
        """The agent would not launch a placement: release it and requeue the job. Only a live placement of the
        agent's own cluster: another cluster's agent must not be able to cancel it."""
        rec.last_seen_at = self.clock()
        job = self.jobs.get(self.placement_index.get(placement_id, JobId("")))
        if job is None or job.phase.is_terminal or not self._live_on(rec, placement_id):
            return
        self.metrics.placements.labels("refused").inc()
        self.refusals.note(job.job_id, rec.name, self.clock(), message, counted=True)
        self.requeue(job, Reason(ReasonCode.REFUSED_BY_CLUSTER, f"{rec.name} refused: {message}"), ended={placement_id})

    def acked(self, rec: ClusterRecord, placement_id: str) -> None:
        """Remember a launch the agent took, for its re-sync; only a live placement of its cluster (`acked` is
        pruned as placements end, so it holds no more than the cluster runs)."""
        rec.last_seen_at = self.clock()
        if self._live_on(rec, placement_id):
            rec.acked.add(placement_id)

    def _live_on(self, rec: ClusterRecord, placement_id: str) -> bool:
        phase = self.current_phase(rec.name, placement_id)
        return phase is not None and phase.is_active

    def _resync(self, rec: ClusterRecord, capacity: ClusterCapacity) -> None:
        """Reconcile what this federator believes runs on a cluster with what its agent says it runs.

        The agent reports every placement it holds (JobUpdates) before its
        first capacity report of a session, so by now `rec.seen` and the
        report's placement ids are all it has.
        """
        present = set(capacity.placement_ids) | rec.seen
        self.orphans.cancel_strays(rec, capacity.placement_ids)
        requeue: list[tuple[Job, Placement]] = []
        for job in self.jobs.values():
            if job.phase.is_terminal:
                continue
            for p in job.placements:
                if p.cluster != rec.name or not p.phase.is_active or p.placement_id in present:
                    continue
                if p.phase is JobPhase.RUNNING or p.placement_id in rec.acked:
                    requeue.append((job, p))  # it ran there once and is gone: the agent lost it
                else:  # the launch order never arrived (stream broke, or this federator restarted)
                    self.send(rec.name, LaunchOrder(p, job.spec))
        shrink.resend(self, rec, present)  # a Resize lost in flight (or with a restart) takes effect
        for job, p in requeue:
            log.warning("cluster %s no longer holds placement %s: re-queueing %s", rec.name, p.placement_id,
                        job.job_id)
            ended_silently([p], rec, now=self.clock())  # at the report before this one (server/silent_ends.py)
            self.requeue(job, Reason(ReasonCode.REFUSED_BY_CLUSTER,
                                      f"{rec.name} no longer runs placement {p.placement_id} "
                                      "(its agent restarted); re-placing"), ended={p.placement_id})

    # -- scheduling -------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def set_scheduler_config(self, config: SchedulerConfig) -> None:
        """Schedule with `config` from the next cycle on (Kubernetes mode: a Queue object changed).

        The scheduler stays pure: the caller builds the new config, this swaps it in between cycles."""
        self.scheduler = Scheduler(config)
        self.cycles.capacity_changed(everything=True)
        self.wake()

    def snapshot(self) -> Snapshot:
        """Member clusters as last reported, less what this federator has reserved since."""
        return self.cycles.snapshot()

    def schedule_once(self) -> CycleResult:
        """One scheduling cycle on this thread (tests, benchmarks); `run` computes cycles off the loop."""
        return self.cycles.run_once()

    def check_leases(self) -> None:
        """Age the clusters' leases: Partitioned, Lost, forgotten (server/leases.py)."""
        self.leases.check()

    def requeue(self, job: Job, reason: Reason, *, ended: Collection[str] = (), stopped: Collection[str] = ()) -> None:
        """Supersede a job's placements (`ended`: only those), queue it again; its CancelOrders once stored, off the
        loop (server/requeue.py); `stopped`: reported ended by their agent, sent no Cancel."""
        requeue(self, job, reason, ended=ended, stopped=stopped)

    def supersede(self, job: Job, reason: Reason) -> list[tuple[str, Order]]:
        """Put a job back to Pending with `reason`; the cancel orders for its live placements, to send once stored."""
        return supersede(self, job, reason)

    def expect_cluster(self, name: str, *, region: str, labels: dict[str, str], lost: bool = False,
                       last_report_at: float = 0.0) -> None:
        """A cluster known from elsewhere (its MemberCluster object; in SQLite mode, the members store) whose
        agent has not connected to this federator: Partitioned until it does (Lost after the grace time), or
        Lost already."""
        if name in self.clusters:
            return
        self.clusters[name] = awaited(name, region=region, labels=labels, now=self.clock(), lost=lost,
                                      last_report_at=last_report_at)

    async def run(self) -> None:
        """The reconcile loop: a cycle whenever something changed, and at least every cycle_interval.

        Its first turn runs at start, not a cycle_interval later: after a restart the clusters expected back
        are Partitioned, and until a turn restates their jobs, Get and List answered with the messages stored
        before the crash ("1 replicas running" on a cluster whose agent is silent)."""
        watch = asyncio.get_running_loop().create_task(self.stalls.watch())  # server/stalls.py
        try:
            while True:
                began = asyncio.get_running_loop().time()
                await self.tick()
                await woken(self._wake, self.cycle_interval)  # not wait_for: on 3.11 it can drop a cancel (woken.py)
                await self.cycles.paced(began)  # what came meanwhile rides this cycle (scheduling.WAKE_GAP_SECONDS)
                self._wake.clear()
        finally:
            watch.cancel()

    async def tick(self) -> CycleResult | None:
        """One turn of the loop: leases, then a cycle unless a start's placements still wait (None then)."""
        try:
            self.journal.pay()  # what a full disk refused to an agent's update (GroupCommit.write_or_owe)
            self.check_leases()
            self.starts.check()
            self.run_limits.check()  # off the cycle: a few heap entries a turn (server/run_limits.py)
            self.drains.turn()  # a batch of the drained clusters' jobs requeued, for this turn's cycle to place
            self.membership.flush()
            await self.cordons.end_windows()  # maintenance windows over: their clusters take work (cordons.py)
        except Exception:  # neither may stop the loop: leases are checked again next turn
            log.exception("checking leases failed")
        if self.settling.holding(self.clock(), lambda: unreported(self.clusters)):
            return None
        try:
            return await self.cycles.run_once_async()
        except Exception:  # a bug in one cycle must not stop the federator
            log.exception("scheduling cycle failed")
            return None

    # -- helpers ----------------------------------------------------------

    def send(self, cluster: str, order: Order) -> None:
        """Queue an order for a connected agent; never blocks, never drops one (the stream paces them,
        server/outbox.py). Orders for a disconnected one are dropped (a cancel is recorded: Orphans.unsent): its
        re-sync on reconnect brings it up to date."""
        rec = self.clusters.get(cluster)
        if rec is None or not rec.connected or rec.closing:
            return self.orphans.unsent(rec, order)
        if not rec.outbox.put(order):
            log.warning("cluster %s has %d orders unread: ending its stream", cluster, rec.outbox.qsize())
            self.close_stream(rec, overloaded(cluster, rec.outbox.qsize()))

    def close_stream(self, rec: ClusterRecord, ending: Ending) -> None:
        """End an agent's stream with `ending` (its sender sees None, then the status); the agent reconnects and
        re-syncs."""
        rec.outbox.close(ending)

    def _derive_phase(self, job: Job, *, ended: float | None = None) -> None:
        """`ended`: when the placement whose update this follows ended (its finished_at if the job ends with it)."""
        phases = [p.phase for p in job.placements]
        if not phases:
            return
        if any(p is JobPhase.FAILED for p in phases):
            for p in job.placements:
                if not p.phase.is_terminal:
                    self.send(p.cluster, CancelOrder(p.placement_id, "another part of the job failed"))
                    p.phase, p.message = JobPhase.CANCELLED, "cancelled: another part of the job failed"
            self._finish(job, JobPhase.FAILED, next(p.message for p in job.placements if p.phase is JobPhase.FAILED),
                         at=ended)
        elif all(p is JobPhase.SUCCEEDED for p in phases) and not job.replicas_waiting:
            self._finish(job, JobPhase.SUCCEEDED, "all placements succeeded", at=latest_end(job) if ended else None)
        else:
            # The message is the current one, in the members' words, naming any cluster not Ready (job_message.py).
            # A Running job scaled up stays Running while its new placements start (outside QA, new user F2).
            job.phase = JobPhase.RUNNING if all(p in (JobPhase.RUNNING, JobPhase.SUCCEEDED) for p in phases) or (
                job.phase is JobPhase.RUNNING and JobPhase.RUNNING in phases) else JobPhase.PLACED
            job.message = job_message(job, self.clusters, lost_after=self.lost_after_seconds)

    def _finish(self, job: Job, phase: JobPhase, message: str, *, at: float | None = None) -> None:
        forget_acks(self.clusters, job.placements)
        self.cycles.released(job, job.placements)
        self.cycles.gone(job)
        self.intake.ended(job)  # its spec no longer counts against the byte budgets (server/job_bytes.py)
        job.phase, job.message = phase, message
        job.finished_at = self.clock() if at is None else at
        job.pending_reason = None
        self.refusals.forget(job.job_id)
        self.metrics.jobs_finished.labels(job.spec.queue, phase.value).inc()

    def notify(self, jobs: Iterable[Job]) -> None:
        """Jobs changed, or were removed (gone from `jobs`): numbered for every Watch (server/watch_history.py)."""
        jobs = list(jobs)
        self.history.record(jobs, self.jobs)
        self.dependencies.changed(jobs)  # a job's end releases or fails those waiting on it
        self.arrays.changed(jobs)  # an array task's end lets the next one go

    def sample(self) -> StateSample:
        """What a scrape reports (server/state_sample.py)."""
        return state_sample(self)

__all__ = ["FAILOVER_ANNOTATION", "OUTBOX_LIMIT", "REQUEST_ID_ANNOTATION", "ClusterRecord", "Federator", "NotFound"]
