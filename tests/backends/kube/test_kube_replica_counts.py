"""The reference agent counts a serving placement's replicas for the federator (JobUpdate.replicas_running and
replicas_ready, outside QA F2) and says why replicas its member refuses to create are missing (F12)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.informer import ADDED, MODIFIED
from federator.backends.kube.workloads import build_workload
from federator.model import JobId, JobKind, JobPhase, JobSpec, Placement, PlacementId, Resources

PID = "chat-abc.g1.a"
SERVE = JobSpec(name="chat", kind=JobKind.INFERENCE, replicas=3, resources=Resources(cpu_milli=1000))
QUOTA = ('pods "w-chat-abc-g1-a-5d9f-x2" is forbidden: exceeded quota: qa-pods, requested: pods=1, used: pods=1, '
         'limited: pods=1')


class _Api:
    server = "fake"

    def list(self, res: Any, namespace: str | None = None, **_: Any) -> dict[str, Any]:
        return {"metadata": {"resourceVersion": "1"}, "items": []}


Update = tuple[JobPhase, str, "int | None", "int | None"]


def _backend() -> tuple[KubeBackend, list[Update]]:
    b = KubeBackend(_Api(), namespace="w")  # type: ignore[arg-type]
    updates: list[Update] = []

    def on_update(pid: str, phase: JobPhase, message: str, *, admission_overdue: bool = False,
                  running: int | None = None, ready: int | None = None,
                  nodes: tuple[tuple[str, int], ...] = (), ended_at: float | None = None) -> None:
        updates.append((phase, message, running, ready))

    b._on_update = on_update
    b._started = True
    return b, updates


def _deployment(replicas: int = 3) -> dict[str, Any]:
    placement = Placement(PlacementId(PID), JobId("chat-abc"), "a", "east", replicas, "", 1)
    return build_workload(placement, replace(SERVE, replicas=replicas), namespace="w")


def _pod(dep: dict[str, Any], name: str, phase: str, *, ready: bool | None = None) -> dict[str, Any]:
    conditions = [] if ready is None else [{"type": "Ready", "status": "True" if ready else "False"}]
    return {"metadata": {"name": name, "namespace": "w", **dep["spec"]["template"]["metadata"]},
            "spec": {"nodeName": "n0"} if phase == "Running" else {},
            "status": {"phase": phase, "conditions": conditions}}


def _failed_create(message: str) -> dict[str, Any]:
    return {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": message}


def test_replicas_a_quota_refuses_are_said_with_the_members_words() -> None:
    """F12: a ResourceQuota pods=1 let one of three replicas be created; the message said "1 of 3 replicas running"
    and nothing of the other two, whose cause sat in the Deployment's ReplicaFailure condition."""
    b, updates = _backend()
    dep = _deployment()
    b.deployments._apply_event(ADDED, {**dep, "status": {}})
    b.pods._apply_event(ADDED, _pod(dep, "r0", "Running"))
    b.deployments._apply_event(MODIFIED, {**dep, "status": {"readyReplicas": 1, "conditions": [_failed_create(QUOTA)]}})
    phase, message, running, ready = updates[-1]
    assert phase is JobPhase.PLACED
    assert message == f"1 of 3 replicas running; 2 not created: {QUOTA}"
    assert (running, ready) == (1, 1)


def test_a_failure_condition_left_when_every_replica_exists_adds_nothing() -> None:
    """The condition may linger a moment after the quota is lifted: with every replica made, nothing is missing."""
    b, updates = _backend()
    dep = _deployment(2)
    b.deployments._apply_event(ADDED, {**dep, "status": {}})
    b.pods._apply_event(ADDED, _pod(dep, "r0", "Running"))
    b.pods._apply_event(ADDED, _pod(dep, "r1", "Pending"))
    b.deployments._apply_event(MODIFIED, {**dep, "status": {"conditions": [_failed_create(QUOTA)]}})
    assert updates[-1][1] == "1 of 2 replicas running; 1 pending"


def test_a_serving_placement_reports_how_many_replicas_run_and_are_ready() -> None:
    """F2: the counts ride with each update, and a change of count alone is an update."""
    b, updates = _backend()
    dep = _deployment()
    b.deployments._apply_event(ADDED, {**dep, "status": {}})
    assert updates[-1][2:] == (0, 0)
    for name in ("r0", "r1", "r2"):
        b.pods._apply_event(ADDED, _pod(dep, name, "Running", ready=True))
    assert updates[-1] == (JobPhase.RUNNING, "3 replicas running", 3, 3)
    b.pods._apply_event(MODIFIED, _pod(dep, "r2", "Running", ready=False))  # its readiness probe fails
    assert updates[-1] == (JobPhase.RUNNING, "3 replicas running, 2 ready", 3, 2)
    b.pods._apply_event(MODIFIED, _pod(dep, "r2", "Pending"))  # moved to a node that cannot take it yet
    assert updates[-1] == (JobPhase.RUNNING, "2 of 3 replicas running; 1 pending", 2, 2)


def test_a_training_gang_counts_its_pods_running_not_its_launch() -> None:
    """A gang's counts are its pods in phase Running (outside provider QA F13): a gang that said none read "2/2
    ready" from its launch while half of it was Pending."""
    b, updates = _backend()
    placement = Placement(PlacementId("train-abc.g1.a"), JobId("train-abc"), "a", "east", 2, "", 1)
    job = build_workload(placement, replace(SERVE, kind=JobKind.TRAINING, replicas=2), namespace="w")
    b.jobs._apply_event(ADDED, {**job, "status": {"active": 2}})
    assert updates[-1][2:] == (0, 0)
    b.pods._apply_event(ADDED, _pod(job, "r0", "Running"))
    assert updates[-1] == (JobPhase.PLACED, "1 of 2 replicas running", 1, 1)
