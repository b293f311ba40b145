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
as members fill their CPU nodes first), an accelerator replica's host part on a node of its pool (a room its
pool's room classes name, best fit as the pool's take), else on the roomiest node. Taken from the roomiest
node alone, the GPU Submits of submit_scale came off the CPU nodes in the federator's view while the member
put them on GPU nodes, and 2 to 5 CPU-only placements a run were refused.
"""

from __future__ import annotations

from bisect import bisect_left
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


def node_room_fits(room: NodeRoom, cpu: int, mem: int, enough: int = _MANY) -> int:
    """Replicas of (`cpu`, `mem`) the nodes hold, each on one node, counted up to `enough` (at most 2^30): a
    filter asks whether `enough` fit, and the roomiest classes, counted first, mostly answer it."""
    total = 0
    lo = bisect_left(room, (cpu, -1, 0))  # classes with less CPU than a replica hold none
    for i in range(len(room) - 1, lo - 1, -1):
        c, m, n = room[i]
        if m < mem:
            continue
        total += n * per_node(c, m, cpu, mem)
        if total >= enough:
            return enough
    return total


def node_room_take(room: NodeRoom, cpu: int, mem: int, replicas: int, *, roomiest: bool = False,
                   strict: bool = True, among: frozenset[tuple[int, int]] = frozenset()) -> NodeRoom:
    """The room after `replicas` replicas of (`cpu`, `mem`) land, as many on a node as it holds: the fullest
    node that holds one first (`roomiest`: the roomiest first). ValueError if they do not all fit (`strict`);
    else what does not fit is left out (the caller knows better that it fits: an accelerator pool's room).
    `among`: the rooms of the nodes the replicas may land on (an accelerator pool's room classes), tried first,
    best fit, as the pool's own take chooses among them; the rest goes as `roomiest` says.

    A cycle takes on every placement, and a thousand-node cluster reports up to a thousand classes: the
    classes are found by bisection and the tuple edited in place of a copy, not rebuilt and sorted."""
    if replicas <= 0 or (not cpu and not mem) or not room:
        return room
    out = list(room)
    left = replicas
    while left:
        i = _holder(out, cpu, mem, False, among) if among else None  # best fit, as a pool's take
        if i is None:
            i = _holder(out, cpu, mem, roomiest)
        if i is None:
            if strict:
                raise ValueError(f"{left} of {replicas} replicas of {cpu}m CPU and {mem} bytes have no node with "
                                 f"room")
            break
        c, m, n = out[i]
        k = per_node(c, m, cpu, mem)
        full = min(n, left // k)
        moved = [(full, k)] if full else []
        if full < n and left - full * k:
            moved.append((1, left - full * k))
        taken = sum(nodes for nodes, _ in moved)
        if taken == n:
            del out[i]
        else:
            out[i] = (c, m, n - taken)
        for nodes, each in moved:
            _add(out, c - each * cpu, m - each * mem, nodes)
            left -= nodes * each
    return tuple(out)


def _holder(out: list[tuple[int, int, int]], cpu: int, mem: int, roomiest: bool,
            among: frozenset[tuple[int, int]] = frozenset()) -> int | None:
    """The index of the class whose nodes hold one replica: the least CPU (then memory) first, or the most;
    only of the rooms `among` when given."""
    lo = bisect_left(out, (cpu, -1, 0))  # classes with less CPU than a replica hold none
    order = range(len(out) - 1, lo - 1, -1) if roomiest else range(lo, len(out))
    for i in order:
        if out[i][1] >= mem and (not among or (out[i][0], out[i][1]) in among):
            return i
    return None


def _add(out: list[tuple[int, int, int]], cpu: int, mem: int, nodes: int) -> None:
    i = bisect_left(out, (cpu, mem, 0))
    if i < len(out) and out[i][0] == cpu and out[i][1] == mem:
        out[i] = (cpu, mem, out[i][2] + nodes)
    else:
        out.insert(i, (cpu, mem, nodes))


def node_room_grew(before: NodeRoom, after: NodeRoom) -> bool:
    """Whether a report's node room may hold work that the one before did not: for some class that gained
    nodes, more nodes now have at least its room. A report where nodes only filled (or traded their room, the
    same classes) says no; checking the few classes that gained, not every shape of work, keeps it cheap."""
    if before == after:
        return False
    had = {(c, m): n for c, m, n in before}
    for c, m, n in after:
        if n > had.get((c, m), 0) and _at_least(after, c, m) > _at_least(before, c, m):
            return True
    return False


def _at_least(room: NodeRoom, cpu: int, mem: int) -> int:
    """Nodes with at least this CPU and memory free."""
    return sum(n for c, m, n in room[bisect_left(room, (cpu, -1, 0)):] if m >= mem)


def node_room_give(room: NodeRoom, cpu: int, mem: int, replicas: int) -> NodeRoom:
    """An estimate of the room after `replicas` replicas of (`cpu`, `mem`) leave (what-if planning): each frees
    its room on a node of its own, a class of that room."""
    if replicas <= 0 or (not cpu and not mem) or not room:
        return room
    out = list(room)
    _add(out, cpu, mem, replicas)
    return tuple(out)


__all__ = ["NodeRoom", "node_room_fits", "node_room_give", "node_room_grew", "node_room_of", "node_room_take",
           "per_node"]
