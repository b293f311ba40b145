"""The Kubernetes agent says on which nodes each placement's replicas run (JobUpdate.nodes), from its pods'
`spec.nodeName`, so the federator picks preemption victims per node on real members too (the outside QA's
priority-1000 8-GPU job that never got in because victims were chosen cluster-wide)."""

from __future__ import annotations

from typing import Any

from federator.agent.backend import SaysNodes
from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.informer import ADDED, DELETED, MODIFIED
from federator.backends.kube.pod_nodes import node_replicas
from federator.backends.kube.workloads import build_workload
from federator.model import JobId, JobKind, JobPhase, JobSpec, Placement, PlacementId, Resources

PID = "train-abc.g1.member-a"
SPEC = JobSpec(name="train", kind=JobKind.TRAINING, replicas=3, resources=Resources(cpu_milli=1000))

Nodes = tuple[tuple[str, int], ...]


class _Api:
    server = "fake"

    def list(self, res: Any, namespace: str | None = None, **_: Any) -> dict[str, Any]:
        return {"metadata": {"resourceVersion": "1"}, "items": []}


def _backend(*, started: bool = True) -> tuple[KubeBackend, list[tuple[JobPhase, str, Nodes]]]:
    b = KubeBackend(_Api(), namespace="w", cluster="member-a")  # type: ignore[arg-type]
    updates: list[tuple[JobPhase, str, Nodes]] = []

    def on_update(pid: str, phase: JobPhase, message: str, *, admission_overdue: bool = False,
                  running: int | None = None, ready: int | None = None, nodes: Nodes = ()) -> None:
        updates.append((phase, message, nodes))

    b._on_update = on_update
    b._started = started
    return b, updates


def _job() -> dict[str, Any]:
    placement = Placement(PlacementId(PID), JobId("train-abc"), "member-a", "eu", 3, "", 1)
    return build_workload(placement, SPEC, namespace="w")


def _pod(job: dict[str, Any], name: str, node: str = "", phase: str = "Running", **meta: Any) -> dict[str, Any]:
    tmpl = job["spec"]["template"]["metadata"]
    return {"metadata": {"name": name, "namespace": "w", **tmpl, **meta},
            "spec": {"nodeName": node} if node else {}, "status": {"phase": phase}}


def test_each_update_says_the_nodes_of_the_bound_replicas_and_a_move_is_news() -> None:
    b, updates = _backend()
    job = _job()
    b.jobs._apply_event(ADDED, job)
    b.pods._apply_event(ADDED, _pod(job, "p0", phase="Pending"))
    assert updates[-1][2] == ()  # nothing bound: nothing said (the agent keeps what was said)
    b.pods._apply_event(MODIFIED, _pod(job, "p0", "gpu-a", phase="Pending"))  # bound, not started yet
    assert updates[-1][2] == (("gpu-a", 1),)
    b.pods._apply_event(ADDED, _pod(job, "p1", "gpu-a"))
    b.pods._apply_event(ADDED, _pod(job, "p2", "gpu-b"))
    assert updates[-1][2] == (("gpu-a", 2), ("gpu-b", 1))
    said = len(updates)
    b.pods._apply_event(MODIFIED, _pod(job, "p2", "gpu-b"))  # status churn: the same nodes, nothing new to say
    assert len(updates) == said
    # p1 is replaced on another node (its pod deleted, a new one bound): a changed list is an update of its own.
    b.pods._apply_event(MODIFIED, _pod(job, "p1", "gpu-a", deletionTimestamp="2026-12-05T17:00:00Z"))
    b.pods._apply_event(DELETED, _pod(job, "p1", "gpu-a"))
    b.pods._apply_event(ADDED, _pod(job, "p1b", "gpu-c"))
    assert updates[-1][2] == (("gpu-a", 1), ("gpu-b", 1), ("gpu-c", 1))
    assert b.nodes_of(PID) == (("gpu-a", 1), ("gpu-b", 1), ("gpu-c", 1))


def test_a_restarted_agent_reads_the_nodes_for_its_resync_from_the_backend() -> None:
    """Before the stream opens (not started) the backend says nothing, but an agent that restarted has no copy of
    what was said: the re-sync asks `nodes_of` (agent.proto: the re-sync carries the nodes too)."""
    b, updates = _backend(started=False)
    job = _job()
    b.jobs._apply_event(ADDED, job)
    for name, node in (("p0", "gpu-a"), ("p1", "gpu-a"), ("p2", "gpu-b")):
        b.pods._apply_event(ADDED, _pod(job, name, node))
    assert not updates
    assert isinstance(b, SaysNodes)
    assert b.nodes_of(PID) == (("gpu-a", 2), ("gpu-b", 1))


def test_a_list_the_federator_would_ignore_is_not_sent() -> None:
    """Pods finished, on a node seen deleted, or more bound pods than replicas (agent.proto: ignored) are left out."""
    pods = [{"spec": {"nodeName": n}, "status": {"phase": p}, "metadata": {}}
            for n, p in (("a", "Running"), ("b", "Succeeded"), ("gone", "Running"), ("c", "Pending"))]
    assert node_replicas(pods, 3, gone={"gone"}) == (("a", 1), ("c", 1))
    assert node_replicas(pods, 1, gone={"gone"}) == ()
