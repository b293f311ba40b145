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
    from tests.testbed.testbed import Testbed
except ImportError:  # tests/testbed itself on sys.path
    from testbed import Testbed  # type: ignore[no-redef]

# The first run may build the controllers (minutes cold, see README.md).
pytestmark = [pytest.mark.kube, pytest.mark.timeout(3600)]

MEMBER = "member-a"


@pytest.fixture(scope="module")
def tb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    bed = Testbed.start(tmp_path_factory.mktemp("controllers"), members=(MEMBER,),
                        controllers={MEMBER: ("jobset", "lws")})
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
    assert set(tb.controllers[MEMBER]) == {"jobset", "lws"}
    hooks = tb.kubectl(MEMBER, "get", "mutatingwebhookconfigurations", "-o", "name").stdout.split()
    assert {"mutatingwebhookconfiguration.admissionregistration.k8s.io/jobset-mutating-webhook-configuration",
            "mutatingwebhookconfiguration.admissionregistration.k8s.io/lws-mutating-webhook-configuration",
            } <= set(hooks)
    crds = tb.kubectl(MEMBER, "get", "crds", "-o", "name").stdout
    for name in ("jobsets.jobset.x-k8s.io", "leaderworkersets.leaderworkerset.x-k8s.io"):
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
