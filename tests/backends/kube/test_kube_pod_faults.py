"""What went wrong with a placement's pod: the member's doing or the user's (pod_faults.py)."""

from __future__ import annotations

from typing import Any

import pytest

from federator.backends.kube.pod_faults import PodFault, cause_among, disrupted_job, pod_fault


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
    assert pod_fault(pod) == PodFault(True, f"{said} (DisruptionTarget: {reason})", cause=reason)


def test_a_container_exit_is_the_users_unless_the_pod_was_being_deleted() -> None:
    exited = {"containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": 3, "reason": "Error"}}}],
              "phase": "Failed"}
    assert pod_fault(_pod(**exited)) == PodFault(False, "pod train-0-abc on node gpu-7: container main exited "
                                                        "with code 3 (Error)")
    assert pod_fault(_pod(deleting=True, **exited)) == PodFault(  # killed because something deleted it
        True, "pod train-0-abc on node gpu-7 was deleted in the member cluster", deleted=True, at=1735689600.0)
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


def _exited(name: str, code: int, reason: str, finished: str | None = None) -> dict[str, Any]:
    ended: dict[str, Any] = {"exitCode": code, "reason": reason}
    if finished:
        ended["finishedAt"] = finished
    return {"metadata": {"name": name, "namespace": "w"}, "spec": {"nodeName": "gpu-7"},
            "status": {"phase": "Failed", "containerStatuses": [{"name": "main", "state": {"terminated": ended}}]}}


def _deleted_by(name: str, due: str, grace: int = 30) -> dict[str, Any]:
    """A pod being deleted: its deletionTimestamp `due` is when its deletion was asked for plus the grace period."""
    return {"metadata": {"name": name, "namespace": "w", "deletionTimestamp": due,
                         "deletionGracePeriodSeconds": grace},
            "spec": {"nodeName": "gpu-8"}, "status": {"phase": "Running"}}


def test_a_replica_that_crashed_is_the_cause_not_the_sibling_the_job_controller_deleted_for_it() -> None:
    """F1: the watch saw the Job controller delete the surviving replica (its first fault, "deleted in the member
    cluster"), never the crashed replica's Failed state: read afterwards, the crash is what failed the gang."""
    crashed = _exited("train-0-abc", 137, "OOMKilled", "2026-12-05T10:00:05Z")
    sibling = _deleted_by("train-1-def", "2026-12-05T10:00:35Z")
    seen = pod_fault(sibling)
    assert seen is not None and seen.deleted and seen.at == pod_fault(crashed).at  # type: ignore[union-attr]
    cause = cause_among(seen, [sibling, crashed])
    assert cause is not None and not cause.disruption
    assert cause.message == "pod train-0-abc on node gpu-7: container main exited with code 137 (OOMKilled)"


def test_a_deletion_strictly_before_a_crash_stays_the_members_doing() -> None:
    """The member's operator deleted a replica and the other crashed for want of it, a second later."""
    seen = pod_fault(_deleted_by("train-1-def", "2026-12-05T10:00:35Z"))
    assert cause_among(seen, [_exited("train-0-abc", 1, "Error", "2026-12-05T10:00:06Z")]) == seen


def test_every_replica_failing_at_once_names_the_first_exit_and_a_seen_disruption_stays() -> None:
    pods = [_exited("train-1-def", 139, "Error", "2026-12-05T10:00:07Z"),
            _exited("train-0-abc", 1, "Error", "2026-12-05T10:00:03Z"), _exited("train-2-ghi", 2, "Error")]
    cause = cause_among(None, pods)
    assert cause is not None and cause.message.startswith("pod train-0-abc ") and "code 1 (Error)" in cause.message
    drained = PodFault(True, "pod train-0-abc evicted from node gpu-7 (DisruptionTarget: EvictionByEvictionAPI)")
    assert cause_among(drained, pods) == drained  # a disruption the watch saw first is never overruled
    assert cause_among(None, [_deleted_by("train-1-def", "2026-12-05T10:00:35Z")]) is None  # no exit: nothing
