"""The reads behind `federator logs --follow`: one poll a beat per followed output, and a budget per cluster.

Why a module of its own: each follow used to poll on its own (server/log_follow.py), so a class of students
following their jobs, or a dashboard tailing every replica, had the agent of their one cluster asked a LogsRequest
per follow every beat, and its member's API server a log read each; past the agent's own bound (agent/logs.py:
64 waiting) they were answered "busy" and the follows told so. Two things hold that here:

* Followers of the same output (job, replica, container) share one poll (`SharedPoll`): a beat serves every
  follower waiting at its start with one read of each placement, asked from the oldest cursor among them (the
  longest tail, the earliest since_time), and each follower cuts that read at its own cursors (log_follow.Follow),
  so each still gets every line once, from where it started. A follow's first read (its own tail) is its own.
* A cluster's follow reads are paced by a budget (`ClusterBudget`): at most FOLLOW_READS_PER_CLUSTER LogsRequests
  of follows in flight to one cluster at once; a read waits for room, so beats stretch when a member's API is
  slow, and its agent's "busy" is not the throttle. A job with more placements on one cluster is read in turns;
  its clusters side by side, each under its own budget, first come first served.

A "busy" answer that still comes (another federator's, unary Logs filling the agent) skips a beat for that
placement: its cursor stays, so the next beat asks from the last line seen (log_follow.Follow.message).
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from federator.model import Job, JobId, Placement
from federator.server import logs

if TYPE_CHECKING:
    from federator.server.federator import Federator

FOLLOW_READS_PER_CLUSTER = 8
"""Follow LogsRequests in flight to one cluster at once: twice the reference agent's READS_AT_ONCE (4), so its
readers never idle for want of a request, and an eighth of its WAITING_AT_MOST (64), so follows alone never make
it answer "busy" and the rest is left for the unary Logs."""

Ask = Callable[[Placement], tuple[int, str]]


class ClusterBudget:
    """The follow reads in flight per cluster, at most `per_cluster` each. `take` waits for room in that cluster
    alone (a slow member never holds another's reads back), first come first served (a read of many placements is
    not starved by a stream of small ones); `give` frees it and lets the next in."""

    def __init__(self, per_cluster: int) -> None:
        self.per_cluster = per_cluster
        self.held: Counter[str] = Counter()
        self._queued: dict[str, deque[tuple[int, asyncio.Future[None]]]] = {}

    async def take(self, cluster: str, n: int) -> None:
        n = min(n, self.per_cluster)
        queue = self._queued.setdefault(cluster, deque())
        if not queue and self.held[cluster] + n <= self.per_cluster:
            self.held[cluster] += n
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append((n, granted))
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.give(cluster, n)  # let in just as it was cancelled: passed on
            elif (n, granted) in queue:
                queue.remove((n, granted))
                self._admit(cluster)
            raise

    def give(self, cluster: str, n: int) -> None:
        """Free `n` reads `take` let in. Giving back more than `cluster` holds is a bug of the caller's (a read
        given twice) and raises: left quiet, the count would go below zero and let that many reads past the cap."""
        n = min(n, self.per_cluster)
        if n > self.held[cluster]:
            raise ValueError(f"ClusterBudget.give: {n} reads given back to cluster {cluster!r}, which holds "
                             f"{self.held[cluster]}")
        self.held[cluster] -= n
        self._admit(cluster)

    def _admit(self, cluster: str) -> None:
        """Let in the queued reads of `cluster` that fit, in order; a cluster holding none leaves `held` (the one
        place a count of zero is removed, whether a give or a cancelled wait brought it there)."""
        queue = self._queued.get(cluster)
        while queue and self.held[cluster] + queue[0][0] <= self.per_cluster:
            n, granted = queue.popleft()
            if not granted.done():
                self.held[cluster] += n
                granted.set_result(None)
        if not queue:
            self._queued.pop(cluster, None)
        if not self.held[cluster]:
            del self.held[cluster]


def turns(placements: Sequence[Placement], per_cluster: int) -> list[list[Placement]]:
    """`placements` of one cluster in turns of at most `per_cluster`, in order."""
    return [list(placements[i:i + per_cluster]) for i in range(0, len(placements), per_cluster)]


def widest(asks: Sequence[tuple[int, str]]) -> tuple[int, str]:
    """One read that holds what each of `asks` would: the longest tail, the earliest since_time (none when one
    has none). since_time is RFC 3339 in whole seconds, UTC: its strings order as its times."""
    tail = max(t for t, _ in asks)
    sinces = [s for _, s in asks]
    return tail, "" if "" in sinces else min(sinces)


def together(asks: Sequence[Ask]) -> Ask:
    """The ask of one read for followers whose own are `asks` (`widest` of theirs, per placement)."""
    return lambda p: widest([a(p) for a in asks])


class SharedPoll:
    """One followed output's beats: `beat` waits for the next read begun after it was called, at most one
    every log_follow.FOLLOW_POLL_SECONDS, whoever asks."""

    def __init__(self, polls: LogPolls, job_id: JobId, want: logs.Bounds, every: Callable[[], float]) -> None:
        self.polls, self.job_id, self.want, self.every = polls, job_id, want, every
        self.members = 0
        self.beats = 0  # reads made, for tests and the bench
        self._waiting: list[tuple[Ask, asyncio.Future[logs.Gathered]]] = []
        self._task: asyncio.Task[None] | None = None
        self._last = float("-inf")

    def first_read(self) -> None:
        """A follower's first read is done: on a poll with no beat yet, it counts as one (the next is a beat
        away, and every follower whose first read ends before then shares it)."""
        if self._last == float("-inf"):
            self._last = asyncio.get_running_loop().time()

    async def beat(self, ask: Ask) -> logs.Gathered:
        got: asyncio.Future[logs.Gathered] = asyncio.get_running_loop().create_future()
        entry = (ask, got)
        self._waiting.append(entry)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            return await got
        finally:
            if entry in self._waiting:
                self._waiting.remove(entry)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            wait = self._last + self.every() - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            batch, self._waiting = [w for w in self._waiting if not w[1].done()], []
            if not batch:
                continue
            job = self.polls.fed.jobs.get(self.job_id)
            try:
                got = (logs.Gathered((), ()) if job is None else
                       await self.polls.read(job, self.want, together([a for a, _ in batch])))
            except Exception as exc:  # noqa: BLE001 - said to each follower's stream, never lost in this task
                for _, f in batch:
                    if not f.done():
                        f.set_exception(exc)
                continue
            finally:
                self._last = loop.time()
            self.beats += 1
            for _, f in batch:
                if not f.done():
                    f.set_result(got)


class LogPolls:
    """The federator's shared polls, by followed output, and its budget of reads per cluster."""

    def __init__(self, fed: Federator, every: Callable[[], float], per_cluster: int | None = None) -> None:
        self.fed, self.every = fed, every
        self.budget = ClusterBudget(FOLLOW_READS_PER_CLUSTER if per_cluster is None else per_cluster)
        self.polls: dict[tuple[JobId, int, str], SharedPoll] = {}

    def join(self, job_id: JobId, want: logs.Bounds) -> SharedPoll:
        key = (job_id, want.replica, want.container)
        poll = self.polls.get(key)
        if poll is None:
            poll = self.polls[key] = SharedPoll(self, job_id, want, self.every)
        poll.members += 1
        return poll

    def leave(self, poll: SharedPoll) -> None:
        poll.members -= 1
        if poll.members <= 0:
            key = (poll.job_id, poll.want.replica, poll.want.container)
            if self.polls.get(key) is poll:
                del self.polls[key]

    async def read(self, job: Job, want: logs.Bounds, ask: Ask) -> logs.Gathered:
        """`job`'s placements read for a follow (logs.gather): each cluster's in turns that fit its budget, the
        clusters side by side; the answer in the job's order of placements."""
        clusters: dict[str, list[Placement]] = {}
        for p in job.placements:
            clusters.setdefault(p.cluster, []).append(p)

        async def of(cluster: str, placements: list[Placement]) -> list[logs.Gathered]:
            got = []
            for chunk in turns(placements, self.budget.per_cluster):
                await self.budget.take(cluster, len(chunk))
                try:
                    got.append(await logs.gather(self.fed, job, want, follow=ask, placements=chunk))
                finally:
                    self.budget.give(cluster, len(chunk))
            return got

        every = [g for gs in await asyncio.gather(*(of(c, ps) for c, ps in clusters.items())) for g in gs]
        order: dict[str, int] = {p.placement_id: i for i, p in enumerate(job.placements)}
        texts = sorted((t for g in every for t in g.logs), key=lambda t: order.get(t.placement_id, 0))
        unread = sorted((u for g in every for u in g.unread), key=lambda u: order.get(u.placement_id, 0))
        return logs.Gathered(tuple(texts), tuple(unread))


__all__ = ["FOLLOW_READS_PER_CLUSTER", "ClusterBudget", "LogPolls", "SharedPoll", "together", "turns", "widest"]
