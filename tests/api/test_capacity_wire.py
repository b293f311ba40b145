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
