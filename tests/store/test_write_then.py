"""`GroupCommit.write_then`: a change already made to the live jobs, queued, its news (`then`) told on the event loop
once the write is settled: after it is durable, or with the store's error. Without a loop it writes inline. The
store is the tests' dict store (dict_store.py) with this file's gate; nothing reads time."""

from __future__ import annotations

import asyncio
import threading

from dict_store import DictStore

from federator.model import Job, JobId
from federator.store import StoreUnavailable
from federator.store.group_commit import GroupCommit

from builders import job as spec_of

A_WHILE = 60.0  # a guard against a hang only


class Store(DictStore):
    """Holds its writes until `gate` is set; fails them with StoreUnavailable while `full`."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.full = False

    def before(self, jobs: list[Job]) -> None:
        self.entered.set()
        self.gate.wait(A_WHILE)
        if self.full:
            raise StoreUnavailable("job store: database or disk is full")


def _job(name: str) -> Job:
    return Job(JobId(name), spec_of(name), submitted_at=1.0)


def test_then_is_told_on_the_loop_once_the_write_is_durable_and_the_caller_goes_on_at_once() -> None:
    async def scenario() -> None:
        store = Store()
        journal = GroupCommit(store)
        told: list[tuple[BaseException | None, bool, bool]] = []
        loop_thread = threading.current_thread()
        journal.write_then([_job("a")], lambda e: told.append((e, "a" in store.docs,
                                                               threading.current_thread() is loop_thread)))
        assert await asyncio.to_thread(store.entered.wait, A_WHILE)  # the write holds the store; we went on
        assert told == []
        store.gate.set()
        await asyncio.to_thread(journal.drain)
        await asyncio.sleep(0)  # the loop runs `then`
        assert told == [(None, True, True)]

    asyncio.run(scenario())


def test_then_hears_the_stores_error() -> None:
    async def scenario() -> list[BaseException | None]:
        store = Store()
        store.full = True
        store.gate.set()
        journal = GroupCommit(store)
        told: list[BaseException | None] = []
        journal.write_then([_job("a")], told.append)
        await asyncio.to_thread(journal.drain)
        await asyncio.sleep(0)
        return told

    told = asyncio.run(scenario())
    assert len(told) == 1 and isinstance(told[0], StoreUnavailable)


def test_without_a_loop_it_writes_inline_and_tells_then_before_it_returns() -> None:
    store = Store()
    store.gate.set()
    journal = GroupCommit(store)
    told: list[BaseException | None] = []
    journal.write_then([_job("a")], told.append)
    assert told == [None] and "a" in store.docs
    store.full = True
    journal.write_then([_job("b")], told.append)
    assert isinstance(told[1], StoreUnavailable) and "b" not in store.docs
