"""A job store whose next write the test holds (a disk busy with an fsync) or fails (a full disk).

The off-loop tests of the server's own writes (test_cancel_off_loop.py, test_requeue_off_loop.py) check *order*,
never time: what the federator answers while a write is held, and what no agent hears before it is let go. The
store tests' gated stores are theirs; this one is a MemoryStore, for a real Federator on real gRPC.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable

from server_support import MemoryStore

from federator.model import Job, JobPhase
from federator.store import StoreUnavailable

A_WHILE = 20.0  # a guard against a hang (the old code held the loop until this ran out): no assertion reads time
FULL = "job store: database or disk is full"


class GatedStore(MemoryStore):
    """A store whose next write, once `hold` is set, waits until the test sets `release` (a disk busy with an
    fsync), and whose next write fails StoreUnavailable once `full` is set (a full disk). `events`: what happened,
    in order (the write held, what the test saw meanwhile, the write let go, or "timed out" when nothing let it go in
    A_WHILE: the loop was held, and the test with it); `written`: each write's phase of each job, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = False
        self.holding: Callable[[Job], bool] = lambda job: True  # `hold` and `full`: the next write of such a job
        self.full = False
        self.entered = threading.Event()
        self.release = threading.Event()
        self.events: list[str] = []
        self.written: list[tuple[str, JobPhase]] = []

    def put(self, jobs: Iterable[Job]) -> None:
        jobs = list(jobs)
        if self.full and any(self.holding(j) for j in jobs):
            self.full = False
            raise StoreUnavailable(FULL)
        if self.hold and any(self.holding(j) for j in jobs):
            self.hold = False
            self.events.append("write held")
            self.entered.set()
            self.events.append("write let go" if self.release.wait(A_WHILE) else "write timed out")
        self.written.extend((j.spec.name, j.phase) for j in jobs)
        super().put(jobs)


async def until(check: Callable[[], bool]) -> None:
    """Until `check()` holds: the loop's work a test cannot await (A_WHILE only guards against a hang)."""
    async def wait() -> None:
        while not check():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(wait(), A_WHILE)


__all__ = ["A_WHILE", "FULL", "GatedStore", "until"]
