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

    def ahead(self, owner: str, priority: int, at: Queued, held: Mapping[str, tuple[int, int]], *,
              by_share: bool) -> tuple[int, int, int]:
        """Parked jobs before `owner`'s first waiting job (of `priority`, submitted `at`): (of higher priority, of
        owners holding less, of owners holding as much and submitted earlier). `held`: what each owner holds in
        the queue (none: nothing); without `by_share`, every other owner's job submitted earlier is of the last."""
        higher = sum(len(q) for p, owners in self.jobs.items() if p > priority for q in owners.values())
        less = same = 0
        mine = held.get(owner, (0, 0))
        for other, queued in self.jobs.get(priority, {}).items():
            if other == owner:
                continue
            theirs = held.get(other, (0, 0)) if by_share else mine
            if theirs < mine:
                less += len(queued)
            elif theirs == mine:
                same += bisect_left(queued, at)
        return higher, less, same


NO_PARKED = ParkedQueue()

__all__ = ["IN_LINE", "NO_PARKED", "ParkedQueue", "Queued", "in_line"]
