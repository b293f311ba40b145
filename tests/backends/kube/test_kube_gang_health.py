"""A gang whose member stops it being whole is ended, and its counts and words come from its pods and nodes
(outside provider QA F13, F10, F1, F2, F8): the backend driven through its informers, against a fake API."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.informer import ADDED, DELETED, MODIFIED
from federator.backends.kube.stops import StopReason, stop_event
from federator.backends.kube.workloads import adapter_for, build_workload
from federator.model import JobId, JobKind, JobPhase, JobSpec, Placement, PlacementId, Resources

PID = "jsgang-35cc13.g1.member-a"


class _Api:
    server = "fake"

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []
        self.deleted: list[str] = []

    def list(self, res: Any, namespace: str | None = None, **_: Any) -> dict[str, Any]:
        return {"metadata": {"resourceVersion": "1"}, "items": []}

    def create(self, res: Any, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        self.created.append(body)
        return body

    def delete(self, res: Any, name: str, namespace: str | None = None, *, propagation: str = "Background") -> None:
        self.deleted.append(f"{res.plural}/{name}")


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


JOBSET = {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": "jsgang"},
          "spec": {"failurePolicy": {"maxRestarts": 3}, "replicatedJobs": [
              {"name": "workers", "replicas": 1,
               "template": {"spec": {"parallelism": 2, "completions": 2, "backoffLimit": 0,
                                     "template": {"spec": {"restartPolicy": "Never", "containers": [
                                         {"name": "w", "image": "trainer"}]}}}}}]}}
SPEC = JobSpec(name="jsgang", kind=JobKind.TRAINING, replicas=2, resources=Resources(cpu_milli=1000),
               workload_json=json.dumps(JOBSET))
SERVE = JobSpec(name="chat", kind=JobKind.INFERENCE, replicas=2, resources=Resources(cpu_milli=1000))


def _placement(pid: str = PID) -> Placement:
    return Placement(PlacementId(pid), JobId(pid.split(".")[0]), "member-a", "eu", 2, "", 1)


Update = tuple[str, JobPhase, str, "int | None", "int | None"]


def _backend(api: _Api, *, gang_timeout: float = 120, events: bool = False) -> tuple[KubeBackend, list[Update],
                                                                                       list[str], _Clock]:
    b = KubeBackend(api, namespace="w", cluster="member-a", gang_timeout=gang_timeout,  # type: ignore[arg-type]
                    events=events)
    clock = _Clock()
    b.gang.clock = clock
    updates: list[Update] = []
    stopped: list[str] = []

    def on_update(pid: str, phase: JobPhase, message: str, *, admission_overdue: bool = False,
                  running: int | None = None, ready: int | None = None,
                  nodes: tuple[tuple[str, int], ...] = (), ended_at: float | None = None) -> None:
        updates.append((pid, phase, message, running, ready))

    b._on_update = on_update
    b.count_stops(stopped.append)
    b._started = True
    return b, updates, stopped, clock


def _jobset() -> dict[str, Any]:
    obj = build_workload(_placement(), SPEC, namespace="w")
    obj["metadata"]["uid"] = "js-uid"
    return obj


def _pod(workload: dict[str, Any], name: str, node: str = "", phase: str = "Running",
         conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec = workload["spec"]
    tmpl = spec["replicatedJobs"][0]["template"]["spec"]["template"] if "replicatedJobs" in spec else spec["template"]
    return {"metadata": {"name": name, "namespace": "w", **tmpl["metadata"]},
            "spec": {"nodeName": node} if node else {}, "status": {"phase": phase, "conditions": conditions or []}}


def _node(name: str, ready: bool = True, since: str = "2026-12-05T16:27:43Z") -> dict[str, Any]:
    taints = [] if ready else [{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]
    return {"metadata": {"name": name}, "spec": {"taints": taints},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "Unknown",
                                       "lastTransitionTime": since}]}}


def _running_gang(b: KubeBackend) -> dict[str, Any]:
    """The JobSet of PID seen, both workers Running on h100-0 and h100-1."""
    for n in ("h100-0", "h100-1"):
        b.nodes._apply_event(ADDED, _node(n))
    js = _jobset()
    b._workload_informer(adapter_for(js))._apply_event(ADDED, js)
    b.pods._apply_event(ADDED, _pod(js, "w-0-a", "h100-0"))
    b.pods._apply_event(ADDED, _pod(js, "w-1-a", "h100-1"))
    return js


async def _settle(b: KubeBackend) -> None:
    """Let the backend's background deletes (in threads) run, then flush its Events."""
    while b._retries:
        await asyncio.wait(set(b._retries))
    await b.stop()


def test_a_disrupted_pod_ends_a_jobset_gang_that_restarts_itself_instead_of_failing() -> None:
    """F13: `kubectl drain` evicts one worker of a JobSet with maxRestarts; the JobSet never fails, it recreates its
    Jobs, and one worker stays Pending for want of room. The DisruptionTarget alone ends the placement: reported
    Cancelled naming the pod and node, the JobSet deleted, an Event on it for the member's SRE, counted as evicted."""
    api = _Api()
    b, updates, stopped, _ = _backend(api, events=True)

    async def run() -> None:
        js = _running_gang(b)
        assert updates[-1][1:] == (JobPhase.RUNNING, "2 replicas running", 2, 2)
        evicted = _pod(js, "w-1-a", "h100-1", conditions=[
            {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}])
        b.pods._apply_event(MODIFIED, evicted)
        b.pods._apply_event(DELETED, evicted)
        b.pods._apply_event(ADDED, _pod(js, "w-1-b", phase="Pending"))  # the JobSet's restart: no room left
        await _settle(b)

    asyncio.run(run())
    assert updates[-1][:3] == (PID, JobPhase.CANCELLED,
                               "pod w-1-a evicted from node h100-1 (DisruptionTarget: EvictionByEvictionAPI)")
    assert [u for u in updates if u[1] is JobPhase.CANCELLED] == [updates[-1]]
    assert any(d.startswith("jobsets/") for d in api.deleted)
    assert stopped == ["evicted"]
    events = [o for o in api.created if o.get("kind") == "Event"]
    assert [(e["reason"], e["type"], e["involvedObject"]["kind"], e["involvedObject"]["uid"]) for e in events] == [
        ("FederatorEvicted", "Warning", "JobSet", "js-uid")]
    assert "w-1-a evicted from node h100-1" in events[0]["message"] and PID in events[0]["message"]


def test_a_gang_whole_once_then_half_pending_for_the_gang_timeout_is_ended_naming_the_pending_pod() -> None:
    """F13, the other half: a gang that ran whole and then is not (a worker recreated by its controller, Pending
    with no room) reads from its pods, not its launch: 1 running, and is ended after the gang timeout with the
    scheduler's words, counted gang_broken. Before the timeout it is left alone (a restart may bind again)."""
    api = _Api()
    b, updates, stopped, clock = _backend(api, gang_timeout=120)

    async def run() -> None:
        js = _running_gang(b)
        b.pods._apply_event(DELETED, _pod(js, "w-1-a", "h100-1", phase="Failed"))
        pending = _pod(js, "w-1-b", phase="Pending", conditions=[
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
             "message": "0/3 nodes are available: 1 Insufficient nvidia.com/gpu"}])
        b.pods._apply_event(ADDED, pending)
        assert updates[-1][1] is JobPhase.RUNNING
        assert updates[-1][2] == "1 of 2 replicas running; 1 pending: 0/3 nodes are available: 1 Insufficient " \
                                 "nvidia.com/gpu"
        assert updates[-1][3:] == (1, 1)  # READY 1/2: the pods running, not the launch
        clock.now += 119
        await b._check_gangs()
        assert updates[-1][1] is JobPhase.RUNNING and not stopped
        clock.now += 1
        await b._check_gangs()  # no pod changes: the tick ends it
        await _settle(b)

    asyncio.run(run())
    assert updates[-1][:2] == (PID, JobPhase.CANCELLED)
    assert updates[-1][2] == (
        "gang broken on member-a: 1 of 2 pods not running (1 pending: 0/3 nodes are available: 1 Insufficient "
        "nvidia.com/gpu) for 120s (--gang-timeout 120s) after it ran whole; deleted the workload so no partial gang "
        "holds accelerators")
    assert any(d.startswith("jobsets/") for d in api.deleted) and stopped == ["gang_broken"]


def test_a_broken_gang_made_whole_again_in_time_runs_on() -> None:
    api = _Api()
    b, updates, stopped, clock = _backend(api, gang_timeout=120)

    async def run() -> None:
        js = _running_gang(b)
        b.pods._apply_event(DELETED, _pod(js, "w-1-a", "h100-1", phase="Failed"))
        b.pods._apply_event(ADDED, _pod(js, "w-1-b", phase="Pending"))
        clock.now += 60
        b.pods._apply_event(MODIFIED, _pod(js, "w-1-b", "h100-1"))  # bound again
        clock.now += 600
        await b._check_gangs()
        await _settle(b)

    asyncio.run(run())
    assert updates[-1][1:] == (JobPhase.RUNNING, "2 replicas running", 2, 2) and not stopped and not api.deleted


def test_replicas_on_a_notready_node_say_so_and_are_not_ready() -> None:
    """F10: the member's nodes stop answering (NotReady, the unreachable taint); Kubernetes keeps the pods Running
    for the toleration. The placement's message names the nodes and since when, and replicas_ready drops."""
    api = _Api()
    b, updates, _, _ = _backend(api)
    _running_gang(b)
    b.nodes._apply_event(MODIFIED, _node("h100-0", ready=False, since="2026-12-05T16:27:43Z"))
    assert updates[-1][1:] == (JobPhase.RUNNING, "2 replicas running; 1 of 2 running replicas on a NotReady node "
                                                 "(h100-0) since 2026-12-05T16:27:43Z", 2, 1)
    b.nodes._apply_event(MODIFIED, _node("h100-1", ready=False, since="2026-12-05T16:27:40Z"))
    assert updates[-1][2:] == ("2 replicas running; 2 of 2 running replicas on a NotReady nodes (h100-0, h100-1) "
                               "since 2026-12-05T16:27:40Z", 2, 0)
    b.nodes._apply_event(MODIFIED, _node("h100-0"))
    b.nodes._apply_event(MODIFIED, _node("h100-1"))
    assert updates[-1][2:] == ("2 replicas running", 2, 2)


def test_a_serving_placements_replicas_on_a_notready_node_are_not_ready() -> None:
    api = _Api()
    b, updates, _, _ = _backend(api)
    dep = build_workload(_placement("chat-abc.g1.a"), SERVE, namespace="w")
    b.nodes._apply_event(ADDED, _node("n0"))
    b.deployments._apply_event(ADDED, dep)
    b.pods._apply_event(ADDED, _pod(dep, "r0", "n0"))
    b.pods._apply_event(ADDED, _pod(dep, "r1", "n0"))
    assert updates[-1][3:] == (2, 2)
    b.nodes._apply_event(MODIFIED, _node("n0", ready=False))
    assert updates[-1][1] is JobPhase.RUNNING and updates[-1][3:] == (2, 0)
    assert "2 of 2 running replicas on a NotReady node (n0)" in updates[-1][2]


def test_a_node_deleted_under_a_gang_blames_that_node_and_its_pod_at_once() -> None:
    """F1 + F2: a node deleted under a gang. Its pod stays bound to the gone node until pod garbage collection; the
    gang is lost at once, named by that pod and node (not the replica its controller deletes next on the healthy
    node), and a report made meanwhile does not list the placement as holding the pool's accelerators."""
    api = _Api()
    b, updates, stopped, _ = _backend(api)

    async def run() -> None:
        js = _running_gang(b)
        assert PID in b._accounted(b.pods.cache.values())
        b.nodes._apply_event(DELETED, _node("h100-1"))
        assert PID not in b._accounted(b.pods.cache.values())
        b.pods._apply_event(MODIFIED, {**_pod(js, "w-0-a", "h100-0"),  # the controller ends the rest of the gang
                                       "metadata": {**_pod(js, "w-0-a")["metadata"],
                                                    "deletionTimestamp": "2026-12-05T16:17:07Z"}})
        await _settle(b)

    asyncio.run(run())
    cancelled = [u for u in updates if u[1] is JobPhase.CANCELLED]
    assert [u[2] for u in cancelled] == ["node h100-1 was deleted under pod w-1-a, which is lost with it"]
    assert stopped == ["node_lost"]


def test_a_cancel_from_the_federator_is_counted_and_told_to_the_member() -> None:
    """F8: the member's SRE sees why the agent deleted a workload: an Event (Normal) on it, and the count."""
    api = _Api()
    b, _, stopped, _ = _backend(api, events=True)

    async def run() -> None:
        _running_gang(b)
        await b.cancel(PID)
        await b.cancel(PID)  # a repeated cancel is not a second stop
        await _settle(b)

    asyncio.run(run())
    assert stopped == ["cancelled"]
    events = [o for o in api.created if o.get("kind") == "Event"]
    assert [(e["reason"], e["type"], e["involvedObject"]["kind"]) for e in events] == [
        ("FederatorCancelled", "Normal", "JobSet")]


def test_an_event_for_a_workload_already_gone_goes_on_its_namespace() -> None:
    event = stop_event(StopReason.GANG_TIMEOUT, "0 of 2 pods bound", workload=None, namespace="w",
                       placement_id=PID, now=0.0, instance="federator-agent/member-a")
    assert event["involvedObject"] == {"apiVersion": "v1", "kind": "Namespace", "name": "w"}
    assert event["reason"] == "FederatorGangTimeout" and event["metadata"]["namespace"] == "w"



def test_a_serving_replica_on_a_deleted_node_is_not_listed_as_holding_the_pool() -> None:
    """F2: until pod garbage collection removes it, a pod stays bound to a node that was deleted; the report no
    longer counts that node, so listing the placement as holding accelerators there contradicted it (the federator
    answered inconsistent_report at every report). Such a pod holds nothing: the placement is not listed, and its
    replica is not ready."""
    api = _Api()
    b, updates, stopped, _ = _backend(api)
    dep = build_workload(_placement("chat-abc.g1.a"), SERVE, namespace="w")
    for n in ("n0", "n1"):
        b.nodes._apply_event(ADDED, _node(n))
    b.deployments._apply_event(ADDED, dep)
    b.pods._apply_event(ADDED, _pod(dep, "r0", "n0"))
    b.pods._apply_event(ADDED, _pod(dep, "r1", "n1"))
    assert "chat-abc.g1.a" in b._accounted(b.pods.cache.values())
    b.nodes._apply_event(DELETED, _node("n1"))
    assert "chat-abc.g1.a" not in b._accounted(b.pods.cache.values())
    assert updates[-1][1] is JobPhase.RUNNING and updates[-1][4] == 1 and not stopped  # a service is not a gang
