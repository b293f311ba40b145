"""A vendor whose device plugin advertises a resource per product line (Huawei: huawei.com/Ascend910,
huawei.com/Ascend310P, huawei.com/Ascend310) is asked by that resource: a job file's `huawei.com/Ascend310P: 1`
runs only on pools whose resource_name is huawei.com/Ascend310P, never on an Ascend 910B pool of the same member
that happens to be free (outside QA, vendors round 2, R2: such replicas ran on 910B3 chips, the pod asking
huawei.com/Ascend910). A vendor with one resource (amd.com/gpu) keeps any of its pools, and a job stored by
0.10.0 (its alternative naming the vendor only) keeps today's vendor match."""

from __future__ import annotations

from dataclasses import replace

from federator.jobfile import parse_job
from federator.jobfile_writing import spec_to_document
from federator.model import AcceleratorAlternative, AcceleratorPool, JobId, JobSpec
from federator.scheduler import Scheduler, Snapshot

from builders import cluster, pool, request

A910, A310P = "huawei.com/Ascend910", "huawei.com/Ascend310P"


def _pool(model: str, resource: str, family: str, free: int, vendor: str = "huawei") -> AcceleratorPool:
    return replace(pool(model, nodes=1, free=free, gpus_per_node=8), vendor=vendor, family=family,
                   memory_mib=65536, resource_name=resource)


def _b910(free: int = 8) -> AcceleratorPool:
    return _pool("Ascend910B3", A910, "Ascend910B", free)


def _p310(free: int = 8) -> AcceleratorPool:
    return _pool("Ascend310P3", A310P, "Ascend310P", free)


def _file(name: str, resource: str, replicas: int, models: tuple[str, ...] = ()) -> JobSpec:
    """The spec a job file's one-count form makes (jobfile.parse_job), as Submit stores it."""
    spec: dict[str, object] = {"kind": "inference", "replicas": replicas,
                               "resources": {"cpu": "1", "memory": "1Gi", resource: 1}}
    if models:
        spec["acceleratorModels"] = list(models)
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": name}, "spec": spec})


def _placed(spec: JobSpec, *pools: AcceleratorPool) -> dict[str, int]:
    """Replicas per pool model of the one cycle's decision for the job ({} if it waits)."""
    result = Scheduler().schedule(Snapshot.of([cluster("member-b", "west", *pools)]), [request(spec)])
    out: dict[str, int] = {}
    for d in result.decisions:
        for a in d.assignments:
            out[a.accelerator_model] = out.get(a.accelerator_model, 0) + a.replicas
    return out


def test_the_job_file_keeps_the_resource_it_asks() -> None:
    spec = _file("p310", A310P, 3)
    assert [a.resource_name for a in spec.accelerators] == [A310P]
    assert parse_job(spec_to_document(spec)) == spec  # the document says it as the user wrote it
    assert spec_to_document(spec)["spec"]["resources"][A310P] == 1


def test_a_310p_ask_never_takes_a_910_pool() -> None:
    # 2 of the 310P devices free, all 8 of the 910B3 ones: the job waits rather than take a 910B3 (it took one)
    assert _placed(_file("p310x3", A310P, 3), _b910(), _p310(free=2)) == {}
    assert _placed(_file("p310x3", A310P, 3), _b910(), _p310()) == {"Ascend310P3": 3}


def test_a_910_ask_never_takes_a_310p_pool() -> None:
    assert _placed(_file("a910x7", A910, 7), _b910(free=5), _p310()) == {}  # it took 2 x 310P3 (QA: 5 + 2)
    assert _placed(_file("a910x7", A910, 7, ("Ascend910B",)), _b910(), _p310()) == {"Ascend910B3": 7}


def test_the_wait_says_which_resource_the_member_lacks() -> None:
    spec = _file("p310", A310P, 1)
    result = Scheduler().schedule(Snapshot.of([cluster("member-b", "west", _b910())]), [request(spec)])
    assert not result.decisions
    assert f"member-b has no {A310P} devices, only {A910}" in result.pending[JobId("p310")].message


def test_a_job_stored_by_0_10_0_keeps_the_vendor_match() -> None:
    # what 0.10.0 stored for `huawei.com/Ascend310P: 1`: the vendor only; it may still run on either line
    old = replace(_file("old", A310P, 3), accelerators=(AcceleratorAlternative(1000, vendor="huawei"),))
    assert sum(_placed(old, _b910(), _p310(free=2)).values()) == 3


def test_a_vendor_with_one_resource_takes_any_of_its_pools() -> None:
    spec = _file("mi", "amd.com/gpu", 2)
    assert [a.resource_name for a in spec.accelerators] == [""]
    dra = _pool("AMD-Instinct-MI300X", "gpu.amd.com (DRA)", "", 1, vendor="amd")
    plugin = _pool("AMD-Instinct-MI300X-OAM", "amd.com/gpu", "", 1, vendor="amd")
    assert sum(_placed(spec, dra, plugin).values()) == 2


def test_an_alternative_says_its_resource() -> None:
    assert [a.describe() for a in _file("p", A310P, 1).accelerators] == [f"1 x {A310P}"]
    assert AcceleratorAlternative(1000, vendor="huawei").describe() == "1 x huawei"
