"""Group commit: many job writes share one store transaction (one fsync in SQLite).

Why: with `synchronous=FULL` every SQLite commit is an fsync, and the disk, not
Python, then bounds Submit at a few hundred per second. Here writes queue up
while the previous batch is being committed; the next batch takes all of them
in one transaction. Each writer is released only after *its* batch is durable,
so "stored before acknowledged" still holds for every single Submit.

The writer is one long-lived thread per store, started with the first write
and woken (a condition) when writes arrive, so the event loop never waits for
the disk (and a Kubernetes-mode store's HTTP writes leave the loop too). It was
a thread started per batch: under load the loop waited about 1.9 ms for each
start (docs/benchmarks.md, 6 Dec). `close` lets it finish what is queued, stops
and joins it; a write after that starts it again. Should it ever die (a bug:
the store's own errors never end it), a new one takes over and first writes
again the batch the dead one held, whose writers are released only then:
nothing accepted is lost, and none is announced before it is stored. Writes are
applied in the order they were queued; within one batch only the newest state
of each job is written (a job changed twice while the disk was busy is written
once: coalesced per object).

The ways in:

- `await commit(jobs)`: the asyncio path (Submit, the scheduling cycle): the
  caller's coroutine resumes once the batch holding its jobs is committed.
- `write(jobs)`: the synchronous path (scripts, tests, a Cancel's or Scale's
  last round when others keep changing its job): blocks
  until written; with nothing queued it writes on the caller's thread, which
  is what the store did before group commit existed.
- `write_or_owe(jobs, then=...)`: state the federator has already acted on
  (an agent's JobUpdate, a job's message): queued, and the caller goes on at
  once; a write the store refuses is owed (`pay`), and `then` announces the
  jobs on the event loop once they are stored or owed. Before, it was `write`:
  each agent update held the event loop for its fsync (docs/benchmarks.md,
  6 Dec: 2.3 s of 19.5 s with three agents), and every call of every user
  and agent waited with it.
- `await commit_newest(jobs)`: `commit`, and whether its write is still the
  newest queued of each of these jobs once it is durable. A change decided on
  a copy and applied to the live job only once stored (a user's Cancel:
  server/cancelling.py) needs it: a write of the live job queued meanwhile (an
  agent's update, a cycle's, an owed job paid) holds its older state, and lands
  after the copy, or in its batch in place of it.
- `write_then(jobs, then)`: a change the federator has already made to the
  live jobs whose news must wait for the disk (a re-queue's CancelOrders of
  the placements it superseded: server/requeue.py): queued, the caller goes on
  at once, and `then(error)` runs on the event loop once it is settled. It was
  `write`, an fsync on the loop per re-queue: a Lost cluster's hundreds of jobs
  held every stream for hundreds of fsyncs in a row.
- `write_beside(write, settled)`: a small write of another table of the same
  file (store/silent_cancels.py, store/moves.py), in the same queue and order
  as the jobs' and on the same thread, for the same reason: each was an
  SQLite transaction on the event loop (a cancel on a silent member, a
  rebalancer's move). `settled(error)` hears how it went, on that thread.

Jobs are copied when queued (`freeze`, store/frozen.py), so the writer thread
never reads a `Job` the event loop is changing.

Here are the ways in and the writer thread; the rest is in modules by role:
which queued writes share a batch, and how each writer hears of its own
(store/write_batches.py: a phase change starts a new batch), the lazy lane of
pending reasons (store/lazy_lane.py: `enqueue_lazy`), and the jobs the store
refused to `write_or_owe` (store/owed_jobs.py: `pay`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable

from federator.model import Job, JobId
from federator.store.errors import StoreError, StoreRefused, StoreUnavailable
from federator.store.frozen import freeze
from federator.store.lazy_lane import LAZY_BATCH_JOBS, LazyLane
from federator.store.owed_jobs import OwedJobs
from federator.store.sqlite import JobStore, PrunedStore
from federator.store.write_batches import QueuedWrite, newest, take_batch

log = logging.getLogger("federator.store")
MAX_BATCH_JOBS = 2_000  # one transaction's size: bounds the time one batch holds the writer
IDLE_LOOK_SECONDS = 5.0  # an idle writer looks this often whether its GroupCommit is still used (`_serve`)


class GroupCommit:
    """Batches job writes to a `JobStore`; see the module docstring."""

    def __init__(self, store: JobStore, *, max_batch: int = MAX_BATCH_JOBS) -> None:
        self.store = store
        self.max_batch = max_batch
        self._log_failed = _FailureLog()  # one line per 10 s while the store refuses writes
        self._cv = threading.Condition()
        self._queue: deque[QueuedWrite] = deque()
        # see enqueue_lazy (store/lazy_lane.py); a store of slow writes sizes its batches (`lazy_batch_jobs`)
        self._lazy = LazyLane(getattr(store, "lazy_batch_jobs", LAZY_BATCH_JOBS))
        self._busy = False  # a thread (the writer, or a synchronous caller) is inside store.put
        self._handed = False  # the writer thread is to write what is queued (it holds `_busy` for that)
        self._writer: threading.Thread | None = None  # the one writer thread (module docstring)
        self._stopping = False  # close: the writer ends once nothing is handed to it
        self._batch: list[QueuedWrite] = []  # the batch being written: a writer thread taking over writes it again
        self._crashes = 0  # writer threads that died in a row: the next one waits a little longer
        self._owed = OwedJobs(self._cv)  # see write_or_owe (store/owed_jobs.py)
        self._writes = 0  # writes queued so far, numbered (`commit_newest`)
        self._watched: dict[JobId, list[int]] = {}  # commit_newest's jobs: [watchers, their newest write's number]
        self.batches = 0  # transactions committed: the number of fsyncs, for benchmarks and tests
        self.jobs_written = 0
        # Told of every write the store refused (a full disk), on the writing thread: the metric of them.
        self.on_error: Callable[[BaseException], None] | None = None
        # Shown every job state handed, after the meter (`handed`): the audit trail (server/audit_trail.py).
        self.observers: list[Callable[[list[Job]], None]] = []

    @property
    def queued(self) -> int:
        """Jobs waiting for the writer (back-pressure reads this)."""
        with self._cv:
            return sum(len(w.jobs) for w in self._queue)

    @property
    def lazy(self) -> int:
        """Pending-reason writes not yet on disk (after a cycle over a big backlog, until the writer drains them)."""
        with self._cv:
            return len(self._lazy)

    def handed(self, jobs: list[Job]) -> None:
        """Every job state handed to `commit`, `write` and `write_or_owe`, on the caller's thread, in the order
        handed, before any batch coalesces it: shown to `observers`; the usage meter's hook (accounting/meter.py)."""
        for observe in self.observers:
            observe(jobs)

    async def commit(self, jobs: Iterable[Job]) -> None:
        """Queue these jobs' current state; return once the batch holding them is durable."""
        w = self._queued(jobs)
        if w is not None:
            assert w.future is not None
            await w.future

    def _queued(self, jobs: Iterable[Job]) -> QueuedWrite | None:
        jobs = list(jobs)
        self.handed(jobs)
        frozen = [freeze(j) for j in jobs]
        if not frozen:
            return None
        loop = asyncio.get_running_loop()
        w = QueuedWrite(frozen, future=loop.create_future(), loop=loop)
        self._enqueue(w)
        return w

    async def commit_newest(self, jobs: Iterable[Job]) -> bool:
        """`commit`; then True if no other write of these jobs was queued after this one, False if one was (coalesced
        into its batch or written after it, its state, not this one's, may be what the store holds: the caller
        decides again from the live job and writes that). Errors as `commit`."""
        jobs = list(jobs)
        ids = {j.job_id for j in jobs}
        with self._cv:
            for job_id in ids:
                self._watched.setdefault(job_id, [0, 0])[0] += 1
        try:
            w = self._queued(jobs)
            if w is None:
                return True
            assert w.future is not None
            await w.future
            with self._cv:
                return all(self._watched[job_id][1] == w.number for job_id in ids)
        finally:
            with self._cv:
                for job_id in ids:
                    seen = self._watched[job_id]
                    seen[0] -= 1
                    if not seen[0]:
                        del self._watched[job_id]

    def write_then(self, jobs: Iterable[Job], then: Callable[[BaseException | None], None]) -> None:
        """Queue these jobs' current state behind every write before it and return at once; `then(error)` runs on the
        event loop once the batch holding them is settled (None: durable). Called with no event loop running (a
        script, a test of the Federator alone), it writes on the caller's thread and calls `then` before it returns
        (StoreUnavailable is `then`'s; any other error is raised, as `write` raises it)."""
        jobs = list(jobs)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            try:
                self.write(jobs)
            except StoreUnavailable as exc:
                then(exc)
                return
            then(None)
            return
        w = self._queued(jobs)
        if w is None:
            then(None)
            return
        assert w.future is not None
        w.future.add_done_callback(lambda f: then(asyncio.CancelledError() if f.cancelled() else f.exception()))

    def _number(self, jobs: Iterable[Job]) -> None:
        """A write of `jobs` is queued: its number, the newest of each watched one (under `_cv`)."""
        self._writes += 1
        if self._watched:
            for job in jobs:
                seen = self._watched.get(job.job_id)
                if seen is not None:
                    seen[1] = self._writes

    def enqueue_lazy(self, jobs: Iterable[Job]) -> None:
        """Queue state a crash may lose (pending reasons) and return at once: written when no other write waits.

        After a cycle over 100,000 jobs that is 100,000 writes; in the ordinary queue every Submit
        would wait behind them. A lazy entry is kept per job (newest wins) and dropped when an
        ordinary write of the same job is queued after it, so it never overwrites newer state."""
        jobs = list(jobs)
        with self._cv:
            self._lazy.put(jobs)
            self._number(jobs)
            if self._busy or not self._lazy:
                return
            self._busy = True
            self._hand()

    def write(self, jobs: Iterable[Job]) -> None:
        """Write these jobs now, after everything already queued; blocks until durable."""
        jobs = list(jobs)
        self.handed(jobs)
        frozen = [freeze(j) for j in jobs]
        if not frozen:
            return
        with self._cv:
            inline = not self._busy and not self._queue
            if inline:
                self._busy = True
                self._number(frozen)
        if inline:
            try:
                self._put(frozen)
            finally:
                self._release()
            return
        w = QueuedWrite(frozen, done=threading.Event())
        self._enqueue(w)
        assert w.done is not None
        w.done.wait()
        if w.error is not None:
            raise w.error

    @property
    def owed(self) -> int:
        """Jobs whose state the store refused (write_or_owe) and that no write has stored since."""
        return len(self._owed)

    def write_or_owe(self, jobs: Iterable[Job], then: Callable[[list[Job]], None] | None = None) -> None:
        """For state the federator has already acted on (an agent's word that a placement ran or ended, a job's
        message): queued behind every write before it, and the caller goes on at once, never waiting for the disk;
        `then(jobs)` (the announcement to Watch streams) runs on the event loop once they are stored, or owed. If
        the store refuses them (a full disk), the jobs are owed instead of an error raised, and `pay` writes them as
        they stand once the store takes writes again. Raising ended the agent's stream, and its re-sync repeated a
        change memory already held, so it was never stored: a restart then found a finished job still running and
        placed it again. Called with no event loop running (a script, a test of the Federator alone), it writes on
        the caller's thread and calls `then` before it returns, as it did before it was queued."""
        live = list(jobs)
        if not live:
            return
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            self.handed(live)
            self._enqueue(QueuedWrite([freeze(j) for j in live], loop=loop, live=live, then=then))
            return
        try:
            self.write(live)  # handed to the meter there
        except StoreError as exc:
            self._owed.owe_after(live, exc)
        if then is not None:
            then(live)

    def write_beside(self, write: Callable[[], None], settled: Callable[[BaseException | None], None]) -> None:
        """Run `write` (a transaction of another table of the store's file) on the writer thread, after every write
        queued before it and before every one queued after, and return at once; `settled` is told its error (None:
        written) on that thread. A crash before it ran loses it, as it lost a write not yet begun on the loop: the
        callers keep what a restart may forget (a quiet time, a usage end dated at the cancel), never a job. Called
        with no event loop running (a script, a test of the Federator alone), it is written on the caller's thread
        (after what is queued) and `settled` is told before it returns, as before."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            self._enqueue(QueuedWrite([], beside=write, settled=settled))
            return
        done = threading.Event()
        w = QueuedWrite([], done=done, beside=write, settled=settled)
        with self._cv:
            inline = not self._busy and not self._queue
            if inline:
                self._busy = True
        if not inline:
            self._enqueue(w)
            done.wait()
            return
        try:
            self._write_beside(w)
        finally:
            self._release()

    def _write_beside(self, w: QueuedWrite) -> None:
        assert w.beside is not None
        try:
            w.beside()
        except Exception as exc:  # the caller's `settled` says it
            w.error = exc
        w.finish()

    def pay(self) -> None:
        """Queue the owed jobs' current state (each turn of the federator's loop); returns at once. A write that
        fails leaves them owed, said once per outage (store/owed_jobs.py)."""
        live = self._owed.to_pay()
        if live:
            self._enqueue(QueuedWrite([freeze(j) for j in live], owed=live))

    def drain(self) -> None:
        """Block until every write queued so far is committed, the lazy pending reasons too (a script's or a test's
        end: what it reads back from the store is then all there); the owed are tried once more. The writer takes
        the lazy only when nothing else waits, so the mark `_wait_queued` queues was written before them whenever it
        arrived before the writer took them: drain returned with them still on their way (a CI run of the compiled
        pass read a job's old reason back). `close` (the server's stop) leaves them, for a reason it says."""
        self.pay()
        self._wait_queued()
        with self._cv:
            while self._lazy or self._busy:
                self._cv.wait(0.05)

    def _wait_queued(self) -> None:
        w = QueuedWrite([], done=threading.Event())
        with self._cv:
            if not self._busy and not self._queue:
                return
        self._enqueue(w)
        assert w.done is not None
        w.done.wait()

    def remove(self, job_ids: list[JobId]) -> None:
        """Delete these (finished) jobs from the store, after every write queued so far, so that no state of
        theirs still on its way lands after the delete and brings them back at the next start. Blocks until
        done; StoreUnavailable leaves them stored. The caller writes them no more. May run on a worker thread
        (server/retention.py): it reads no live job (the owed are paid by the loop, not here)."""
        if not isinstance(self.store, PrunedStore):
            raise StoreRefused(f"{type(self.store).__name__} does not remove jobs", frozenset(job_ids))
        with self._cv:
            self._lazy.drop(job_ids)
        self._owed.forget(job_ids)
        self._wait_queued()
        with self._cv:  # once the writer is idle, hold it while deleting: no write of anyone's lands meanwhile
            while self._busy:
                self._cv.wait(0.01)
            self._busy = True
        try:
            self.store.delete(job_ids)
        finally:
            self._release()

    # -- the writer thread -----------------------------------------------------------

    def _enqueue(self, w: QueuedWrite) -> None:
        with self._cv:
            self._number(w.jobs)
            w.number = self._writes
            self._queue.append(w)
            self._lazy.drop(j.job_id for j in w.jobs)  # this newer state is written first
            if self._busy:
                return
            self._busy = True
            self._hand()

    def _release(self) -> None:
        """A synchronous inline write (or `remove`) is done: hand over to the writer if writes queued meanwhile."""
        with self._cv:
            if not self._queue and not self._lazy:
                self._busy = False
                self._cv.notify_all()  # `remove` may be waiting for the store
                return
            self._hand()

    def close(self) -> None:
        """Write everything queued, then stop the writer thread and join it (before the store is closed). Not the
        lazy pending reasons (after a cycle over a big backlog, seconds of writes that the next start's first cycle
        recomputes anyway), nor the owed once more (`drain` does: in Kubernetes mode this replica no longer leads by
        now). A write after this starts a writer again."""
        with self._cv:
            self._lazy.clear()
        self._wait_queued()
        with self._cv:
            writer, self._stopping = self._writer, True
            self._cv.notify_all()
        if writer is not None and writer is not threading.current_thread():
            writer.join()
        with self._cv:
            self._stopping = False

    def _hand(self) -> None:
        """Give the writer thread what is queued; the caller took `_busy` for it. Under `_cv`."""
        self._handed = True
        self._cv.notify_all()
        if self._writer is None or not self._writer.is_alive():
            self._start_writer()

    def _start_writer(self) -> None:
        self._writer = threading.Thread(target=_serve, args=(weakref.ref(self), self._cv),
                                        name="federator-store-writer", daemon=True)
        self._writer.start()

    def _turn(self, me: threading.Thread) -> bool:
        """The writer's turn at what it was handed (`_run`); False if it died, a new one taking over (a bug: it says
        so; the new one writes the batch it held first, module docstring)."""
        try:
            self._run()
        except BaseException:
            log.exception("the store's writer thread failed; a new one takes over, writing its batch again")
            with self._cv:
                self._crashes += 1
                if self._writer is me:
                    self._start_writer()  # `_busy` and the batch are still held: the new one goes on with both
            return False
        return True

    def _run(self) -> None:
        """Write what is queued, batch after batch (store/write_batches.py), then give `_busy` back. On the writer
        thread only."""
        while True:
            with self._cv:
                lazy = self._lazy.take() if not self._batch and not self._queue else []
                if not self._batch and not self._queue and not lazy:
                    self._busy = self._handed = False
                    self._cv.notify_all()  # `remove` may be waiting for the store
                    return
            if lazy:
                self._lazy.write(lazy, self._put, self._log_failed)
                continue
            with self._cv:
                batch = self._batch = take_batch(self._batch, self._queue, self.max_batch)  # a dead writer's first
            if batch[0].beside is not None:
                self._write_beside(batch[0])
                with self._cv:
                    self._batch = []
                continue
            jobs = newest(batch)
            error: BaseException | None = None
            try:
                self._put(jobs)
            except Exception as exc:  # the writers hear of it; the thread goes on with the next batch
                said = isinstance(exc, StoreError)  # write_or_owe's jobs: owe_after says it (a bug: a traceback)
                if not all(not w.jobs or (w.live and said) or (w.owed and self._owed.failing) for w in batch):
                    self._log_failed(f"writing {len(jobs)} jobs to the store failed", exc)
                error = exc
            for w in batch:  # the failed write_or_owe jobs are owed before anyone hears the batch is done (drain)
                w.settle(error)
                if w.live and w.error is not None:
                    self._owed.owe_after(w.live, w.error)
            for w in batch:
                w.finish()
            if any(w.owed for w in batch):  # a refused job is not owed: writing it again cannot help
                self._owed.paid([j for w in batch for j in w.owed],
                                None if isinstance(error, StoreRefused) else error)
            with self._cv:
                self._batch = []
                self._crashes = 0

    def _put(self, jobs: list[Job]) -> None:
        if not jobs:
            return
        try:
            self.store.put(jobs)
        except Exception as exc:
            if self.on_error is not None:
                self.on_error(exc)
            raise
        self._owed.failing = False  # the store takes writes: the next outage is said again
        self.batches += 1
        self.jobs_written += len(jobs)


def _serve(ref: weakref.ref[GroupCommit], cv: threading.Condition) -> None:
    """The writer thread: waits to be handed work, writes until nothing waits, and waits again; ends at `close`. It
    holds its GroupCommit only while writing, so one nobody uses any more (a script's, a test's, never closed) is
    collected with its store, and its writer ends within IDLE_LOOK_SECONDS rather than idling for good."""
    me = threading.current_thread()
    journal = ref()
    crashes = journal._crashes if journal is not None else 0
    journal = None
    if crashes:  # a bug that kills every writer must not spin: 0.1 s, doubling, at most 5 s
        time.sleep(min(5.0, 0.05 * 2 ** crashes))
    while True:
        with cv:
            while True:
                journal = ref()
                if journal is None or journal._writer is not me:
                    return
                if journal._handed:
                    break
                if journal._stopping:
                    journal._writer = None
                    return
                journal = None
                cv.wait(IDLE_LOOK_SECONDS)
        if not journal._turn(me):
            return
        journal = None


_QUIET_SECONDS = 10.0  # a store refusing writes is logged at most this often, with how many were refused since


class _FailureLog:
    """A store that refuses a write (a full disk): a line at most every 10 s saying how many failed since (every
    client retry is a failed batch: 1,000 lines a minute buried the cause, outside SRE QA; each one is counted in
    federator_store_write_errors_total); anything else is a bug: a traceback."""

    def __init__(self) -> None:
        self.since = 0
        self.last = -_QUIET_SECONDS

    def __call__(self, what: str, exc: Exception) -> None:
        if not isinstance(exc, StoreError):
            log.error("%s", what, exc_info=exc)
            return
        now = time.monotonic()
        self.since += 1
        if now - self.last >= _QUIET_SECONDS:
            more = self.since - 1
            tail = f" (and {more} more refused writes in the last {now - self.last:.0f}s)" if more else ""
            log.warning("%s: %s%s", what, exc, tail)
            self.since, self.last = 0, now


__all__ = ["LAZY_BATCH_JOBS", "MAX_BATCH_JOBS", "GroupCommit", "freeze"]
