"""What an `InsufficientAccelerators` reason says of a member's nodes: their size, never their free room.

Why: a replica is one pod on one node, so "no node with 9 free accelerators" on 8-accelerator servers reads as a
shortage that passes unless the words say the nodes are too small (outside operator QA, F4). The words used to
say the most any one node had free ("the most free on one node is 2"), as of the job's turn in its cycle. That
figure was not true for long: jobs later in the same cycle took that room (a 4 told "2 free" at its turn while a
2 behind it took those 2, so it stood at 0), and the next cycle that asked the job again, a restart's first
among them, reworded it, a status PATCH each in Kubernetes mode (stop 62's CI, 1 run in 6); every report of a
busy member reworded it again (server/reason_refresh.py bounds how often).

A pool's largest node (`AcceleratorPool.largest_node_accelerators`: devices installed, free or not) moves
neither within a cycle nor with a member's load, and answers what the figure was there for: could a replica
ever fit on one node here. So the words name it, only when it is too small for one replica, and say nothing of
free room; "has no node with 4 free" alone stays true to the end of the cycle (a cycle's place phase only
takes room) and until a report changes it; the figures a capacity reason still tells (replicas that fit,
CPU free) are settled against the room the cycle left (room_words.py). The member's free room, which moves, is
read on demand: `federator get clusters -o wide`. A pool whose agent does not say its largest node (an older
agent) adds nothing: the words then claim no more than they know. Pure, and costs one pass over the pools
already looked at.
"""

from __future__ import annotations

from collections.abc import Sequence

from federator.model import MILLI, AcceleratorPool
from federator.scheduler.fleet_fit import node_short
from federator.scheduler.framework import PlacementRequest


def node_size_note(request: PlacementRequest, pools: Sequence[AcceleratorPool]) -> str:
    """For a replica of whole accelerators larger than the largest node of every one of `pools` (the cluster's
    pools the request accepts), each saying its size: " (its largest node has N installed; a replica is one pod
    on one node)", N the largest of them. Else "": a node could hold it once free, or a pool does not say."""
    if request.accelerator_milli % MILLI or not pools or not all(node_short(request, p) for p in pools):
        return ""
    largest = max(p.largest_node_accelerators for p in pools)
    return f" (its largest node has {largest} installed; a replica is one pod on one node)"


__all__ = ["node_size_note"]
