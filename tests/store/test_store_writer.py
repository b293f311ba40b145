"""The store's writer: one long-lived thread per store, stopped at close, and taken over if it ever dies.

It was a thread started per batch, and under load the event loop waited about 1.9 ms for each start
(docs/benchmarks.md). What is checked here is which thread writes, and that a writer thread that dies in the middle
of a batch loses no job and announces none before it is stored; how fast is bench/submit_scale.py's.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import weakref

import pytest
from dict_store import DictStore

from federator.model import Job, JobId
from federator.store import group_commit
from federator.store.group_commit import GroupCommit

from builders import job as spec_of

A_WHILE = 20.0  # a guard against a hang (a writer that died held the store for good): no assertion reads time


class Killed(BaseException):
    """What no `except Exception` catches: stands for a bug that ends the writer thread."""


class ThreadsStore(DictStore):
    """Its `writers` say the thread of each write; the first `kill` writes end their thread (Killed) before storing."""

    def __init__(self, kill: int = 0) -> None:
        super().__init__()
        self.kill = kill

    def before(self, jobs: list[Job]) -> None:
        if self.kill:
            self.kill -= 1
            raise Killed("a bug in the writer")


def _job(name: str) -> Job:
    return Job(JobId(name), spec_of(name), submitted_at=1.0)


def test_one_writer_thread_writes_every_batch_and_close_stops_it() -> None:
    store = ThreadsStore()
    journal = GroupCommit(store)

    async def submits() -> None:
        for i in range(5):  # each waits for its batch: the writer is idle between them
            await journal.commit([_job(f"j{i}")])

    asyncio.run(submits())
    writer = store.writers[0]
    assert writer is not threading.main_thread() and writer.name == "federator-store-writer"
    # before: a thread of its own per batch, which the event loop waited for at each start
    assert all(t is writer for t in store.writers), [t.ident for t in store.writers]
    assert writer.is_alive()  # idle, waiting for the next write
    journal.close()
    assert not writer.is_alive()  # stopped and joined
    asyncio.run(submits())  # a write after close starts a writer again
    assert store.writers[-1] is not writer and len(store.docs) == 5
    journal.close()
    assert not store.writers[-1].is_alive()


def test_a_writer_thread_that_dies_mid_batch_is_taken_over_and_nothing_is_lost_or_announced_early(
        caplog: pytest.LogCaptureFixture) -> None:
    store = ThreadsStore(kill=1)
    journal = GroupCommit(store)
    announced: list[tuple[list[JobId], bool]] = []  # the jobs announced, and whether they were stored by then

    async def scenario() -> None:
        updated = _job("updated")
        journal.write_or_owe([updated], then=lambda jobs: announced.append(
            ([j.job_id for j in jobs], all(j.job_id in store.docs for j in jobs))))
        await asyncio.wait_for(journal.commit([_job("submitted")]), A_WHILE)  # before: never answered
        while not announced:
            await asyncio.sleep(0.01)

    with caplog.at_level(logging.ERROR, logger="federator.store"):
        asyncio.run(scenario())
    assert set(store.docs) == {JobId("updated"), JobId("submitted")}
    assert announced == [([JobId("updated")], True)]  # once, and only once stored
    dead, *after = store.writers
    assert after and all(t is not dead for t in after) and not dead.is_alive()
    assert [r.message for r in caplog.records] == [
        "the store's writer thread failed; a new one takes over, writing its batch again"]
    journal.write([_job("later")])  # the new writer, or this thread, goes on as before
    assert JobId("later") in store.docs
    journal.close()


def test_the_writer_of_a_store_nobody_uses_any_more_ends_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A script's or a test's GroupCommit, never closed: its idle writer must not keep it (and its store's
    connection) alive for good, one idle thread per store ever written."""
    monkeypatch.setattr(group_commit, "IDLE_LOOK_SECONDS", 0.01)
    store = ThreadsStore()
    journal = GroupCommit(store)
    asyncio.run(journal.commit([_job("a")]))
    (writer,) = store.writers
    assert writer.is_alive()
    gone = weakref.ref(journal)
    del journal
    gc.collect()
    assert gone() is None  # the writer holds no reference to it while idle
    writer.join(A_WHILE)
    assert not writer.is_alive()


def test_close_writes_what_is_queued_but_not_the_lazy_reasons_a_restart_recomputes() -> None:
    """After a cycle over a big backlog its pending reasons take seconds to write; a stop that waited for them
    would outlast its grace. The ordinary writes queued before the stop are written."""
    gate = threading.Event()

    class GatedStore(ThreadsStore):
        def before(self, jobs: list[Job]) -> None:
            gate.wait(A_WHILE)
            super().before(jobs)

    store = GatedStore()
    journal = GroupCommit(store)
    journal.enqueue_lazy([_job(f"reason-{i}") for i in range(1_000)])  # the writer holds a first lazy batch
    while journal.lazy == 1_000:
        pass
    submitted = threading.Thread(target=journal.write, args=([_job("submitted")],))
    submitted.start()  # queued behind the held batch
    while journal.queued < 1:
        pass
    closing = threading.Thread(target=journal.close)
    closing.start()
    while journal.lazy:
        pass
    gate.set()
    closing.join(A_WHILE)
    submitted.join(A_WHILE)
    assert not closing.is_alive() and not store.writers[-1].is_alive()
    assert JobId("submitted") in store.docs
    assert len(store.docs) == 1 + group_commit.LAZY_BATCH_JOBS  # the batch being written, not the 800 after it
