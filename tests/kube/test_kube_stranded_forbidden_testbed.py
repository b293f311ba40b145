"""A gang left in a per-queue namespace after `--namespace-per-queue` was turned off, on a real member whose RBAC
was narrowed with the switch (the chart takes the cluster-wide `...-tenants` ClusterRole away): the agent, with
exactly the namespaced rules of deploy/kubernetes/rbac-agent.yaml, may not list or delete it there. It used to be
read as Running (its pods, listed cluster-wide, kept it in the capacity report's placement_ids); now it is reported
Failed at start, naming the permission the agent lacks, and no longer listed (outside provider QA F7)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from federator.backends.kube.api import KubeApi
from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.tenant_namespaces import QUEUE_LABEL
from federator.backends.kube.workloads import build_workload
from federator.model import JobId, JobKind, JobPhase, JobSpec, Placement, PlacementId, Resources

from kube_support import RBAC, WORKLOADS, Testbed, service_account_kubeconfig
from support import eventually

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

MEMBER = "member-a"
TENANT = f"{WORKLOADS}-research"
PID = PlacementId("left-abc.g1.member-a")
SPEC = JobSpec(name="left", kind=JobKind.TRAINING, replicas=1, queue="research", resources=Resources(cpu_milli=1000),
               pod_template_json='{"metadata": {"annotations": {"pod-complete.stage.kwok.x-k8s.io/delay": "600s"}}}')


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    tb = Testbed.start(tmp_path_factory.mktemp("stranded-bed"), members=(MEMBER,))
    try:
        tb.kubectl(MEMBER, "apply", "-f", str(RBAC / "rbac-agent.yaml"))  # namespaced workload rules only
        yield tb
    finally:
        tb.stop()


def test_a_gang_the_agent_may_no_longer_reach_is_reported_failed_not_running(bed: Testbed, tmp_path: Path) -> None:
    # What a per-queue agent made before the switch (as an admin: the narrowed agent could not).
    bed.kubectl(MEMBER, "create", "namespace", TENANT)
    job = build_workload(Placement(PID, JobId("left-abc"), MEMBER, "east", 1, "", 1), SPEC, namespace=TENANT)
    job["metadata"]["labels"][QUEUE_LABEL] = "research"
    bed.apply(MEMBER, job)
    eventually(lambda: [p for p in bed.kubectl_json(MEMBER, "get", "pods", "-n", TENANT)["items"]
                        if p["status"].get("phase") == "Running"], timeout=60, what="the stranded gang's pod Running")
    kubeconfig = service_account_kubeconfig(bed, MEMBER, "federator-agent", tmp_path / "agent.kubeconfig")
    updates: list[tuple[str, JobPhase, str]] = []

    async def main() -> frozenset[str]:
        backend = KubeBackend(KubeApi.connect(kubeconfig), namespace=WORKLOADS, cluster=MEMBER, sync_timeout=60)
        await backend.start(lambda pid, phase, message, **_: updates.append((pid, phase, message)))
        try:
            assert backend.placements() == {PID: JobPhase.FAILED}
            return backend.capacity().placement_ids
        finally:
            await backend.stop()

    listed = asyncio.run(main())
    assert PID not in listed  # its pods hold resources, but the federator no longer reads it as running here
    [(pid, phase, message)] = updates
    assert (pid, phase) == (PID, JobPhase.FAILED)
    assert f"lost by the agent of {MEMBER}: the placement runs in namespace {TENANT}" in message
    assert "may not list jobs.batch in every namespace" in message and "forbidden" in message
