"""A serving workload scaled behind the agent's back on its member is scaled back to its placement's replicas.

Outside QA: `kubectl scale` of a placement's Deployment on the member from 3 to 1 stayed so for good; the job read
"1 of 3 replicas running" and the federator kept 3 accelerators booked for it."""

from __future__ import annotations

import asyncio
from typing import Any

from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.informer import MODIFIED
from federator.backends.kube.workloads import build_workload
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
        await asyncio.sleep(0.2)  # the patch runs in the background
        return api

    api = asyncio.run(run())
    assert [(plural, body, namespace) for plural, _, body, namespace in api.patched] == [
        ("deployments", {"spec": {"replicas": 3}}, "w")]
