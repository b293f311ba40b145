"""The usage meter: a consumer of job state changes that turns them into usage records and counters.

It sits in the federator's journal (`MeteredGroupCommit`, installed by
`attach`): every change to a job is written through the journal, so every
change passes the meter at the moment it happens (the federator's clock: the
simulated one in tests). The scheduler knows nothing of it, and the
Federator class neither.

For each job written, the meter compares the job's Running placements with
the records it holds open: a placement newly Running opens a record (written
to the usage store at once), an open record whose placement is no longer
Running (it succeeded, failed, was cancelled, preempted, or its cluster was
lost and the job re-placed) is closed at its end: the placement's `ended_at`
(its agent's JobUpdate.ended_at, clamped by server/end_times.py), so an end
heard of only at a re-sync after an outage is not billed to the re-sync;
else at that moment. A re-queue drops the placements before the job is
written, so the federator hands each to `superseded` first
(`Federator.on_superseded`): an eviction or an early failure closes at the
end its agent said, a Lost member's placement at the last time the
federator knew it running (server/silent_ends.py), not at the re-queue.
One whose placement shrank in place (server/shrink.py) is closed and a
record of the new size opened. One closed at a user's cancel while its member
was silent is ended earlier once the member's word comes (`shorten`,
server/silent_cancels.py). After a restart the open
records are read back and carry on; one whose placement the loaded jobs no
longer have Running closes at its end if they say it, else at the last tick
before the restart (`SqliteUsageStore.seen`); a Running placement without a
record opens one from its job's `started_at`. In Kubernetes mode each term
as leader is such a start, on the replica's own --db: a job deleted while it
stood by is not billed on, and a new leader bills a running placement from
its start, not its takeover (outside QA kubedr K5).

`federator_accelerator_seconds_total` grows by accelerators x seconds: when a
record closes, and every `tick` for the open ones, so a long job shows its
usage as it runs. Except across a pause of the federator (a tick late by more
than `gap_seconds`: SIGSTOP, a suspended VM, a stalled loop): a counter never
goes back, and a placement that ended during the pause is heard of only after
it, from its agent's backlog or re-sync, with its `ended_at`. So after a gap
the ticks count nothing for `hold_seconds` (the federator's --lost-after: by
then an agent has re-synced, or its cluster is Lost and its placements
re-placed); a record that closes meanwhile is counted to its own end, and
what is still open after the hold is counted through the pause (outside
billing QA F1: one 120 accelerator-second job counted 278.6 after a 30 s
pause). Its labels are queue, cluster, provider, model, region and vendor
(records.METRIC_DIMENSIONS; by user and namespace: the usage API). Every label
keeps at most LABEL_LIMIT distinct values (the first seen), and the counter at
most SERIES_LIMIT label sets; later ones are counted under "other", so a
federation of thousands of users and queues cannot blow up Prometheus. The
store keeps the real names.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from federator.accounting.records import METRIC_DIMENSIONS, Dimension, UsageRecord, known_where
from federator.accounting.store import SqliteUsageStore
from federator.metrics import Metrics
from federator.model import MILLI, Job, JobPhase, Placement, placement_held_milli
from federator.security.authz import owner_of
from federator.store import JobStore, StoreError
from federator.store.group_commit import GroupCommit

if TYPE_CHECKING:
    from federator.server.federator import Federator

log = logging.getLogger("federator.accounting")
LABEL_LIMIT = 200
SERIES_LIMIT = 2_000
"""Label sets the accelerator-seconds counter keeps at most (the first seen): each label's bound alone lets their
product grow to 200^4; a set past this one is counted under "other" in every label (the total stays exact)."""
OTHER = "other"


def held(job: Job, placement: Placement) -> tuple[str, int]:
    """(accelerator model, thousandths of accelerators) a placement holds: replicas x what each holds, whole
    partitions at their worth on a partition pool (`placement_held_milli`: eight 1g.10gb partitions of an 80 GB GPU
    bill 1 device, not 8), the chosen alternative's count elsewhere and on a placement stored by 0.11.0."""
    return placement.accelerator_model or "", placement_held_milli(placement, job.spec)


class _BoundedLabels:
    def __init__(self, limit: int, *, series_limit: int = SERIES_LIMIT) -> None:
        self.limit = limit
        self.series_limit = series_limit
        self.seen: dict[Dimension, set[str]] = {d: set() for d in Dimension}
        self.series: set[tuple[str, ...]] = set()

    def label_set(self, labels: tuple[str, ...]) -> tuple[str, ...] | None:
        """`labels` if the counter has (or may still have) that set, else None: fold it into OTHER."""
        if labels in self.series:
            return labels
        if len(self.series) < self.series_limit:
            self.series.add(labels)
            return labels
        return None

    def value(self, dim: Dimension, value: str) -> str:
        seen = self.seen[dim]
        if value in seen:
            return value
        if len(seen) < self.limit:
            seen.add(value)
            return value
        return OTHER


class UsageMeter:
    def __init__(self, store: SqliteUsageStore, *, metrics: Metrics, clock: Callable[[], float],
                 provider_of: Callable[[str], str] = lambda _cluster: "",
                 region_of: Callable[[str], str] = lambda _cluster: "",
                 vendor_of: Callable[[str, str], str] = lambda _cluster, _model: "", label_limit: int = LABEL_LIMIT,
                 series_limit: int = SERIES_LIMIT, gap_seconds: float = 15.0, hold_seconds: float = 120.0) -> None:
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.provider_of = provider_of
        # A record's region and vendor where it has none: one written before 0.14.0 and read back open (known_where)
        self.region_of = region_of
        self.vendor_of = vendor_of
        self._labels = _BoundedLabels(label_limit, series_limit=series_limit)
        self._open: dict[str, UsageRecord] = {}
        self._counted: dict[str, float] = {}  # counter is current up to here
        self._by_job: dict[str, set[str]] = {}
        self._unwritten: dict[str, UsageRecord] = {}  # the newest record of each placement the store refused
        self.gap_seconds = gap_seconds  # a tick later than this after the last one: the federator was paused
        self.hold_seconds = hold_seconds  # after a pause, how long ticks wait for the ends it hid (module docstring)
        self._last_tick: float | None = None
        self._held_until = 0.0
        # The last moment this file's meter counted (its last tick, before this start): where a record ends whose
        # placement this start no longer finds, and whose end nothing else says (`load`)
        self._seen = store.seen()
        for rec in store.open_records():
            self._track(rec, clock())

    @property
    def open(self) -> dict[str, UsageRecord]:
        return dict(self._open)

    def observe(self, jobs: Iterable[Job]) -> None:
        """Jobs as just written: open and close records to match their Running placements."""
        now = self.clock()
        writes: list[UsageRecord] = []
        for job in jobs:
            running = {p.placement_id: p for p in job.placements if p.phase is JobPhase.RUNNING}
            ends: dict[str, float] = {p.placement_id: p.ended_at for p in job.placements if p.ended_at}
            # A finished job's placement with no end of its own ended when the job did: one reading of the clock
            # (a cancel's, which the wait for a silent member's word notes too: server/silent_cancels.py), not a
            # second one here, a few milliseconds later on a loaded machine.
            ended = min(job.finished_at, now) if job.phase.is_terminal and job.finished_at > 0 else now
            for pid in sorted(self._by_job.get(job.job_id, set()) - set(running)):
                writes.append(self._close(pid, min(ends.get(pid, ended), now)))
            for pid, p in running.items():
                if pid in self._open and self._open[pid].accelerators_milli != held(job, p)[1]:
                    writes.append(self._resized(pid, now))  # shrunk in place (server/shrink.py): a new record
                if pid not in self._open:
                    rec = self._record(job, p, now)
                    if rec is not None:
                        writes.append(rec)
        self._write(writes)
        if writes:
            self._saw(now)

    def superseded(self, placements: Iterable[Placement]) -> None:
        """Placements a re-queue drops from their job: each open record closed at its placement's `ended_at` (0, or
        later than now: now), before the job's write shows them gone (`observe` would close them at that moment)."""
        now = self.clock()
        self._write([self._close(p.placement_id, min(p.ended_at or now, now))
                     for p in placements if p.placement_id in self._open])

    def shorten(self, placement_id: str, at: float) -> None:
        """A closed record whose placement is now known to have ended earlier (cancelled while its member was
        silent: server/silent_cancels.py): its end lowered to `at`, never raised, never before its start. The counter
        keeps what it counted (a counter never goes back)."""
        kept = self._unwritten.get(placement_id)  # one the store refused (a full disk) is the newest
        try:
            found = [kept] if kept is not None else self.store.closed_records([placement_id])
        except (sqlite3.Error, StoreError) as exc:  # accounting never stops the federator: the cancel's end stays
            log.warning("usage record of %s not read to date its end at %.3f: %s", placement_id, at, exc)
            return
        for rec in found:
            end = max(at, rec.start)
            if rec.end is not None and end < rec.end:
                self._write([UsageRecord(**{**_fields(rec), "end": end})])

    def _write(self, writes: list[UsageRecord]) -> None:
        """Store these records with any the store refused before (a full disk): kept until stored, so a
        placement's end is not lost and its record does not read as still running after a restart."""
        if not writes and not self._unwritten:
            return
        failing = bool(self._unwritten)
        for rec in writes:
            self._unwritten[rec.placement_id] = rec
        try:
            self.store.put(list(self._unwritten.values()))
        except (sqlite3.Error, StoreError) as exc:  # accounting never stops the federator: kept, said once per outage
            if not failing:
                log.warning("usage records not written (%s); kept, and written once the store takes writes: %s",
                            exc, sorted(self._unwritten)[:20])
            return
        except Exception:  # a bug: said in full (once, not every tick), and the records kept all the same
            if not failing:
                log.exception("usage records not written: %s", sorted(self._unwritten)[:20])
            return
        self._unwritten.clear()

    def load(self, jobs: Iterable[Job]) -> None:
        """The jobs a start read: their records carry on (`observe`). A placement the job store has Running whose
        record is closed had its record closed by the meter just before a crash lost the job write that showed
        it ended (the meter writes first; group commit a moment later). Opened anew under its id, the new record
        replaced the closed one (the same key): what it billed was lost and it was billed from the restart. Its
        record is reopened instead, from its own start: its agent's re-sync says how it ended (`ended_at` closes
        it there again) or that it runs on, as for any placement a restart finds running."""
        jobs = list(jobs)
        unopened = [p.placement_id for job in jobs for p in job.placements
                    if p.phase is JobPhase.RUNNING and p.placement_id not in self._open]
        reopened = [UsageRecord(**{**_fields(r), "end": None})
                    for r in (self.store.closed_records(unopened) if unopened else [])]
        now = self.clock()
        for rec in reopened:
            self._track(rec, now)
        if reopened:
            log.info("%d usage records closed just before the restart reopened: the job store has their placements "
                     "running, and their agents' re-syncs say how they ended (%s)", len(reopened),
                     ", ".join(sorted(r.placement_id for r in reopened)[:5]))
        self._write(reopened)
        self._write(self._close_gone(jobs, now))
        for job in jobs:  # running placements this file has no record of: from their start, not from now
            for p in job.placements:
                if p.phase is JobPhase.RUNNING and p.placement_id not in self._open:
                    opened = self._record(job, p, now, start=_started(job, now))
                    if opened is not None:
                        self._write([opened])
        self.observe(jobs)
        self._saw(now)

    def _close_gone(self, jobs: list[Job], now: float) -> list[UsageRecord]:
        """Close every record read back open whose placement no loaded job has Running (Kubernetes mode: this
        replica led, stood by while it ended or its FederatedJob was deleted, and leads again): at the placement's
        `ended_at` if its job still says it, else the job's `finished_at`, else the last moment this file's meter
        counted (`SqliteUsageStore.seen`: the end of its last term; now if it never said). Left open, such a
        record was billed up to every later now, without end (outside QA kubedr K5)."""
        by_id: dict[str, Job] = {job.job_id: job for job in jobs}
        running = {p.placement_id for job in jobs for p in job.placements if p.phase is JobPhase.RUNNING}
        closed: list[UsageRecord] = []
        for pid, rec in sorted(self._open.items()):
            if pid in running:
                continue
            job = by_id.get(rec.job_id)
            ends: dict[str, float] = {p.placement_id: p.ended_at for p in job.placements if p.ended_at} if job else {}
            end = ends.get(pid) or (job.finished_at if job is not None and job.phase.is_terminal else 0.0)
            closed.append(self._close(pid, min(end or self._seen or now, now)))
        if closed:
            log.info("%d usage records whose placements ended or went while this federator did not lead closed at "
                     "their ends (%s)", len(closed), ", ".join(r.placement_id for r in closed[:5]))
        return closed

    def _record(self, job: Job, p: Placement, now: float, *, start: float | None = None) -> UsageRecord | None:
        """A record of `p` opened (from `start`, else now), its usage counted from now on."""
        model, milli = held(job, p)
        if milli <= 0:
            return None
        user, _ = owner_of(job.spec)
        rec = UsageRecord(placement_id=p.placement_id, job_id=job.job_id, queue=job.spec.queue, user=user,
                          namespace=job.spec.namespace, cluster=p.cluster, provider=self.provider_of(p.cluster),
                          model=model, accelerators_milli=milli, start=now if start is None else start,
                          region=p.region,
                          vendor=p.accelerator_vendor or self.vendor_of(p.cluster, model))
        self._track(rec, now)
        return rec

    def _track(self, rec: UsageRecord, since: float) -> None:
        """Hold `rec` open, its usage counted from `since` on: a record opened now, read back at a start, or
        reopened (`load`). `_close` lets go of it."""
        self._open[rec.placement_id] = rec
        self._counted[rec.placement_id] = since
        self._by_job.setdefault(rec.job_id, set()).add(rec.placement_id)

    def _close(self, pid: str, now: float) -> UsageRecord:
        rec = self._open.pop(pid)
        self._count(rec, now)
        self._counted.pop(pid, None)
        pids = self._by_job.get(rec.job_id, set())
        pids.discard(pid)
        if not pids:
            self._by_job.pop(rec.job_id, None)
        return UsageRecord(**{**_fields(rec), "end": max(now, rec.start)})

    def _resized(self, pid: str, now: float) -> UsageRecord:
        """Close the record of a placement whose count changed in place, keeping what it held until now under an
        id of its own (PID#resized-<unix seconds, to the millisecond>: a record's id is its key, and two resizes
        within one second kept only the second's record when it was to the second); the caller opens the next
        one."""
        closed = self._close(pid, now)
        return UsageRecord(**{**_fields(closed), "placement_id": f"{pid}#resized-{now:.3f}"})

    def _count(self, rec: UsageRecord, now: float) -> None:
        """Bring the counter up to `now` for `rec`. A counter never goes back: a record that closes at an end before
        what a tick already counted (its agent was cut off while the federator ran) adds nothing more."""
        since = self._counted.get(rec.placement_id, now)
        if now <= since:
            return
        self._counted[rec.placement_id] = now
        if not (rec.region and rec.vendor):
            rec = known_where([rec], region_of=self.region_of, vendor_of=self.vendor_of)[0]
        # The queue is bounded by the metrics' queue label, shared with every other metric that has one.
        labels = tuple(self.metrics.queue_label(rec.key(d)) if d is Dimension.QUEUE
                       else self._labels.value(d, rec.key(d)) for d in METRIC_DIMENSIONS)
        kept = self._labels.label_set(labels)
        if kept is None:
            self.metrics.label_overflow.labels("accelerator_seconds_series").inc()
            kept = (OTHER,) * len(labels)
        self.metrics.accelerator_seconds.metric.labels(*kept).inc(rec.accelerators_milli / MILLI * (now - since))

    def tick(self) -> None:
        """Bring the counter up to now for every running placement (called every few seconds), unless the federator
        was just paused: then wait `hold_seconds` for the ends the pause hid (module docstring)."""
        now = self.clock()
        last, self._last_tick = self._last_tick, now
        if last is not None and now - last > self.gap_seconds:
            self._held_until = now + self.hold_seconds
            log.info("the federator was paused for %.0fs: the accelerator-seconds counter waits %.0fs for the ends "
                     "of placements that ended meanwhile before it counts the pause for the rest",
                     now - last, self.hold_seconds)
        if now >= self._held_until:
            for rec in list(self._open.values()):
                self._count(rec, now)
        self._write([])  # records a full disk refused, once it has room
        self._saw(now)

    def _saw(self, now: float) -> None:
        """Keep `now` as the last moment this term knew its open records running (`_close_gone` at a later start):
        at its start, at each tick and each change it metered."""
        try:
            self.store.see(now)
        except (sqlite3.Error, StoreError) as exc:  # accounting never stops the federator
            log.debug("usage store did not take the meter's time: %s", exc)


def _started(job: Job, now: float) -> float:
    """When a placement `job` has Running began, as far as its job says: its attempt's first Running report
    (`Job.started_at`, in the FederatedJob's status in Kubernetes mode), never later than now. A new leader bills a
    placement from there, not from its takeover (outside QA kubedr K5); a spread job's later parts from the first's
    start, the job keeping no start per placement."""
    return min(job.started_at, now) if job.started_at > 0 else now


def _fields(rec: UsageRecord) -> dict[str, Any]:
    return {name: getattr(rec, name) for name in rec.__slots__}  # type: ignore[attr-defined]


class MeteredGroupCommit(GroupCommit):
    """The federator's journal (every job write goes through it, in order) showing the meter each change.

    The meter sees a job's state as it is handed to the journal, on the event
    loop, at the federator's clock: before group commit coalesces the writes
    (a placement Running then Succeeded within one batch is still two changes
    to the meter).
    """

    def __init__(self, store: JobStore, meter: UsageMeter) -> None:
        super().__init__(store)
        self.meter = meter

    def handed(self, jobs: list[Job]) -> None:  # commit, write and write_or_owe: an agent's update included
        self.meter.observe(jobs)
        super().handed(jobs)  # the observers: the audit trail (server/audit_trail.py)


def attach(fed: Federator, meter: UsageMeter) -> None:
    """Meter a federator from now on (call it before it serves). Its jobs as loaded are observed first: after a
    restart, records of placements that ended while it was away are closed, and running ones carry on."""
    meter.load(fed.jobs.values())
    observers = fed.journal.observers
    fed.journal = MeteredGroupCommit(fed.store, meter)
    fed.journal.observers = observers
    fed.on_superseded = meter.superseded
    fed.silent_cancels.on_end = meter.shorten


__all__ = ["LABEL_LIMIT", "OTHER", "MeteredGroupCommit", "UsageMeter", "attach", "held"]
