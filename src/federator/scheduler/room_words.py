"""A waiting job's words about room, settled against the room its cycle left.

Why: the place phase tells a job why no cluster takes it at its turn, and every later job of its shape the same
words (`unplaceable`, cycle.py). Jobs placed after that turn take room, so a figure in those words could be false
by the end of the cycle: a gang told "member-a fits 1 of 2 replicas" at its turn, whose one replica's room a job
behind it took, waited with those words until the next cycle that asked it again (a restart's first cycle asks
every waiting job) reworded it to "has no node with 4 free", a status PATCH in Kubernetes mode; the code, too,
moved (GangDoesNotFit to InsufficientAccelerators). The member's node sizes are told without free room
(node_size.py); the counts of replicas that fit, and CPU and memory free, are room.

So at the end of the place phase each capacity reason a shape was told is made again over the final board, for
the shapes whose clusters a placement changed since, and a waiting job told the old words is told the new ones
in their place (the notes around them, its quota's, its alternatives', "never", stay). Preemption, after it,
only takes room for the job that preempts. Pure. Cost: per shape told a capacity reason, when a cluster
changed after it, the board's look at the changed clusters (the look its next job would have paid) and one
summary; per waiting job told such words, a dict look-up.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field, replace

from federator.model import JobId, Reason, ReasonCode
from federator.scheduler.framework import PlacementRequest

ROOM_CODES = frozenset({ReasonCode.GANG_DOES_NOT_FIT, ReasonCode.INSUFFICIENT_ACCELERATORS,
                        ReasonCode.INSUFFICIENT_CPU, ReasonCode.INSUFFICIENT_MEMORY})
"""The codes whose words count room a placement takes."""

Key = tuple[object, ...]
Look = Callable[[PlacementRequest, Key], Reason | None]
"""The reason the board gives a shape now (None: a cluster would take it)."""


@dataclass(slots=True)
class RoomWords:
    """The capacity reasons of one place phase: per shape, its first request, its words and the board's change
    count when they were made; per job, the shapes whose words it was told."""

    made: dict[Key, tuple[PlacementRequest, Reason, int]] = field(default_factory=dict)
    told: dict[JobId, list[Key]] = field(default_factory=dict)

    def make(self, key: Key, request: PlacementRequest, reason: Reason, changes: int) -> None:
        """The place phase told `request`'s shape `reason`, with the board at `changes` changes."""
        if reason.code in ROOM_CODES:
            self.made[key] = (request, reason, changes)

    def tell(self, job_id: JobId, key: Key) -> None:
        """A job was told the words of `key`'s shape (at its turn, or after another job of its shape)."""
        if key in self.made:
            self.told.setdefault(job_id, []).append(key)

    def settle(self, pending: MutableMapping[JobId, Reason], changes: int, look: Look) -> None:
        """Tell each waiting job of `pending` its shapes' words as the board now has them (`changes` its change
        count, `look` its reason for a shape now). Words a shape's later look keeps, or that a cluster would now
        take (the place phase only takes room, so never), stay."""
        moved: dict[Key, tuple[Reason, Reason]] = {}
        for key, (request, said, at) in self.made.items():
            if at == changes:
                continue
            now = look(request, key)
            if now is not None and now != said:
                moved[key] = (said, now)
        if not moved:
            return
        for job_id, keys in self.told.items():
            reason = pending.get(job_id)
            if reason is None:
                continue
            for key in keys:
                if key in moved:
                    said, now = moved[key]
                    if said.message in reason.message:
                        reason = replace(reason, code=now.code if reason.code is said.code else reason.code,
                                         message=reason.message.replace(said.message, now.message))
            pending[job_id] = reason


__all__ = ["ROOM_CODES", "RoomWords"]
