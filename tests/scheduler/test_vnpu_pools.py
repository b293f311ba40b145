"""Ascend static vNPU templates are partition pools, as MIG profiles are (outside QA, V2: they were left out).

A member's agent reports each template on each chip model as a pool (`Ascend310P3-vNPU-2c`, sharing MIG, worth the
template's AI cores over the chip's: 2 of 8 is 250m). A user asks for one the way MIG is asked for: a fraction of
the chip's resource (`huawei.com/Ascend310P: 250m`), or the template by model name with a whole count. Jobs here
are parsed from the YAML a user writes, so the job file's forms and the scheduler's filters are tested together.
"""

from __future__ import annotations

from dataclasses import replace

from federator.jobfile_loading import parse_job_documents
from federator.model import AcceleratorPool, JobSpec, ReasonCode
from federator.scheduler import Scheduler, Snapshot

from builders import cluster, pool, request

P310 = "Ascend310P3"
V2C, V4C = "Ascend310P3-vNPU-2c", "Ascend310P3-vNPU-4c"


def chips(free: int = 4) -> AcceleratorPool:
    return replace(pool(P310, nodes=1, free=free, gpus_per_node=4), vendor="huawei", sharing="None",
                   resource_name="huawei.com/Ascend310P", family="Ascend310P", memory_mib=24576)


def vnpus(model: str, resource: str, partitions: int, unit: int) -> AcceleratorPool:
    return replace(pool(model, nodes=1, free=partitions, gpus_per_node=partitions), vendor="huawei", sharing="MIG",
                   unit_milli=unit, resource_name=resource, family="Ascend310P")


def member() -> list:  # type: ignore[type-arg]
    return [cluster("hw", "r", chips(), vnpus(V2C, "huawei.com/Ascend310P-2c", 8, 250),
                    vnpus(V4C, "huawei.com/Ascend310P-4c", 2, 500))]


def spec(name: str, body: str) -> JobSpec:
    (s,) = parse_job_documents(f"apiVersion: federator.io/v1alpha1\nkind: FederatedJob\nmetadata: {{name: {name}}}\n"
                               f"spec: {{kind: inference, resources: {{cpu: '1', memory: 1Gi{body}")
    return s


def place(clusters: list, *specs: JobSpec):  # type: ignore[no-untyped-def,type-arg]
    return Scheduler().schedule(Snapshot.of(clusters), [request(s, at=i) for i, s in enumerate(specs)])


def placed(result) -> dict[str, list[tuple[str, int]]]:  # type: ignore[no-untyped-def]
    return {d.job_id: [(a.accelerator_model, a.replicas) for a in d.assignments] for d in result.decisions}


def test_a_fraction_of_the_chips_resource_lands_on_the_smallest_vnpu_that_holds_it_never_on_whole_chips() -> None:
    quarter = spec("quarter", ", huawei.com/Ascend310P: 250m}, replicas: 3}")
    third = spec("third", ", huawei.com/Ascend310P: 300m}, replicas: 2}")
    assert placed(place(member(), quarter, third)) == {"quarter": [(V2C, 3)], "third": [(V4C, 2)]}


def test_the_template_by_name_takes_one_partition_per_replica_of_that_template_only() -> None:
    by_model = spec("by-model", "}, replicas: 2, accelerators: [{model: Ascend310P3-vNPU-4c, count: 1}]}")
    one_count = spec("one-count", ", huawei.com/Ascend310P: 1}, replicas: 3, acceleratorModels: [vNPU-2c]}")
    assert placed(place(member(), by_model, one_count)) == {"by-model": [(V4C, 2)], "one-count": [(V2C, 3)]}


def test_whole_chips_never_take_vnpus_and_vnpus_never_take_whole_chips() -> None:
    whole = spec("whole", ", huawei.com/Ascend310P: 1}, replicas: 2}")
    assert placed(place(member(), whole)) == {"whole": [(P310, 2)]}
    full = place([cluster("hw", "r", chips(free=0), vnpus(V2C, "huawei.com/Ascend310P-2c", 8, 250))], whole)
    assert not full.decisions and full.pending["whole"].code is ReasonCode.INSUFFICIENT_ACCELERATORS  # 8 vNPUs free
    only_vnpus = place([cluster("hw", "r", vnpus(V2C, "huawei.com/Ascend310P-2c", 8, 250))], whole)
    assert only_vnpus.pending["whole"].code is ReasonCode.SHARING_UNAVAILABLE
    named = spec("named", "}, replicas: 1, accelerators: [{model: Ascend310P3-vNPU-2c, count: 1}]}")
    assert "named" in place([cluster("hw", "r", chips())], named).pending  # a template never takes a whole chip


def test_vnpus_are_not_over_committed_a_partition_serves_one_replica() -> None:
    first = spec("first", ", huawei.com/Ascend310P: 100m}, replicas: 6, acceleratorModels: [vNPU-2c]}")
    second = spec("second", ", huawei.com/Ascend310P: 100m}, replicas: 3, acceleratorModels: [vNPU-2c]}")
    result = place(member(), first, second)
    assert placed(result) == {"first": [(V2C, 6)]}  # 8 partitions: 6 + 3 replicas of 100m do not fit
    assert "second" in result.pending
