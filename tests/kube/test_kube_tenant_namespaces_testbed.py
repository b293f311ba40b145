"""A namespace per tenant on a real member (`federator agent --namespace-per-queue`), with real Kueue.

Its own test bed: one member with two 8 x A100 kwok nodes and the real Kueue
controller; the agent runs as its service account with exactly the rules of
deploy/kubernetes/rbac-agent.yaml and rbac-agent-namespace-per-queue.yaml, in
Kueue mode (--kueue-queue) with the LocalQueue only in --namespace. Two queues'
jobs land in two namespaces: one the agent makes (its labels, the Pod Security
label, the NetworkPolicy, the LocalQueue copied onto the same ClusterQueue), one
a provider made beforehand (used as it is). Kueue admits both from the copied
LocalQueues, and a restarted agent adopts both and deletes each where it runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from kube_support import JOBS_NAMESPACE, RBAC, WORKLOADS, Kube, own_bed, service_account_kubeconfig, serving
from support import eventually

try:
    from tests.testbed.testbed import A100, gpu_nodes
except ImportError:
    from testbed import A100, gpu_nodes  # type: ignore[no-redef]

pytestmark = [pytest.mark.kube, pytest.mark.timeout(1200)]

MEMBER = "member-a"
LOCAL_QUEUE = "federated"
DELAY = "pod-complete.stage.kwok.x-k8s.io/delay"
PROVIDERS = f"{WORKLOADS}-ops"  # made by the provider before the queue's first job, labelled for it
OURS = f"{WORKLOADS}-research"  # made by the agent


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    workdir = tmp_path_factory.mktemp("tenant-federation")
    with own_bed(tmp_path_factory.mktemp("tenant-testbed"), members=(MEMBER,),
                 nodes={MEMBER: gpu_nodes("member-a-a100", A100, 2, 8)}, controllers={MEMBER: ("kueue",)}) as tb:
        tb.kubectl(MEMBER, "apply", "-f", str(RBAC / "rbac-agent-namespace-per-queue.yaml"))
        tb.apply(MEMBER, [
            {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": "a100"}},
            {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": "gpus"},
             "spec": {"namespaceSelector": {}, "resourceGroups": [{
                 "coveredResources": ["cpu", "nvidia.com/gpu"],
                 "flavors": [{"name": "a100", "resources": [{"name": "cpu", "nominalQuota": 100},
                                                            {"name": "nvidia.com/gpu", "nominalQuota": 16}]}]}]}},
            {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue",
             "metadata": {"name": LOCAL_QUEUE, "namespace": WORKLOADS}, "spec": {"clusterQueue": "gpus"}},
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PROVIDERS, "labels": {"tier": "gold",
                                                                                     "federator.io/queue": "ops"}}},
        ])
        with serving(tb, workdir) as fed:
            k = Kube(tb, fed, workdir)
            _start_agent(k)
            eventually(lambda: _ready(k), timeout=60, what=lambda: f"{MEMBER} Ready\n{k.logs()}")
            yield k


def _start_agent(k: Kube) -> None:
    kubeconfig = service_account_kubeconfig(k.tb, MEMBER, "federator-agent", k.workdir / "agent.kubeconfig")
    k.fed.start_kube_agent(MEMBER, kubeconfig=kubeconfig, region="east",
                           extra_args=["--namespace-per-queue", "--kueue-queue", LOCAL_QUEUE])


def _ready(k: Kube) -> bool:
    items = k.json("host", "get", "memberclusters")["items"]
    return any(i["metadata"]["name"] == MEMBER and (i.get("status") or {}).get("state") == "Ready" for i in items)


def _job(name: str, queue: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "namespace": JOBS_NAMESPACE},
        "spec": {"kind": "training", "replicas": 1, "queue": queue, "acceleratorModels": ["A100"],
                 "resources": {"nvidia.com/gpu": 1, "cpu": "1"},
                 "template": {"metadata": {"annotations": {DELAY: "600s"}}}}})


def _jobs(k: Kube, namespace: str) -> list[dict[str, Any]]:
    return list(k.json(MEMBER, "get", "jobs", "-n", namespace)["items"])


def _labels(k: Kube, namespace: str) -> dict[str, str]:
    return dict(k.json(MEMBER, "get", "namespace", namespace)["metadata"].get("labels") or {})


def test_two_queues_run_in_two_namespaces_and_a_restarted_agent_adopts_both(kube: Kube) -> None:
    provider_labels = _labels(kube, PROVIDERS)
    kube.kubectl("host", "apply", "-f", "-", input=_job("research-train", "research") + "---\n"
                 + _job("ops-train", "ops"))
    try:
        for name in ("research-train", "ops-train"):  # Running: Kueue admitted each from the LocalQueue it was given
            eventually(lambda n=name: kube.phase(n) == "Running", timeout=120,  # type: ignore[misc]
                       what=lambda n=name: f"{n} Running\n{kube.logs()}")  # type: ignore[misc]
        pids = {n: kube.fj(n)["status"]["placementId"] for n in ("research-train", "ops-train")}  # type: ignore[index]
        (research,) = _jobs(kube, OURS)
        (ops,) = _jobs(kube, PROVIDERS)
        assert research["metadata"]["annotations"]["federator.io/placement-id"] == pids["research-train"]
        assert ops["metadata"]["annotations"]["federator.io/placement-id"] == pids["ops-train"]
        assert _jobs(kube, WORKLOADS) == []  # nothing of either in the shared namespace
        assert research["metadata"]["labels"]["federator.io/queue"] == "research"

        # The namespace the agent made: its labels, the agent's level enforced, ingress from its own pods only.
        labels = _labels(kube, OURS)
        assert {k: labels.get(k) for k in ("app.kubernetes.io/managed-by", "federator.io/queue",
                                           "pod-security.kubernetes.io/enforce")} == {
            "app.kubernetes.io/managed-by": "federator", "federator.io/queue": "research",
            "pod-security.kubernetes.io/enforce": "baseline"}
        (policy,) = kube.json(MEMBER, "get", "networkpolicies", "-n", OURS)["items"]
        assert policy["spec"]["podSelector"] == {} and policy["spec"]["ingress"] == [{"from": [{"podSelector": {}}]}]
        # The provider's namespace: used as it is, no label and no policy of the agent's.
        assert _labels(kube, PROVIDERS) == provider_labels
        assert kube.json(MEMBER, "get", "networkpolicies", "-n", PROVIDERS)["items"] == []
        # Each got the LocalQueue, on the ClusterQueue of the one in --namespace.
        for namespace in (OURS, PROVIDERS):
            local = kube.json(MEMBER, "get", "localqueues.kueue.x-k8s.io", LOCAL_QUEUE, "-n", namespace)
            assert local["spec"]["clusterQueue"] == "gpus"

        # A restart: the agent finds both by its label in every namespace, and launches nothing twice.
        uids = {research["metadata"]["uid"], ops["metadata"]["uid"]}
        old = kube.fed.agents[MEMBER]
        old.stop()
        log_size = old.log.stat().st_size
        _start_agent(kube)
        new = kube.fed.agents[MEMBER]
        eventually(lambda: "connected to" in new.log.read_text()[log_size:], timeout=60, what="the agent back")
        eventually(lambda: _ready(kube), timeout=60, what="member-a Ready again")
        assert "2 placements in namespace federator-workloads-<queue>" in new.log.read_text()[log_size:]
        assert {j["metadata"]["uid"] for j in _jobs(kube, OURS) + _jobs(kube, PROVIDERS)} == uids
        for name, pid in pids.items():
            status = kube.fj(name)["status"]  # type: ignore[index]
            assert (status["phase"], status["placementId"]) == ("Running", pid)

        # Cancelled: each workload is deleted in its own namespace; the namespaces stay.
        kube.kubectl("host", "delete", "fj", "research-train", "ops-train", "-n", JOBS_NAMESPACE, "--timeout=60s")
        eventually(lambda: _jobs(kube, OURS) == [] and _jobs(kube, PROVIDERS) == [], timeout=60,
                   what=lambda: f"both workloads deleted\n{kube.logs()}")
        assert _labels(kube, OURS)["federator.io/queue"] == "research" and _labels(kube, PROVIDERS)
    finally:
        kube.kubectl("host", "delete", "fj", "research-train", "ops-train", "-n", JOBS_NAMESPACE,
                     "--ignore-not-found", "--timeout=60s", check=False)
