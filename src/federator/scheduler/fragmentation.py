"""FGD's expected unusable GPU of a pool, from the resource model alone.

The measure of "Beware of Fragmentation" (Weng et al., ATC'23), computed
over what an agent reports instead of over nodes: per pool, how many nodes
have i whole GPUs free (and, with the node-fit model, the most free CPU and
memory among them), and the free milli-GPUs of each shared GPU. For one
request shape the unusable part is

- whole-GPU shapes of g GPUs: the whole free GPUs on nodes with fewer than g
  free (or whose host room is too small), and every shared GPU's free part;
- fractional shapes of m milli-GPUs: shared GPUs with less than m free, and
  every free GPU if no GPU has m free;

averaged over the cycle's demand (demand.py), plus every free GPU for the
share of requests that cannot use the model. A placement is scored by how
much it grows that expectation (FGD's gradient); the histogram's own best-fit
arithmetic (`AcceleratorPool.take_milli`) stands for where the cluster binds it.
"""

from __future__ import annotations

from functools import lru_cache

from federator.model import MILLI, AcceleratorPool
from federator.scheduler.demand import Shape


@lru_cache(maxsize=1 << 16)
def expected_fragment(hist: tuple[int, ...], shared: tuple[tuple[int, int], ...], room: tuple[tuple[int, int], ...],
                      shapes: tuple[Shape, ...], cannot: float) -> float:
    """Expected unusable milli-GPUs of a pool (see the module docstring). `room[i]` is the most free
    (CPU milli, memory bytes) among the nodes with i whole GPUs free; () when not reported."""
    whole_free = [i * n * MILLI for i, n in enumerate(hist)]
    shared_free = sum(f * n for f, n in shared)
    total = sum(whole_free) + shared_free
    out = cannot * total
    for milli, gpus, cpu, mem, weight in shapes:
        if milli >= MILLI:
            frag = shared_free
            for i, amount in enumerate(whole_free):
                if amount and (i < gpus or (room and i < len(room) and (room[i][0] < cpu or room[i][1] < mem))):
                    frag += amount
        else:
            usable_shared = any(f >= milli and n for f, n in shared)
            if not usable_shared and not any(whole_free[1:]):
                frag = total
            else:
                frag = sum(f * n for f, n in shared if f < milli)
        out += weight * frag
    return out


def fragment_growth(pool: AcceleratorPool, milli: int, replicas: int, shapes: tuple[Shape, ...], cannot: float,
                    cache: dict[tuple[object, ...], float] | None = None) -> float:
    """How much binding `replicas` replicas of `milli` milli-GPUs grows the pool's expected fragment,
    per milli-GPU bound: -1 when all it takes was unusable anyway, 0 when it leaves no new
    fragment, positive when it strands capacity. `cache` (one per demand) saves recomputing it
    for pools whose resource model has not changed."""
    key = (pool.accelerator_model, pool.nodes_by_free, pool.shared_devices, pool.host_room, milli, replicas)
    if cache is not None:
        got = cache.get(key)
        if got is not None:
            return got
    before = _expected(pool, shapes, cannot)
    try:
        growth = (_expected(pool.take_milli(milli, replicas), shapes, cannot) - before) / (milli * replicas)
    except ValueError:
        growth = float("inf")
    if cache is not None:
        cache[key] = growth
    return growth


def _expected(pool: AcceleratorPool, shapes: tuple[Shape, ...], cannot: float) -> float:
    return expected_fragment(pool.nodes_by_free, pool.shared_devices, pool.host_room, shapes, cannot)
