"""A member's operator drains a node under running work (`kubectl drain`: the Eviction API, on kwok nodes).

Found by outside QA on a real test bed: a drained gang was reported Failed for good ("BackoffLimitExceeded: Job
has reached the specified backoff limit"), and an inference job left 1 of 2 replicas running still said
"2 replicas running".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from kube_support import JOBS_NAMESPACE, WORKLOADS, Kube
from support import eventually

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

DELAY = "pod-complete.stage.kwok.x-k8s.io/delay"  # kwok: how long a Job's pod runs


def _job(name: str, kind: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "namespace": JOBS_NAMESPACE},
        "spec": {"kind": kind, "replicas": 2, "resources": {"nvidia.com/gpu": 8, "cpu": "2"},
                 "acceleratorModels": ["H100"], "template": {"metadata": {"annotations": {DELAY: "600s"}}}}})


def _pods(kube: Kube, pid: str) -> list[dict[str, Any]]:
    return kube.json("member-a", "get", "pods", "-n", WORKLOADS, "-l", f"federator.io/placement-id={pid}")["items"]


@pytest.fixture
def drained(kube: Kube) -> Iterator[list[str]]:
    """The nodes a test drained, uncordoned after it."""
    nodes: list[str] = []
    try:
        yield nodes
    finally:
        for node in nodes:
            kube.kubectl("member-a", "uncordon", node, check=False)


def _drain_one(kube: Kube, pid: str, drained: list[str]) -> str:
    node = sorted(p["spec"]["nodeName"] for p in _pods(kube, pid))[0]
    drained.append(node)
    kube.drain_node("member-a", node)
    return node


def test_a_drained_gang_is_stopped_by_the_cluster_and_queued_again_not_failed(kube: Kube,
                                                                              drained: list[str]) -> None:
    kube.kubectl("host", "apply", "-f", "-", input=_job("drained-gang", "training"))
    try:
        eventually(lambda: kube.phase("drained-gang") == "Running", timeout=120,
                   what=lambda: f"drained-gang Running\n{kube.logs()}")
        pid = kube.fj("drained-gang")["status"]["placementId"]  # type: ignore[index]
        node = _drain_one(kube, pid, drained)

        def requeued() -> bool:
            return any(f"evicted from node {node} (DisruptionTarget: EvictionByEvictionAPI)" in m
                       for m in kube.event_messages("drained-gang"))

        eventually(requeued, timeout=60, what=lambda: f"an Event saying the pod was evicted\n{kube.logs()}")
        assert kube.phase("drained-gang") != "Failed"
        kube.kubectl("member-a", "uncordon", node)  # room again: the job runs again, a new generation
        eventually(lambda: kube.phase("drained-gang") == "Running"
                   and kube.fj("drained-gang")["status"]["placementId"] != pid,  # type: ignore[index]
                   timeout=120, what=lambda: f"drained-gang Running again\n{kube.logs()}")
    finally:
        kube.kubectl("host", "delete", "fj", "drained-gang", "--wait=false", check=False)


def test_an_inference_job_that_loses_a_replica_to_a_drain_says_so(kube: Kube, drained: list[str]) -> None:
    kube.kubectl("host", "apply", "-f", "-", input=_job("drained-serve", "inference"))
    try:
        eventually(lambda: kube.phase("drained-serve") == "Running", timeout=120,
                   what=lambda: f"drained-serve Running\n{kube.logs()}")
        pid = kube.fj("drained-serve")["status"]["placementId"]  # type: ignore[index]
        _drain_one(kube, pid, drained)

        def message() -> str:
            return str((kube.fj("drained-serve") or {}).get("status", {}).get("message", ""))

        eventually(lambda: message().startswith("1 of 2 replicas running; 1 pending: 0/"), timeout=60,
                   what=lambda: f"the short replica in the message (it says {message()!r})\n{kube.logs()}")
        assert kube.phase("drained-serve") == "Running"
    finally:
        kube.kubectl("host", "delete", "fj", "drained-serve", "--wait=false", check=False)


def test_a_gang_whose_pod_the_members_operator_deletes_is_queued_again_not_failed(kube: Kube) -> None:
    """`kubectl delete pod` on the member, no drain (so no DisruptionTarget): the gang Job failed with
    BackoffLimitExceeded and the job was reported Failed for good. The member did it: queued again, and run."""
    kube.kubectl("host", "apply", "-f", "-", input=_job("deleted-pod", "training"))
    try:
        eventually(lambda: kube.phase("deleted-pod") == "Running", timeout=120,
                   what=lambda: f"deleted-pod Running\n{kube.logs()}")
        pid = kube.fj("deleted-pod")["status"]["placementId"]  # type: ignore[index]
        victim = sorted(p["metadata"]["name"] for p in _pods(kube, pid))[0]
        kube.kubectl("member-a", "delete", "pod", "-n", WORKLOADS, victim, "--wait=false")

        def requeued() -> bool:
            return any(f"pod {victim} on node" in m and "was deleted in the member cluster" in m
                       for m in kube.event_messages("deleted-pod"))

        eventually(requeued, timeout=60, what=lambda: f"an Event saying the pod was deleted\n{kube.logs()}")
        eventually(lambda: kube.phase("deleted-pod") == "Running"
                   and kube.fj("deleted-pod")["status"]["placementId"] != pid,  # type: ignore[index]
                   timeout=120, what=lambda: f"deleted-pod Running again\n{kube.logs()}")
    finally:
        kube.kubectl("host", "delete", "fj", "deleted-pod", "--wait=false", check=False)
