"""A gang left in a per-queue namespace after `--namespace-per-queue` was turned off, on a real member whose RBAC
was narrowed with the switch (the chart takes the cluster-wide `...-tenants` ClusterRole away): the agent, with
exactly the namespaced rules of deploy/kubernetes/rbac-agent.yaml, may not list or delete it there. It used to be
read as Running (its pods, listed cluster-wide, kept it in the capacity report's placement_ids); now it is reported
Failed at start, naming the permission the agent lacks, and no longer listed (outside provider QA F7).

Only its own, though (backends/kube/agent_identity.py). The sequence that took another agent's pods for its own:
1. a second agent runs on the same member for another federation, which names the member `member-a` too, with
   `--namespace federator-workloads-team` (its gang there: placement `theirs-abc.g1.member-a`);
2. this agent starts with `--namespace federator-workloads`, without `--namespace-per-queue`, its RBAC narrowed
   to that namespace's workloads (it may still list pods everywhere);
3. looking for its own leftovers in `federator-workloads-*`, it listed pods by the managed-by label alone, found the
   other agent's in `federator-workloads-team`, could not list Jobs there, and reported `theirs-abc.g1.member-a`
   to its own federator as lost (Failed, JobUpdate.lost), its message telling the provider to delete the other
   federation's Jobs there.
Now each pod carries the identity of the agent that made it, and an agent reports only its own.

And two agents given the same `--namespace` (a copied values file) leave each other's workloads alone, and each
says so at WARNING naming both."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from federator.backends.kube.agent_identity import AgentIdentity
from federator.backends.kube.api import KubeApi
from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.tenant_namespaces import QUEUE_LABEL
from federator.backends.kube.workloads import RenderOptions, build_workload
from federator.model import JobId, JobKind, JobPhase, JobSpec, Placement, PlacementId, Resources

from kube_support import RBAC, WORKLOADS, Testbed, service_account_kubeconfig
from support import eventually

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

MEMBER = "member-a"
TENANT = f"{WORKLOADS}-research"
PID = PlacementId("left-abc.g1.member-a")
THEIRS = PlacementId("theirs-abc.g1.member-a")  # another federation's, which names the member alike
TEAM = f"{WORKLOADS}-team"  # that federation's agent's --namespace
SERVER = "federator.example:8443"
AGENT = AgentIdentity(MEMBER, WORKLOADS, SERVER)
OTHER = AgentIdentity(MEMBER, TEAM, "other-federator.example:8443")
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


def gang(pid: PlacementId, namespace: str, made_by: AgentIdentity, *, queue: str = "") -> dict:  # type: ignore[type-arg]
    job = build_workload(Placement(pid, JobId(pid.split(".")[0]), MEMBER, "east", 1, "", 1), SPEC,
                         namespace=namespace, options=RenderOptions(annotations=made_by.annotations()))
    if queue:
        job["metadata"]["labels"][QUEUE_LABEL] = queue
    return job


def running_in(bed: Testbed, namespace: str) -> None:
    eventually(lambda: [p for p in bed.kubectl_json(MEMBER, "get", "pods", "-n", namespace)["items"]
                        if p["status"].get("phase") == "Running"], timeout=60, what=f"the gang's pod in {namespace}")


def test_a_gang_the_agent_may_no_longer_reach_is_reported_failed_not_running_and_another_agents_is_left_alone(
        bed: Testbed, tmp_path: Path) -> None:
    # What this agent made per queue before the switch (as an admin: the narrowed agent could not), and what the
    # other federation's agent made in its own --namespace, named like a per-queue namespace of this one's.
    bed.kubectl(MEMBER, "create", "namespace", TENANT)
    bed.apply(MEMBER, gang(PID, TENANT, AGENT, queue="research"))
    bed.kubectl(MEMBER, "create", "namespace", TEAM)
    bed.apply(MEMBER, gang(THEIRS, TEAM, OTHER))
    running_in(bed, TENANT)
    running_in(bed, TEAM)
    kubeconfig = service_account_kubeconfig(bed, MEMBER, "federator-agent", tmp_path / "agent.kubeconfig")
    updates: list[tuple[str, JobPhase, str]] = []

    async def main() -> frozenset[str]:
        backend = KubeBackend(KubeApi.connect(kubeconfig), namespace=WORKLOADS, cluster=MEMBER, sync_timeout=60,
                              federator=SERVER)
        await backend.start(lambda pid, phase, message, **_: updates.append((pid, phase, message)))
        try:
            assert backend.placements() == {PID: JobPhase.FAILED}
            return backend.capacity().placement_ids
        finally:
            await backend.stop()

    listed = asyncio.run(main())
    assert PID not in listed  # its pods hold resources, but the federator no longer reads it as running here
    assert THEIRS not in listed
    [(pid, phase, message)] = updates  # the other federation's placement is not reported to this one's
    assert (pid, phase) == (PID, JobPhase.FAILED)
    assert f"lost by the agent of {MEMBER}: the placement runs in namespace {TENANT}" in message
    assert "may not list jobs.batch in every namespace" in message and "forbidden" in message
    assert bed.kubectl_json(MEMBER, "get", "jobs", "-n", TEAM)["items"]  # and nothing of it touched


def test_two_agents_with_one_namespace_leave_each_others_workloads_alone_and_say_so(
        bed: Testbed, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A copied values file: a second agent (another federation's, naming the member member-b) is given this
    one's --namespace. Each launches there; neither takes the other's placement for its own (reports it to its
    federator, which would fence a placement it does not know), and each says at WARNING that another agent runs
    in its namespace, naming both."""
    kubeconfig = service_account_kubeconfig(bed, MEMBER, "federator-agent", tmp_path / "agent.kubeconfig")
    ours = Placement(PlacementId("mine-abc.g1.member-a"), JobId("mine-abc"), MEMBER, "east", 1, "", 1)
    theirs = Placement(PlacementId("copy-abc.g1.member-b"), JobId("copy-abc"), "member-b", "east", 1, "", 1)
    caplog.set_level(logging.WARNING, "federator.agent.kube")

    async def main() -> tuple[dict[str, JobPhase], dict[str, JobPhase]]:
        a = KubeBackend(KubeApi.connect(kubeconfig), namespace=WORKLOADS, cluster=MEMBER, sync_timeout=60,
                        federator=SERVER)
        b = KubeBackend(KubeApi.connect(kubeconfig), namespace=WORKLOADS, cluster="member-b", sync_timeout=60,
                        federator="other-federator.example:8443")
        await a.start(lambda *_, **__: None)
        await b.start(lambda *_, **__: None)
        try:
            assert await a.launch(ours, SPEC) is None
            assert await b.launch(theirs, SPEC) is None
            for _ in range(300):  # each informer has seen both Jobs (the other's is dropped by its filter)
                if ours.placement_id in a.placements() and theirs.placement_id in b.placements() and \
                        sum("another federator agent" in r.getMessage() for r in caplog.records) >= 2 and \
                        a.shared_namespace_agents and b.shared_namespace_agents:
                    break
                await asyncio.sleep(0.1)
            # federator_agent_shared_namespace_agents: each counts the other, by its pods
            assert a.shared_namespace_agents == {AgentIdentity("member-b", WORKLOADS, "other-federator.example:8443")}
            assert b.shared_namespace_agents == {AGENT}
            # Neither lists the other's placement to its federator, which so never learns of it (nor fences it)
            return a.placements(), b.placements()
        finally:
            await a.stop()
            await b.stop()

    seen_a, seen_b = asyncio.run(main())
    assert ours.placement_id in seen_a and theirs.placement_id not in seen_a
    assert theirs.placement_id in seen_b and ours.placement_id not in seen_b
    jobs = bed.kubectl_json(MEMBER, "get", "jobs", "-n", WORKLOADS)["items"]
    assert sorted(j["metadata"]["annotations"]["federator.io/cluster"] for j in jobs) == ["member-a", "member-b"]
    pods = bed.kubectl_json(MEMBER, "get", "pods", "-n", WORKLOADS)["items"]  # the pods carry it too
    assert pods and all("federator.io/agent-namespace" in p["metadata"]["annotations"] for p in pods)
    said = [r.getMessage() for r in caplog.records if "another federator agent" in r.getMessage()]
    assert len(said) == 2
    assert any("theirs (cluster member-b" in s and "this one (cluster member-a" in s for s in said)
    assert any("theirs (cluster member-a" in s and "this one (cluster member-b" in s for s in said)
