"""What an agent says of how many of a placement's replicas run and are ready (JobUpdate.replicas_running and
replicas_ready), kept on the placement.

Why a module of its own: the counts are optional on the wire (an older agent sends neither), are clamped to the
placement's share (an agent's count is not trusted to exceed what it was given), and an update that only changes
a count is news the federator must store and show, though its phase and message are the same (outside QA F2: a
job serving 2 of 4 said so only in prose, so no number in status, metrics or alerts could).
"""

from __future__ import annotations

from dataclasses import dataclass

from federator.api.v1 import agent_pb2
from federator.model import Placement


@dataclass(frozen=True, slots=True)
class ReplicaCounts:
    """The counts one JobUpdate carried; None where it did not say (the placement keeps what it had)."""

    running: int | None = None
    ready: int | None = None
    nodes: tuple[tuple[str, int], ...] = ()  # JobUpdate.nodes; () = not said (kept as it was)

    def apply(self, placement: Placement) -> bool:
        """Keep the counts said on a live placement (each at most its share, ready at most running); True when
        that changed what the placement says. The nodes said are kept too (not news: nothing shows them),
        unless they add up to more replicas than the placement has (agent.proto: ignored)."""
        if not placement.phase.is_active:
            return False
        if self.nodes and sum(r for _, r in self.nodes) <= placement.replicas:
            placement.nodes = self.nodes
        if self.running is None and self.ready is None:
            return False
        running = placement.replicas_running if self.running is None else min(self.running, placement.replicas)
        ready = placement.replicas_ready if self.ready is None else self.ready
        if ready is not None and running is not None:
            ready = min(ready, running)
        changed = (running, ready) != (placement.replicas_running, placement.replicas_ready)
        placement.replicas_running, placement.replicas_ready = running, ready
        return changed


UNSAID = ReplicaCounts()


def counts_of(update: agent_pb2.JobUpdate) -> ReplicaCounts:
    """The counts a JobUpdate says (unset fields: not said)."""
    return ReplicaCounts(update.replicas_running if update.HasField("replicas_running") else None,
                         update.replicas_ready if update.HasField("replicas_ready") else None,
                         tuple((e.node, e.replicas) for e in update.nodes))


__all__ = ["UNSAID", "ReplicaCounts", "counts_of"]
