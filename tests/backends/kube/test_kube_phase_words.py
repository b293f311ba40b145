"""The words of a placement's phase message read right for one replica as for many."""

from __future__ import annotations

from federator.backends.kube.workloads.adapter import REPLICAS_ANNOTATION, pods_phase
from federator.model import JobPhase


def _obj(replicas: int) -> dict[str, object]:
    return {"metadata": {"annotations": {REPLICAS_ANNOTATION: str(replicas)}}}


def test_one_replica_is_a_replica() -> None:
    running = {"status": {"phase": "Running"}}
    assert pods_phase(_obj(1), []) == (JobPhase.PLACED, "0 of 1 replica running")
    assert pods_phase(_obj(1), [running]) == (JobPhase.RUNNING, "1 replica running")
    assert pods_phase(_obj(2), [running]) == (JobPhase.PLACED, "1 of 2 replicas running")
    waiting = {"status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "message": "0/5 nodes are available"}]}}
    assert pods_phase(_obj(2), [running, waiting]) == (
        JobPhase.PLACED, "1 of 2 replicas running; 1 pending: 0/5 nodes are available")


def test_a_services_running_replicas_that_are_not_ready_are_named() -> None:
    """Outside QA: with every pod's readiness probe failing, a Deployment's placement still read "2 replicas
    running", and the job looked healthy while it answered nothing. A serving kind now says how many are ready
    when some are not; a training kind's words, and the phases, are as before."""
    from federator.backends.kube.workloads.registry import workload_phase

    ready = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    unready = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}}
    assert pods_phase(_obj(2), [unready, unready], serving=True) == (JobPhase.RUNNING, "2 replicas running, 0 ready")
    assert pods_phase(_obj(2), [ready, unready], serving=True) == (JobPhase.RUNNING, "2 replicas running, 1 ready")
    assert pods_phase(_obj(3), [ready, unready], serving=True) == (JobPhase.PLACED, "2 of 3 replicas running, 1 ready")
    assert pods_phase(_obj(2), [ready, ready], serving=True) == (JobPhase.RUNNING, "2 replicas running")
    assert pods_phase(_obj(2), [unready, unready]) == (JobPhase.RUNNING, "2 replicas running")  # a gang: as before
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"annotations": {REPLICAS_ANNOTATION: "2"}},
                  "spec": {"replicas": 2}, "status": {"replicas": 2, "readyReplicas": 0}}
    assert workload_phase(deployment, [unready, unready]) == (JobPhase.RUNNING, "2 replicas running, 0 ready")
