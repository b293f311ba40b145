"""The real workload controllers on a test-bed member: JobSet, Kueue, LeaderWorkerSet (and Trainer's CRDs).

Each controller is the project's own binary, built from the Go module proxy by
tests/testbed/build-controllers, started by ``Testbed.start(controllers=...)``
with the CRDs and webhooks of its own module. Everything is checked through
kubectl against the member's real API server; kwok plays the kubelets.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

try:  # rootdir on sys.path (python -m pytest from the repo root)
    from tests.testbed.testbed import Testbed, TestbedError
except ImportError:  # tests/testbed itself on sys.path
    from testbed import Testbed, TestbedError  # type: ignore[no-redef]

# The first run may build the controllers (minutes cold, see README.md).
pytestmark = [pytest.mark.kube, pytest.mark.timeout(3600)]

MEMBER = "member-a"


@pytest.fixture(scope="module")
def tb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    bed = Testbed.start(tmp_path_factory.mktemp("controllers"), members=(MEMBER,),
                        controllers={MEMBER: ("jobset", "kueue", "lws")})
    try:
        yield bed
    finally:
        bed.stop()


def eventually(pred: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = pred()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def _true(obj: dict[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def _pods(tb: Testbed, selector: str) -> list[dict[str, Any]]:
    return list(tb.kubectl_json(MEMBER, "get", "pods", "-n", "default", "-l", selector)["items"])


def test_every_controller_runs_with_its_webhooks_registered(tb: Testbed) -> None:
    assert set(tb.controllers[MEMBER]) == {"jobset", "kueue", "lws"}
    hooks = tb.kubectl(MEMBER, "get", "mutatingwebhookconfigurations", "-o", "name").stdout.split()
    assert {"mutatingwebhookconfiguration.admissionregistration.k8s.io/jobset-mutating-webhook-configuration",
            "mutatingwebhookconfiguration.admissionregistration.k8s.io/kueue-mutating-webhook-configuration",
            "mutatingwebhookconfiguration.admissionregistration.k8s.io/lws-mutating-webhook-configuration",
            } <= set(hooks)
    crds = tb.kubectl(MEMBER, "get", "crds", "-o", "name").stdout
    for name in ("jobsets.jobset.x-k8s.io", "workloads.kueue.x-k8s.io", "leaderworkersets.leaderworkerset.x-k8s.io"):
        assert name in crds


def test_a_jobset_runs_to_completed(tb: Testbed) -> None:
    tb.apply(MEMBER, {
        "apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet",
        "metadata": {"name": "js-train", "namespace": "default"},
        "spec": {"replicatedJobs": [{"name": "workers", "replicas": 1, "template": {"spec": {
            "parallelism": 2, "completions": 2, "backoffLimit": 0,
            "template": {"spec": {"restartPolicy": "Never", "containers": [{
                "name": "main", "image": "busybox", "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}}}}]},
    })
    done = eventually(lambda: _true(tb.kubectl_json(MEMBER, "get", "jobset", "js-train", "-n", "default"),
                                    "Completed"), "JobSet js-train Completed")
    assert done
    # The JobSet webhook labelled the pods (its pod webhook ran: it is registered and reachable).
    pods = _pods(tb, "jobset.sigs.k8s.io/jobset-name=js-train")
    assert len(pods) == 2 and all(p["spec"].get("nodeName") for p in pods)


def test_kueue_admits_a_suspended_job_whole_and_it_completes(tb: Testbed) -> None:
    tb.apply(MEMBER, [
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": "gpus"}},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": "cq"},
         "spec": {"namespaceSelector": {}, "resourceGroups": [{
             "coveredResources": ["nvidia.com/gpu"],
             "flavors": [{"name": "gpus", "resources": [{"name": "nvidia.com/gpu", "nominalQuota": 16}]}]}]}},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue",
         "metadata": {"name": "lq", "namespace": "default"}, "spec": {"clusterQueue": "cq"}},
    ])
    job = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "kueue-gang", "namespace": "default", "labels": {"kueue.x-k8s.io/queue-name": "lq"}},
        "spec": {"suspend": True, "parallelism": 2, "completions": 2, "completionMode": "Indexed",
                 "backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [{
                     "name": "main", "image": "busybox", "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}},
    }
    tb.apply(MEMBER, job)
    workload = eventually(lambda: [w for w in tb.kubectl_json(MEMBER, "get", "workloads.kueue.x-k8s.io",
                                                             "-n", "default")["items"]
                                   if _true(w, "Admitted")], "Kueue Workload of kueue-gang Admitted")
    assert workload[0]["metadata"]["ownerReferences"][0]["name"] == "kueue-gang"
    eventually(lambda: _true(tb.kubectl_json(MEMBER, "get", "job", "kueue-gang", "-n", "default"), "Complete"),
               "Job kueue-gang Complete after Kueue unsuspended it")

    # 24 GPUs do not fit a 16-GPU ClusterQueue: Kueue keeps it suspended and says why.
    big = {**job, "metadata": {**job["metadata"], "name": "kueue-too-big"},
           "spec": {**job["spec"], "parallelism": 3, "completions": 3}}
    tb.apply(MEMBER, big)

    def pending_message() -> str:
        for w in tb.kubectl_json(MEMBER, "get", "workloads.kueue.x-k8s.io", "-n", "default")["items"]:
            if w["metadata"]["ownerReferences"][0]["name"] == "kueue-too-big":
                for c in (w.get("status") or {}).get("conditions") or []:
                    if c.get("type") == "QuotaReserved" and c.get("status") == "False":
                        return str(c.get("message", ""))
        return ""

    message = eventually(pending_message, "Kueue's reason for kueue-too-big")
    assert "nvidia.com/gpu" in message, message
    assert tb.kubectl_json(MEMBER, "get", "job", "kueue-too-big", "-n", "default")["spec"]["suspend"] is True


def test_a_leaderworkerset_makes_its_groups(tb: Testbed) -> None:
    tb.apply(MEMBER, {
        "apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
        "metadata": {"name": "lws-serve", "namespace": "default"},
        "spec": {"replicas": 2, "leaderWorkerTemplate": {"size": 2, "workerTemplate": {"spec": {"containers": [{
            "name": "main", "image": "busybox", "resources": {"limits": {"nvidia.com/gpu": "4"}}}]}}}},
    })

    def running() -> list[dict[str, Any]]:
        pods = _pods(tb, "leaderworkerset.sigs.k8s.io/name=lws-serve")
        return pods if len(pods) == 4 and all(p["status"].get("phase") == "Running" for p in pods) else []

    pods = eventually(running, "4 LWS pods Running (2 groups of leader + worker)")
    groups = {p["metadata"]["labels"].get("leaderworkerset.sigs.k8s.io/group-index") for p in pods}
    assert groups == {"0", "1"}  # labels the LWS pod webhook sets


def test_asking_for_the_trainer_controller_says_why_it_cannot_run(tmp_path: Any) -> None:
    with pytest.raises(TestbedError, match="cert.ManageCerts"):
        Testbed.start(tmp_path, members=(MEMBER,), controllers={MEMBER: ("trainer",)})
