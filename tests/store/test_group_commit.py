"""Group commit: batches, order, and lazy writes that never overwrite newer state."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import replace

from dict_store import DictStore

from federator.model import Job, JobId, JobPhase, Reason, ReasonCode
from federator.store.errors import NameTaken, StoreRefused
from federator.store.group_commit import GroupCommit

from builders import job as spec_of

A_WHILE = 60.0
A_DISK_WRITE = 0.05  # DiskPacedStore's write: no assertion reads time


class GatedStore(DictStore):
    """Holds every write until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def before(self, jobs: list[Job]) -> None:
        self.gate.wait(A_WHILE)


def _job(name: str) -> Job:
    return Job(JobId(name), spec_of(name), submitted_at=1.0)


def test_a_lazy_reason_waits_behind_ordinary_writes_and_never_overwrites_a_newer_state() -> None:
    store = GatedStore()
    journal = GroupCommit(store)
    a, b = _job("a"), _job("b")
    first = threading.Thread(target=journal.write, args=([a],))
    first.start()  # holds the store (gate closed)
    while not journal._busy:  # noqa: SLF001 - waiting for the writer to be inside store.put
        pass
    b.pending_reason = Reason(ReasonCode.INSUFFICIENT_ACCELERATORS, "no room")
    journal.enqueue_lazy([a, b])  # a's and b's reasons, lazily
    placed = replace(a, phase=JobPhase.PLACED, pending_reason=None)
    later = threading.Thread(target=journal.write, args=([placed],))  # a newer state of a, queued after
    later.start()
    while journal.queued < 1:
        pass
    store.gate.set()
    first.join(A_WHILE)
    later.join(A_WHILE)
    journal.drain()  # returns once b's lazy reason is written too: the asserts below read the store at once
    assert store.batches[0] == [("a", "Pending", "")]
    assert store.batches[1] == [("a", "Placed", "")]  # the ordinary write first, though queued last
    assert store.batches[2:] == [[("b", "Pending", "InsufficientAccelerators")]]  # a's stale lazy entry was dropped
    assert store.docs[JobId("a")].phase is JobPhase.PLACED


def test_each_phase_a_job_passes_through_while_the_writer_is_busy_is_stored_not_only_the_newest() -> None:
    """A re-queue's Pending (written off the loop) and the placement the next cycle gives the job, queued while the
    writer is busy, land in two batches: coalesced, the store never held Pending, and the Kubernetes store never said
    the Requeued Event (its reason: why the job moved). Two states of one phase still coalesce, newest only."""
    store = GatedStore()
    journal = GroupCommit(store)
    a, b = _job("a"), _job("b")
    first = threading.Thread(target=journal.write, args=([b],))
    first.start()  # holds the store (gate closed)
    while not journal._busy:  # noqa: SLF001 - waiting for the writer to be inside store.put
        pass
    running = replace(a, phase=JobPhase.RUNNING)
    requeued = replace(a, phase=JobPhase.PENDING, pending_reason=Reason(ReasonCode.REFUSED_BY_CLUSTER, "refused"))
    told = replace(requeued, pending_reason=Reason(ReasonCode.INSUFFICIENT_ACCELERATORS, "no room"))
    placed = replace(a, phase=JobPhase.PLACED)
    writers = [threading.Thread(target=journal.write, args=([j],)) for j in (running, requeued, told, placed)]
    for i, w in enumerate(writers, 1):
        w.start()
        while journal.queued < i:
            pass
    store.gate.set()
    for w in (first, *writers):
        w.join(A_WHILE)
    journal.drain()
    assert store.batches == [[("b", "Pending", "")], [("a", "Running", "")],
                             [("a", "Pending", "InsufficientAccelerators")], [("a", "Placed", "")]]
    assert store.docs[JobId("a")].phase is JobPhase.PLACED


class DiskPacedStore(GatedStore):
    """A GatedStore whose writes, once past the gate, take a while (`A_DISK_WRITE`) and let other threads run
    meanwhile, as a real store's fsync does. Its writes were quick and held the interpreter: a drain that returned
    with lazy reasons still queued was not seen, the writer wrote them all before the test's thread ran again."""

    def before(self, jobs: list[Job]) -> None:
        super().before(jobs)
        time.sleep(A_DISK_WRITE)


def test_the_store_queue_is_shown_on_metrics_until_the_writer_drains_it() -> None:
    from prometheus_client import generate_latest

    from federator.metrics import Metrics

    store = DiskPacedStore()
    journal = GroupCommit(store)
    metrics = Metrics()
    metrics.watch_store(lambda: journal.queued, lambda: journal.lazy)
    waiting = [_job(f"j{i}") for i in range(300)]
    for j in waiting:
        j.pending_reason = Reason(ReasonCode.INSUFFICIENT_ACCELERATORS, "no room")
    journal.enqueue_lazy(waiting)  # the writer takes a first lazy batch and blocks in the gated store
    while journal.lazy == 300:
        pass
    text = generate_latest(metrics.registry).decode()
    assert f'federator_store_queued_jobs{{kind="lazy"}} {float(journal.lazy)}' in text
    assert 0 < journal.lazy < 300
    store.gate.set()
    journal.drain()  # its mark is queued while the writer holds the first lazy batch, 100 reasons after that
    assert sum(len(b) for b in store.batches) == 300  # drain waited for the lazy batch after its mark too
    assert journal.lazy == 0
    assert 'federator_store_queued_jobs{kind="lazy"} 0.0' in generate_latest(metrics.registry).decode()


class RefusingStore(GatedStore):
    """Refuses the jobs named in `refuse` for what they are; stores the rest of the batch."""

    def __init__(self, refuse: set[str]) -> None:
        super().__init__()
        self.refuse = refuse

    def put(self, jobs: Iterable[Job]) -> None:
        jobs = list(jobs)
        super().put([j for j in jobs if j.job_id not in self.refuse])
        refused = frozenset(j.job_id for j in jobs if j.job_id in self.refuse)
        if refused:
            raise StoreRefused(f"refused {sorted(refused)}", refused)


def _one_batch(store: RefusingStore, names: tuple[str, ...]) -> dict[str, BaseException | None]:
    """Each of `names` written by a writer of its own, all in one batch (a first write holds the store, its gate
    closed, while they queue): what each writer was told (None: stored)."""
    journal = GroupCommit(store)
    first = threading.Thread(target=journal.write, args=([_job("first")],))
    first.start()
    while not journal._busy:  # noqa: SLF001 - waiting for the writer to be inside store.put
        pass
    said: dict[str, BaseException | None] = {}

    def write(name: str) -> None:
        try:
            journal.write([_job(name)])
            said[name] = None
        except StoreRefused as exc:
            said[name] = exc

    writers = [threading.Thread(target=write, args=(name,)) for name in names]
    for w in writers:
        w.start()
    while journal.queued < len(names):
        pass
    store.gate.set()
    for t in (first, *writers):
        t.join(A_WHILE)
    return said


def test_a_job_the_store_refuses_fails_its_own_writer_only() -> None:
    """Writers share a batch: one whose job the store refused for what it is hears so; the others' jobs were
    stored, and they must not be told otherwise (a Submit told it failed would be forgotten while stored)."""
    store = RefusingStore({"bad"})
    said = _one_batch(store, ("bad", "good"))
    assert store.batches[1] == [("good", "Pending", "")]  # one batch for both, the refused one left out
    assert said["good"] is None
    assert isinstance(said["bad"], StoreRefused)


class TellingStore(RefusingStore):
    """Refuses each job of `refuse` for a reason of its own (a missing namespace, a name another object holds)."""

    def put(self, jobs: Iterable[Job]) -> None:
        jobs = list(jobs)
        DictStore.put(self, [j for j in jobs if j.job_id not in self.refuse])
        refusals: list[StoreRefused] = [
            NameTaken(f"metadata.name: {j.job_id} is taken", frozenset({j.job_id})) if j.job_id.startswith("taken")
            else StoreRefused(f"namespace of {j.job_id} not found", frozenset({j.job_id}))
            for j in jobs if j.job_id in self.refuse]
        if refusals:
            raise StoreRefused.of(refusals)


def test_each_refused_writer_of_a_batch_hears_of_its_own_job() -> None:
    """One batch refused two Submits for two reasons: each was told the first one's (another job's name, the
    wrong status code at the gRPC edge)."""
    store = TellingStore({"taken-1", "lost-ns"})
    said = _one_batch(store, ("taken-1", "lost-ns", "good"))
    assert len(store.batches) == 2  # the three shared one batch
    assert said["good"] is None
    assert isinstance(said["taken-1"], NameTaken) and str(said["taken-1"]) == "metadata.name: taken-1 is taken"
    assert type(said["lost-ns"]) is StoreRefused and str(said["lost-ns"]) == "namespace of lost-ns not found"


class TwoGateStore(DictStore):
    """Holds the write of job "a" until `a_gate` opens, and of job "b" until `b_gate` does; says when b's began."""

    def __init__(self) -> None:
        super().__init__()
        self.a_gate, self.b_gate, self.b_begun = threading.Event(), threading.Event(), threading.Event()

    def before(self, jobs: list[Job]) -> None:
        if any(j.job_id == "a" for j in jobs):
            self.a_gate.wait(A_WHILE)
        if any(j.job_id == "b" for j in jobs):
            self.b_begun.set()
            self.b_gate.wait(A_WHILE)


def test_drain_returns_only_once_the_lazy_reasons_queued_before_it_are_written() -> None:
    """drain() ends a script or a test, which then reads the store back. The writer takes the lazy reasons only
    when nothing else waits, so drain's own mark, queued while the writer was busy, was written before them and
    drain returned with them on their way: a CI run of the compiled pass read a job's old reason back."""
    store = TwoGateStore()
    journal = GroupCommit(store)
    a, b = _job("a"), _job("b")
    first = threading.Thread(target=journal.write, args=([a],))
    first.start()  # the writer is held inside a's write
    while not journal._busy:  # noqa: SLF001 - waiting for the writer to be inside store.put
        pass
    b.pending_reason = Reason(ReasonCode.INSUFFICIENT_ACCELERATORS, "no room")
    journal.enqueue_lazy([b])
    drained = threading.Thread(target=journal.drain)
    drained.start()
    while not journal._queue:  # noqa: SLF001 - drain's mark is queued behind a
        pass
    store.a_gate.set()
    assert store.b_begun.wait(A_WHILE)  # the lazy reason is being written...
    drained.join(1.0)
    assert drained.is_alive()  # ...and drain waits for it
    store.b_gate.set()
    drained.join(A_WHILE)
    first.join(A_WHILE)
    assert not drained.is_alive()
    assert store.docs["b"].pending_reason is not None


class SlowWritesStore(GatedStore):
    """A store whose writes are slow (the Kubernetes store's PATCHes): it says how many make a lazy batch."""

    lazy_batch_jobs = 8


def test_a_store_of_slow_writes_sizes_the_lazy_batches_a_submit_waits_behind() -> None:
    """QA kubescaleqa62 H1: the Kubernetes store took 200 pending reasons a batch, ~7 s of PATCHes, and each Submit
    waited for one (new FederatedJobs admitted 16 every ~8 s after a restart). A store's `lazy_batch_jobs` sizes
    them."""
    store = SlowWritesStore()
    journal = GroupCommit(store)
    waiting = [_job(f"j{i}") for i in range(40)]
    for j in waiting:
        j.pending_reason = Reason(ReasonCode.INSUFFICIENT_ACCELERATORS, "no room")
    journal.enqueue_lazy(waiting)
    store.gate.set()
    journal.drain()
    assert [len(b) for b in store.batches] == [8] * 5
