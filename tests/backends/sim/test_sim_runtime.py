"""The simulated member forgets finished placements, as a Kubernetes member deletes finished Jobs.

Outside SRE soak (finding 3): it kept every placement it had ever run, ~1.4 KB of agent memory each, and re-sent
them all on every reconnect (8.9 s until every cluster was Ready after a restart at ~21k placements).
"""

from __future__ import annotations

import asyncio

from federator.backends.sim.fleet import parse_fleet
from federator.backends.sim.runtime import FINISHED_TTL_SECONDS, SimBackend
from federator.jobfile import parse_job
from federator.model import JobId, JobPhase, JobSpec, Placement, PlacementId

FLEET = parse_fleet({"clusters": [{"name": "c", "region": "r", "nodes": [
    {"count": 1, "gpuModel": "H100", "gpus": 8, "cpu": 64, "memory": "256Gi"}]}]})


def job(kind: str = "training", **annotations: str) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": "j", "annotations": annotations},
                      "spec": {"kind": kind, "resources": {"cpu": "1", "nvidia.com/gpu": 1}}})


SHORT = job(**{"federator.io/sim-duration": "1ms", "federator.io/sim-startup": "0s"})
SERVICE = job("inference", **{"federator.io/sim-startup": "0s"})  # serves until cancelled


def placement(pid: str) -> Placement:
    return Placement(PlacementId(pid), JobId(pid.split(".")[0]), "c", "r", 1, "H100", 1)


def test_a_backend_that_ran_many_placements_holds_only_the_live_ones_once_their_ttl_passed() -> None:
    ended: list[str] = []

    async def run() -> SimBackend:
        backend = SimBackend(FLEET["c"], finished_ttl=0.05)
        await backend.start(lambda pid, phase, _msg, **_: ended.append(pid) if phase.is_terminal else None)
        assert await backend.launch(placement("svc.g1.c"), SERVICE) is None
        for i in range(500):  # one at a time: the cluster has room for 7 more
            assert await backend.launch(placement(f"j{i}.g1.c"), SHORT) is None
            while len(ended) <= i:
                await asyncio.sleep(0.001)
        await backend.cancel("j0.g1.c")  # a cancel of a placement it forgot is fine (contract step 6)
        await asyncio.sleep(0.2)
        await backend.stop()
        return backend

    backend = asyncio.run(run())
    assert len(ended) == 500
    assert backend.placements() == {"svc.g1.c": JobPhase.RUNNING}  # O(1), not 501
    assert backend.capacity().pool("H100").free_accelerators == 7  # type: ignore[union-attr]


def test_a_finished_placement_stays_a_while_so_a_late_launch_of_it_starts_nothing() -> None:
    async def run() -> tuple[dict[str, JobPhase], str | None, dict[str, JobPhase]]:
        backend = SimBackend(FLEET["c"])
        assert await backend.launch(placement("j.g1.c"), SHORT) is None
        await asyncio.sleep(0.05)
        held = backend.placements()
        again = await backend.launch(placement("j.g1.c"), SHORT)
        await asyncio.sleep(0.05)
        after = backend.placements()
        await backend.stop()
        return held, again, after

    held, again, after = asyncio.run(run())
    assert held == after == {"j.g1.c": JobPhase.SUCCEEDED}
    assert again is None
    assert FINISHED_TTL_SECONDS >= 10  # the federator's order max age at most, by default (server/terms.py)
