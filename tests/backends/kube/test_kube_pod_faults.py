"""What went wrong with a placement's pod: the member's doing or the user's (pod_faults.py)."""

from __future__ import annotations

from typing import Any

import pytest

from federator.backends.kube.pod_faults import PodFault, disrupted_job, pod_fault


def _pod(*conditions: dict[str, Any], deleting: bool = False, **status: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "train-0-abc", "namespace": "w"}
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": "gpu-7"}, "status": {"conditions": list(conditions), **status}}


@pytest.mark.parametrize(("reason", "said"), [
    ("EvictionByEvictionAPI", "pod train-0-abc evicted from node gpu-7"),
    ("PreemptionByScheduler", "pod train-0-abc preempted on node gpu-7"),
    ("DeletionByTaintManager", "pod train-0-abc deleted from node gpu-7 by the taint manager"),
    ("DeletionByPodGC", "pod train-0-abc deleted with node gpu-7, which is gone"),
    ("TerminationByKubelet", "pod train-0-abc terminated by the kubelet of node gpu-7"),
    ("SomethingNew", "pod train-0-abc disrupted on node gpu-7"),
])
def test_every_disruption_kubernetes_names_is_the_members_doing(reason: str, said: str) -> None:
    pod = _pod({"type": "DisruptionTarget", "status": "True", "reason": reason}, deleting=True)
    assert pod_fault(pod) == PodFault(True, f"{said} (DisruptionTarget: {reason})")


def test_a_container_exit_is_the_users_unless_the_pod_was_being_deleted() -> None:
    exited = {"containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": 3, "reason": "Error"}}}],
              "phase": "Failed"}
    assert pod_fault(_pod(**exited)) == PodFault(False, "pod train-0-abc on node gpu-7: container main exited "
                                                        "with code 3 (Error)")
    assert pod_fault(_pod(deleting=True, **exited)) == PodFault(  # killed because something deleted it
        True, "pod train-0-abc on node gpu-7 was deleted in the member cluster", deleted=True)
    assert pod_fault(_pod(phase="Running")) is None
    assert pod_fault(_pod(phase="Failed", reason="DeadlineExceeded")) == PodFault(
        False, "pod train-0-abc on node gpu-7 failed: DeadlineExceeded")


def test_the_jobs_pod_failure_policy_condition_names_a_disruption() -> None:
    words = "Pod w/train-0-abc has condition DisruptionTarget matching FailJob rule at index 0"
    job = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "PodFailurePolicy",
                                      "message": words}]}}
    assert disrupted_job(job) == words
    assert disrupted_job({"status": {"conditions": [{"type": "Failed", "status": "True",
                                                     "reason": "BackoffLimitExceeded"}]}}) == ""
