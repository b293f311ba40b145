"""RegionLoad and LeastAllocated count a MIG partition as its share of a device, as every total people read does
(model.sharing.accelerator_milli_of): a region or cluster whose GPUs are cut into partitions is not eight times
as big, nor a replica on a partition a whole device used."""

from __future__ import annotations

from dataclasses import replace

import pytest

from federator.model import MILLI, AcceleratorPool
from federator.model.cluster import SHARING_MIG
from federator.scheduler.alternatives import Assignment
from federator.scheduler.framework import CycleContext
from federator.scheduler.plugins import LeastAllocated
from federator.scheduler.regionload import RegionUse

from builders import cluster, job, pool, request

H100 = "H100"
MIG = "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb"


def mig(*, partitions: int = 56, free: int = 56) -> AcceleratorPool:
    """`partitions` 1g.10gb partitions (125 milli of an H100 each) on nodes of 8, `free` of them free."""
    hist = [0] * 9
    hist[8] += free // 8
    hist[free % 8] += 1 if free % 8 else 0
    hist[0] += partitions // 8 - sum(hist)
    return replace(pool(MIG, nodes=0, gpus_per_node=8), nodes_by_free=tuple(hist), total_accelerators=partitions,
                   allocatable_accelerators=partitions, sharing=SHARING_MIG, unit_milli=125)


def test_a_regions_use_counts_partitions_at_their_share_at_the_start() -> None:
    # r: 8 whole H100 all free (8000) + 56 partitions, 24 of them used (7000, 3000 used): 3000 / 15000 used.
    use = RegionUse([cluster("a", "r", pool(H100, nodes=1), mig(free=32))], 100)
    assert use.utilization("r") == pytest.approx(3000 / 15000)  # as whole devices: 24 / 64
    assert use.score("r") == 80


@pytest.mark.parametrize(("milli", "replicas", "taken"), [
    pytest.param(125, 8, 1000, id="eight-partitions-are-one-device"),
    pytest.param(MILLI, 8, 1000, id="a-whole-device-asked-of-a-mig-pool-takes-one-partition"),
    pytest.param(2 * MILLI, 2, 500, id="two-devices-asked-take-two-partitions-each"),
])
def test_a_placement_on_partitions_takes_their_share(milli: int, replicas: int, taken: int) -> None:
    use = RegionUse([cluster("a", "r", pool(H100, nodes=1), mig())], 100)
    use.placed(Assignment("a", "r", replicas, MIG, accelerator_milli=milli))
    assert use.utilization("r") == pytest.approx(taken / 15000)


def test_a_placement_on_whole_devices_is_counted_as_before() -> None:
    use = RegionUse([cluster("a", "r", pool(H100, nodes=1), mig())], 100)
    use.placed(Assignment("a", "r", 3, H100, accelerator_milli=MILLI))
    assert use.utilization("r") == pytest.approx(3000 / 15000)


def test_least_allocated_reads_a_clusters_free_share_in_device_equivalents() -> None:
    # b's whole H100s are all used, its 56 partitions free: 7 devices' worth free of 15, not 56 of 64. The job
    # takes either (a job that names no model is not sent to MIG partitions).
    b = cluster("b", "r", pool(H100, nodes=1, free=0), mig())
    score = LeastAllocated().score(request(job("either", gpus=1, models=(H100, MIG))), b, CycleContext())
    assert score == round(100 * 7000 / 15000)
