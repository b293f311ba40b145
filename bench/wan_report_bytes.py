"""Bytes a second an agent sends upstream at rest, its reports listing ~2,000 placements in full or as changes.

Outside WAN QA (W3) measured 26.7 KB/s for 2,003 placements through its fault proxy's byte counters. Here the same
quantity on loopback, every part real: the federator's AgentService on a port, and the reference agent dialling it
through a TCP relay that counts the bytes each way. Its simulated backend holds N running CPU-only placements,
launched on it before the agent connects (unknown to the store: orphans in their 30-minute grace, as a restored
store's would be). After the re-sync (its JobUpdates are not "at rest"), the agent->federator bytes over a window
are divided by it. Run twice: the federator's Welcome listing "placement-deltas" (an agent of 0.19.0 then sends
changes) and not (a federator before 0.19.0: full lists).

    PYTHONPATH=src python bench/wan_report_bytes.py [--placements 2000] [--window 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from pathlib import Path

import grpc

from federator.agent.agent import Agent, AgentConfig
from federator.api.v1 import agent_pb2_grpc
from federator.backends.sim.fleet import parse_fleet
from federator.backends.sim.runtime import SimBackend
from federator.jobfile import parse_job
from federator.model import JobId, Placement, PlacementId
from federator.security.auth import Authenticator
from federator.server import terms
from federator.server.federator import Federator
from federator.server.services import AgentService
from federator.store import SqliteJobStore


async def relay(listen: int, target: int, counts: dict[str, int]) -> asyncio.Server:
    """A loopback TCP relay counting bytes each way ("up": agent to federator)."""
    async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter, key: str) -> None:
        try:
            while data := await r.read(65536):
                counts[key] += len(data)
                w.write(data)
                await w.drain()
        finally:
            w.close()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        tr, tw = await asyncio.open_connection("127.0.0.1", target)
        with contextlib.suppress(asyncio.CancelledError):  # torn down with the loop at the end of a run
            await asyncio.gather(pipe(r, tw, "up"), pipe(tr, w, "down"), return_exceptions=True)

    return await asyncio.start_server(handle, "127.0.0.1", listen)


async def measure(placements: int, window: float, deltas: bool) -> float:
    fed = Federator(store=SqliteJobStore(Path(":memory:")), lease_seconds=10.0, lost_after_seconds=600.0,
                    orphan_grace=1800.0, report_interval=2.0)
    terms.PLACEMENT_DELTAS = "placement-deltas" if deltas else "none"  # the Welcome as 0.19.0's, or an older one's
    server = grpc.aio.server()
    agent_pb2_grpc.add_AgentServiceServicer_to_server(AgentService(fed, Authenticator(insecure=True)), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    runner = asyncio.get_running_loop().create_task(fed.run())
    counts = {"up": 0, "down": 0}
    proxy = await relay(0, port, counts)
    proxy_port = proxy.sockets[0].getsockname()[1]
    fleet = parse_fleet({"clusters": [{"name": "west-1", "region": "west", "nodes": [
        {"count": 40, "cpu": 64, "memory": "256Gi"}]}]})
    backend = SimBackend(fleet["west-1"])
    spec = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": "x", "annotations": {"federator.io/sim-duration": "3600s"}},
                      "spec": {"kind": "training", "resources": {"cpu": "100m", "memory": "64Mi"}}})
    for i in range(placements):  # ids as the QA's array tasks': JOB-INDEX.gGEN.CLUSTER
        p = Placement(PlacementId(f"big-{i:04d}-3f9a1c.g1.west-1"), JobId(f"big-{i:04d}-3f9a1c"), "west-1",
                      "west", 1, "", 1)
        assert await backend.launch(p, spec) is None
    agent = Agent(AgentConfig(cluster="west-1", region="west", target=f"127.0.0.1:{proxy_port}"), backend)
    task = asyncio.get_running_loop().create_task(agent.run())
    try:
        while (cap := fed.clusters.get("west-1") and fed.clusters["west-1"].capacity) is None or \
                len(cap.placement_ids) < placements:
            await asyncio.sleep(0.2)
        await asyncio.sleep(3)  # past the re-sync and its closing report
        start = counts["up"]
        await asyncio.sleep(window)
        rate = (counts["up"] - start) / window
        held = fed.clusters["west-1"].capacity
        assert held is not None and len(held.placement_ids) == placements, "the federator's list is not whole"
        return rate
    finally:
        task.cancel()
        await backend.stop()
        proxy.close()
        runner.cancel()
        await server.stop(0)
        fed.cycles.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--placements", type=int, default=2000)
    ap.add_argument("--window", type=float, default=20.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    full = asyncio.run(measure(args.placements, args.window, deltas=False))
    delta = asyncio.run(measure(args.placements, args.window, deltas=True))
    print(f"{args.placements} placements, report every 2 s, {args.window:g} s at rest, agent -> federator bytes/s:")
    print(f"  full lists (a federator before 0.19.0): {full:,.0f} B/s")
    print(f"  placement deltas (0.19.0):             {delta:,.0f} B/s  ({full / max(delta, 1):.0f}x less)")


if __name__ == "__main__":
    main()
