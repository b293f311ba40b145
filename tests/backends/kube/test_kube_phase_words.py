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
