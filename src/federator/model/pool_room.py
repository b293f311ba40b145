"""A pool's room classes, and what a take leaves of its room: the arithmetic of `AcceleratorPool`'s capacity.

Why a module of its own: `AcceleratorPool` (cluster.py) is what the federator knows of a pool; this is how its
room is counted, bucket by bucket and class by class, and how a replica taken moves a node to the class of what it
has left, so the next replica of the cycle sees the node as it is. It is the hot loop of a cycle over a busy member
(compiled with the rest of the model: pyproject.toml's [tool.federator] compiled), and it reads a pool only
through the values it is handed.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

from federator.model.resources import MILLI

if TYPE_CHECKING:
    from federator.model.cluster import AcceleratorPool

# A room class (agent.proto RoomClass): (bucket, free CPU milli, free memory bytes, count). `count` nodes of
# a whole bucket (`whole_bucket(i)`: i whole devices free), or `count` shared devices of a shared bucket
# (`shared_bucket(f)`: f milli free), whose node has that much CPU and memory free, one node's pair.
RoomClass = tuple[int, int, int, int]

# What a take leaves of a pool's resource model:
# (nodes_by_free, shared_devices, host_room, shared_room, room_classes).
PoolState = tuple[tuple[int, ...], tuple[tuple[int, int], ...], tuple[tuple[int, int], ...],
                  tuple[tuple[int, int, int], ...], tuple[RoomClass, ...]]


def shared_bucket(free_milli: int) -> int:
    """`AcceleratorPool.after_take`'s name for a shared device with `free_milli` milli free."""
    return -free_milli


def one_node_room(rooms: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """The host room an agent reports for a bucket of nodes: one node's (free CPU milli, free memory bytes),
    that of the node nearest both maxima (the greatest min(CPU / most CPU, memory / most memory)); (0, 0)
    for no node.

    Not the two maxima: they are often two different nodes', and a replica needs the CPU and the memory on
    one node. Reported as maxima, they sent fractions to members with no node that had both: 894
    refusals in 10,000 placements (synthetic `fractional`, 8 clusters, 10-pod cycles; 1 with this, and
    the same allocation; docs/benchmarks.md, round 8)."""
    best, best_key = (0, 0), (-1.0, -1.0)
    rooms = list(rooms)
    top_cpu = max((c for c, _ in rooms), default=0) or 1
    top_mem = max((m for _, m in rooms), default=0) or 1
    for cpu, mem in rooms:
        c, m = cpu / top_cpu, mem / top_mem
        key = (min(c, m), c + m)
        if key > best_key:
            best, best_key = (cpu, mem), key
    return best


def room_classes(whole: Iterable[tuple[int, int, int]], shared: Iterable[tuple[int, int, int]]
                 ) -> tuple[RoomClass, ...]:
    """The room classes an agent reports for a pool: `whole` has (whole devices free, free CPU milli,
    free memory bytes) per node (nodes with none free are left out), `shared` (free milli, the same
    of its node) per shared device; sorted.

    Exact, not rounded: the contract lets an agent round down to keep a report small, but jobs that ask
    for a whole node's CPU are common, and a node rounded 1/32 under its 128 CPUs hosts none of them
    (tests/simulate/test_refusals.py's fleet: 0.93 of the GPUs allocated, 0.98 exact). Nodes alike
    share a class anyway, and there are never more classes than nodes."""
    counts: dict[tuple[int, int, int], int] = {}
    for free, cpu, mem in whole:
        if free > 0:
            key = (whole_bucket(free), cpu, mem)
            counts[key] = counts.get(key, 0) + 1
    for free_milli, cpu, mem in shared:
        key = (shared_bucket(free_milli), cpu, mem)
        counts[key] = counts.get(key, 0) + 1
    return tuple(sorted((b, c, m, n) for (b, c, m), n in counts.items()))


def whole_bucket(whole_free: int) -> int:
    """`AcceleratorPool.after_take`'s name for a whole device of a node with `whole_free` whole devices free."""
    return whole_free


class _Room:
    """Host room through a take: the nodes that took replicas have that much less CPU and memory.

    Which node of a bucket took them is not known. A whole-GPU bucket keeps its room (optimistic:
    the next node of an 8-GPU bucket is most likely as roomy). The other shared GPUs with the same
    free part get at most what the node that took the fraction has left (pessimistic): they are
    often that node's own GPUs, and on 1-GPU nodes the optimistic guess sent fraction after
    fraction to nodes whose CPU was gone (synthetic fractional mix of bench/fgd.py, 8 clusters:
    107 refusals for 10,214 placements, 26 with this). The bucket or shared GPUs the node lands
    in get at most what it had left. The agent's next report has the truth.
    """

    __slots__ = ("cpu", "mem", "shared", "whole")

    def __init__(self, pool: AcceleratorPool, cpu: int, mem: int) -> None:
        self.cpu, self.mem = cpu, mem
        self.whole: list[tuple[int, int]] | None = list(pool.host_room) if pool.host_room else None
        self.shared: dict[int, tuple[int, int]] | None = (
            {f: (c, m) for f, c, m in pool.shared_room} if pool.shared_room else None)

    def hosts(self, bucket: int, replicas: int) -> bool:
        """Whether the best node of a whole-free bucket has room for `replicas` replicas."""
        return self.fits(bucket) >= replicas

    def fits(self, bucket: int) -> int:
        """Replicas the best node of a whole-free bucket has host room for (many when unknown)."""
        if self.whole is None or bucket >= len(self.whole):
            return 1 << 30
        c, m = self.whole[bucket]
        return min(c // self.cpu if self.cpu else 1 << 30, m // self.mem if self.mem else 1 << 30)

    def shared_hosts(self, free: int) -> bool:
        got = self.shared_of(free)
        return got is None or (got[0] >= self.cpu and got[1] >= self.mem)

    def shared_of(self, free: int) -> tuple[int, int] | None:
        return self.shared.get(free) if self.shared is not None else None

    def move(self, src: int, dst: int, replicas: int) -> tuple[int, int] | None:
        """A node of bucket `src` took `replicas` replicas and now has `dst` whole GPUs free;
        returns its host room after that (None when not reported)."""
        if self.whole is None or src >= len(self.whole):
            return None
        c, m = self.whole[src]
        left = (max(0, c - self.cpu * replicas), max(0, m - self.mem * replicas))
        old = self.whole[dst]
        self.whole[dst] = (max(old[0], left[0]), max(old[1], left[1]))
        return left

    def share(self, host: tuple[int, int] | None, free: int, replicas: int) -> None:
        """A GPU of a node with `host` room now has `free` milli-GPUs free (after `replicas` more)."""
        if host is None or self.shared is None and self.whole is None:
            return
        if self.shared is None:
            self.shared = {}
        left = (max(0, host[0] - self.cpu * replicas), max(0, host[1] - self.mem * replicas))
        old = self.shared.get(free, (0, 0))
        self.shared[free] = (max(old[0], left[0]), max(old[1], left[1]))

    def whole_room(self) -> tuple[tuple[int, int], ...]:
        return tuple(self.whole) if self.whole is not None else ()

    def shared_room(self, shared: dict[int, int]) -> tuple[tuple[int, int, int], ...]:
        if self.shared is None:
            return ()
        return tuple(sorted((f, *self.shared.get(f, (0, 0))) for f, n in shared.items() if n))


_UNKNOWN_ROOM = 1 << 62  # the room of nodes a pool's classes do not count: not checked


def _hosts(cpu_free: int, mem_free: int, cpu: int, mem: int) -> int:
    """Replicas of `cpu` / `mem` each that a node with this free CPU and memory has room for."""
    return min(cpu_free // cpu if cpu else _UNKNOWN_ROOM, mem_free // mem if mem else _UNKNOWN_ROOM)


_CAPACITY_BY_ID: dict[tuple[int, int, int, int, int, int], tuple[object, object, object, int]] = {}
_CAPACITY_BY_ID_MAX = 1 << 14  # as many as the memo by value below holds, of the same objects


def _classed_capacity_of(hist: tuple[int, ...], shared: tuple[tuple[int, int], ...], classes: tuple[RoomClass, ...],
                         milli: int, cpu: int, mem: int) -> int:
    """`_classed_capacity`, first by the identity of the pool's state: a cycle asks the same pool object
    for every job of a shape, and hashing its thousand classes for the lookup was a sixth of the cycle.
    The entry holds the objects, so their ids are not reused while it lives; the memo is emptied when
    full. A miss falls back to the memo by value (new pool objects of a state seen before)."""
    key = (id(hist), id(shared), id(classes), milli, cpu, mem)
    got = _CAPACITY_BY_ID.get(key)
    if got is not None and got[0] is hist and got[1] is shared and got[2] is classes:
        return got[3]
    value = _classed_capacity(hist, shared, classes, milli, cpu, mem)
    if len(_CAPACITY_BY_ID) >= _CAPACITY_BY_ID_MAX:
        _CAPACITY_BY_ID.clear()
    _CAPACITY_BY_ID[key] = (hist, shared, classes, value)
    return value


@lru_cache(maxsize=1 << 14)  # a pool is asked again for every job of the same shape; the classes are many
def _classed_capacity(hist: tuple[int, ...], shared: tuple[tuple[int, int], ...], classes: tuple[RoomClass, ...],
                      milli: int, cpu: int, mem: int) -> int:
    """`replica_capacity` from room classes: each node (or shared device) holds as many replicas as both
    its devices and its host's CPU and memory allow. Nodes and devices no class counts are not checked."""
    counted: dict[int, int] = {}
    total = 0
    per_gpu = MILLI // milli if milli % MILLI else 0
    g = milli // MILLI
    shared_n = dict(shared) if per_gpu else {}
    top = len(hist)
    for bucket, c, m, n in classes:  # the hot loop of a cycle over a busy member: spelled out
        if bucket < 0:
            held = (-bucket) // milli if per_gpu else 0
            size = shared_n.get(-bucket, 0)
        else:
            held = bucket * per_gpu if per_gpu else bucket // g
            size = hist[bucket] if bucket < top else 0
        if not held:
            continue  # holds none whatever its room (nor does the rest of its bucket, counted below)
        seen = counted.get(bucket, 0)
        if n > size - seen:  # never more nodes than the histogram has
            n = size - seen
            if n <= 0:
                continue
        counted[bucket] = seen + n
        hosts = c // cpu if cpu else _UNKNOWN_ROOM
        if mem and m // mem < hosts:
            hosts = m // mem
        total += n * (held if held < hosts else hosts)
    for i in range(1, len(hist)):
        rest = hist[i] - counted.get(whole_bucket(i), 0)
        if rest > 0:
            total += rest * (i * per_gpu if per_gpu else i // g)
    if per_gpu:
        for f, n in shared:
            rest = n - counted.get(shared_bucket(f), 0)
            if rest > 0:
                total += rest * (f // milli)
    return total


_INDEX_BY_ID: dict[int, tuple[tuple[RoomClass, ...], dict[int, tuple[dict[tuple[int, int], int], int]]]] = {}
_INDEX_BY_ID_MAX = 1 << 12  # pool states; a cycle's what-ifs read the index of the pools it scores, a few at a time


def _bucket_index(classes: tuple[RoomClass, ...]) -> dict[int, tuple[dict[tuple[int, int], int], int]]:
    """A pool's classes by bucket: (CPU, memory) -> nodes, and the nodes they count. Kept by the identity of
    the classes (holding them, so the id is not reused; emptied when full): the fragmentation score takes
    a what-if per bucket of a pool, and each read the touched buckets' classes out of the thousand anew."""
    got = _INDEX_BY_ID.get(id(classes))
    if got is not None and got[0] is classes:
        return got[1]
    index: dict[int, tuple[dict[tuple[int, int], int], int]] = {}
    for b, c, m, n in classes:
        of, counted = index.get(b, ({}, 0))
        of[(c, m)] = of.get((c, m), 0) + n
        index[b] = (of, counted + n)
    if len(_INDEX_BY_ID) >= _INDEX_BY_ID_MAX:
        _INDEX_BY_ID.clear()
    _INDEX_BY_ID[id(classes)] = (classes, index)
    return index


class _Classes:
    """A pool's room classes through a take: the node that takes replicas moves to the class of what it
    has left, in whole devices, shared devices and host room alike, so the next replica of the cycle
    sees it as it is (`AcceleratorPool.room_classes`).

    Which node of a class takes a replica does not matter (they are alike); which class does is the
    member's choice. The model takes the class that holds the most of the replicas, and of those the
    tightest: best fit on the host too, as kube-scheduler's MostAllocated does (docs/kubernetes.md),
    keeping roomy nodes for replicas that need the room. A node's other shared devices keep their
    class: which node holds them is not reported. The agent's next report has the truth.

    Only the buckets a take touches are copied into dicts (`_of`), from the pool's index of its classes by
    bucket (`_bucket_index`): a pool of a thousand nodes may have a thousand classes, and the
    fragmentation score takes a what-if per bucket of every pool it scores.
    """

    __slots__ = ("by", "classes", "counts", "cpu", "hist", "mem", "moved", "shared", "shared_before")

    def __init__(self, classes: tuple[RoomClass, ...], hist: tuple[int, ...], shared: tuple[tuple[int, int], ...],
                 cpu: int, mem: int) -> None:
        self.cpu, self.mem = cpu, mem
        self.classes, self.hist = classes, hist
        self.counts = list(hist)
        self.shared = dict(shared)
        self.shared_before = dict(shared)
        self.by: dict[int, dict[tuple[int, int], int]] = {}  # the touched buckets' classes
        self.moved: dict[tuple[int, int, int], int] = {}  # (bucket, CPU, memory) -> nodes gained (`moves`)

    def _of(self, bucket: int) -> dict[tuple[int, int], int]:
        """A bucket's classes, read on first touch; nodes (devices) the pool's classes leave out of the
        bucket are a class of unknown room."""
        of = self.by.get(bucket)
        if of is not None:
            return of
        got = _bucket_index(self.classes).get(bucket)
        of = self.by[bucket] = dict(got[0]) if got is not None else {}
        counted = got[1] if got is not None else 0
        if bucket > 0:
            size = self.hist[bucket] if bucket < len(self.hist) else 0
        else:
            size = self.shared_before.get(-bucket, 0) if bucket else 0
        if size > counted:
            of[(_UNKNOWN_ROOM, _UNKNOWN_ROOM)] = size - counted
        return of

    def _pick(self, bucket: int, want: int) -> tuple[tuple[int, int], int] | None:
        """The class of `bucket` to take from, and how many replicas (at most `want`) one of its nodes holds."""
        best: tuple[tuple[int, int], int] | None = None
        for room, n in self._of(bucket).items():
            if n <= 0:
                continue
            held = _hosts(room[0], room[1], self.cpu, self.mem)
            if held > want:
                held = want
            if held > 0 and (best is None or held > best[1] or held == best[1] and room < best[0]):
                best = (room, held)
        return best

    def _move(self, src: int, room: tuple[int, int], dst: int | None, replicas: int, nodes: int) -> tuple[int, int]:
        """`nodes` nodes (or devices) of class `room` in bucket `src` took `replicas` replicas each and are
        now in bucket `dst` (none: a shared device now full); returns the room each has left."""
        of = self._of(src)
        of[room] -= nodes
        if not of[room]:
            del of[room]
        key = (src, room[0], room[1])
        self.moved[key] = self.moved.get(key, 0) - nodes
        left = (max(0, room[0] - self.cpu * replicas), max(0, room[1] - self.mem * replicas))
        if dst is not None:
            self._add(dst, left, nodes)
        return left

    def _add(self, bucket: int, room: tuple[int, int], n: int) -> None:
        of = self._of(bucket)
        of[room] = of.get(room, 0) + n
        key = (bucket, room[0], room[1])
        self.moved[key] = self.moved.get(key, 0) + n

    def take_whole(self, g: int, replicas: int, model: str) -> tuple[int, ...]:
        """Whole-device replicas of `g` devices, fullest nodes first; returns nodes_by_free after."""
        counts, left = self.counts, replicas
        for free in range(g, len(counts)):
            while left and counts[free]:
                got = self._pick(whole_bucket(free), min(free // g, left))
                if got is None:
                    break  # no node of this bucket has the room for a replica
                room, per = got
                nodes = min(self._of(whole_bucket(free))[room], left // per)
                counts[free] -= nodes
                counts[free - per * g] += nodes
                self._move(whole_bucket(free), room, whole_bucket(free - per * g), per, nodes)
                left -= per * nodes
        if left:
            raise ValueError(f"{replicas} x {g} GPUs do not fit in pool {model}")
        return tuple(counts)

    def take_fraction(self, milli: int, replicas: int, bucket: int, model: str
                      ) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
        """Fractional replicas, best fit: the fullest shared device that holds one, then whole devices
        from the node with the fewest free (filling one device before the next); only `bucket` when one
        is named (`AcceleratorPool.after_take`). Returns (nodes_by_free, shared_devices) after."""
        counts, shared, left = self.counts, self.shared, replicas
        for free in sorted(shared) if bucket <= 0 else ():
            if free < milli or (bucket and shared_bucket(free) != bucket):
                continue
            while left and shared.get(free, 0):
                got = self._pick(shared_bucket(free), min(free // milli, left))
                if got is None:
                    break
                room, per = got
                devices = min(self._of(shared_bucket(free))[room], left // per)
                rest = free - per * milli
                shared[free] -= devices
                if rest:
                    shared[rest] = shared.get(rest, 0) + devices
                self._move(shared_bucket(free), room, shared_bucket(rest) if rest else None, per, devices)
                left -= per * devices
            if not left:
                break
        per_gpu = MILLI // milli
        for free in range(1, len(counts)) if bucket >= 0 else ():
            if bucket and whole_bucket(free) != bucket:
                continue
            while left and counts[free]:
                got = self._pick(whole_bucket(free), min(left, free * per_gpu))
                if got is None:
                    break
                room, on_node = got
                gpus = -(-on_node // per_gpu)  # devices it opens, filling one before the next
                counts[free] -= 1
                counts[free - gpus] += 1
                host = self._move(whole_bucket(free), room, whole_bucket(free - gpus) if free > gpus else None,
                                  on_node, 1)
                last_rest = MILLI - (on_node - (gpus - 1) * per_gpu) * milli
                full_rest = MILLI - per_gpu * milli
                for rest, n in ((full_rest, gpus - 1), (last_rest, 1)):
                    if rest and n:
                        shared[rest] = shared.get(rest, 0) + n
                        self._add(shared_bucket(rest), host, n)
                left -= on_node
            if not left:
                break
        if left:
            raise ValueError(f"{replicas} x {milli}m GPU do not fit in pool {model}")
        return tuple(counts), tuple(sorted((f, n) for f, n in shared.items() if n))

    def moves(self) -> tuple[RoomClass, ...]:
        """The take's change to the classes (`AcceleratorPool.class_moves`), in the order it made them, as
        `out` counts them (nodes with no whole device free are left out); nodes that left a class and
        came back cancel out."""
        return tuple((b, c, m, n) for (b, c, m), n in self.moved.items() if n and b)

    def out(self) -> tuple[RoomClass, ...]:
        """The classes after the take, as `AcceleratorPool.room_classes` (nodes with no whole device free
        are left out: nothing reads them): the untouched buckets' slices as they were, the touched ones
        rebuilt, in bucket order."""
        out: list[RoomClass] = []
        last = 0
        for bucket in sorted(self.by):
            lo = bisect_left(self.classes, (bucket,))
            out.extend(self.classes[last:lo])
            last = max(last, bisect_left(self.classes, (bucket + 1,)))
            if bucket:
                out.extend(sorted((bucket, c, m, n) for (c, m), n in self.by[bucket].items() if n))
        out.extend(self.classes[last:])
        return tuple(out)


@lru_cache(maxsize=1 << 16)
def _hosted(hist: tuple[int, ...], room: tuple[tuple[int, int], ...], cpu: int, mem: int, g: int) -> tuple[int, ...]:
    """The histogram as far as host room allows: a bucket whose best node cannot host a replica
    counts no nodes, one that hosts fewer replicas than its GPUs allow counts fewer GPUs."""
    out = list(hist)
    for i, n in enumerate(hist):
        if not n or i >= len(room):
            continue
        c, m = room[i]
        per = min(i // g, c // cpu if cpu else i, m // mem if mem else i)
        if per < i // g:
            out[i] = 0
            out[per * g] += n
    return tuple(out)


# Not memoised: hashing the histogram for a cache costs what the loop does (compiled, setup.py).
def _gang_capacity(hist: tuple[int, ...], g: int) -> int:
    total = 0
    for i in range(g, len(hist)):
        total += (i // g) * hist[i]
    return total


def _fraction_capacity(hist: tuple[int, ...], shared: tuple[tuple[int, int], ...], milli: int) -> int:
    whole = 0
    for i in range(1, len(hist)):
        whole += i * hist[i]
    fractions = 0
    for f, n in shared:
        fractions += (f // milli) * n
    return fractions + whole * (MILLI // milli)
