"""The Kubernetes agent says on which nodes each placement's replicas run (JobUpdate.nodes), from its pods'
`spec.nodeName`, so the federator picks preemption victims per node on real members too (the outside QA's
priority-1000 8-GPU job that never got in because victims were chosen cluster-wide)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from federator.agent.backend import SaysNodes
from federator.backends.kube.accelerators import CLAIM_NAME
from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.informer import ADDED, DELETED, MODIFIED
from federator.backends.kube.pod_nodes import asks_accelerators, node_replicas, replica_pods
from federator.backends.kube.workloads import adapter_for, adapter_of, build_workload
from federator.backends.kube.workloads.common import mapping_at, needs
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
                  running: int | None = None, ready: int | None = None, nodes: Nodes = (),
                  ended_at: float | None = None) -> None:
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
    pod_spec = (lwt["leaderTemplate"] if worker == 0 else lwt["workerTemplate"])["spec"]
    return {"metadata": {"name": f"llm-{group}-{worker}", "namespace": "w", **tmpl, "labels": labels},
            "spec": {**pod_spec, "nodeName": node}, "status": {"phase": "Running"}}


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
    assert replica_pods(pods) == pods


# Kinds the agent renders with a CPU-only pod beside the accelerator pods. Each is a brought workload whose pod sets
# the federator counts as it counts replicas (common.needs: only the sets asking for accelerators): 4 GPU pods, and
# a CPU-only one (a launcher, a master, a head) that is no replica.
_GPU = {"containers": [{"name": "train", "image": "trainer:1", "resources": {"limits": {"nvidia.com/gpu": 8}}}]}
_CPU = {"containers": [{"name": "cpu", "image": "launcher:1", "resources": {"requests": {"cpu": "1"}}}]}
CPU_BESIDE_GPU = {
    "jobset-launcher": {
        "apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": "mpi"},
        "spec": {"replicatedJobs": [
            {"name": "launcher", "replicas": 1, "template": {"spec": {"template": {"spec": _CPU}}}},
            {"name": "workers", "replicas": 1, "template": {"spec": {"parallelism": 4, "completions": 4,
                                                                     "template": {"spec": _GPU}}}}]}},
    "pytorchjob-cpu-master": {
        "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "pt"},
        "spec": {"pytorchReplicaSpecs": {"Master": {"replicas": 1, "template": {"spec": _CPU}},
                                         "Worker": {"replicas": 4, "template": {"spec": _GPU}}}}},
    "rayjob-cpu-head": {
        "apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "ray"},
        "spec": {"entrypoint": "python train.py", "rayClusterSpec": {
            "headGroupSpec": {"template": {"spec": _CPU}},
            "workerGroupSpecs": [{"groupName": "gpu", "replicas": 4, "template": {"spec": _GPU}}]}}},
    "leaderworkerset-cpu-leader": {
        "apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "metadata": {"name": "lws"},
        "spec": {"replicas": 1, "leaderWorkerTemplate": {"size": 5, "leaderTemplate": {"spec": _CPU},
                                                         "workerTemplate": {"spec": _GPU}}}},
}


def _pods_of(workload: dict[str, Any]) -> list[dict[str, Any]]:
    """The pods a member's controllers make of a rendered workload: each pod set's template, `count` times, the
    accelerator pods on nodes gpu-0 and gpu-1 (two each), the others on cpu-0."""
    pods: list[dict[str, Any]] = []
    gpu = 0
    for pod_set in adapter_of(workload).pod_sets(workload):  # type: ignore[union-attr]
        template = json.loads(json.dumps(mapping_at(workload, pod_set.path)))
        for i in range(pod_set.count):
            if pod_set.resources.accelerator_milli:
                node, gpu = f"gpu-{gpu // 2}", gpu + 1
            else:
                node = "cpu-0"
            pods.append({"metadata": {**template.get("metadata", {}), "name": f"{pod_set.name}-{i}"},
                         "spec": {**template["spec"], "nodeName": node}, "status": {"phase": "Running"}})
    return pods


@pytest.mark.parametrize("kind", sorted(CPU_BESIDE_GPU))
def test_a_cpu_only_pod_beside_accelerator_pods_is_no_replica_whatever_the_kind(kind: str) -> None:
    """The CPU pod was counted: 5 pods said against a placement of 4 replicas, a list the federator ignores
    (agent.proto JobUpdate.nodes), so preemption on that member stayed a guess. The rule reads the pods, not the
    kind: those asking for the placement's accelerators are its replicas."""
    spec = JobSpec(name="w", kind=JobKind.TRAINING, replicas=4, resources=Resources(),
                   workload_json=json.dumps(CPU_BESIDE_GPU[kind]))
    brought = CPU_BESIDE_GPU[kind]
    assert needs(adapter_of(brought).pod_sets(brought))[0] == 4  # type: ignore[union-attr]  # the federator's count
    placement = Placement(PlacementId("w-abc.g1.member-a"), JobId("w-abc"), "member-a", "eu", 4, "", 1)
    workload = build_workload(placement, spec, namespace="w")
    pods = _pods_of(workload)
    assert len(pods) == 5
    assert node_replicas(replica_pods(pods), 4) == (("gpu-0", 2), ("gpu-1", 2))


def test_a_trainjob_runtimes_cpu_initializer_is_no_replica() -> None:
    """A TrainJob's pods come from its runtime (not visible to the federator, which counts spec.trainer.numNodes):
    a dataset initializer or an MPI launcher beside the trainer nodes is CPU-only."""
    trainer = {"metadata": {"name": "node-0"}, "spec": {**_GPU, "nodeName": "gpu-0"}, "status": {"phase": "Running"}}
    initializer = {"metadata": {"name": "init-0"}, "spec": {**_CPU, "nodeName": "cpu-0"},
                   "status": {"phase": "Running"}}
    assert node_replicas(replica_pods([initializer, trainer, dict(trainer, metadata={"name": "node-1"})]), 2) == \
        (("gpu-0", 2),)


def test_a_pod_with_the_agents_dra_claim_asks_for_accelerators() -> None:
    """On a DRA member the agent renders the accelerators as a claim, not a resource: those pods are the replicas."""
    claimed = {"spec": {"resourceClaims": [{"name": CLAIM_NAME, "resourceClaimTemplateName": "t"}],
                        "containers": [{"name": "c", "resources": {"claims": [{"name": CLAIM_NAME}]}}]}}
    assert asks_accelerators(claimed)
    assert not asks_accelerators({"spec": _CPU})
    assert replica_pods([{"spec": _CPU}, claimed]) == [claimed]


def test_cpu_only_work_counts_every_pod() -> None:
    pods = [{"spec": {**_CPU, "nodeName": "cpu-0"}, "status": {"phase": "Running"}} for _ in range(3)]
    assert replica_pods(pods) == pods

