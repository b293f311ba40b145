"""vendqa61 V2 through the federator: a fraction placed in the cycle after another vendor's job takes the 5-core
vNPUs, as it does alone. The member's pools come from the agent's discovery of an Atlas 800T A2 node cut into four
5-core and two 10-core vNPUs; the other job is a Hygon DCU gang on another member, which the federator holds (its
report does not count it yet) and hands the next cycle as running work. That work's Allocation named no model (a
one-count job of another vendor keeps its model in spec.accelerators), so its 4-device shape counted as work the
vNPU pools could use, and the fraction took two 10-core vNPUs (billed 1 accelerator for 2 x 250m)."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

from server_support import Clock, MemoryStore, make

from federator.backends.kube.capacity import cluster_capacity
from federator.jobfile import parse_job
from federator.model import JobPhase, JobSpec

from builders import cluster
from support import ROOT

sys.path.insert(0, str(ROOT / "tests" / "testbed"))
import vendors  # noqa: E402  (tests/testbed is not a package)

from testbed import NodeSpec  # noqa: E402

V5C = "Ascend910B3-vNPU-5c.1cpu.16g"


def _capacity(*specs: NodeSpec) -> Any:
    nodes = []
    for spec in specs:
        node = spec.manifest()
        node["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
        nodes.append(node)
    return cluster_capacity(nodes, [])


def _job(name: str, kind: str, replicas: int, resources: dict[str, Any], model: str) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
                      "spec": {"kind": kind, "replicas": replicas, "acceleratorModels": [model],
                               "resources": {"cpu": "4", "memory": "16Gi", **resources}}})


def test_a_fraction_after_another_vendors_job_takes_the_smallest_vnpu() -> None:
    (vnpu,) = vendors.ascend_nodes("asc-vnpu", 1, npus=6)
    vnpu = replace(vnpu, extended={**vnpu.extended, "huawei.com/Ascend910-5c.1cpu.16g": "4",
                                   "huawei.com/Ascend910-10c.3cpu.32g": "2"})
    dcu = NodeSpec("cn-dcu-0", "", 0, labels={"hygon.com/dcu.name": "K100_AI"}, extended={"hygon.com/dcu": "8"})
    fed = make(MemoryStore(), Clock())
    for name, capacity in (("member-ascend", _capacity(*vendors.ascend_nodes("asc-910b", 2), vnpu)),
                           ("member-cn", _capacity(dcu))):
        fed.report(fed.connect(cluster=name, region="r", labels={}),
                   replace(cluster(name, "r").capacity, **{f: getattr(capacity, f) for f in (
                       "accelerator_pools", "cpu_milli_free", "cpu_milli_allocatable", "memory_bytes_free",
                       "memory_bytes_allocatable", "node_room")}))
    train = fed.submit(_job("dcu-train", "training", 1, {"hygon.com/dcu": 4}, "DCU-K100_AI"))
    fed.schedule_once()
    assert train.phase is JobPhase.PLACED
    frac = fed.submit(_job("vnpu-frac", "inference", 2, {"huawei.com/Ascend910": "250m"}, "Ascend910B3"))
    fed.schedule_once()
    assert frac.phase is JobPhase.PLACED
    assert [(p.accelerator_model, p.replicas) for p in frac.placements] == [(V5C, 2)]
