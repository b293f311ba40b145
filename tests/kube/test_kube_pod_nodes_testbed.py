"""The Kubernetes agent's backend says on which nodes a placement's replicas run (JobUpdate.nodes) on a real member:
the nodes the real scheduler bound its pods to, in an update once they are bound, and, for the re-sync of an agent
that restarted, from the pods it lists at start (the federator picks preemption victims per node from it)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from federator.backends.kube.api import KubeApi
from federator.backends.kube.backend import KubeBackend
from federator.model import JobId, JobKind, JobPhase, JobSpec, Placement, PlacementId, Resources

from kube_support import WORKLOADS, Testbed, member_bed, workload_pods
from support import until

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

MEMBER = "member-a"
PID = PlacementId("wide-abc.g1.member-a")
# 40 of each node's 64 cpus: the real scheduler must put the two replicas on two nodes. kwok runs them 600 s.
SPEC = JobSpec(name="wide", kind=JobKind.TRAINING, replicas=2, resources=Resources(cpu_milli=40_000),
               pod_template_json=json.dumps({"metadata": {"annotations": {
                   "pod-complete.stage.kwok.x-k8s.io/delay": "600s"}}}))

Nodes = tuple[tuple[str, int], ...]


bed = member_bed("pod-nodes", MEMBER)


def test_the_nodes_the_scheduler_bound_the_replicas_to_are_said_and_known_after_a_restart(bed: Testbed) -> None:
    said: list[Nodes] = []

    def on_update(pid: str, phase: JobPhase, message: str, *, nodes: Nodes = (), **_: object) -> None:
        if pid == PID and nodes:
            said.append(nodes)

    def bound() -> Nodes:
        return tuple(sorted(Counter(p["spec"].get("nodeName") for p in workload_pods(bed, MEMBER)
                                    if p["spec"].get("nodeName")).items()))

    async def main() -> None:
        api = KubeApi.connect(bed.cluster(MEMBER).kubeconfig)
        backend = KubeBackend(api, namespace=WORKLOADS, cluster=MEMBER, sync_timeout=60)
        await backend.start(on_update)
        try:
            assert await backend.launch(Placement(PID, JobId("wide-abc"), MEMBER, "east", 2, "", 1), SPEC) is None
            await until(lambda: len(bound()) == 2 and bool(said) and said[-1] == bound(), timeout=60)
            assert [r for _, r in said[-1]] == [1, 1]  # one replica on each of two nodes
        finally:
            await backend.stop()
        restarted = KubeBackend(api, namespace=WORKLOADS, cluster=MEMBER, sync_timeout=60)
        await restarted.start(lambda *_, **__: None)
        try:
            assert restarted.nodes_of(PID) == bound()
        finally:
            await restarted.stop()

    asyncio.run(main())
