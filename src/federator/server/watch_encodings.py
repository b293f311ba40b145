"""One encoding of a job's state for every Watch stream that sends it, and a bound on snapshots sent at once.

Why: every stream turned every job it sent into a protobuf message itself (`convert.job_to_pb`, Python code, the
stream's main cost) and serialized it once more for its digest of recent sends. Streams that connect together
(a portal's replicas after a restart, a fleet of dashboards) each did the whole backlog's work again, all on the
event loop that serves Submit and the agents: 32 streams, one user's default allowance, cut Submit fourfold with
15,000 jobs, and 100 streams tenfold (outside QA, scale F1). A job's state is now encoded once per change and the
bytes shared: a stream parses them back (protobuf's C code, a fraction of the encoding) to set its own revision.

Which state: a job's encoding is kept under its newest recorded change (`WatchHistory.newest`) and the job object
itself. Every change of a job is recorded (`Federator.notify`) after it is made, so an encoding made before a
recorded change is never sent for it: the change's new revision asks for a new one. An encoding made while a
change was on its way (made, not yet recorded) is a state the job had, and the change's record then sends the
newer one, as a stream read it before. An encoding is also made afresh after `FRESH_SECONDS`, so nothing recorded
late, or not at all, is shown for longer than that.

Bounded: the encodings last used, `size` bytes of them (LRU: about 16,000 small jobs, fewer with pod templates);
streams that read the same jobs at about the same time share them, and a snapshot of a backlog larger than that
reads most of it afresh. `SNAPSHOTS` streams send their snapshot at
once; one more waits for a turn (its stream open, its snapshot then taken as of that moment), so a crowd of new
watchers takes a bounded share of the loop, whatever the per-user limits add up to. A stream whose client stops
reading gives its turn up (`Turn`).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from federator.api import convert
from federator.api.v1 import types_pb2
from federator.model import Job, JobId

ENCODED_BYTES = 16 * 1024 * 1024  # the encodings kept, in all (about 1 KiB a job without a pod template)
FRESH_SECONDS = 5.0  # an encoding older than this is made again, recorded change or not
SNAPSHOTS = 4  # streams sending their snapshot at once; the others wait their turn
STALLED_SECONDS = 2.0  # a stream whose client took no message for this long gives its turn up


@dataclass(frozen=True, slots=True)
class Encoded:
    """A job's state as the wire carries it, and a digest of it (what a stream's `RecentSends` compares)."""

    data: bytes
    digest: bytes

    def message(self) -> types_pb2.Job:
        """A message of its own for one stream, which sets its revision on it."""
        return types_pb2.Job.FromString(self.data)


class Turn:
    """One stream's turn to send its snapshot (`JobEncodings.turn`), given back when the snapshot is sent, or as
    soon as its client has taken no message for STALLED_SECONDS. Why the second: a client that stops reading
    holds its stream's write, and with it the turn, for as long as it stays connected; four such clients stopped
    every other user's snapshot (outside QA re-test of scale F1). A stalled stream costs the loop nothing while
    it waits, so it needs no turn; if it reads again it sends the rest without one."""

    def __init__(self, snapshots: asyncio.Semaphore, stalled_seconds: float) -> None:
        self._snapshots = snapshots
        self._stalled = stalled_seconds
        self._loop = asyncio.get_running_loop()
        self.held = True
        self._last = self._loop.time()
        self._timer = self._loop.call_later(stalled_seconds, self._check)

    def sent(self) -> None:
        """Its client took a message."""
        self._last = self._loop.time()

    def _check(self) -> None:
        idle = self._loop.time() - self._last
        if idle >= self._stalled:
            self.give_back()
        elif self.held:
            self._timer = self._loop.call_later(self._stalled - idle, self._check)

    def give_back(self) -> None:
        if self.held:
            self.held = False
            self._timer.cancel()
            self._snapshots.release()


class JobEncodings:
    """The shared encodings (see the module). `newest` is the history's newest change of a job."""

    def __init__(self, newest: Callable[[JobId], int], *, size: int = ENCODED_BYTES,
                 fresh_seconds: float = FRESH_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.newest = newest
        self.size = size
        self.fresh_seconds = fresh_seconds
        self.clock = clock
        self.made = 0  # encodings made, for tests and a curious operator's debugger
        self.held_bytes = 0
        self._held: OrderedDict[JobId, tuple[int, int, float, Encoded]] = OrderedDict()
        self.snapshots = asyncio.Semaphore(SNAPSHOTS)

    def of(self, job: Job) -> Encoded:
        """`job`'s state as of its newest recorded change (or later), encoded at most once while it is fresh."""
        return self.encoded(job)[0]

    def encoded(self, job: Job) -> tuple[Encoded, types_pb2.Job | None]:
        """`of(job)`, and the message made for it if it was made now: the caller's own (only its bytes are kept),
        so the first stream to send a state does not parse back what it just encoded."""
        token, now = (self.newest(job.job_id), id(job)), self.clock()
        held = self._held.get(job.job_id)
        if held is not None and held[:2] == token and now - held[2] < self.fresh_seconds:
            self._held.move_to_end(job.job_id)
            return held[3], None
        pb = convert.job_to_pb(job)
        data = pb.SerializeToString(deterministic=True)
        encoded = Encoded(data, hashlib.blake2b(data, digest_size=16).digest())
        self.made += 1
        self.forget(job.job_id)
        self._held[job.job_id] = (*token, now, encoded)
        self.held_bytes += len(data)
        while self.held_bytes > self.size and len(self._held) > 1:
            self.held_bytes -= len(self._held.popitem(last=False)[1][3].data)
        return encoded, pb

    async def turn(self) -> Turn:
        """A turn to send a snapshot, once one of SNAPSHOTS is free (see Turn)."""
        await self.snapshots.acquire()
        return Turn(self.snapshots, STALLED_SECONDS)

    def forget(self, job_id: JobId) -> None:
        """A removed job's encoding is of no use any more."""
        held = self._held.pop(job_id, None)
        if held is not None:
            self.held_bytes -= len(held[3].data)


__all__ = ["ENCODED_BYTES", "FRESH_SECONDS", "SNAPSHOTS", "STALLED_SECONDS", "Encoded", "JobEncodings", "Turn"]
