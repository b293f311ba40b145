"""`GroupCommit.commit_newest`: whether a durable write is still the newest queued of its jobs.

A change decided on a copy and applied to the live job only once stored (a user's Cancel, server/cancelling.py)
must know whether another write of the job was queued behind its copy: that one holds an older state and lands
after it, or in its batch in place of it. Each way a job's write is queued is checked (an ordinary write, an owed
one, a lazy pending reason, a synchronous one), and that another job's write does not count. The store is the
tests' dict store (dict_store.py) with this file's gate; nothing here reads time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest
from dict_store import DictStore

from federator.model import Job, JobId, JobPhase
from federator.store.group_commit import GroupCommit

from builders import job as spec_of

A_WHILE = 60.0  # a guard against a hang only


class GateStore(DictStore):
    """Holds its first write until the test opens `gate`; `entered` is set once that write waits."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()

    def before(self, jobs: list[Job]) -> None:
        self.entered.set()
        self.gate.wait(A_WHILE)


def _job(name: str) -> Job:
    return Job(JobId(name), spec_of(name), submitted_at=1.0)


def _behind(journal: GroupCommit, a: Job, b: Job) -> dict[str, Callable[[], None]]:
    return {
        "nothing": lambda: None,
        "another job's write": lambda: journal.write_or_owe([b]),
        "the job's ordinary write": lambda: journal.write_or_owe([a]),
        "the job's pending reason": lambda: journal.enqueue_lazy([a]),
        "the job's awaited write": lambda: asyncio.get_running_loop().create_task(journal.commit([a])) and None,
    }


@pytest.mark.parametrize(("behind", "newest"), [
    ("nothing", True),
    ("another job's write", True),
    ("the job's ordinary write", False),
    ("the job's pending reason", False),
    ("the job's awaited write", False),
])
def test_commit_newest_says_whether_a_write_of_the_job_was_queued_behind_it(behind: str, newest: bool) -> None:
    async def scenario() -> bool:
        store = GateStore()
        journal = GroupCommit(store)
        a, b = _job("a"), _job("b")
        copy = _job("a")
        copy.phase = JobPhase.CANCELLED
        mine = asyncio.get_running_loop().create_task(journal.commit_newest([copy]))
        assert await asyncio.to_thread(store.entered.wait, A_WHILE)  # its write holds the store
        _behind(journal, a, b)[behind]()
        await asyncio.sleep(0)  # an awaited write queues when its task first runs
        store.gate.set()
        out = await mine
        await asyncio.to_thread(journal.drain)
        return out

    assert asyncio.run(scenario()) is newest


def test_a_synchronous_write_of_the_job_once_the_writer_is_idle_counts_too() -> None:
    """Between the batch's end and the awaiting coroutine's next step, the writer may be idle: a `write` then runs
    inline on the caller's thread, and it must count as queued behind."""
    async def scenario() -> bool:
        store = GateStore()
        store.gate.set()
        journal = GroupCommit(store)
        copy = _job("a")
        copy.phase = JobPhase.CANCELLED
        mine = asyncio.get_running_loop().create_task(journal.commit_newest([copy]))
        await asyncio.sleep(0)  # queued
        journal.drain()  # on the loop's thread: written, and the task cannot resume before this step ends
        journal.write([_job("a")])  # inline: nothing is queued or busy
        return await mine

    assert asyncio.run(scenario()) is False


def test_a_watched_job_is_forgotten_once_its_commit_is_done() -> None:
    async def scenario() -> GroupCommit:
        store = GateStore()
        store.gate.set()
        journal = GroupCommit(store)
        assert await journal.commit_newest([_job("a")]) is True
        assert await journal.commit_newest([]) is True
        return journal

    journal = asyncio.run(scenario())
    assert journal._watched == {}
