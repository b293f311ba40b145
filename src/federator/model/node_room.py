"""Node room: every node's free CPU and memory, alike nodes counted together, so that CPU-only work fits only
where one node has both.

Why: a cluster's free CPU and memory are sums, and its most free CPU and memory on one node are two maxima,
often of two different nodes. A replica needs its CPU and its memory on one node: with 4-CPU, 32 GiB replicas,
a 64-CPU, 256 GiB node hosts 8 and strands 32 CPUs that the sum still counts. Judged by the sums, the
federator sent CPU-only placements that the member then refused ("on CPU nodes do not fit"): 47 of 505
CPU-only placements of the submit_scale backlog on examples/fleet.yaml, each re-queued and its cycle's work
redone (docs/benchmarks.md, "Where a placed Submit's CPU goes"). Accelerator work has the same per node in
its pool's room classes (AcceleratorPool.room_classes); this is the same for the node's host alone, over
every node that takes pods, accelerators or not, since the members put CPU-only pods on accelerator nodes
too.

A `NodeRoom` is sorted (free CPU milli, free memory bytes, nodes) triples; () is "not reported" (an older
agent): the federator then judges by the sums and maxima, as before. A take moves the nodes it lands on to
their new class, as a member's binder would: CPU-only work best fit (the fullest node that holds a replica,
as members fill their CPU nodes first), an accelerator replica's host part on the roomiest node (where the
accelerators are; the pool's own classes say which accelerators, not which host).
"""

from __future__ import annotations

from collections.abc import Iterable

NodeRoom = tuple[tuple[int, int, int], ...]  # sorted (free CPU milli, free memory bytes, nodes), nodes >= 1

_MANY = 1 << 30  # "no bound": a replica that asks for neither CPU nor memory


def node_room_of(rooms: Iterable[tuple[int, int]]) -> NodeRoom:
    """The classes of these nodes' (free CPU milli, free memory bytes): what an agent reports."""
    counts: dict[tuple[int, int], int] = {}
    for cpu, mem in rooms:
        counts[(cpu, mem)] = counts.get((cpu, mem), 0) + 1
    return tuple(sorted((c, m, n) for (c, m), n in counts.items()))


def per_node(cpu_free: int, mem_free: int, cpu: int, mem: int) -> int:
    """Replicas of (`cpu`, `mem`) that one node with this much free holds."""
    k = _MANY
    if cpu:
        k = min(k, max(0, cpu_free) // cpu)
    if mem:
        k = min(k, max(0, mem_free) // mem)
    return k


def node_room_fits(room: NodeRoom, cpu: int, mem: int) -> int:
    """Replicas of (`cpu`, `mem`) the nodes hold, each on one node (at most 2^30)."""
    total = 0
    for c, m, n in room:
        total += n * per_node(c, m, cpu, mem)
        if total >= _MANY:
            return _MANY
    return total


def node_room_take(room: NodeRoom, cpu: int, mem: int, replicas: int, *, roomiest: bool = False,
                   strict: bool = True) -> NodeRoom:
    """The room after `replicas` replicas of (`cpu`, `mem`) land, as many on a node as it holds: the fullest
    node that holds one first (`roomiest`: the roomiest first). ValueError if they do not all fit (`strict`);
    else what does not fit is left out (the caller knows better that it fits: an accelerator pool's room)."""
    if replicas <= 0 or (not cpu and not mem) or not room:
        return room
    classes = dict(((c, m), n) for c, m, n in room)
    left = replicas
    for c, m, _ in (reversed(room) if roomiest else room):
        k = per_node(c, m, cpu, mem)
        if not k:
            continue
        n = classes[(c, m)]
        full = min(n, left // k)
        moved = [(full, k)] if full else []
        if full < n and left - full * k:
            moved.append((1, left - full * k))
        for nodes, each in moved:
            classes[(c, m)] -= nodes
            key = (c - each * cpu, m - each * mem)
            classes[key] = classes.get(key, 0) + nodes
            left -= nodes * each
        if not classes[(c, m)]:
            del classes[(c, m)]
        if not left:
            break
    if left and strict:
        raise ValueError(f"{left} of {replicas} replicas of {cpu}m CPU and {mem} bytes have no node with room")
    return tuple(sorted((c, m, n) for (c, m), n in classes.items() if n))


def node_room_give(room: NodeRoom, cpu: int, mem: int, replicas: int) -> NodeRoom:
    """An estimate of the room after `replicas` replicas of (`cpu`, `mem`) leave (what-if planning): each frees
    its room on a node of its own, a class of that room."""
    if replicas <= 0 or (not cpu and not mem) or not room:
        return room
    classes = dict(((c, m), n) for c, m, n in room)
    classes[(cpu, mem)] = classes.get((cpu, mem), 0) + replicas
    return tuple(sorted((c, m, n) for (c, m), n in classes.items()))


__all__ = ["NodeRoom", "node_room_fits", "node_room_give", "node_room_of", "node_room_take", "per_node"]
