"""A simulated fleet declares shared accelerators as a real agent's pools do (`sharing`, `unitMilli`).

Outside billing QA F7: `clusters[0].nodes[0].sharing: is not a known field`, so fractional jobs (500m) could not be
run end to end with simulated members, nor their billing checked. The fleet keys are parsed with errors naming the
field, reported in the simulated member's pools (AcceleratorPool.sharing, unit_milli), and honoured by its binding.
"""

from __future__ import annotations

from typing import Any

import pytest

from federator.backends.sim.fleet import FleetError, parse_fleet
from federator.backends.sim.nodes import NodeSet
from federator.model import MILLI, Resources

L40S = "NVIDIA-L40S"
MIG = "NVIDIA-A100-80GB-MIG-1g.10gb"


def fleet(*groups: dict[str, Any]) -> dict[str, Any]:
    return {"clusters": [{"name": "s-1", "region": "east", "nodes": list(groups)}]}


def group(**keys: Any) -> dict[str, Any]:
    return {"count": 1, "model": L40S, "accelerators": 4, "cpu": 32, "memory": "64Gi", **keys}


def nodes(*groups: dict[str, Any]) -> NodeSet:
    return NodeSet.of(parse_fleet(fleet(*groups))["s-1"].nodes, fit="best")


def accel(milli: int) -> Resources:
    return Resources(cpu_milli=1000, memory_bytes=2**30, accelerator_milli=milli)


@pytest.mark.parametrize(("said", "read"), [
    ("TimeSlicing", "TimeSlicing"), ("time-slicing", "TimeSlicing"), ("MPS", "MPS"), ("hami", "HAMi"),
    ("None", "None")], ids=["TimeSlicing", "time-slicing", "MPS", "hami", "None"])
def test_each_way_of_sharing_is_read_and_reported_in_the_pool(said: str, read: str) -> None:
    (node,) = parse_fleet(fleet(group(sharing=said)))["s-1"].nodes
    assert (node.sharing, node.unit_milli) == (read, 0)
    (pool,) = NodeSet.of([node]).capacity().accelerator_pools
    assert (pool.sharing, pool.unit_milli) == (read, 0)


def test_a_mig_pool_says_what_a_partition_is_worth() -> None:
    (pool,) = nodes(group(model=MIG, accelerators=56, sharing="MIG", unitMilli=125)).capacity().accelerator_pools
    assert (pool.sharing, pool.unit_milli, pool.total_accelerators) == ("MIG", 125, 56)


def test_a_pool_that_says_nothing_is_reported_as_before() -> None:
    (pool,) = nodes(group()).capacity().accelerator_pools
    assert (pool.sharing, pool.unit_milli) == ("", 0)


@pytest.mark.parametrize(("groups", "error"), [
    ([group(sharing="slicing")], "clusters[0].nodes[0].sharing: must be one of None, TimeSlicing, MPS, HAMi, MIG"),
    ([group(sharing=3)], "clusters[0].nodes[0].sharing: must be one of"),
    ([group(sharing="MIG")], "clusters[0].nodes[0].unitMilli: required with sharing: MIG"),
    ([group(sharing="MIG", unitMilli=0)], "clusters[0].nodes[0].unitMilli: must be a whole number from 1 to 1000"),
    ([group(sharing="MIG", unitMilli="125")], "clusters[0].nodes[0].unitMilli: must be a whole number"),
    ([group(sharing="TimeSlicing", unitMilli=125)], "clusters[0].nodes[0].unitMilli: only with sharing: MIG"),
    ([{"count": 1, "cpu": 8, "memory": "8Gi", "sharing": "MPS"}],
     "clusters[0].nodes[0].sharing: only for nodes with accelerators"),
    ([group(sharing="TimeSlicing"), group()], "clusters[0].nodes[1].sharing: the nodes of NVIDIA-L40S in this "
                                              "cluster share as TimeSlicing in nodes[0], these as not said"),
    ([group(shared="yes")], "clusters[0].nodes[0].shared: is not a known field (did you mean sharing?) (known: "
                            "count, vendor, model (or gpuModel), accelerators (or gpus), busy (or busyGpus), cpu, "
                            "memory, memoryMiB, sharing, unitMilli)"),
], ids=["unknown-value", "not-a-string", "mig-without-unit", "unit-zero", "unit-text", "unit-without-mig",
        "cpu-only-node", "one-model-two-ways", "unknown-field"])
def test_a_bad_sharing_is_refused_naming_the_field(groups: list[dict[str, Any]], error: str) -> None:
    with pytest.raises(FleetError) as caught:
        parse_fleet(fleet(*groups))
    assert error in str(caught.value)


def test_time_slicing_binds_fractions_only() -> None:
    ns = nodes(group(sharing="TimeSlicing"))
    why = ns.bind("whole", replicas=1, resources=accel(MILLI), accelerator_model=L40S)
    assert why is not None and "shared by TimeSlicing, which runs fractions only" in why
    assert ns.bind("half", replicas=2, resources=accel(500), accelerator_model=L40S) is None
    (pool,) = ns.capacity().accelerator_pools
    assert pool.free_milli == 3 * MILLI  # the two halves share one accelerator (best fit)


def test_an_unshared_pool_binds_whole_accelerators_only() -> None:
    ns = nodes(group(sharing="None"))
    why = ns.bind("half", replicas=1, resources=accel(500), accelerator_model=L40S)
    assert why is not None and "whole accelerators only" in why
    assert ns.bind("whole", replicas=1, resources=accel(2 * MILLI), accelerator_model=L40S) is None


def test_a_mig_partition_takes_one_replica_of_at_most_its_worth() -> None:
    ns = nodes(group(model=MIG, accelerators=8, sharing="MIG", unitMilli=125))
    why = ns.bind("too-big", replicas=1, resources=accel(500), accelerator_model=MIG)
    assert why is not None and "MIG partitions of 125m" in why
    assert ns.bind("small", replicas=3, resources=accel(100), accelerator_model=MIG) is None  # a partition each
    assert ns.bind("two", replicas=1, resources=accel(2 * MILLI), accelerator_model=MIG) is None  # two partitions
    (pool,) = ns.capacity().accelerator_pools
    assert (pool.free_accelerators, pool.shared_devices) == (3, ())


def test_hami_and_a_pool_that_says_nothing_bind_both() -> None:
    for ns in (nodes(group(sharing="HAMi")), nodes(group())):
        assert ns.bind("half", replicas=1, resources=accel(500), accelerator_model=L40S) is None
        assert ns.bind("whole", replicas=1, resources=accel(MILLI), accelerator_model=L40S) is None
