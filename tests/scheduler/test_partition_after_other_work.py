"""A fraction takes the smallest partition worth its ask, whatever else was placed before it (vendqa61 V2).

The cycle's demand (FGD's target workload, demand.py) weighs how much a take strands. It counted a whole-device
shape of any model as work a MIG or vNPU partition pool could use, which the filters never allow (whole devices of
a partition pool only for work naming a partition): with a running 4-device job in the sample, taking one of a
node's four free 5-core vNPUs looked like stranding the other three, and a 250m fraction took a 10-core vNPU
(billed double) beside four free 5-core ones. Alone it took a 5-core one. NVIDIA MIG profiles alike.
"""

from __future__ import annotations

from dataclasses import replace

from federator.jobfile_loading import parse_job_documents
from federator.model import AcceleratorPool, JobSpec
from federator.scheduler import Allocation, Scheduler, Snapshot
from federator.scheduler.demand import demand_of

from builders import cluster, pool, request

H100 = "NVIDIA-H100-80GB-HBM3"
V5C, V10C = "Ascend910B3-vNPU-5c.1cpu.16g", "Ascend910B3-vNPU-10c.3cpu.32g"


def spec(name: str, body: str) -> JobSpec:
    (s,) = parse_job_documents(f"apiVersion: federator.io/v1alpha1\nkind: FederatedJob\nmetadata: {{name: {name}}}\n"
                               f"spec: {body}")
    return s


def partitions(model: str, vendor: str, resource: str, family: str, count: int, unit: int) -> AcceleratorPool:
    return replace(pool(model, nodes=1, free=count, gpus_per_node=count), vendor=vendor, sharing="MIG",
                   unit_milli=unit, resource_name=resource, family=family)


def whole(model: str, vendor: str, resource: str, family: str) -> AcceleratorPool:
    return replace(pool(model, nodes=2, free=8), vendor=vendor, sharing="None", resource_name=resource, family=family)


def running(job: JobSpec, model: str, cluster_name: str, milli: int) -> Allocation:
    """What the server hands the cycle of a placed job of any model: per replica what the placement holds."""
    return Allocation(job.name, "default", 0, False, cluster_name, model, job.replicas,
                      replace(job.resources, accelerator_milli=milli))


def models(result) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    return {d.job_id: [a.accelerator_model for a in d.assignments] for d in result.decisions}


def test_a_fraction_takes_the_5_core_vnpus_beside_a_running_whole_chip_job() -> None:
    member = cluster("asc", "r", whole("Ascend910B3", "huawei", "huawei.com/Ascend910", "Ascend910B"),
                     partitions(V5C, "huawei", "huawei.com/Ascend910-5c.1cpu.16g", "Ascend910B", 4, 250),
                     partitions(V10C, "huawei", "huawei.com/Ascend910-10c.3cpu.32g", "Ascend910B", 2, 500))
    frac = spec("frac", "{kind: inference, replicas: 2, resources: {huawei.com/Ascend910: 250m, cpu: '4'}, "
                        "acceleratorModels: [Ascend910B3]}")
    chips = spec("chips", "{kind: training, replicas: 1, resources: {huawei.com/Ascend910: 4, cpu: '4'}}")
    alone = Scheduler().schedule(Snapshot.of([member]), [request(frac)])
    after = Scheduler().schedule(Snapshot.of([member]), [request(frac)],
                                 running=[running(chips, "Ascend910B3", "asc", 4000)])
    assert models(alone) == models(after) == {"frac": [V5C]}


def test_a_fraction_takes_the_smallest_mig_profile_beside_a_running_whole_gpu_job() -> None:
    resource = "nvidia.com/mig-"
    member = cluster("nv", "r", whole(H100, "nvidia", "nvidia.com/gpu", "H100"),
                     partitions(f"{H100}-MIG-1g.10gb", "nvidia", f"{resource}1g.10gb", "H100", 4, 125),
                     partitions(f"{H100}-MIG-3g.40gb", "nvidia", f"{resource}3g.40gb", "H100", 2, 500))
    frac = spec("frac", "{kind: inference, replicas: 2, resources: {nvidia.com/gpu: 100m, cpu: '1'}, "
                        "acceleratorModels: [H100]}")
    gpus = spec("gpus", "{kind: training, replicas: 1, resources: {nvidia.com/gpu: 4, cpu: '1'}}")
    after = Scheduler().schedule(Snapshot.of([member]), [request(frac)], running=[running(gpus, H100, "nv", 4000)])
    assert models(after) == {"frac": [f"{H100}-MIG-1g.10gb"]}


def test_the_demand_counts_a_pending_ascend_fraction_at_its_ask_not_as_cpu_only_work() -> None:
    member = cluster("asc", "r", partitions(V5C, "huawei", "huawei.com/Ascend910-5c.1cpu.16g", "Ascend910B", 4, 250))
    frac = spec("frac", "{kind: inference, replicas: 2, resources: {huawei.com/Ascend910: 250m, cpu: '4'}, "
                        "acceleratorModels: [Ascend910B3]}")
    assert frac.accelerators and not frac.resources.accelerator_milli  # the one-count form of another vendor
    demand = demand_of([member], [request(frac)], [])
    assert [s[:2] for s in demand.usable_shapes[V5C]] == [(250, 1)]
