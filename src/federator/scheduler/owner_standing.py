"""An owner's standing within a queue, between cycles: how many waiting jobs go before theirs, who holds less.

Why: `federator get queues` (QueueService.List) tells a user where they stand in their queue, as Slurm's `sprio`
and `sshare` do (outside QA, HPC H11). The cycle tells a waiting job the same thing in its reason
(`owner_share.QueueLine.waits`), but only for the jobs it takes and as the cycle moves; a user asking between cycles
wants the order the next cycle starts from. That order is `QueueLine`'s: priority (highest first); within a priority
the owner holding fewest of the queue's accelerators (then CPU) first, an owner holding as much by submission time;
with `ownerShare: false`, submission time alone. An owner's holdings do not move while their jobs wait, so every
waiting job of an owner holding less goes before, and of an owner holding as much, those submitted earlier.

Pure: counts over values the caller hands in (server/queue_service.py reads them from the federator's jobs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from federator.scheduler.owner_share import Held

NOTHING: Held = (0, 0)


@dataclass(frozen=True, slots=True)
class Waiting:
    """One waiting job of a queue, as the cycle's line orders it."""

    owner: str
    priority: int
    submitted_at: float
    job_id: str


def jobs_ahead(owner: str, waiting: Iterable[Waiting], held: Mapping[str, Held], *, by_share: bool = True) -> int:
    """How many of `waiting` (a queue's waiting jobs) go before `owner`'s first waiting job (highest priority, then
    earliest): 0 when `owner` has none. `held`: what each owner holds in the queue (milli-accelerators, milli-CPU);
    an owner not in it holds nothing."""
    line = list(waiting)
    mine = [w for w in line if w.owner == owner]
    if not mine:
        return 0
    first = min(mine, key=lambda w: (-w.priority, w.submitted_at, w.job_id))
    at = (first.submitted_at, first.job_id)
    own = held.get(owner, NOTHING)
    ahead = 0
    for w in line:
        if w.owner == owner or w.priority < first.priority:
            continue
        if w.priority > first.priority:
            ahead += 1
        elif not by_share:
            ahead += (w.submitted_at, w.job_id) < at
        else:
            theirs = held.get(w.owner, NOTHING)
            ahead += theirs < own or (theirs == own and (w.submitted_at, w.job_id) < at)
    return ahead


def holding_less(owner: str, owners: Iterable[str], held: Mapping[str, Held]) -> int:
    """How many of `owners` other than `owner` hold less than `owner` in the queue (accelerators, then CPU)."""
    own = held.get(owner, NOTHING)
    return sum(1 for o in set(owners) if o != owner and held.get(o, NOTHING) < own)


__all__ = ["NOTHING", "Waiting", "holding_less", "jobs_ahead"]
