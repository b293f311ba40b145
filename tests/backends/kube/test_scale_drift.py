"""A serving workload scaled behind the agent's back on its member is scaled back to its placement's replicas.

Outside QA: `kubectl scale` of a placement's Deployment on the member from 3 to 1 stayed so for good; the job read
"1 of 3 replicas running" and the federator kept 3 accelerators booked for it."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.drift import record
from federator.backends.kube.informer import MODIFIED
from federator.backends.kube.workloads import adapter_for, build_workload
from federator.model import JobId, JobKind, JobSpec, Placement, PlacementId, Resources

SERVE = JobSpec(name="chat", kind=JobKind.INFERENCE, replicas=3, resources=Resources(cpu_milli=1000))
TRAIN = JobSpec(name="train", kind=JobKind.TRAINING, replicas=3, resources=Resources(cpu_milli=1000))


class Api:
    server = "fake"

    def __init__(self) -> None:
        self.patched: list[tuple[str, str, dict[str, Any], str | None]] = []

    def create(self, res: Any, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        return {**body, "metadata": {**body["metadata"], "uid": "uid-1"}}

    def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None, *,
              subresource: str | None = None) -> dict[str, Any]:
        self.patched.append((res.plural, name, body, namespace))
        return body


def test_a_deployment_scaled_down_on_the_member_is_scaled_back_and_a_job_is_left_alone() -> None:
    async def run() -> Api:
        api = Api()
        b = KubeBackend(api, namespace="w", cluster="member-a")  # type: ignore[arg-type]
        b._on_update = lambda *_, **__: None
        b._started = True
        serve = Placement(PlacementId("chat-abc.g1.member-a"), JobId("chat-abc"), "member-a", "east", 3, "", 1)
        dep = build_workload(serve, SERVE, namespace="w")
        b.deployments._apply_event(MODIFIED, dep)  # as made: nothing to do
        scaled = {**dep, "spec": {**dep["spec"], "replicas": 1}}
        b.deployments._apply_event(MODIFIED, scaled)  # someone ran kubectl scale --replicas=1 on the member
        train = Placement(PlacementId("train-abc.g1.member-a"), JobId("train-abc"), "member-a", "east", 3, "", 1)
        job = build_workload(train, TRAIN, namespace="w")
        b.jobs._apply_event(MODIFIED, {**job, "spec": {**job["spec"], "parallelism": 1}})  # a Job: not ours to scale
        await asyncio.gather(*b._retries)  # the patch runs in the background: every task it started, done
        return api

    api = asyncio.run(run())
    assert [(plural, body, namespace) for plural, _, body, namespace in api.patched] == [
        ("deployments", {"spec": {"replicas": 3}}, "w")]


def test_an_image_edit_and_an_lws_scale_on_the_member_are_put_back_from_the_record_on_the_object() -> None:
    """Every kind, every rendered field (drift.py), from the record the agent keeps on the object: here the agent
    never launched them (a restarted one), and only the record says what it rendered (outside inference team F4)."""
    lws = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "metadata": {"name": "llm"},
           "spec": {"replicas": 1, "leaderWorkerTemplate": {"size": 2, "workerTemplate": {"spec": {"containers": [
               {"name": "vllm", "image": "vllm:1", "resources": {"requests": {"cpu": "1"}}}]}}}}}

    async def run() -> tuple[Api, dict[str, Any]]:
        api = Api()
        b = KubeBackend(api, namespace="w", cluster="member-a")  # type: ignore[arg-type]
        b._on_update = lambda *_, **__: None
        b._started = True
        serve = Placement(PlacementId("chat-abc.g1.member-a"), JobId("chat-abc"), "member-a", "east", 3, "", 1)
        dep = record(build_workload(serve, SERVE, namespace="w"))
        edited = copy.deepcopy(dep)
        edited["spec"]["template"]["spec"]["containers"][0]["image"] = "evil/image:1"
        b.deployments._apply_event(MODIFIED, edited)
        groups = Placement(PlacementId("llm-abc.g1.member-a"), JobId("llm-abc"), "member-a", "east", 2, "", 1)
        obj = record(build_workload(groups, JobSpec(name="llm", kind=JobKind.INFERENCE, replicas=2,
                                                    resources=Resources(), workload_json=json.dumps(lws)),
                                    namespace="w"))
        informer = b._workload_informer(adapter_for(obj))
        informer._apply_event(MODIFIED, {**obj, "spec": {**obj["spec"], "replicas": 2}})  # kubectl scale lws
        # the patches run in the background, each in a thread of its own: every task done, whatever the order
        # (a fixed 0.2 s could end before them on a loaded machine, and the threads append in either order)
        await asyncio.gather(*b._retries)
        return api, dep

    api, dep = asyncio.run(run())
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.36"
    containers = dep["spec"]["template"]["spec"]["containers"]
    assert sorted(((plural, body) for plural, _, body, _ in api.patched), key=lambda p: p[0]) == [
        ("deployments", {"spec": {"template": {"spec": {"containers": containers}}}}),
        ("leaderworkersets", {"spec": {"replicas": 1}})]
