"""AMD compute partitions through the federator (vendqa61 V7): a member whose pools come from the agent's own
discovery of an MI300X node in CPX mode (64 ``amd.com/gpu``) beside a whole-GPU node. Before, the CPX node was 64
whole MI300X: a job of 64 x MI300X was placed there and billed 64 MI300X on 8 GPUs. Now it waits (no node holds
64 whole MI300X), a job of 8 x MI300X takes the whole GPUs, and a job naming the partitions takes partitions."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

from server_support import Clock, MemoryStore, make

from federator.backends.kube.discovery import Discovery
from federator.backends.kube.pools import pools
from federator.catalog import builtin_catalog
from federator.jobfile import parse_job
from federator.model import JobPhase, JobSpec

from builders import cluster
from support import ROOT

sys.path.insert(0, str(ROOT / "tests" / "testbed"))
import vendors  # noqa: E402  (tests/testbed is not a package)

CPX = "AMD-Instinct-MI300X-CPX-NPS4"


def _job(name: str, count: int, model: str) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
                      "spec": {"kind": "inference", "replicas": 1, "acceleratorModels": [model],
                               "resources": {"cpu": "1", "amd.com/gpu": count}}})


def _member_pools() -> Any:
    nodes = []
    for spec in (*vendors.amd_nodes("w", 1), *vendors.amd_partitioned_nodes("c", 1, mode="cpx_nps4")):
        node = spec.manifest()
        node["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
        nodes.append(node)
    groups = Discovery.from_catalog(builtin_catalog()).groups(nodes, [])
    return pools(groups, {n["metadata"]["name"] for n in nodes})


def test_whole_mi300x_jobs_never_land_on_partitions_and_partition_jobs_do() -> None:
    fed = make(MemoryStore(), Clock())
    rec = fed.connect(cluster="member-amd", region="r", labels={})
    fed.report(rec, replace(cluster("member-amd", "r").capacity, accelerator_pools=_member_pools()))
    big = fed.submit(_job("big", 64, "MI300X"))
    whole = fed.submit(_job("whole", 8, "MI300X"))
    parts = fed.submit(_job("parts", 8, "MI300X-CPX"))
    fed.schedule_once()
    assert big.phase is JobPhase.PENDING  # 64 whole MI300X: no node has them
    assert whole.phase is JobPhase.PLACED and whole.placements[0].accelerator_model == "AMD-Instinct-MI300X"
    assert parts.phase is JobPhase.PLACED and parts.placements[0].accelerator_model == CPX
