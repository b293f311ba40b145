"""A gang placed where the federator just preempted others is taken, while the victims' pods still terminate.

Outside QA on real control planes: a preemptible inference job held one H100 on each of two 8-GPU nodes; a
training gang of 2 x 8 preempted it. The agent checked whether the gang fits 2 ms after it deleted the victim's
Deployment, counted the victim's pods (still there, terminating) and refused the gang; the federator then placed
the victim again in the room it had just freed, and the same happened at every retry. The agent now counts the
pods of placements it has cancelled as gone when it checks a gang's fit; kube-scheduler binds the gang's pods as
the victims' terminate."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.informer import ADDED
from federator.backends.kube.workloads import build_workload
from federator.model import JobId, JobKind, JobSpec, Placement, PlacementId, Resources

H100 = "NVIDIA-H100-80GB-HBM3"


class Api:
    server = "fake"

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []
        self.deleted: list[str] = []

    def create(self, res: Any, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        self.created.append(body)
        return {**body, "metadata": {**body["metadata"], "uid": f"uid-{len(self.created)}"}}

    def delete(self, res: Any, name: str, namespace: str | None = None, *, propagation: str = "Background") -> None:
        self.deleted.append(name)


def node(name: str) -> dict[str, Any]:
    amounts = {"cpu": "64", "memory": "512Gi", "pods": "110", "nvidia.com/gpu": "8"}
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "nvidia.com/gpu.product": H100}},
            "spec": {}, "status": {"capacity": dict(amounts), "allocatable": dict(amounts),
                                   "conditions": [{"type": "Ready", "status": "True"}]}}


SERVE = JobSpec(name="serve", kind=JobKind.INFERENCE, replicas=2, preemptible=True,
                resources=Resources(cpu_milli=1000, accelerator_milli=1000))
GANG = JobSpec(name="gang", kind=JobKind.TRAINING, replicas=2, resources=Resources(cpu_milli=1000,
                                                                                  accelerator_milli=8000))


def placed(job: str, spec: JobSpec) -> Placement:
    return Placement(PlacementId(f"{job}.g1.member-a"), JobId(job), "member-a", "east", 2, H100, 1,
                     accelerator_vendor="nvidia", accelerator_resource="nvidia.com/gpu", accelerator_milli=1000
                     if spec is SERVE else 8000)


def victim_pod(p: Placement, i: int, on: str) -> dict[str, Any]:
    template = build_workload(p, SERVE, namespace="w")["spec"]["template"]
    return {"metadata": {"name": f"serve-{i}", "namespace": "w", **template["metadata"]},
            "spec": {"nodeName": on, "containers": [{"name": "c", "resources": {
                "requests": {"cpu": "1", "nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}}}]},
            "status": {"phase": "Running"}}


def test_a_gang_placed_where_a_victim_was_just_cancelled_is_launched_not_refused() -> None:
    async def run() -> None:
        api = Api()
        b = KubeBackend(api, namespace="w", cluster="member-a")  # type: ignore[arg-type]
        b._on_update = lambda *_, **__: None
        b._started = True
        for name in ("n0", "n1"):
            b.nodes._apply_event(ADDED, node(name))
        serve = placed("serve-abc", SERVE)
        assert await b.launch(serve, SERVE) is None
        for i, on in enumerate(("n0", "n1")):
            b.pods._apply_event(ADDED, victim_pod(serve, i, on))
        gang = placed("gang-abc", GANG)
        early = await b.launch(gang, GANG)  # the victim still runs: the gang plainly does not fit
        assert early is not None and "0 replicas fit on the usable nodes now" in early
        await b.cancel(serve.placement_id)  # the federator preempted it; its pods are still terminating
        assert len(b.pods.cache) == 2
        again = replace(gang, placement_id=PlacementId("gang-abc.g2.member-a"), generation=2)
        assert await b.launch(again, GANG) is None
        assert any(o["metadata"]["name"].startswith("gang-abc-g2") for o in api.created)

    asyncio.run(run())

