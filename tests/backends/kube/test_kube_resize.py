"""The Kubernetes agent shrinks a placement's Deployment in place (agent.proto, Resize; backends/kube/resizing.py).

One merge patch sets spec.replicas and the replica annotation together, so the drift guard keeps the new count
instead of scaling it back; a repeated Resize (a re-sync), one of another generation, or one not smaller patches
nothing; a kind that cannot shrink in place (a LeaderWorkerSet's groups) is answered with why."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.informer import MODIFIED
from federator.backends.kube.resizing import resize_patch
from federator.backends.kube.workloads import REPLICAS_ANNOTATION, build_workload
from federator.model import JobId, JobKind, JobSpec, Placement, PlacementId, Resources

from workload_objects import leaderworkerset

SERVE = JobSpec(name="chat", kind=JobKind.INFERENCE, replicas=6, resources=Resources(cpu_milli=1000))
PID = PlacementId("chat-abc.g2.member-a")


class Api:
    server = "fake"

    def __init__(self) -> None:
        self.patched: list[tuple[str, str, dict[str, Any], str | None]] = []

    def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None, *,
              subresource: str | None = None) -> dict[str, Any]:
        self.patched.append((res.plural, name, body, namespace))
        return body


def deployment(replicas: int = 6) -> dict[str, Any]:
    placement = Placement(PID, JobId("chat-abc"), "member-a", "east", replicas, "", 2)
    return build_workload(placement, SERVE, namespace="w")


def backend(api: Api) -> KubeBackend:
    b = KubeBackend(api, namespace="w", cluster="member-a")  # type: ignore[arg-type]
    b._on_update = lambda *_, **__: None
    b._started = True
    return b


def test_a_deployment_is_patched_from_6_to_4_and_the_drift_guard_keeps_4() -> None:
    async def run() -> Api:
        api = Api()
        b = backend(api)
        b.deployments._apply_event(MODIFIED, deployment())
        assert await b.resize(PID, 2, 4) is None
        b.deployments._apply_event(MODIFIED, deployment(4))  # the watch shows the patched object
        assert await b.resize(PID, 2, 4) is None  # the same Resize again (a re-sync): nothing to patch
        await asyncio.gather(*b._retries)  # a scale-back would run in the background: every task it started, done
        return api

    api = asyncio.run(run())
    name = deployment()["metadata"]["name"]
    assert api.patched == [("deployments", name, {"metadata": {"annotations": {REPLICAS_ANNOTATION: "4"}},
                                                  "spec": {"replicas": 4}}, "w")]


def test_an_old_generation_a_larger_count_or_an_unknown_placement_patches_nothing() -> None:
    async def run() -> Api:
        api = Api()
        b = backend(api)
        b.deployments._apply_event(MODIFIED, deployment())
        assert await b.resize(PID, 1, 4) is None  # fencing: generation 1's order for generation 2's workload
        assert await b.resize(PID, 2, 8) is None  # never grows
        assert await b.resize(PlacementId("other.g1.member-a"), 1, 1) is None
        return api

    assert asyncio.run(run()).patched == []


def test_a_kind_that_cannot_shrink_in_place_is_answered_with_why() -> None:
    lws = json.loads(json.dumps(leaderworkerset()))
    lws["metadata"] = {"name": "llm", "namespace": "w", "labels": {}, "annotations": {REPLICAS_ANNOTATION: "8"}}
    why = resize_patch(lws, generation=2, replicas=4, cluster="member-a")
    assert why == "LeaderWorkerSet w/llm on member-a cannot shrink in place (only a Deployment or a StatefulSet " \
                  "is resized)"
    assert resize_patch(lws, generation=2, replicas=8, cluster="member-a") is None  # a re-sync at its count: no-op
