"""A drained node under a JobSet gang that restarts itself (outside provider QA F13), under the real JobSet controller.

The JobSet (`failurePolicy.maxRestarts: 3`) never fails after a drain: its controller recreates the Jobs, one worker
binds again and the other stays Pending (the drained node was its room), and the placement read "Running, 2/2" for
ever. The eviction's DisruptionTarget ends it now: the agent deletes the JobSet, reports the placement stopped by
the cluster (the federator queues the job again, naming the pod and node), and writes an Event on the JobSet for
the member's SRE. Its own test bed: member-a runs the JobSet controller.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from kube_support import JOBS_NAMESPACE, WORKLOADS, Kube, federation, own_bed
from support import eventually

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

DELAY = "pod-complete.stage.kwok.x-k8s.io/delay"  # kwok: how long a pod runs


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    work = tmp_path_factory.mktemp("kube-jobset-drain")
    with own_bed(work / "bed", controllers={"member-a": ["jobset"]}) as bed, federation(bed, work) as k:
        eventually(lambda: "JobSet" in str((k.json("host", "get", "mc", "member-a").get("status") or {})
                                           .get("workloadKinds", "")), timeout=90, what="member-a to serve JobSet")
        yield k


def _jobset() -> dict[str, Any]:
    worker = {"metadata": {"annotations": {DELAY: "600s"}},
              "spec": {"restartPolicy": "Never", "containers": [{
                  "name": "trainer", "image": "trainer:1",
                  "resources": {"requests": {"nvidia.com/gpu": 8, "cpu": "2"},
                                "limits": {"nvidia.com/gpu": 8}}}]}}
    return {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": "jsgang"},
            "spec": {"failurePolicy": {"maxRestarts": 3}, "replicatedJobs": [
                {"name": "workers", "replicas": 1,
                 "template": {"spec": {"parallelism": 2, "completions": 2, "backoffLimit": 0,
                                       "template": worker}}}]}}


def test_a_drained_jobset_gang_that_restarts_itself_is_ended_and_queued_again(fed: Kube) -> None:
    fed.kubectl("host", "apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": "jsgang", "namespace": JOBS_NAMESPACE},
        "spec": {"workload": _jobset(), "acceleratorModels": ["H100"]}}))
    node = ""
    try:
        eventually(lambda: fed.phase("jsgang") == "Running", timeout=120,
                   what=lambda: f"jsgang Running\n{fed.logs()}")
        pid = fed.fj("jsgang")["status"]["placementId"]  # type: ignore[index]
        pods = fed.json("member-a", "get", "pods", "-n", WORKLOADS, "-l", f"federator.io/placement-id={pid}")["items"]
        node = sorted(p["spec"]["nodeName"] for p in pods)[0]
        fed.drain_node("member-a", node)

        def requeued() -> bool:
            return any(f"evicted from node {node} (DisruptionTarget: EvictionByEvictionAPI)" in m
                       for m in fed.event_messages("jsgang"))

        eventually(requeued, timeout=60, what=lambda: f"the job queued again naming the eviction\n{fed.logs()}")
        assert fed.phase("jsgang") != "Failed"

        def told_on_the_member() -> list[dict[str, Any]]:
            return [e for e in fed.json("member-a", "get", "events", "-n", WORKLOADS)["items"]
                    if e.get("reason") == "FederatorEvicted"]

        eventually(lambda: bool(told_on_the_member()), timeout=30,
                   what=lambda: f"a FederatorEvicted Event on member-a\n{fed.logs()}")
        (event,) = told_on_the_member()
        assert event["involvedObject"]["kind"] == "JobSet" and pid in event["message"]

        def jobset_gone() -> bool:
            return not [o for o in fed.json("member-a", "get", "jobsets.jobset.x-k8s.io", "-n", WORKLOADS)["items"]
                        if o["metadata"]["annotations"].get("federator.io/placement-id") == pid]

        eventually(jobset_gone, timeout=60, what=lambda: f"the JobSet deleted, no half gang left\n{fed.logs()}")
    finally:
        fed.kubectl("host", "delete", "fj", "jsgang", "--wait=false", check=False)
        if node:
            fed.kubectl("member-a", "uncordon", node, check=False)


def test_a_node_deleted_under_a_gang_is_named_with_its_pod(fed: Kube) -> None:
    """Outside provider QA F1: `kubectl delete node` under a gang blamed the replica on the healthy node (the one the
    Job controller deleted next). The agent sees the node go and names it and the pod bound to it, at once."""
    fed.kubectl("host", "apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": "nodegone", "namespace": JOBS_NAMESPACE},
        "spec": {"kind": "training", "replicas": 2, "resources": {"nvidia.com/gpu": 8, "cpu": "2"},
                 "acceleratorModels": ["H100"], "template": {"metadata": {"annotations": {DELAY: "600s"}}}}}))
    try:
        eventually(lambda: fed.phase("nodegone") == "Running", timeout=120,
                   what=lambda: f"nodegone Running\n{fed.logs()}")
        pid = fed.fj("nodegone")["status"]["placementId"]  # type: ignore[index]
        pods = fed.json("member-a", "get", "pods", "-n", WORKLOADS, "-l", f"federator.io/placement-id={pid}")["items"]
        victim = sorted(pods, key=lambda p: p["spec"]["nodeName"])[-1]
        node, pod = victim["spec"]["nodeName"], victim["metadata"]["name"]
        fed.kubectl("member-a", "delete", "node", node)

        def said() -> bool:
            return any(f"node {node} was deleted under pod {pod}" in m for m in fed.event_messages("nodegone"))

        eventually(said, timeout=60, what=lambda: f"the job queued again naming {node} and {pod}\n{fed.logs()}")
        eventually(lambda: any(e.get("reason") == "FederatorNodeLost"
                               for e in fed.json("member-a", "get", "events", "-n", WORKLOADS)["items"]),
                   timeout=30, what=lambda: f"a FederatorNodeLost Event on member-a\n{fed.logs()}")
    finally:
        fed.kubectl("host", "delete", "fj", "nodegone", "--wait=false", check=False)
