"""Room classes (AcceleratorPool.room_classes): node fit for every node of a bucket, counted by class, and
moved by a take, so the cycle's later replicas see the node that took one as it is."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from federator.model import AcceleratorPool
from federator.model.pool_room import PoolState, room_classes, shared_bucket, whole_bucket
from federator.scheduler.demand import Shape
from federator.scheduler.fragmentation import GrowthCache, expected_fragment, fragment_growth

GIB = 2**30


def test_a_bucket_with_a_tight_and_a_roomy_node_counts_each_nodes_replicas() -> None:
    """Two nodes with 4 GPUs free: one has the CPU for one 1-GPU replica, the other for four. One node's
    room (the roomy one) said 8; the classes say 5, and after one replica lands on the tight node (best
    fit on the host too), 4."""
    classes = ((whole_bucket(4), 4_000, 64 * GIB, 1), (whole_bucket(4), 16_000, 64 * GIB, 1))
    pool = AcceleratorPool("H100", (0, 0, 0, 0, 2), 8, 8, host_room=((0, 0),) * 4 + ((16_000, 64 * GIB),),
                           room_classes=classes)
    assert pool.replica_capacity(1_000, 4_000, GIB) == 5
    assert AcceleratorPool("H100", (0, 0, 0, 0, 2), 8, 8, host_room=pool.host_room).replica_capacity(
        1_000, 4_000, GIB) == 8  # what one node's room said
    after = pool.take_milli(1_000, 1, cpu_milli=4_000, memory_bytes=GIB)
    assert after.nodes_by_free == (0, 0, 0, 1, 1)
    assert after.room_classes == ((whole_bucket(3), 0, 63 * GIB, 1), (whole_bucket(4), 16_000, 64 * GIB, 1))
    assert after.replica_capacity(1_000, 4_000, GIB) == 4


def test_a_gang_takes_the_nodes_that_hold_the_most_of_it() -> None:
    """Eight 1-GPU replicas of 8 CPUs: the roomy node holds 4, the tight ones 1 each. A take fills the roomy
    node first, then one tight node per replica, and moves each node to what it has left."""
    classes = ((whole_bucket(4), 8_000, GIB, 4), (whole_bucket(4), 32_000, GIB, 1))
    pool = AcceleratorPool("H100", (0, 0, 0, 0, 5), 20, 20, room_classes=classes)
    assert pool.replica_capacity(1_000, 8_000) == 8
    after = pool.take_milli(1_000, 8, cpu_milli=8_000)
    assert after.nodes_by_free == (1, 0, 0, 4, 0)
    assert after.room_classes == ((whole_bucket(3), 0, GIB, 4),)  # the roomy node is full (bucket 0: left out)
    assert after.replica_capacity(1_000, 8_000) == 0
    with pytest.raises(ValueError, match="do not fit"):
        pool.take_milli(1_000, 9, cpu_milli=8_000)


def test_a_shared_device_moves_with_its_node_and_the_roomy_one_stays_roomy() -> None:
    """Two shared GPUs with 500m free on two nodes, one with 8 CPUs free and one with 2. A 250m fraction
    of 6 CPUs fits only on the first; after it, that GPU (250m left) has a 2-CPU node, and the other GPU
    still its own 2 CPUs: no second such fraction fits, while one of 1 CPU fits on each."""
    classes = ((shared_bucket(500), 2_000, 64 * GIB, 1), (shared_bucket(500), 8_000, 64 * GIB, 1))
    pool = AcceleratorPool("L4", (2,), 2, 2, shared_devices=((500, 2),), room_classes=classes)
    assert pool.replica_capacity(250, 6_000, GIB) == 1
    after = pool.take_milli(250, 1, cpu_milli=6_000, memory_bytes=GIB)
    assert after.shared_devices == ((250, 1), (500, 1))
    assert after.room_classes == ((shared_bucket(500), 2_000, 64 * GIB, 1), (shared_bucket(250), 2_000, 63 * GIB, 1))
    assert after.replica_capacity(250, 6_000, GIB) == 0
    assert after.replica_capacity(250, 1_000, GIB) == 3  # 2 on the 500m GPU, 1 on the 250m one


def test_a_fraction_that_opens_a_whole_device_gives_its_shared_rest_the_nodes_room() -> None:
    classes = ((whole_bucket(2), 8_000, 16 * GIB, 1),)
    pool = AcceleratorPool("L4", (0, 0, 1), 2, 2, room_classes=classes)
    after = pool.take_milli(300, 1, cpu_milli=2_000, memory_bytes=4 * GIB)
    assert (after.nodes_by_free, after.shared_devices) == ((0, 1, 0), ((700, 1),))
    assert after.room_classes == ((shared_bucket(700), 6_000, 12 * GIB, 1), (whole_bucket(1), 6_000, 12 * GIB, 1))
    with pytest.raises(ValueError, match="do not fit"):  # no node of the bucket has the CPU
        pool.after_take(300, 1, cpu_milli=9_000, bucket=whole_bucket(2))


def test_nodes_no_class_counts_are_not_checked() -> None:
    """A pool whose classes leave a bucket out (a hand-built one; the wire refuses it) counts that bucket's
    nodes as roomy, as a pool with no node fit at all does."""
    pool = AcceleratorPool("H100", (0, 1, 1), 3, 3, room_classes=((whole_bucket(2), 0, 0, 1),))
    assert pool.replica_capacity(1_000, 1_000) == 1  # the 1-GPU node's, unchecked; the 2-GPU node has no CPU
    assert pool.take_milli(1_000, 1, cpu_milli=1_000).nodes_by_free == (1, 0, 1)


def test_an_agents_classes_count_alike_nodes_once_and_leave_full_nodes_out() -> None:
    got = room_classes([(2, 16_000, 64 * GIB), (2, 16_000, 64 * GIB), (2, 16_001, 64 * GIB), (0, 1, 1)],
                       [(250, 3_000, GIB)])
    assert got == ((shared_bucket(250), 3_000, GIB, 1), (whole_bucket(2), 16_000, 64 * GIB, 2),
                   (whole_bucket(2), 16_001, 64 * GIB, 1))


def test_the_fragment_counts_the_share_of_a_buckets_nodes_that_cannot_host_a_shape() -> None:
    """Two 1-GPU-free nodes, one with the CPU for a 4-CPU fraction and one without: half the bucket's free
    GPUs are unusable for it. One node's room (the roomy one) counted none."""
    shape = ((500, 1, 4_000, 0, 1.0),)
    classes = ((whole_bucket(1), 1_000, 0, 1), (whole_bucket(1), 8_000, 0, 1))
    assert expected_fragment((0, 2), (), ((0, 0), (8_000, 0)), shape, 0.0, (), classes) == 1_000
    assert expected_fragment((0, 2), (), ((0, 0), (8_000, 0)), shape, 0.0) == 0


def test_the_cycles_memo_of_class_terms_gives_what_a_fresh_count_gives() -> None:
    """The score keeps a node's term per class for the cycle (`GrowthCache.terms`): takes scored one after
    another, over states that share classes, reuse them and score as a fresh cycle would."""
    shapes = ((500, 1, 4_000, 0, 0.5), (2_000, 2, 16_000, 0, 0.5))
    pool = AcceleratorPool("L4", (0, 1, 2), 5, 5, shared_devices=((500, 1),), room_classes=(
        (shared_bucket(500), 2_000, 0, 1), (whole_bucket(1), 8_000, 0, 1), (whole_bucket(2), 8_000, 0, 1),
        (whole_bucket(2), 32_000, 0, 1)))
    cache = GrowthCache()
    states = [pool, pool.take_milli(500, 1, cpu_milli=4_000), pool.take_milli(2_000, 1, cpu_milli=16_000)]
    takes = [(500, 1, 4_000), (1_000, 1, 8_000), (2_000, 1, 16_000), (1_000, 2, 4_000)]
    for p in states:
        for milli, replicas, cpu in takes:
            assert fragment_growth(p, milli, replicas, shapes, 0.1, cache, cpu) == pytest.approx(
                fragment_growth(p, milli, replicas, shapes, 0.1, GrowthCache(), cpu))
    assert cache.terms["L4"]  # the memo was read, not bypassed
    # by hand, the first: 500m shape: the 500m GPU's node (2 CPUs) strands 500; 2-GPU shape: the 8-CPU 2-free node
    assert expected_fragment((0, 1, 2), ((500, 1),), (), shapes, 0.0, (), pool.room_classes) == pytest.approx(
        0.5 * 500 + 0.5 * (500 + 1_000 + 2_000))


def test_classes_never_count_more_nodes_than_the_histogram_has() -> None:
    """A pool whose histogram was changed without its classes (the server's 'hold everything' on a stale
    report) offers what the histogram has, not what the classes still say."""
    pool = AcceleratorPool("H100", (1, 0, 0, 0, 0), 4, 4, room_classes=((whole_bucket(4), 64_000, GIB, 1),))
    assert pool.replica_capacity(1_000, 1_000) == 0
    assert AcceleratorPool("H100", (0, 0, 0, 0, 1), 4, 4, room_classes=pool.room_classes).replica_capacity(
        1_000, 1_000) == 4


def _random_classed_pool(rng: random.Random) -> AcceleratorPool:
    hist = tuple(rng.randint(0, 4) for _ in range(rng.randint(2, 9)))
    shared = tuple(sorted({f: rng.randint(1, 3) for f in rng.sample([100, 250, 500, 700, 900], rng.randint(0, 3))}
                          .items()))
    nodes = [(i, rng.randint(0, 16) * 1_000, rng.randint(0, 16) * GIB) for i, n in enumerate(hist) for _ in range(n)]
    devices = [(f, rng.randint(0, 16) * 1_000, rng.randint(0, 16) * GIB) for f, n in shared for _ in range(n)]
    return AcceleratorPool("L4", hist, 99, 99, shared_devices=shared, room_classes=room_classes(nodes, devices))


def test_the_score_of_a_take_from_the_classes_it_moves_is_the_growth_of_the_whole_fragment() -> None:
    """The score reads a take's growth from the few classes it moves (`class_moves`), not from the fragment
    of the thousand-class pool after it. Over random pools and takes, that is the growth of the whole
    fragment (`expected_fragment` before and after `after_take`), and for one fraction the least growth
    over the buckets that hold it; and the moves are what turns the classes before into the classes after."""
    rng = random.Random(12)
    checked = 0
    for _ in range(1_500):
        pool = _random_classed_pool(rng)
        milli = rng.choice([100, 250, 500, 1_000, 2_000, 4_000])
        replicas = rng.choice([1, 1, 2, 3])
        cpu, mem = rng.randint(0, 6) * 1_000, rng.randint(0, 4) * GIB
        shapes = tuple((m, max(1, m // 1_000), rng.randint(0, 8) * 1_000, rng.randint(0, 8) * GIB, rng.random())
                       for m in rng.sample([100, 250, 500, 1_000, 2_000, 4_000, 8_000], rng.randint(1, 4)))
        before = _whole_fragment((pool.nodes_by_free, pool.shared_devices, (), (), pool.room_classes), shapes)
        if replicas == 1 and milli < 1_000:
            buckets = [shared_bucket(f) for f, _ in pool.shared_devices if f >= milli]
            buckets += [whole_bucket(i) for i in range(1, len(pool.nodes_by_free)) if pool.nodes_by_free[i]]
        else:
            buckets = [0]
        want = float("inf")
        for bucket in buckets:
            try:
                after = pool.after_take(milli, replicas, cpu_milli=cpu, memory_bytes=mem, bucket=bucket)
            except ValueError:
                continue
            want = min(want, (_whole_fragment(after, shapes) - before) / (milli * replicas))
            hist, shared, moves = pool.class_moves(milli, replicas, cpu_milli=cpu, memory_bytes=mem, bucket=bucket)
            assert (hist, shared) == after[:2]
            assert _known(Counter({c[:3]: c[3] for c in pool.room_classes})
                          + _signed(moves)) == _known(Counter({c[:3]: c[3] for c in after[4]}))
            checked += 1
        got = fragment_growth(pool, milli, replicas, shapes, 0.2, GrowthCache(), cpu, mem)
        assert got == pytest.approx(want, rel=1e-9, abs=1e-9)
    assert checked > 1_000


def _whole_fragment(state: PoolState, shapes: tuple[Shape, ...]) -> float:
    return expected_fragment(state[0], state[1], (), shapes, 0.2, (), state[4])


def _signed(moves: tuple[tuple[int, int, int, int], ...]) -> Counter[tuple[int, int, int]]:
    out: Counter[tuple[int, int, int]] = Counter()
    for b, c, m, n in moves:
        out[(b, c, m)] += n
    return out


def _known(counts: Counter[tuple[int, int, int]]) -> dict[tuple[int, int, int], int]:
    """Classes of known room with nodes in them (a take reads the nodes its pool's classes leave out as a
    class of unknown room, which holds no term)."""
    return {k: n for k, n in counts.items() if n and k[1] < 1 << 61}
