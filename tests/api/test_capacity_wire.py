"""The capacity report on the wire: node fit (host room) survives the round trip and is checked."""

from __future__ import annotations

import pytest

from federator.api.convert import WireError, capacity_from_pb, capacity_to_pb
from federator.model import AcceleratorPool, ClusterCapacity


def test_host_room_round_trips() -> None:
    pool = AcceleratorPool(
        "H100",
        (1, 0, 2),
        16,
        16,
        shared_devices=((250, 3),),
        host_room=((0, 0), (0, 0), (64_000, 2**39)),
        shared_room=((250, 8_000, 2**35),),
    )
    cap = ClusterCapacity(accelerator_pools=(pool,), cpu_milli_allocatable=1, cpu_milli_free=1)
    back = capacity_from_pb(capacity_to_pb(cap)).accelerator_pools[0]
    assert back.host_room == pool.host_room and back.shared_room == pool.shared_room


def test_quota_held_round_trips() -> None:
    """The agent's count of free accelerators its member's quota holds back (Kueue) reaches the federator."""
    pool = AcceleratorPool("H100", (2, 0, 0, 0, 0, 0, 0, 0, 1), 24, 24, quota_held_accelerators=16)
    back = capacity_from_pb(capacity_to_pb(ClusterCapacity(accelerator_pools=(pool,)))).accelerator_pools[0]
    assert (back.free_accelerators, back.quota_held_accelerators) == (8, 16)


def test_the_largest_nodes_cpu_and_memory_round_trip() -> None:
    """What one replica could ever get on one node reaches the federator (its fleet check reads it)."""
    cap = ClusterCapacity(largest_node_cpu_milli=96_000, largest_node_memory_bytes=2**40)
    back = capacity_from_pb(capacity_to_pb(cap))
    assert (back.largest_node_cpu_milli, back.largest_node_memory_bytes) == (96_000, 2**40)


@pytest.mark.parametrize(("room", "shared_room", "field"), [
    (((1, 1),), (), "host_room: must have one entry per nodes_by_free entry (3), got 1"),
    (((0, 0), (0, 0), (-1, 0)), (), "must not be negative"),
    ((), ((1000, 1, 1),), "free_milli must be 1..999"),
], ids=["length", "negative", "free-milli"])
def test_bad_host_room_is_refused_naming_the_field(room: tuple[tuple[int, int], ...],
                                                   shared_room: tuple[tuple[int, int, int], ...], field: str) -> None:
    pool = AcceleratorPool("H100", (1, 0, 2), 16, 16, host_room=room, shared_room=shared_room)
    with pytest.raises(WireError, match="capacity.accelerator_pools\\[0\\]") as err:
        capacity_from_pb(capacity_to_pb(ClusterCapacity(accelerator_pools=(pool,))))
    assert field in str(err.value)


CLASSES = ((-250, 8_000, 2**35, 3), (2, 64_000, 2**39, 1), (2, 128_000, 2**39, 1))


def test_room_classes_round_trip_and_win_over_host_room() -> None:
    pool = AcceleratorPool("H100", (1, 0, 2), 16, 16, shared_devices=((250, 3),),
                           host_room=((0, 0), (0, 0), (64_000, 2**39)), room_classes=CLASSES)
    back = capacity_from_pb(capacity_to_pb(ClusterCapacity(accelerator_pools=(pool,)))).accelerator_pools[0]
    assert back.room_classes == CLASSES
    assert back.replica_capacity(1_000, 64_000) == 3  # the classes' 2 + 1, not one node's room twice (4)


def _pb_with(**room_class: int) -> object:
    """A report of the round-trip pool whose first class is replaced by `room_class`."""
    from federator.api.v1 import agent_pb2

    pool = AcceleratorPool("H100", (1, 0, 2), 16, 16, shared_devices=((250, 3),), room_classes=CLASSES)
    pb = capacity_to_pb(ClusterCapacity(accelerator_pools=(pool,)))
    classes = pb.accelerator_pools[0].room_classes
    first = classes[0]
    fields = {"free_accelerators": first.free_accelerators, "shared_free_milli": first.shared_free_milli,
              "cpu_milli": first.cpu_milli, "memory_bytes": first.memory_bytes, "count": first.count, **room_class}
    del classes[0]
    classes.insert(0, agent_pb2.RoomClass(**fields))
    return pb


@pytest.mark.parametrize(("room_class", "message"), [
    ({"count": 2}, "the classes of shared_free_milli 250 count 2 accelerators, shared_devices says 3"),
    ({"count": 0}, "room_classes[0]: count must be at least 1"),
    ({"cpu_milli": -1}, "room_classes[0]: count must be at least 1, CPU and memory not negative"),
    ({"shared_free_milli": 1000}, "room_classes[0]: a class of shared accelerators has shared_free_milli 1..999"),
    ({"free_accelerators": 1}, "free_accelerators 0, got 250 and 1"),
    ({"shared_free_milli": 0, "free_accelerators": 3}, "room_classes[0].free_accelerators: must name a "
                                                       "nodes_by_free bucket (0..2), got 3"),
    ({"shared_free_milli": 0, "free_accelerators": 2}, "the classes of bucket 2 count 5 nodes, nodes_by_free[2] is 2"),
    ({"shared_free_milli": 400}, "the classes of shared_free_milli 250 count 0"),
], ids=["short", "zero", "negative", "free-milli", "both-buckets", "no-such-bucket", "over", "moved"])
def test_bad_room_classes_are_refused_naming_the_field(room_class: dict[str, int], message: str) -> None:
    with pytest.raises(WireError, match="capacity.accelerator_pools\\[0\\].room_classes") as err:
        capacity_from_pb(_pb_with(**room_class))  # type: ignore[arg-type]
    assert message in str(err.value)


def test_a_bucket_left_without_classes_is_refused_but_bucket_zero_may_be() -> None:
    pool = AcceleratorPool("H100", (1, 0, 2), 16, 16, room_classes=((2, 1, 1, 2),))
    assert capacity_from_pb(capacity_to_pb(ClusterCapacity(accelerator_pools=(pool,)))).accelerator_pools[0] \
        .room_classes == ((2, 1, 1, 2),)
    pool = AcceleratorPool("H100", (1, 1, 2), 16, 16, room_classes=((2, 1, 1, 2),))
    with pytest.raises(WireError, match="the classes of bucket 1 count 0 nodes, nodes_by_free\\[1\\] is 1"):
        capacity_from_pb(capacity_to_pb(ClusterCapacity(accelerator_pools=(pool,))))


def test_classes_of_a_shared_part_no_device_has_are_refused() -> None:
    pool = AcceleratorPool("H100", (1, 0, 2), 16, 16, shared_devices=((250, 3),),
                           room_classes=(*CLASSES, (-400, 1, 1, 1)))
    with pytest.raises(WireError, match="shared_free_milli 400 has classes but no shared_devices entry"):
        capacity_from_pb(capacity_to_pb(ClusterCapacity(accelerator_pools=(pool,))))
