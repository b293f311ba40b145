"""Two vendors' pools of one model name in one cluster (pools are keyed by vendor and model).

The scheduler reads a model's room from its first pool (`ClusterCapacity.pool(model)`); the reservation that books a
placement must take from that same pool only. It took from every pool of the name: the other vendor's room was spent
as well, and where that pool lacked the room the cycle raised (`... do not fit in pool ...`), a crash of the whole
scheduling cycle that any agent reporting such a pair could cause (found by review60).
"""

from __future__ import annotations

from dataclasses import replace

from federator.scheduler import Scheduler, Snapshot
from federator.scheduler.snapshot import release, reserve

from builders import cluster, job, pool, request


def _two_vendors(first_free: int, second_free: int):  # type: ignore[no-untyped-def]
    return cluster("c1", "east",
                   replace(pool("H100", nodes=2, free=first_free), vendor="nvidia"),
                   replace(pool("H100", nodes=2, free=second_free), vendor="acme"))


def test_a_reservation_takes_from_the_pool_the_fit_was_read_from_only() -> None:
    c = _two_vendors(8, 8)
    spec = job("g", replicas=2, gpus=8, models=("H100",))
    after = reserve(c, resources=spec.resources, replicas=2, accelerator_model="H100")
    first, second = after.capacity.accelerator_pools
    assert first.vendor == "nvidia" and first.free_accelerators == 0
    assert second.vendor == "acme" and second.free_accelerators == 16  # untouched
    back = release(after, resources=spec.resources, replicas=2, accelerator_model="H100")
    assert [p.free_accelerators for p in back.capacity.accelerator_pools] == [16, 16]


def test_a_cycle_does_not_raise_where_the_other_vendors_pool_lacks_the_room() -> None:
    c = _two_vendors(8, 0)
    spec = job("g", replicas=2, gpus=8, models=("H100",))
    result = Scheduler().schedule(Snapshot(clusters=(c,)), [request(spec)])
    assert [(a.cluster, a.replicas) for d in result.decisions for a in d.assignments] == [("c1", 2)]
    assert result.snapshot.clusters[0].capacity.accelerator_pools[0].free_accelerators == 0
