"""The hand-written copies of the cycle's hot path (`with_state`, `after_bind`, `with_capacity`) are
`dataclasses.replace` over every field: a field added to the class and not copied fails here."""

from __future__ import annotations

import dataclasses
from typing import Any

from federator.model import AcceleratorPool, ClusterCapacity, ClusterInfo, ClusterState


def _all_set(cls: type, **values: Any) -> Any:
    """An instance with every field away from its default, so that a copy that drops one shows."""
    obj = cls(**values)
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        assert getattr(obj, f.name) != default, f"{cls.__name__}.{f.name}: give it a value here"
    return obj


POOL = _all_set(AcceleratorPool, accelerator_model="A100", nodes_by_free=(1, 2, 3), total_accelerators=24,
                allocatable_accelerators=20, shared_devices=((500, 1),), host_room=((1, 2), (3, 4), (5, 6)),
                shared_room=((500, 7, 8),), vendor="acme", memory_mib=81920, resource_name="acme.com/gpu",
                family="A", sharing="HAMi", unit_milli=1000, room_classes=((1, 2, 3, 1),),
                quota_held_accelerators=16, largest_node_accelerators=8)
CAPACITY = _all_set(ClusterCapacity, accelerator_pools=(POOL,), cpu_milli_allocatable=10, cpu_milli_free=9,
                    memory_bytes_allocatable=8, memory_bytes_free=7, node_cpu_milli_free_max=6,
                    node_memory_bytes_free_max=5, sequence=4, placement_ids=frozenset({"p"}),
                    workload_kinds=frozenset({"Job.batch"}), node_room=((1, 2, 3),),
                    left_out=(("nvidia.com/gpu", "unlabelled", 8),), largest_node_cpu_milli=12,
                    largest_node_memory_bytes=11)
CLUSTER = _all_set(ClusterInfo, name="c", region="r", state=ClusterState.LOST, labels=(("k", "v"),),
                   capacity=CAPACITY)


def test_a_pool_with_another_state_is_replace_of_the_state() -> None:
    got = POOL.with_state((0, 1), ((300, 2),), ((9, 9), (8, 8)), ((300, 1, 1),), ((1, 9, 9, 1),))
    assert got == dataclasses.replace(POOL, nodes_by_free=(0, 1), shared_devices=((300, 2),),
                                      host_room=((9, 9), (8, 8)), shared_room=((300, 1, 1),),
                                      room_classes=((1, 9, 9, 1),))


def test_a_capacity_after_a_bind_is_replace_of_what_a_bind_changes() -> None:
    other = dataclasses.replace(POOL, nodes_by_free=(3, 2, 1))
    got = CAPACITY.after_bind((other,), 1, 2, 3, 4)
    assert got == dataclasses.replace(CAPACITY, accelerator_pools=(other,), cpu_milli_free=1, memory_bytes_free=2,
                                      node_cpu_milli_free_max=3, node_memory_bytes_free_max=4)
    room = ((5, 6, 1),)
    assert CAPACITY.after_bind((other,), 1, 2, 3, 4, room) == dataclasses.replace(got, node_room=room)


def test_a_cluster_with_another_capacity_is_replace_of_the_capacity() -> None:
    other = dataclasses.replace(CAPACITY, sequence=99)
    assert CLUSTER.with_capacity(other) == dataclasses.replace(CLUSTER, capacity=other)
