"""The simulated member shrinks a placement in place (agent.proto, Resize): the stopped replicas' room is free at
once, the rest run on, and a Resize of another generation, of an unknown or ended placement, or not smaller, is
left alone."""

from __future__ import annotations

import asyncio

from federator.backends.sim.fleet import parse_fleet
from federator.backends.sim.runtime import SimBackend
from federator.jobfile import parse_job
from federator.model import JobId, JobPhase, Placement, PlacementId

FLEET = parse_fleet({"clusters": [{"name": "c", "region": "r", "nodes": [
    {"count": 1, "gpuModel": "H100", "gpus": 8, "cpu": 64, "memory": "256Gi"}]}]})
SERVICE = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                     "metadata": {"name": "chat", "annotations": {"federator.io/sim-startup": "0s"}},
                     "spec": {"kind": "inference", "replicas": 6, "resources": {"cpu": "1", "nvidia.com/gpu": 1}}})


def serving(generation: int = 2) -> Placement:
    return Placement(PlacementId(f"chat.g{generation}.c"), JobId("chat"), "c", "r", 6, "H100", generation)


def test_a_resize_frees_the_stopped_replicas_and_is_idempotent() -> None:
    said: list[tuple[JobPhase, str]] = []

    async def run() -> SimBackend:
        backend = SimBackend(FLEET["c"])
        await backend.start(lambda _pid, phase, msg, **_: said.append((phase, msg)))
        assert await backend.launch(serving(), SERVICE) is None
        await asyncio.sleep(0.05)
        assert backend.capacity().pool("H100").free_accelerators == 2  # type: ignore[union-attr]
        assert await backend.resize("chat.g2.c", 2, 4) is None
        assert await backend.resize("chat.g2.c", 2, 4) is None  # again (a re-sync): nothing more
        assert await backend.resize("chat.g2.c", 2, 5) is None  # never grows
        await backend.stop()
        return backend

    backend = asyncio.run(run())
    assert backend.capacity().pool("H100").free_accelerators == 4  # type: ignore[union-attr]
    assert backend.placements() == {"chat.g2.c": JobPhase.RUNNING}
    assert said == [(JobPhase.RUNNING, "6 replicas running on c"),
                    (JobPhase.RUNNING, "4 replicas running on c (shrank from 6)")]


def test_a_resize_of_another_generation_or_an_unknown_or_ended_placement_changes_nothing() -> None:
    async def run() -> SimBackend:
        backend = SimBackend(FLEET["c"])
        await backend.start(lambda *_, **__: None)
        assert await backend.launch(serving(), SERVICE) is None
        await asyncio.sleep(0.05)
        assert await backend.resize("chat.g2.c", 1, 4) is None  # fencing: an old generation's order
        assert await backend.resize("other.g1.c", 1, 1) is None  # unknown
        assert backend.capacity().pool("H100").free_accelerators == 2  # type: ignore[union-attr]
        await backend.cancel("chat.g2.c")
        assert await backend.resize("chat.g2.c", 2, 4) is None  # ended
        await backend.stop()
        return backend

    backend = asyncio.run(run())
    assert backend.capacity().pool("H100").free_accelerators == 8  # type: ignore[union-attr]
