"""Within a queue: jobs in order of their owner's share, and how many go before a waiting owner's.

Why: a national network's queue is an organisation's, shared by its users. Ordered by priority and submission time
alone, one student's 10,000-job backlog held back a colleague who held nothing for about 28 hours, and her reason
spoke only of capacity (outside QA, HPC H1). Slurm orders by fair share per association (account and user); here,
within a queue and a priority, the jobs of the owner (`JobSpec.owner`: the user, or the namespace of a
kubectl-made FederatedJob) who holds the fewest of the queue's accelerators go first (what runs, and what this cycle
has already placed for them; CPU breaks a tie, so CPU-only work is shared too), then submission time. Owners who
hold as much are taken first come first served, so a queue of one user is ordered exactly as before. A queue whose
policy says `ownerShare: false` is ordered as before 0.13.0: priority, then submission time, whoever asks.

Cost: one sort of the queue's jobs, as before, then per job taken a pop and a push on a heap of the owners of its
priority: O(log owners), never a re-sort. An owner's holding moves only when a job of theirs is placed, which comes
right after it was taken and before it is pushed back, so no key on the heap is ever stale. A queue of one owner
(or with `ownerShare: false`) skips the heap: its requests are taken as sorted, as before.

A job that waits for room or quota is told how many waiting jobs of its queue go before its owner's first waiting
job of its priority: of a higher priority, of users holding less, of users holding as much who asked first
(`QueueLine.waits`). Counted per owner, not per job, so every job of an owner and a shape is told the same words,
and a parked group's reason (server/reason_refresh.py) does not turn over each time one job ahead of it is placed.
Counted over the jobs the cycle takes and the queue's parked ones (server/parking.py: not in the cycle until room
may exist for them), which the server hands in as a summary (parked_line.py): counted over the cycle's alone, a
group brought back by a report read "1 waiting job" behind 13, and was rewritten twice for nothing.
The counts are told as ranges (told_counts.py: 1, 2 to 4, 5 to 9, 10 to 19, ...), not exactly: exact, every arrival,
start or end ahead of an owner reworded all their waiting jobs' stored reasons, a status PATCH each in Kubernetes
mode (kubescaleqa62 H1, M2). The exact count is read on demand: `federator get queues` (owner_standing.py).
"""

from __future__ import annotations

import heapq
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence

from federator.model import held_milli
from federator.scheduler.alternatives import Assignment
from federator.scheduler.framework import Allocation, PlacementRequest
from federator.scheduler.parked_line import NO_PARKED, ParkedAhead, ParkedQueue
from federator.scheduler.told_counts import about

Held = tuple[int, int]  # (milli-accelerators, milli-CPU) an owner holds in a queue: fewer goes first
_NOTHING: Held = (0, 0)


def holdings(running: Iterable[Allocation]) -> dict[str, dict[str, Held]]:
    """What each owner holds in each queue (queue -> owner -> Held), accelerators at what they hold
    (`model.held_milli`). Work of no known owner is nobody's."""
    out: dict[str, dict[str, Held]] = defaultdict(dict)
    for a in running:
        if a.owner:
            acc, cpu = out[a.queue].get(a.owner, _NOTHING)
            out[a.queue][a.owner] = (acc + held_milli(a.resources.accelerator_milli, a.unit_milli) * a.replicas,
                                     cpu + a.resources.cpu_milli * a.replicas)
    return out


class QueueLine:
    """One queue's pending requests in the order the cycle takes them: priority (highest first); within a
    priority, the owner holding least (`by_share`), then submission time.

    `take` hands out the next request; the cycle then says whether it was placed (`placed`) or waits (`waits`)
    before it takes the next, which puts the owner back in line with what they hold then."""

    def __init__(self, queue: str, requests: Sequence[PlacementRequest], held: dict[str, Held], *,
                 by_share: bool, parked: ParkedQueue = NO_PARKED) -> None:
        self.queue = queue
        self.parked = ParkedAhead(parked, held, by_share=by_share)  # the queue's parked jobs, which `waits` counts
        self.held = held
        self.by_share = by_share
        ordered = sorted(requests, key=lambda r: (-r.spec.priority, r.submitted_at, r.job_id))
        self._levels: deque[tuple[int, dict[str, deque[PlacementRequest]]]] = deque()
        everyone: set[str] = set()
        for r in ordered:
            if not self._levels or self._levels[-1][0] != r.spec.priority:
                self._levels.append((r.spec.priority, {}))
            owner = r.spec.owner if by_share else ""
            everyone.add(owner)
            owners = self._levels[-1][1]
            jobs = owners.get(owner)
            if jobs is None:
                jobs = owners[owner] = deque()
            jobs.append(r)
        self._left = len(ordered)
        self._owners: dict[str, deque[PlacementRequest]] = {}  # of the priority being taken
        self._heap: list[tuple[int, int, float, str, str]] = []  # (accelerators, CPU, submitted, job id, owner)
        self._last = ""  # the owner of the request last taken, back in line at the next `take`
        self._back = False
        # One owner (or none known): no share to weigh, the requests are taken as sorted (the common queue's cost).
        self._single = len(everyone) == 1
        if self._single:
            self._last = next(iter(everyone))
        self._current: deque[PlacementRequest] = deque()  # the one owner's, of the priority being taken
        # What `waits` counts: waiting jobs of higher priorities, and of the current one by what their owner held
        # when taken (never more than a later owner holds: holdings only grow in a cycle, and the lesser went first).
        self._higher = 0
        self._by_held: dict[Held, int] = defaultdict(int)
        self._notes: dict[tuple[int, str], str] = {}

    def __len__(self) -> int:
        return self._left

    def take(self) -> PlacementRequest:
        """The next request (there must be one: `len`)."""
        if self._single:
            if not self._current:
                self._next_level()
            self._left -= 1
            return self._current.popleft()
        if self._back:
            self._push(self._last)
            self._back = False
        if not self._heap:
            self._next_level()
        owner = heapq.heappop(self._heap)[4]
        self._left -= 1
        self._last, self._back = owner, True
        return self._owners[owner].popleft()

    def placed(self, request: PlacementRequest, assignments: Sequence[Assignment]) -> None:
        """Count what `request`, just taken, now holds for its owner."""
        if not self.by_share or (self._single and not self.parked.parked.jobs):  # nobody else to weigh it against
            return
        owner = self._last
        res = request.spec.resources
        acc, cpu = self.held.get(owner, _NOTHING)
        for a in assignments:
            acc += held_milli(res.accelerator_milli, a.unit_milli) * a.replicas
            cpu += res.cpu_milli * a.replicas
        self.held[owner] = (acc, cpu)
        self.parked.moved(owner)

    def waits(self, request: PlacementRequest) -> str:
        """Count `request`, just taken, as waiting in line for room or quota; what its reason adds ("" if no
        waiting job goes before its owner's)."""
        owner = self._last if self.by_share else request.spec.owner
        key = (request.spec.priority, owner)
        note = self._notes.get(key)
        if note is None:
            note = self._notes[key] = self._before(owner, request)
        self._by_held[self.held.get(owner, _NOTHING) if self.by_share else _NOTHING] += 1
        return note

    def _before(self, owner: str, first: PlacementRequest) -> str:
        """The words for the waiting jobs, taken or parked, that go before `owner`'s first waiting job of this
        priority (`first`)."""
        higher, less, same = self.parked.ahead(owner, first.spec.priority, (first.submitted_at, first.job_id))
        higher += self._higher
        parts = [f"{about(higher)} of higher priority"] if higher else []
        if self.by_share:
            mine = self.held.get(owner, _NOTHING)
            less += sum(n for h, n in self._by_held.items() if h < mine)
            same += sum(n for h, n in self._by_held.items() if h == mine)
            parts += [f"{about(less)} of users holding less"] if less else []
            parts += [f"{about(same)} of users holding as much, submitted earlier"] if same else []
        else:
            same += sum(self._by_held.values())  # every owner's alike: those taken before, and parked earlier
            parts += [f"{about(same)} of other users, submitted earlier"] if same else []
        ahead = higher + less + same
        return f"{about(ahead)} waiting job{'s' if ahead != 1 else ''} of queue {self.queue} " \
               f"go{'es' if ahead == 1 else ''} before its owner's: {', '.join(parts)}" if parts else ""

    def _next_level(self) -> None:
        self._higher += sum(self._by_held.values())
        self._by_held.clear()
        _, self._owners = self._levels.popleft()
        if self._single:
            self._current = self._owners[self._last]
            return
        self._heap = []
        for owner in self._owners:
            self._push(owner)

    def _push(self, owner: str) -> None:
        jobs = self._owners[owner]
        if jobs:
            head = jobs[0]
            acc, cpu = self.held.get(owner, _NOTHING)
            heapq.heappush(self._heap, (acc, cpu, head.submitted_at, head.job_id, owner))
