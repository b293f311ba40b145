"""The Kubernetes agent says on which nodes each placement's replicas run (JobUpdate.nodes), from its pods'
`spec.nodeName`, so the federator picks preemption victims per node on real members too (the outside QA's
priority-1000 8-GPU job that never got in because victims were chosen cluster-wide)."""

from __future__ import annotations

import json
from typing import Any

from federator.agent.backend import SaysNodes
from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.informer import ADDED, DELETED, MODIFIED
from federator.backends.kube.pod_nodes import node_replicas, replica_pods
from federator.backends.kube.workloads import adapter_for, build_workload
from federator.model import JobId, JobKind, JobPhase, JobSpec, Placement, PlacementId, Resources
from federator.server.replica_counts import ReplicaCounts

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


# A LeaderWorkerSet whose leader (a CPU router) asks for no accelerator, beside 3 GPU workers a group: the federator
# counts its replicas in workers (common.needs), 2 groups x 3 = 6, while LWS runs 8 pods.
LWS_ROUTER = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "metadata": {"name": "llm"},
              "spec": {"replicas": 2, "leaderWorkerTemplate": {
                  "size": 4,
                  "leaderTemplate": {"spec": {"containers": [{"name": "router", "image": "router:1",
                                                              "resources": {"requests": {"cpu": "2"}}}]}},
                  "workerTemplate": {"spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.9",
                                                              "resources": {"limits": {"nvidia.com/gpu": 8}}}]}}}}}
LWS_PID = "llm-abc.g1.member-a"


def _lws_pod(lws: dict[str, Any], group: int, worker: int, node: str) -> dict[str, Any]:
    lwt = lws["spec"]["leaderWorkerTemplate"]
    tmpl = (lwt["leaderTemplate"] if worker == 0 else lwt["workerTemplate"])["metadata"]
    labels = {**tmpl["labels"], "leaderworkerset.sigs.k8s.io/group-index": str(group),
              "leaderworkerset.sigs.k8s.io/worker-index": str(worker)}
    return {"metadata": {"name": f"llm-{group}-{worker}", "namespace": "w", **tmpl, "labels": labels},
            "spec": {"nodeName": node}, "status": {"phase": "Running"}}


def test_a_leaderworkerset_with_a_cpu_leader_says_the_nodes_of_its_workers_as_the_federator_counts_them() -> None:
    """The leaders were counted too: 8 pods said against a placement of 6 replicas, a list the federator ignores
    (agent.proto JobUpdate.nodes), so preemption on that member stayed a guess."""
    spec = JobSpec(name="llm", kind=JobKind.INFERENCE, replicas=6, resources=Resources(),
                   workload_json=json.dumps(LWS_ROUTER))
    placement = Placement(PlacementId(LWS_PID), JobId("llm-abc"), "member-a", "eu", 6, "", 1)
    lws = build_workload(placement, spec, namespace="w")
    assert lws["spec"]["replicas"] == 2
    b, updates = _backend()
    b._workload_informer(adapter_for(lws))._apply_event(ADDED, lws)
    for group, gpu in enumerate(("gpu-a", "gpu-b")):
        b.pods._apply_event(ADDED, _lws_pod(lws, group, 0, "cpu-0"))
        for worker in (1, 2, 3):
            b.pods._apply_event(ADDED, _lws_pod(lws, group, worker, gpu))
    said = updates[-1][2]
    assert said == (("gpu-a", 3), ("gpu-b", 3))
    held = Placement(PlacementId(LWS_PID), JobId("llm-abc"), "member-a", "eu", 6, "", 1, phase=JobPhase.RUNNING)
    ReplicaCounts(nodes=said).apply(held)  # what the federator does with the update's nodes
    assert held.nodes == said


def test_a_leaderworkerset_whose_leader_asks_for_accelerators_counts_every_pod() -> None:
    gpu_leader = json.loads(json.dumps(LWS_ROUTER))
    gpu_leader["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]["resources"] = {
        "limits": {"nvidia.com/gpu": 8}}
    spec = JobSpec(name="llm", kind=JobKind.INFERENCE, replicas=8, resources=Resources(),
                   workload_json=json.dumps(gpu_leader))
    lws = build_workload(Placement(PlacementId(LWS_PID), JobId("llm-abc"), "member-a", "eu", 8, "", 1), spec,
                         namespace="w")
    pods = [_lws_pod(lws, g, w, f"gpu-{g}") for g in (0, 1) for w in range(4)]
    assert replica_pods(lws, pods) == pods
