"""A training gang whose peer's node stops answering, and whose other ranks then crash, was stopped by the member:
re-queued, not Failed for good in the user's words (outside pretraining QA, P1). The backend driven through its
informers against a fake API, as test_kube_gang_health.py does."""

from __future__ import annotations

import asyncio
from typing import Any

from test_kube_gang_health import PID as JS_PID
from test_kube_gang_health import _Api, _backend, _node, _placement, _pod, _running_gang, _settle

from federator.backends.kube.informer import ADDED, DELETED, MODIFIED
from federator.backends.kube.pod_faults import PodFault
from federator.backends.kube.silent_nodes import NODE_SILENT, blamed_on_a_silent_node
from federator.backends.kube.workloads import build_workload
from federator.model import JobKind, JobPhase, JobSpec, Resources

PID = "pretrain-35cc13.g1.member-a"
SPEC = JobSpec(name="pretrain", kind=JobKind.TRAINING, replicas=2,
               resources=Resources(cpu_milli=1000, accelerator_milli=8000))
SILENT_SINCE = "2026-12-05T16:27:43Z"


class _ListingApi(_Api):
    """A fake API whose pod list returns `pods`: what the agent reads once a workload fails (placement_phases)."""

    def __init__(self) -> None:
        super().__init__()
        self.pods: list[dict[str, Any]] = []

    def list(self, res: Any, namespace: str | None = None, **_: Any) -> dict[str, Any]:
        items = self.pods if getattr(res, "plural", "") == "pods" else []
        return {"metadata": {"resourceVersion": "1"}, "items": items}


def _crashed(job: dict[str, Any], name: str, node: str, finished: str) -> dict[str, Any]:
    pod = _pod(job, name, node, phase="Failed")
    pod["status"]["containerStatuses"] = [{"name": "main", "state": {"terminated": {
        "exitCode": 1, "reason": "Error", "finishedAt": finished}}}]
    return pod


def _failed(job: dict[str, Any]) -> dict[str, Any]:
    return {**job, "status": {"failed": 1, "conditions": [{
        "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
        "message": "Job has reached the specified backoff limit"}]}}


def _run(api: _Api, *, crash_at: str, seen_by_the_watch: bool = True) -> tuple[list[Any], list[str], list[Any]]:
    """A 2-replica Indexed Job gang running on h100-0 and h100-1; h100-1 goes silent at SILENT_SINCE; the rank on
    h100-0 exits 1 at `crash_at` (seen by the pod watch, or only by the list after the Job failed); the Job fails."""
    b, updates, stopped, _ = _backend(api, events=True)

    async def run() -> None:
        for n in ("h100-0", "h100-1"):
            b.nodes._apply_event(ADDED, _node(n))
        job = build_workload(_placement(PID), SPEC, namespace="w")
        job["metadata"]["uid"] = "job-uid"
        b.jobs._apply_event(ADDED, job)
        b.pods._apply_event(ADDED, _pod(job, "p-0", "h100-0"))
        b.pods._apply_event(ADDED, _pod(job, "p-1", "h100-1"))
        b.nodes._apply_event(MODIFIED, _node("h100-1", ready=False, since=SILENT_SINCE))
        crashed = _crashed(job, "p-0", "h100-0", crash_at)
        if seen_by_the_watch:
            b.pods._apply_event(MODIFIED, crashed)
        else:  # the pod left the watch with its state before (Running): its exit is read once the Job fails
            assert isinstance(api, _ListingApi)
            api.pods = [crashed, _pod(job, "p-1", "h100-1")]
            b.pods._apply_event(DELETED, _pod(job, "p-0", "h100-0"))
        b.jobs._apply_event(MODIFIED, _failed(job))
        await _settle(b)

    asyncio.run(run())
    return updates, stopped, [o for o in api.created if o.get("kind") == "Event"]


def test_a_rank_that_crashes_after_its_peers_node_went_silent_is_requeued_as_a_node_lost() -> None:
    updates, stopped, events = _run(_Api(), crash_at="2026-12-05T16:29:43Z")
    assert updates[-1][:3] == (PID, JobPhase.CANCELLED, (
        f"node h100-1 stopped answering (NotReady since {SILENT_SINCE}) under pod p-1; then pod p-0 on node "
        "h100-0: container main exited with code 1 (Error), as a rank does when a peer goes silent"))
    assert not [u for u in updates if u[1] is JobPhase.FAILED]
    assert stopped == ["node_lost"]
    assert [(e["reason"], e["type"]) for e in events] == [("FederatorNodeLost", "Warning")]


def test_the_crash_read_only_after_the_job_failed_is_blamed_on_the_silent_node_too() -> None:
    updates, stopped, _ = _run(_ListingApi(), crash_at="2026-12-05T16:29:43Z", seen_by_the_watch=False)
    assert updates[-1][1] is JobPhase.CANCELLED and updates[-1][2].startswith("node h100-1 stopped answering")
    assert stopped == ["node_lost"]


def test_a_crash_before_the_node_went_silent_is_the_codes_own_and_fails_the_job() -> None:
    updates, stopped, _ = _run(_Api(), crash_at="2026-12-05T16:20:00Z")
    assert updates[-1][:3] == (PID, JobPhase.FAILED, "pod p-0 on node h100-0: container main exited with code 1 "
                                                     "(Error)")
    assert stopped == []


def test_only_a_crash_is_reread_and_only_against_a_silent_or_gone_node() -> None:
    crash = PodFault(False, "pod p-0 on node n0: container main exited with code 1", at=2_000_000_000.0)
    evicted = PodFault(True, "pod p-1 evicted from node n1", cause="EvictionByEvictionAPI")
    pods = [{"metadata": {"name": "p-1"}, "spec": {"nodeName": "n1"}}]
    healthy = {"n1": _node("n1")}
    assert blamed_on_a_silent_node(evicted, pods, {"n1": _node("n1", ready=False)}) is evicted
    assert blamed_on_a_silent_node(crash, pods, healthy) is crash
    assert blamed_on_a_silent_node(crash, pods, {}) is crash  # a node the watch has not seen says nothing
    gone = blamed_on_a_silent_node(crash, pods, healthy, gone={"n1"})
    assert (gone.disruption, gone.cause) == (True, NODE_SILENT)
    assert gone.message.startswith("node n1 was deleted under pod p-1; then pod p-0")


def test_a_jobset_that_would_restart_in_place_is_ended_at_once_too() -> None:
    """A JobSet with failurePolicy.maxRestarts never fails for the crash: it recreates its Jobs, and the replica of
    the silent node cannot come back. The crash after the silence ends the placement at once, as a node lost."""
    api = _Api()
    b, updates, stopped, _ = _backend(api, events=True)

    async def run() -> None:
        js = _running_gang(b)  # workers w-0-a on h100-0, w-1-a on h100-1
        b.nodes._apply_event(MODIFIED, _node("h100-1", ready=False, since=SILENT_SINCE))
        b.pods._apply_event(MODIFIED, _crashed(js, "w-0-a", "h100-0", "2026-12-05T16:29:43Z"))
        await _settle(b)

    asyncio.run(run())
    assert updates[-1][:2] == (JS_PID, JobPhase.CANCELLED)
    assert updates[-1][2].startswith("node h100-1 stopped answering (NotReady since 2026-12-05T16:27:43Z) under pod "
                                     "w-1-a; then pod w-0-a on node h100-0")
    assert stopped == ["node_lost"] and any(d.startswith("jobsets/") for d in api.deleted)
