"""`sim` counts a hardware partition (MIG profile, Ascend vNPU) at its share of a device, as the live federator does.

Outside QA, planners P7: one node of 56 1g.10gb partitions (125m each), 56 one-partition pods: sim said capacity 56,
allocated 7, ratio 0.125 (and the region 1.0 in the same report), where `get clusters` and
federator_cluster_accelerators say 7 of 7 (model.sharing.accelerator_milli_of); four vNPUs asked by name held 4
whole devices in sim, 1 live (model.job.placement_held_milli). Every figure here is compared with the live function.
"""

from __future__ import annotations

from typing import Any

from federator.backends.sim.fleet import parse_fleet
from federator.backends.sim.nodes import NodeSet
from federator.jobfile import parse_job
from federator.model import MILLI, JobKind, JobSpec, Resources
from federator.model.cluster import accelerator_milli_totals
from federator.simulate import SimJob, Simulation

MIG = "NVIDIA-A100-80GB-MIG-1g.10gb"
VNPU = "Ascend310P3-vNPU-2c"


def one_node(**group: Any) -> dict[str, Any]:
    return {"clusters": [{"name": "m", "region": "r1", "nodes": [
        {"count": 1, "accelerators": 0, "cpu": 640, "memory": "5Ti", **group}]}]}


def pods(n: int, milli: int, **kw: Any) -> list[SimJob]:
    return [SimJob(JobSpec(name=f"p{i}", kind=JobKind.INFERENCE, replicas=1,
                           resources=Resources(1000, 2**30, milli), **kw), float(i), None) for i in range(n)]


def job(replicas: int, **spec: Any) -> list[SimJob]:
    """A job file's job, as a planner writes it (vjob.yaml, vjob2.yaml of the finding)."""
    doc = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "vj"},
           "spec": {"kind": "inference", "replicas": replicas, "template": {"spec": {"containers": [
               {"name": "t", "image": "x"}]}}, **spec}}
    return [SimJob(parse_job(doc), 0.0, None)]


def live_total_milli(fleet: dict[str, Any]) -> int:
    """What `get clusters` and federator_cluster_accelerators say the member has, from the pools it reports."""
    capacity = NodeSet.of(parse_fleet(fleet)["m"].nodes).capacity()
    return accelerator_milli_totals(capacity.accelerator_pools)[1]


def test_a_full_pool_of_mig_partitions_reads_full_and_its_capacity_is_the_live_one() -> None:
    fleet = one_node(model=MIG, accelerators=56, sharing="MIG", unitMilli=125)
    report = Simulation(parse_fleet(fleet), pods(60, 125)).run("fill")
    assert report.jobs_placed == 56 and report.jobs_pending == 4  # the pool is full: four wait
    assert live_total_milli(fleet) == 7 * MILLI
    assert report.accelerator_capacity == 7  # was 56: each partition counted as a whole device
    assert report.accelerator_allocated == 7 and report.accelerator_allocation_ratio == 1.0  # was 0.125
    assert report.accelerator_allocation_ratio_by_region == {"r1": 1.0}  # the same report says one thing


def test_vnpus_asked_by_their_chips_resource_fill_the_pool_as_live() -> None:
    fleet = one_node(model="Ascend310P3", vendor="huawei", accelerators=32, sharing="MIG", unitMilli=250)
    jobs = job(32, resources={"huawei.com/Ascend310P": "250m", "cpu": "1", "memory": "4Gi"})
    report = Simulation(parse_fleet(fleet), jobs).run("fill")
    assert report.jobs_placed == 1
    assert live_total_milli(fleet) == 8 * MILLI
    assert (report.accelerator_capacity, report.accelerator_allocated, report.accelerator_allocation_ratio) == \
        (8, 8, 1.0)  # was 32, 8, 0.25


def test_vnpus_asked_by_name_hold_their_worth_not_a_whole_chip_each() -> None:
    """users.md: a replica is counted at what it holds, the partitions it takes at their worth."""
    fleet = one_node(model=VNPU, vendor="huawei", accelerators=32, sharing="MIG", unitMilli=250)
    jobs = job(4, resources={"cpu": "1", "memory": "4Gi"}, accelerators=[{"model": VNPU, "count": 1}])  # by name
    report = Simulation(parse_fleet(fleet), jobs).run("fill")
    assert report.jobs_placed == 1
    assert report.accelerator_capacity == 8
    assert report.accelerator_allocated == 1 and report.accelerator_allocation_ratio == 0.125  # was 4 held
    assert report.accelerator_allocation_ratio_by_region == {"r1": 0.125}


def test_whole_devices_count_as_before() -> None:
    fleet = one_node(model="NVIDIA-H800", accelerators=8)
    report = Simulation(parse_fleet(fleet), pods(4, 2 * MILLI)).run("fill")
    assert (report.accelerator_capacity, report.accelerator_allocated) == (8, 8)
    assert live_total_milli(fleet) == 8 * MILLI
