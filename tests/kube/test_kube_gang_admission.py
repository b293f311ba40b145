"""All-or-nothing on the member, with real processes: Kueue on member-b, the gang timeout on member-a.

Its own test bed: member-a has two 8 x A100 nodes and no gang admitter (its agent
runs with a short --gang-timeout); member-b has three 8 x A100 nodes and the real
Kueue controller (built from the Go module proxy), and its agent runs with
--kueue-queue. The federator and both agents are `federator` processes; every
check goes through kubectl.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from kube_support import (
    CRDS,
    JOBS_NAMESPACE,
    RBAC,
    WORKLOADS,
    Kube,
    KubeFederation,
    Testbed,
    service_account_kubeconfig,
)
from support import eventually

try:
    from tests.testbed.testbed import A100, gpu_nodes
except ImportError:
    from testbed import A100, gpu_nodes  # type: ignore[no-redef]

pytestmark = [pytest.mark.kube, pytest.mark.timeout(3600)]

DELAY = "pod-complete.stage.kwok.x-k8s.io/delay"
GANG_TIMEOUT = 5  # seconds: short, so the test is quick; the agent's default is 120
QUEUE = "federated"  # the LocalQueue the member-b agent hands workloads to
MEMBERS = {"member-a": "east", "member-b": "west"}


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    nodes = {"member-a": gpu_nodes("member-a-a100", A100, 2, 8), "member-b": gpu_nodes("member-b-a100", A100, 3, 8)}
    tb = Testbed.start(tmp_path_factory.mktemp("gang-testbed"), nodes=nodes, job_pod_duration=10.0,
                       controllers={"member-b": ("kueue",)})
    workdir = tmp_path_factory.mktemp("gang-federation")
    fed = None
    try:
        tb.kubectl("host", "apply", "-f", str(CRDS))
        tb.kubectl("host", "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        tb.kubectl("host", "apply", "-f", str(RBAC / "rbac-federator.yaml"))
        for member in tb.members:
            tb.kubectl(member, "apply", "-f", str(RBAC / "rbac-agent.yaml"))
        _kueue_queues(tb, gpus=16)
        host = service_account_kubeconfig(tb, "host", "federator", workdir / "federator.kubeconfig")
        fed = KubeFederation(workdir=workdir, tls=False, serve_args=[
            "--kubeconfig", str(host), "--watch-namespace", JOBS_NAMESPACE, "--lease-namespace", "federator-system",
            "--report-interval", "0.5", "--cycle-interval", "0.2"])
        fed.start_server(timeout=60)
        for member, region in MEMBERS.items():
            kubeconfig = service_account_kubeconfig(tb, member, "federator-agent", workdir / f"{member}.kubeconfig")
            extra = ["--gang-timeout", str(GANG_TIMEOUT)] if member == "member-a" else ["--kueue-queue", QUEUE]
            args = ["agent", "--cluster", member, "--region", region, "--server", fed.grpc_target,
                    "--kubeconfig", str(kubeconfig), "--namespace", WORKLOADS, *extra, "--insecure"]
            fed.agents[member] = fed.spawn(f"agent-{member}", args)
        k = Kube(tb, fed, workdir)

        def all_ready() -> bool:
            items = k.json("host", "get", "memberclusters")["items"]
            return sorted(i["metadata"]["name"] for i in items
                          if (i.get("status") or {}).get("state") == "Ready") == sorted(MEMBERS)

        eventually(all_ready, timeout=60, what=lambda: f"both member clusters Ready\n{k.logs()}")
        yield k
    finally:
        if fed is not None:
            fed.stop()
        tb.stop()


def _kueue_queues(tb: Testbed, *, gpus: int) -> None:
    tb.apply("member-b", [
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": "a100"}},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": "federated"},
         "spec": {"namespaceSelector": {}, "resourceGroups": [{
             "coveredResources": ["cpu", "nvidia.com/gpu"],
             "flavors": [{"name": "a100", "resources": [{"name": "cpu", "nominalQuota": 1000},
                                                        {"name": "nvidia.com/gpu", "nominalQuota": gpus}]}]}]}},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue",
         "metadata": {"name": QUEUE, "namespace": WORKLOADS}, "spec": {"clusterQueue": "federated"}},
    ])


def _fj(name: str, replicas: int, *, delay: str = "2s") -> str:
    return yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "namespace": JOBS_NAMESPACE},
        "spec": {"kind": "training", "replicas": replicas, "gpuModels": ["A100"],
                 "resources": {"nvidia.com/gpu": 8, "cpu": "1"},
                 "template": {"metadata": {"annotations": {DELAY: delay}}}},
    })


def _cli(k: Kube, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "federator", *args, *k.fed.client_args()], capture_output=True,
                          text=True, timeout=60, check=True)
    return proc.stdout


def _status(k: Kube, name: str) -> dict[str, Any]:
    return dict(((k.fj(name) or {}).get("status")) or {})


def _member_objects(k: Kube, member: str, placement_id: str) -> list[str]:
    out = []
    for kind in ("jobs", "pods"):
        for item in k.json(member, "get", kind, "-n", WORKLOADS)["items"]:
            if (item["metadata"].get("annotations") or {}).get("federator.io/placement-id") == placement_id:
                out.append(f"{kind}/{item['metadata']['name']}")
    return out


def test_members_say_what_admits_their_gangs(kube: Kube) -> None:
    def offers() -> dict[str, str]:
        return {i["metadata"]["name"]: (i.get("status") or {}).get("gangAdmission", "")
                for i in kube.json("host", "get", "memberclusters")["items"]}

    eventually(lambda: offers() == {"member-a": "none", "member-b": "kueue"}, timeout=30,
               what=lambda: f"gangAdmission in MemberCluster status ({offers()})")
    wide = kube.kubectl("host", "get", "mc", "-o", "wide").stdout
    assert "GANG-ADMISSION" in wide.splitlines()[0], wide
    out = _cli(kube, "get", "clusters", "-o", "wide")
    assert "GANG ADMISSION" in out and "kueue" in out, out


def test_kueue_holds_a_gang_over_quota_with_its_reason_then_admits_it_whole(kube: Kube) -> None:
    # 3 x 8 A100 fit only member-b (3 nodes), whose ClusterQueue allows 16 GPUs.
    kube.kubectl("host", "apply", "-f", "-", input=_fj("kueue-gang", 3))
    try:
        def waiting() -> str:
            status = _status(kube, "kueue-gang")
            message = str(status.get("message", ""))
            return message if status.get("phase") == "Placed" and "nvidia.com/gpu" in message else ""

        message = eventually(waiting, timeout=90, what=lambda: f"Kueue's reason on kueue-gang\n{kube.logs()}")
        assert message.startswith("waiting for Kueue admission on member-b: "), message
        assert "quota" in message, message  # Kueue's own words: insufficient quota for nvidia.com/gpu
        assert _status(kube, "kueue-gang")["cluster"] == "member-b"
        jobs = kube.member_jobs("member-b")
        assert len(jobs) == 1
        job = jobs[0]
        assert job["spec"]["suspend"] is True and job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == QUEUE
        assert not kube.json("member-b", "get", "pods", "-n", WORKLOADS)["items"]  # no partial gang
        wide = kube.kubectl("host", "get", "fj", "kueue-gang", "-o", "wide").stdout
        assert "waiting for Kueue admission on member-b" in wide, wide
        out = _cli(kube, "get", "jobs", "-o", "wide")
        assert "waiting for Kueue admission on member-b" in out, out

        # Raise the quota: Kueue admits the whole gang, unsuspends it, and it runs to Succeeded.
        _kueue_queues(kube.tb, gpus=24)
        eventually(lambda: kube.phase("kueue-gang") == "Succeeded", timeout=120,
                   what=lambda: f"kueue-gang Succeeded after the quota was raised\n{kube.logs()}")
        workloads = kube.json("member-b", "get", "workloads.kueue.x-k8s.io", "-n", WORKLOADS)["items"]
        assert any(c["type"] == "Admitted" and c["status"] == "True"
                   for w in workloads for c in w["status"]["conditions"])
    finally:
        kube.kubectl("host", "delete", "fj", "kueue-gang", "--ignore-not-found", "--wait=false")


def test_a_gang_not_wholly_bound_in_time_is_refused_and_placed_on_the_other_member(kube: Kube) -> None:
    tb = kube.tb
    # member-b looks full to the federator (its pods hold every A100), so the gang goes to member-a ...
    tb.apply("member-b", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "filler", "namespace": "default"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "filler"}}, "template": {
            "metadata": {"labels": {"app": "filler"}},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                                     "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}},
    })
    # ... where one node's CPU is all taken by a pod that holds no GPU: the federator's model (free
    # GPUs per node) says 2 x 8 fit, but the member's scheduler can bind only one replica.
    tb.apply("member-a", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "cpu-hog", "namespace": "default"},
        "spec": {"nodeName": "member-a-a100-1",
                 "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "64"}}}]},
    })
    eventually(lambda: _free_accelerators(kube, "member-b") == 0, timeout=60, what="member-b reported full")
    # Each replica runs 4 s, less than the 5 s timeout: the first finishes and frees its node, the second
    # then binds there and runs. The Job reads as Running (1 done, 1 running), but the two never held nodes
    # together, so it is still a partial gang and must be refused (an agent that trusted the phase was not).
    kube.kubectl("host", "apply", "-f", "-", input=_fj("gang-timeout", 2, delay="4s"))
    try:
        first = eventually(lambda: _status(kube, "gang-timeout").get("cluster") == "member-a"
                           and _status(kube, "gang-timeout").get("placementId"), timeout=60,
                           what=lambda: f"gang-timeout placed on member-a\n{kube.logs()}")
        eventually(lambda: _member_objects(kube, "member-a", first), timeout=30, what="its Job on member-a")
        tb.kubectl("member-b", "delete", "deployment", "filler", "-n", "default")  # room on member-b again

        second = eventually(lambda: _status(kube, "gang-timeout").get("cluster") == "member-b"
                            and _status(kube, "gang-timeout").get("placementId"), timeout=90,
                            what=lambda: f"gang-timeout re-placed on member-b: {_status(kube, 'gang-timeout')}\n"
                                         f"{tb.kubectl('member-a', 'get', 'pods,jobs', '-A', '-o', 'wide').stdout}\n"
                                         f"{kube.logs()}")
        assert second != first
        # The refusal, in the agent's words, reached the federator's events / log.
        assert "gang timeout on member-a" in kube.fed.agents["member-a"].log.read_text()
        eventually(lambda: not _member_objects(kube, "member-a", first), timeout=60,
                   what=lambda: "no object of the first attempt left on member-a "
                                f"({_member_objects(kube, 'member-a', first)})")
        eventually(lambda: kube.phase("gang-timeout") == "Succeeded", timeout=120,
                   what=lambda: f"gang-timeout Succeeded on member-b\n{kube.logs()}")
    finally:
        tb.kubectl("member-a", "delete", "pod", "cpu-hog", "-n", "default", "--ignore-not-found", "--wait=false")
        tb.kubectl("member-b", "delete", "deployment", "filler", "-n", "default", "--ignore-not-found")
        kube.kubectl("host", "delete", "fj", "gang-timeout", "--ignore-not-found", "--wait=false")


def _free_accelerators(k: Kube, member: str) -> int:
    status = k.json("host", "get", "mc", member).get("status") or {}
    return int(status.get("acceleratorsFree", -1))
