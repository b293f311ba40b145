"""The reference agent and the federator keep one placement list through changes said as deltas, end to end.

Outside WAN QA (W3): reports repeated every placement id (26.7 KB/s at rest for 2,003). With deltas, the federator
learns of a placement that ended or started only from a change (a full list comes at a stream's start, when asked,
and every 300 s): so its list following the member's, across a stream that ends and the agent's re-sync on a new
one (as after a federator restart or a new leader: a new stream either way), is the check. Real gRPC over loopback,
the real agent with a simulated member.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import grpc

from federator.agent.agent import Agent, AgentConfig
from federator.api.v1 import agent_pb2, agent_pb2_grpc
from federator.backends.sim.fleet import parse_fleet
from federator.backends.sim.runtime import SimBackend
from federator.jobfile import parse_job
from federator.model import Job, JobPhase, JobSpec
from federator.security.auth import Authenticator
from federator.server.federator import Federator
from federator.server.outbox import EndCode, Ending
from federator.server.services import AgentService
from federator.store import SqliteJobStore

FLEET = parse_fleet({"clusters": [{"name": "east-1", "region": "east", "nodes": [
    {"count": 2, "cpu": 64, "memory": "256Gi"}]}]})


def long(name: str) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": name, "annotations": {"federator.io/sim-startup": "0s",
                                                                 "federator.io/sim-duration": "3600s"}},
                      "spec": {"kind": "training", "resources": {"cpu": "1"}}})


async def until(cond: Callable[[], object], timeout: float = 30.0) -> None:
    async def wait() -> None:
        while not cond():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(wait(), timeout)  # a guard against a hang, not a timed assertion


class Counting(AgentService):
    """The federator's AgentService, counting the reports that came as deltas."""

    deltas = 0

    def handle(self, rec, msg):  # type: ignore[no-untyped-def]
        if not isinstance(msg, agent_pb2.AgentMessage) or msg.WhichOneof("body") != "capacity":
            return super().handle(rec, msg)
        Counting.deltas += msg.capacity.HasField("placement_delta")
        return super().handle(rec, msg)


def test_the_federators_list_follows_the_members_through_deltas_and_a_new_stream() -> None:
    async def go() -> None:
        fed = Federator(store=SqliteJobStore(Path(":memory:")), report_interval=0.1, lease_seconds=10.0)
        server = grpc.aio.server()
        agent_pb2_grpc.add_AgentServiceServicer_to_server(Counting(fed, Authenticator(insecure=True)), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        runner = asyncio.get_running_loop().create_task(fed.run())
        backend = SimBackend(FLEET["east-1"])
        agent = Agent(AgentConfig(cluster="east-1", region="east", target=f"127.0.0.1:{port}", max_backoff=0.2),
                      backend)
        task = asyncio.create_task(agent.run())

        def listed() -> frozenset[str]:
            rec = fed.clusters.get("east-1")
            return rec.capacity.placement_ids if rec is not None and rec.capacity is not None else frozenset()

        def member() -> set[str]:
            return {pid for pid, phase in backend.placements().items() if phase is JobPhase.RUNNING}

        def running(*jobs: Job) -> set[str]:
            return {p.placement_id for j in jobs for p in j.placements if j.phase is JobPhase.RUNNING}

        try:
            await until(lambda: (rec := fed.clusters.get("east-1")) is not None and rec.resynced)
            a, b, c = (fed.submit(long(n)) for n in ("a", "b", "c"))
            await until(lambda: len(running(a, b, c)) == 3 and listed() == running(a, b, c))
            before = Counting.deltas
            fed.cancel(a.job_id)  # its end is told by a delta only
            await until(lambda: listed() == running(b, c) == member())
            assert Counting.deltas > before

            rec = fed.clusters["east-1"]
            fed.close_stream(rec, Ending(EndCode.UNAVAILABLE, "test: the stream ends"))  # a new stream re-syncs
            await until(lambda: agent.sessions == 2 and (r := fed.clusters["east-1"]).resynced and r is not rec)
            d = fed.submit(long("d"))
            fed.cancel(b.job_id)
            await until(lambda: listed() == running(c, d) == member() and len(listed()) == 2)
            refused = fed.metrics.registry.get_sample_value("federator_messages_rejected_total",
                                                            {"reason": "malformed"})
            assert not refused  # no delta was refused: agent and federator agreed throughout
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await backend.stop()
            runner.cancel()
            await server.stop(0)
            fed.cycles.close()

    asyncio.run(go())
