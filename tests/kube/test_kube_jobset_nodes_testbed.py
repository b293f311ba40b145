"""JobUpdate.nodes of a JobSet under the real JobSet controller, with a CPU-only launcher replicatedJob beside its
GPU workers: the nodes said are the workers', as many as the placement's replicas (the federator counts them in
accelerator pods: common.needs), so the federator keeps the list (agent.proto). Before, the launcher was counted
too and the list added up to more than the placement's replicas: ignored, and preemption on that member was a
guess."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from federator.backends.kube.api import KubeApi
from federator.backends.kube.backend import KubeBackend
from federator.model import JobId, JobKind, JobPhase, JobSpec, Placement, PlacementId, Resources
from federator.server.replica_counts import ReplicaCounts

from kube_support import WORKLOADS, Testbed, member_bed, workload_pods
from support import until

pytestmark = [pytest.mark.kube, pytest.mark.timeout(900)]

MEMBER = "member-a"
PID = PlacementId("mpi-abc.g1.member-a")
REPLICATED_JOB = "jobset.sigs.k8s.io/replicatedjob-name"  # the JobSet controller's label on each pod
JOBSET = {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": "mpi"},
          "spec": {"replicatedJobs": [
              {"name": "launcher", "replicas": 1, "template": {"spec": {"template": {"spec": {
                  "restartPolicy": "Never", "containers": [{"name": "launcher", "image": "launcher:1",
                                                            "resources": {"requests": {"cpu": "1"}}}]}}}}},
              {"name": "workers", "replicas": 1, "template": {"spec": {"parallelism": 2, "completions": 2,
                                                                       "template": {"spec": {
                  "restartPolicy": "Never", "containers": [{"name": "train", "image": "trainer:1",
                                                            "resources": {"limits": {"nvidia.com/gpu": 8}}}]}}}}}]}}
Nodes = tuple[tuple[str, int], ...]


bed = member_bed("jobset-nodes", MEMBER, controllers={MEMBER: ("jobset",)})


def test_a_jobset_with_a_cpu_launcher_says_its_workers_nodes(bed: Testbed) -> None:
    said: list[Nodes] = []

    def on_update(pid: str, phase: JobPhase, message: str, *, nodes: Nodes = (), **_: object) -> None:
        if pid == PID and nodes:
            said.append(nodes)

    def bound_workers() -> Nodes:
        return tuple(sorted(Counter(
            p["spec"]["nodeName"] for p in workload_pods(bed, MEMBER)
            if p["spec"].get("nodeName") and p["metadata"]["labels"].get(REPLICATED_JOB) == "workers").items()))

    async def main() -> None:
        api = KubeApi.connect(bed.cluster(MEMBER).kubeconfig)
        backend = KubeBackend(api, namespace=WORKLOADS, cluster=MEMBER, sync_timeout=60, discovery_interval=1)
        await backend.start(on_update)
        try:
            await until(lambda: "JobSet.jobset.x-k8s.io" in backend.served, timeout=60)
            spec = JobSpec(name="mpi", kind=JobKind.TRAINING, replicas=2, resources=Resources(),
                           workload_json=json.dumps(JOBSET))
            assert await backend.launch(Placement(PID, JobId("mpi-abc"), MEMBER, "east", 2, "", 1), spec) is None
            # The launcher and both workers bound (the workers on the two 8-GPU H100 nodes), and two replicas said.
            await until(lambda: len([p for p in workload_pods(bed, MEMBER) if p["spec"].get("nodeName")]) == 3
                        and sum(r for _, r in backend.nodes_of(PID)) >= 2, timeout=120)
        finally:
            await backend.stop()

    asyncio.run(main())
    assert said[-1] == bound_workers()  # the placement's replicas: its two workers, not the launcher
    held = Placement(PID, JobId("mpi-abc"), MEMBER, "east", 2, "", 1, phase=JobPhase.RUNNING)
    ReplicaCounts(nodes=said[-1]).apply(held)  # what the federator does with the update's nodes
    assert held.nodes == said[-1]
