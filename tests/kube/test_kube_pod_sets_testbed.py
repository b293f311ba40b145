"""An RL JobSet of unequal roles lands whole on a member that could never hold it as equal pods (JobSpec.pod_sets).

Outside QA, ML platform E2: a JobSet of a learner 1 x 8, a rollout 4 x 1 and a reward model 1 x 1 (13 H100) was one
gang of 6 x 8 = 48, and waited GangDoesNotFit for ever on member-a (2 x 8 H100). Now the federator fits each role at
its own ask: the FederatedJob runs there, the real JobSet controller makes every role's pods, and they bind to
member-a's H100 nodes (1 pod of 8, 5 of 1: 13 of its 16). Its own test bed: member-a runs the JobSet controller.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from kube_support import JOBS_NAMESPACE, WORKLOADS, Kube, federation, own_bed
from support import eventually

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

DELAY = "pod-complete.stage.kwok.x-k8s.io/delay"  # kwok: how long a pod runs
REPLICATED_JOB = "jobset.sigs.k8s.io/replicatedjob-name"  # the JobSet controller's label on each pod
H100 = "NVIDIA-H100-80GB-HBM3"


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    work = tmp_path_factory.mktemp("kube-pod-sets")
    with own_bed(work / "bed", controllers={"member-a": ["jobset"]}) as bed, federation(bed, work) as k:
        eventually(lambda: "JobSet" in str((k.json("host", "get", "mc", "member-a").get("status") or {})
                                           .get("workloadKinds", "")), timeout=90, what="member-a to serve JobSet")
        yield k


def _role(name: str, pods: int, gpus: int) -> dict[str, Any]:
    return {"name": name, "replicas": 1, "template": {"spec": {
        "parallelism": pods, "completions": pods, "completionMode": "Indexed", "backoffLimit": 0,
        "template": {"metadata": {"annotations": {DELAY: "600s"}}, "spec": {
            "restartPolicy": "Never", "containers": [{"name": name, "image": "rl:1", "resources": {
                "requests": {"nvidia.com/gpu": gpus, "cpu": "1"}, "limits": {"nvidia.com/gpu": gpus}}}]}}}}}


def test_the_rl_jobset_runs_on_a_member_that_could_not_hold_its_pods_as_equal_ones(fed: Kube) -> None:
    jobset = {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": "rl"},
              "spec": {"replicatedJobs": [_role("learner", 1, 8), _role("rollout", 4, 1), _role("reward", 1, 1)]}}
    fed.kubectl("host", "apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": "rl", "namespace": JOBS_NAMESPACE},
        "spec": {"workload": jobset, "acceleratorModels": ["H100"]}}))
    try:
        eventually(lambda: fed.phase("rl") == "Running", timeout=180, what=lambda: f"rl Running\n{fed.logs()}")
        status = fed.fj("rl")["status"]  # type: ignore[index]
        assert status["accelerators"] == "13", status  # held and billed at what the roles ask, not 6 x 8
        pid = status["placementId"]

        def bound() -> list[dict[str, Any]]:
            pods = fed.json("member-a", "get", "pods", "-n", WORKLOADS, "-l", f"federator.io/placement-id={pid}")
            return [p for p in pods["items"] if p["spec"].get("nodeName")]

        eventually(lambda: len(bound()) == 6, timeout=120, what=lambda: f"6 pods bound on member-a\n{fed.logs()}")
        pods = bound()
        roles = Counter(p["metadata"]["labels"][REPLICATED_JOB] for p in pods)
        assert roles == {"learner": 1, "rollout": 4, "reward": 1}
        for p in pods:  # every role on an H100 node, each pod asking its own role's count
            assert p["spec"]["nodeSelector"]["nvidia.com/gpu.product"] == H100
            assert p["spec"]["nodeName"].startswith("member-a-h100-")
            want = "8" if p["metadata"]["labels"][REPLICATED_JOB] == "learner" else "1"
            assert p["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == want
    finally:
        fed.kubectl("host", "delete", "fj", "rl", "--wait=false", check=False)
