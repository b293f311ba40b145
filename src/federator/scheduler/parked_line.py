"""The parked jobs of a queue as the line counts them: so a waiting job's "N go before its owner's" is the queue's.

Why: a cycle takes the candidates only; a job parked for want of room (server/parking.py) is left out until room
may exist. `owner_share.QueueLine.waits` counted the jobs the cycle took, so when a report brought back one group,
its reason counted the few jobs of that cycle ("1 waiting job ... goes before its owner's" behind 13), its group
was rewritten, and rewritten back at the next full cycle: status writes for nothing, and a wrong word to the user.
The server hands each cycle this summary of the parked jobs (a frozen value), and the line adds what of it goes
before an owner's first waiting job: every parked job of a higher priority, and of the same priority those of
other owners holding less, or as much and submitted earlier (`ownerShare: false`: submitted earlier).

Pure: values only; the server keeps the summary as jobs are parked and brought back (server/parked_summary.py).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import accumulate, chain

from federator.model import Reason, ReasonCode

Queued = tuple[float, str]  # a parked job's (submitted_at, job id): the order it was submitted in

# Reasons of a job that waits in its queue's line (room or quota): the same set the cycle counts (cycle._IN_LINE).
IN_LINE = frozenset({ReasonCode.GANG_DOES_NOT_FIT, ReasonCode.INSUFFICIENT_ACCELERATORS,
                     ReasonCode.INSUFFICIENT_CPU, ReasonCode.INSUFFICIENT_MEMORY, ReasonCode.REGION_UNAVAILABLE,
                     ReasonCode.RESERVED, ReasonCode.QUOTA_EXCEEDED})


def in_line(reason: Reason) -> bool:
    """Whether a job with this reason waits in its queue's line (a never-runnable job does not)."""
    return reason.code in IN_LINE and reason.never is None


@dataclass(frozen=True, slots=True)
class ParkedQueue:
    """One queue's parked jobs in line: priority -> owner -> their `Queued`, sorted."""

    jobs: Mapping[int, Mapping[str, tuple[Queued, ...]]] = field(default_factory=dict)


class ParkedAhead:
    """One cycle's counts over a queue's `ParkedQueue`, by the owners' holdings as the cycle moves them (`held`, the
    line's own map). Counted owner by owner, 5,000 owners with work parked and waiting in one cycle took 11 s (each
    note walked every owner); so the parked owners of a priority are grouped by what they hold (sorted, with running
    totals: those holding less is a bisect) and, when many, each holding's jobs merged into one sorted line (those
    holding as much and submitted earlier is a bisect). A group is rebuilt only after an owner of it was placed
    (`moved`)."""

    def __init__(self, parked: ParkedQueue, held: Mapping[str, tuple[int, int]], *, by_share: bool) -> None:
        self.parked = parked
        self.held = held
        self.by_share = by_share
        self._counts = {p: sum(len(q) for q in owners.values()) for p, owners in parked.jobs.items()}
        self._levels: dict[int, _Level] = {}

    def moved(self, owner: str) -> None:
        """`owner` was placed: what they hold moved, so the groups of the priorities where they have parked jobs."""
        for p, owners in self.parked.jobs.items():
            if owner in owners:
                self._levels.pop(p, None)

    def ahead(self, owner: str, priority: int, at: Queued) -> tuple[int, int, int]:
        """Parked jobs before `owner`'s first waiting job (of `priority`, submitted `at`): (of higher priority, of
        owners holding less, of owners holding as much and submitted earlier; without owner share, every other
        owner's job submitted earlier is of the last)."""
        higher = sum(n for p, n in self._counts.items() if p > priority)
        owners = self.parked.jobs.get(priority)
        if not owners:
            return higher, 0, 0
        level = self._levels.get(priority)
        if level is None:
            level = self._levels[priority] = _Level(owners, self.held if self.by_share else {})
        mine = self.held.get(owner, (0, 0)) if self.by_share else (0, 0)
        own = owners.get(owner, ())
        less = level.less(mine)
        same = level.earlier(mine, at) - bisect_left(own, at)
        return higher, less, same


FEW_OWNERS = 32  # owners holding as much, below which each one's line is bisected rather than all merged


class _Level:
    """The parked owners of one priority grouped by what they hold."""

    def __init__(self, owners: Mapping[str, tuple[Queued, ...]], held: Mapping[str, tuple[int, int]]) -> None:
        self._owners: dict[tuple[int, int], list[str]] = {}
        for owner in owners:
            self._owners.setdefault(held.get(owner, (0, 0)), []).append(owner)
        self._jobs = owners
        self._keys = sorted(self._owners)
        self._totals = list(accumulate(sum(len(owners[o]) for o in self._owners[k]) for k in self._keys))
        self._merged: dict[tuple[int, int], tuple[Queued, ...]] = {}

    def less(self, mine: tuple[int, int]) -> int:
        i = bisect_left(self._keys, mine)
        return self._totals[i - 1] if i else 0

    def earlier(self, mine: tuple[int, int], at: Queued) -> int:
        """The jobs of the owners holding `mine` submitted before `at`: a bisect per owner while they are few (no
        merge: 100,000 jobs of 10 owners took 30 ms to merge), in their merged line when many."""
        owners = self._owners.get(mine, ())
        if len(owners) <= FEW_OWNERS:
            return sum(bisect_left(self._jobs[o], at) for o in owners)
        got = self._merged.get(mine)
        if got is None:
            got = self._merged[mine] = tuple(sorted(chain.from_iterable(self._jobs[o] for o in owners)))
        return bisect_left(got, at)


NO_PARKED = ParkedQueue()

__all__ = ["IN_LINE", "NO_PARKED", "ParkedAhead", "ParkedQueue", "Queued", "in_line"]
