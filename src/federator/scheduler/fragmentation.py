"""FGD's expected unusable GPU of a pool, from the resource model alone.

The measure of "Beware of Fragmentation" (Weng et al., ATC'23), computed
over what an agent reports instead of over nodes: per pool, how many nodes
have i whole GPUs free (and, with the node-fit model, the free CPU and memory
of the roomiest of them), and the free milli-GPUs of each shared GPU. For one
request shape the unusable part is

- whole-GPU shapes of g GPUs: the whole free GPUs on nodes with fewer than g
  free (or whose host room is too small), and every shared GPU's free part;
- fractional shapes of m milli-GPUs: shared GPUs with less than m free, shared
  GPUs and whole-GPU buckets whose best node has no CPU or memory for the shape
  (a fraction that takes a small node's CPU strands the rest of its GPU), and
  every free GPU if no GPU has m free;

averaged over the cycle's demand (demand.py), plus every free GPU for the
share of requests that cannot use the model. A placement is scored by how
much it grows that expectation (FGD's gradient). Where the cluster binds it is
the histogram's own arithmetic (`AcceleratorPool.after_take`, with the replica's
CPU and memory, so the host room shrinks): best fit for whole devices, and for
one fractional replica the bucket where it grows the expectation least, as
FGD's node binder chooses. The cycle's reservation of that replica takes the
same bucket (`fraction_bucket`), so the rest of the cycle is scored against the
pool as the member leaves it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federator.model import MILLI, AcceleratorPool
from federator.model.cluster import SHARING_MIG
from federator.model.pool_room import RoomClass, shared_bucket, whole_bucket

if TYPE_CHECKING:
    from federator.scheduler.demand import Shape


def expected_fragment(hist: tuple[int, ...], shared: tuple[tuple[int, int], ...], room: tuple[tuple[int, int], ...],
                      shapes: tuple[Shape, ...], cannot: float,
                      shared_room: tuple[tuple[int, int, int], ...] = (),
                      classes: tuple[RoomClass, ...] = ()) -> float:
    """Expected unusable milli-GPUs of a pool (see the module docstring). `room[i]` is the free
    (CPU milli, memory bytes) of one node (the roomiest) among the nodes with i whole GPUs free,
    `shared_room` the same per free part of a shared GPU; () when not reported. For a fractional
    shape, a shared GPU (or a bucket of whole GPUs) whose best node has no CPU or memory for it
    counts as unusable: a fraction that takes a small node's CPU strands the rest of its GPU.
    With room `classes` (AcceleratorPool.room_classes) that is counted per node: the share of a
    bucket's nodes that cannot host the shape, not all or nothing on its roomiest node."""
    if classes:
        return _classed_fragment(hist, shared, shapes, cannot, classes)
    whole_free = [i * n * MILLI for i, n in enumerate(hist)]
    below = [0]  # below[g]: the whole free GPUs on nodes with fewer than g free, which g-GPU work cannot use
    for amount in whole_free:
        below.append(below[-1] + amount)
    shared_free = sum(f * n for f, n in shared)
    total = below[-1] + shared_free
    out = cannot * total
    for milli, gpus, cpu, mem, weight in shapes:
        if milli >= MILLI:
            g = min(gpus, len(whole_free))
            frag = shared_free + below[g]
            for i in range(g, min(len(whole_free), len(room))):  # and the buckets whose best node has no room
                if whole_free[i] and (room[i][0] < cpu or room[i][1] < mem):
                    frag += whole_free[i]
        else:
            hosts = {f for f, c, m in shared_room if c >= cpu and m >= mem} if shared_room else None
            frag = sum(f * n for f, n in shared if f < milli or (hosts is not None and f not in hosts))
            if room:
                frag += sum(amount for i, amount in enumerate(whole_free)
                            if amount and i < len(room) and (room[i][0] < cpu or room[i][1] < mem))
            if frag >= total or (not any(f >= milli and n for f, n in shared) and not any(whole_free[1:])):
                frag = total
        out += weight * frag
    return out


def _classed_fragment(hist: tuple[int, ...], shared: tuple[tuple[int, int], ...], shapes: tuple[Shape, ...],
                      cannot: float, classes: tuple[RoomClass, ...]) -> float:
    """`expected_fragment` with room classes: a node's free GPUs (a shared GPU's free part) are unusable
    for a shape its host has no CPU or memory for, as FGD counts them per node.

    That is the fragment without host room, plus a term per class: the free milli-GPUs it holds that
    its host strands, weighted over the shapes. The parts are disjoint, so the sum never passes the
    pool's free total and needs no clamp; so a class's term depends on the class alone, which is what
    lets the score read a take from the few classes it moves (`_classed_growth`). This whole sum is the
    definition the score is held to; the cycle never computes it."""
    base = expected_fragment(hist, shared, (), shapes, cannot)
    return base + sum(cls[3] * _class_term(cls[0], cls[1], cls[2], shapes) for cls in classes)


def _class_term(bucket: int, c: int, m: int, shapes: tuple[Shape, ...]) -> float:
    """The expected milli-GPUs one node (or shared GPU) of a class holds that its host strands: for each
    shape it has the devices for but not the CPU or memory, its free part, weighted."""
    term = 0.0
    for milli, gpus, cpu, mem, weight in shapes:
        if c >= cpu and m >= mem:
            continue
        if bucket > 0 and (milli < MILLI or bucket >= gpus):
            term += weight * bucket * MILLI
        elif bucket < 0 and milli < MILLI and -bucket >= milli:
            term += weight * -bucket
    return term


class GrowthCache:
    """One cycle's memo of `fragment_growth` (the demand, so `shapes` and `cannot` of each model, is fixed).

    Within a cycle a pool object is scored again and again, for every request shape and every
    time its cluster changes, while only the pool a placement took from is new. The first level
    is keyed by the pool object itself (its id, checked with `is`, so a reused id never matches),
    which costs no hashing of histograms; on a miss the second level is keyed by the pool's
    resource model, shared by clusters whose pools are alike; and the expected fragment before a
    bind is kept per resource model, so a pool scored for several shapes computes it once.
    """

    __slots__ = ("before", "by_pool", "by_state", "terms")

    def __init__(self) -> None:
        # a take's (growth, bucket): the bucket a fraction binds to (`fraction_bucket`), 0 for best fit's
        self.by_pool: dict[tuple[int, int, int, int, int], tuple[AcceleratorPool, float, int]] = {}
        self.by_state: dict[tuple[object, ...], tuple[float, int]] = {}
        self.before: dict[tuple[object, ...], float] = {}
        self.terms: dict[str, dict[tuple[int, int, int], float]] = {}  # model -> (bucket, CPU, memory) -> a node's term


def fragment_growth(pool: AcceleratorPool, milli: int, replicas: int, shapes: tuple[Shape, ...], cannot: float,
                    cache: GrowthCache | None = None, cpu: int = 0, mem: int = 0) -> float:
    """How much binding `replicas` replicas of `milli` milli-GPUs grows the pool's expected fragment,
    per milli-GPU bound: -1 when all it takes was unusable anyway, 0 when it leaves no new
    fragment, positive when it strands capacity. `cache`: see GrowthCache (the same value, cheaper).
    A fraction on a MIG pool also strands the rest of its partition (`partition_waste`)."""
    return _memo(pool, milli, replicas, shapes, cannot, cache, cpu, mem)[0] + partition_waste(pool, milli)


def partition_waste(pool: AcceleratorPool, milli: int) -> float:
    """What one fractional replica strands inside the MIG partition it takes, per milli-device bound: the
    partition is its alone (`AcceleratorPool.take_milli`), so a 100m replica on a 3g.40gb (500m) leaves 400m
    that no other work can use until it ends, 4 per milli bound, and on a 1g.10gb (125m) 0.25. 0 for whole
    devices and for pools that are not MIG.

    The expected fragment counts a pool's partitions as devices, so it sees no difference between the
    profiles: the 100m went to the biggest partitions while every small one was free, and a 400m job that
    only those could serve then waited (outside QA, V11)."""
    if pool.sharing != SHARING_MIG or not 0 < milli < MILLI or pool.unit_milli <= milli:
        return 0.0
    return (pool.unit_milli - milli) / milli


def fraction_bucket(pool: AcceleratorPool, milli: int, shapes: tuple[Shape, ...], cannot: float,
                    cache: GrowthCache | None = None, cpu: int = 0, mem: int = 0) -> int:
    """Where the cycle reserves one fractional replica of `milli` in `pool`: the bucket `fragment_growth`
    scored it at, the one where it grows the expected fragment least (`_fraction_growth`); 0, best fit's,
    for whole devices, a MIG partition, or a pool with no bucket that holds it.

    Reserved at best fit's bucket (the fullest shared device that fits), the cycle's reckoning of the pool
    drifted from the member's, whose FGD binder takes the score's bucket: every later fraction of a long
    cycle was scored against host room as best fit would have left it, and GPUs were stranded on full hosts
    (synthetic `fractional` of bench/fgd.py, 1,000-pod cycles: 10.4 GPUs on full hosts, 5.5 with this,
    FGD's level; docs/benchmarks.md, rounds 24 to 26). Read from the score's memo: the cycle reserves in
    the pool it just scored, so this is a lookup."""
    if not 0 < milli < MILLI or pool.sharing == SHARING_MIG:
        return 0
    return _memo(pool, milli, 1, shapes, cannot, cache, cpu, mem)[1]


def _memo(pool: AcceleratorPool, milli: int, replicas: int, shapes: tuple[Shape, ...], cannot: float,
          cache: GrowthCache | None, cpu: int, mem: int) -> tuple[float, int]:
    """(growth, bucket) of a take (`_growth`), through the cycle's memo when there is one."""
    if not pool.host_room and not pool.shared_room and not pool.room_classes:
        cpu = mem = 0  # no host room reported: CPU and memory change nothing, so share the entry
    if cache is None:
        return _growth(pool, milli, replicas, shapes, cannot, GrowthCache(), cpu, mem)
    ident = (id(pool), milli, replicas, cpu, mem)
    got = cache.by_pool.get(ident)
    if got is not None and got[0] is pool:
        return got[1], got[2]
    growth, bucket = _growth(pool, milli, replicas, shapes, cannot, cache, cpu, mem)
    cache.by_pool[ident] = (pool, growth, bucket)
    return growth, bucket


def _growth(pool: AcceleratorPool, milli: int, replicas: int, shapes: tuple[Shape, ...], cannot: float,
            cache: GrowthCache, cpu: int = 0, mem: int = 0) -> tuple[float, int]:
    """The growth per milli-GPU bound, and the bucket a fraction binds to (0: best fit's)."""
    state = _state(pool)
    key = (*state, milli, replicas, cpu, mem)
    got = cache.by_state.get(key)
    if got is not None:
        return got
    if replicas == 1 and 0 < milli < MILLI and pool.sharing != SHARING_MIG:
        out = cache.by_state[key] = _fraction_growth(pool, state, milli, shapes, cannot, cache, cpu, mem)
        return out
    if pool.room_classes:
        try:
            growth = _classed_growth(pool, milli, replicas, shapes, cannot, cache, cpu, mem) / (milli * replicas)
        except ValueError:
            growth = float("inf")
        cache.by_state[key] = (growth, 0)
        return growth, 0
    try:
        hist, shared, room, shared_room, classes = pool.after_take(milli, replicas, cpu_milli=cpu, memory_bytes=mem)
    except ValueError:
        growth = float("inf")
    else:
        # the state after is what the cycle's reservation makes of the pool if this bind is chosen: kept as
        # that state's "before", so the bind's own follow-up scoring starts from it
        after = (pool.accelerator_model, hist, shared, room, shared_room, classes)
        growth = (_before(after, shapes, cannot, cache) - _before(state, shapes, cannot, cache)) / (milli * replicas)
    cache.by_state[key] = (growth, 0)
    return growth, 0


def _fraction_growth(pool: AcceleratorPool, state: tuple[Any, ...], milli: int, shapes: tuple[Shape, ...],
                     cannot: float, cache: GrowthCache, cpu: int, mem: int) -> tuple[float, int]:
    """`_growth` of one fractional replica as FGD binds it, and the bucket it binds to: the least growth
    over the buckets that hold it (a shared device with f >= milli free, or a whole device of a node with
    i free), not best fit's; on a tie the first (shared devices before whole ones); (inf, 0) if none
    holds it.

    FGD at node level weighs every place the replica may go; the pool's buckets are its resource model
    of them. Scored at best fit's bucket only, a pool whose best fit strands a sliver looked worse than
    it is, and the job went to a model FGD would not have chosen (synthetic `fractional` mix of
    bench/fgd.py, one cluster: 0.9866 of the GPUs allocated; 0.9895 with this; 0.9937 when the nodes
    chose the model). The cycle's reservation takes the same bucket (`fraction_bucket`)."""
    hist, shared = pool.nodes_by_free, pool.shared_devices
    buckets = [shared_bucket(f) for f, n in shared if f >= milli and n]
    buckets += [whole_bucket(i) for i in range(1, len(hist)) if hist[i]]
    best, chosen = float("inf"), 0
    if pool.room_classes:
        for bucket in buckets:
            try:
                growth = _classed_growth(pool, milli, 1, shapes, cannot, cache, cpu, mem, bucket)
            except ValueError:  # no node of the bucket has the host room
                continue
            if growth < best:
                best, chosen = growth, bucket
        return best / milli, chosen
    before = _before(state, shapes, cannot, cache)
    for bucket in buckets:
        try:
            after = pool.after_take(milli, 1, cpu_milli=cpu, memory_bytes=mem, bucket=bucket)
        except ValueError:  # no node of the bucket has the host room
            continue
        growth = _before((pool.accelerator_model, *after), shapes, cannot, cache) - before
        if growth < best:
            best, chosen = growth, bucket
    return best / milli, chosen


def _classed_growth(pool: AcceleratorPool, milli: int, replicas: int, shapes: tuple[Shape, ...], cannot: float,
                    cache: GrowthCache, cpu: int, mem: int, bucket: int = 0) -> float:
    """How much a take grows the expected fragment of a pool with room classes, in milli-GPUs (ValueError
    if it does not fit): the growth of the fragment without host room, plus each moved class's term
    times the nodes it gained or lost (`_classed_fragment`'s parts). A what-if over the few classes a
    take moves, not a sum over the pool's thousand; and the difference of two such sums, where only a
    few terms differ, is rounding noise that made equal binds look unequal."""
    hist, shared, moves = pool.class_moves(milli, replicas, cpu_milli=cpu, memory_bytes=mem, bucket=bucket)
    model = pool.accelerator_model
    growth = _before((model, hist, shared, (), (), ()), shapes, cannot, cache) \
        - _before((model, pool.nodes_by_free, pool.shared_devices, (), (), ()), shapes, cannot, cache)
    terms = cache.terms.setdefault(model, {})
    for b, c, m, n in moves:
        unit = terms.get((b, c, m))
        if unit is None:
            unit = terms[(b, c, m)] = _class_term(b, c, m, shapes)
        if unit:
            growth += n * unit
    return growth


def _state(pool: AcceleratorPool) -> tuple[Any, ...]:
    """What the expected fragment of a pool depends on (the cycle's demand aside): its resource model."""
    return (pool.accelerator_model, pool.nodes_by_free, pool.shared_devices, pool.host_room, pool.shared_room,
            pool.room_classes)


def _before(state: tuple[Any, ...], shapes: tuple[Shape, ...], cannot: float, cache: GrowthCache) -> float:
    """The expected fragment of a pool's resource model (`_state`), computed once per state in the cycle.
    Pools with room classes come here without them (`_classed_growth` adds the classes' part)."""
    value = cache.before.get(state)
    if value is None:
        _, hist, shared, room, shared_room, classes = state
        value = cache.before[state] = expected_fragment(hist, shared, room, shapes, cannot, shared_room, classes)
    return value
