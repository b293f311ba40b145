"""The scripted federator and helpers of the agent tests (importable as `agent_support`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from federator.agent.agent import Agent, AgentConfig
from federator.api import convert
from federator.api.v1 import agent_pb2, agent_pb2_grpc
from federator.backends.sim.fleet import parse_fleet
from federator.backends.sim.runtime import SimBackend
from federator.jobfile import parse_job
from federator.model import JobId, Placement, PlacementId

FLEET = parse_fleet({"clusters": [{"name": "c-1", "region": "r", "nodes": [
    {"count": 1, "gpuModel": "H100", "gpus": 8, "cpu": 64, "memory": "256Gi"}]}]})
SPEC = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                  "metadata": {"name": "j", "annotations": {"federator.io/sim-duration": "300s"}},
                  "spec": {"kind": "training", "resources": {"cpu": "1", "nvidia.com/gpu": 4}}})


def launch(pid: str, gpus_replicas: int = 1, spec: object = SPEC) -> agent_pb2.FederatorMessage:
    p = Placement(PlacementId(pid), JobId("j"), "c-1", "r", gpus_replicas, "H100", 1)
    return agent_pb2.FederatorMessage(launch=agent_pb2.Launch(placement=convert.placement_to_pb(p),
                                                              spec=convert.spec_to_pb(spec)))


class ScriptedFederator(agent_pb2_grpc.AgentServiceServicer):
    """Records what each session receives; sends each session's script after the Welcome."""

    def __init__(self, scripts: list[list[agent_pb2.FederatorMessage]], report_interval: float = 0.05,
                 lost_after: float = 0.0, clock: Callable[[], float] | None = None,
                 features: tuple[str, ...] = (), order_max_age: float = 0.0) -> None:
        self.scripts = scripts
        self.features = features  # the Welcome's (none: a federator older than Welcome.features)
        self.later: asyncio.Queue[agent_pb2.FederatorMessage] = asyncio.Queue()  # sent on the live session
        self.clock = clock  # set: each Welcome's federator_time (None: the Welcome gives none)
        self.report_interval = report_interval
        self.lost_after = lost_after  # 0: the Welcome gives none (the agent keeps its own default)
        self.order_max_age = order_max_age  # the Welcome's bound on a Launch's age (0: none given)
        self.sessions: list[list[agent_pb2.AgentMessage]] = []
        self.changed = asyncio.Event()

    async def Connect(self, request_iterator: AsyncIterator[agent_pb2.AgentMessage],  # noqa: N802
                      context: grpc.aio.ServicerContext) -> AsyncIterator[agent_pb2.FederatorMessage]:
        got: list[agent_pb2.AgentMessage] = []
        self.sessions.append(got)
        script = self.scripts[len(self.sessions) - 1] if len(self.sessions) <= len(self.scripts) else []

        async def read() -> None:
            async for msg in request_iterator:
                got.append(msg)
                self.changed.set()

        reader = asyncio.create_task(read())
        yield agent_pb2.FederatorMessage(welcome=agent_pb2.Welcome(
            report_interval_seconds=self.report_interval, lost_after_seconds=self.lost_after,
            order_max_age_seconds=self.order_max_age,
            federator_time=self.clock() if self.clock is not None else 0.0, features=self.features))
        for msg in script:
            if msg.WhichOneof("body") is None:  # an empty message: end this session
                reader.cancel()
                return
            yield msg
        while not reader.done():  # then what the test puts in `later`, while the agent is connected
            getter = asyncio.ensure_future(self.later.get())
            done, _ = await asyncio.wait({reader, getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                yield getter.result()
            else:
                getter.cancel()
        await reader

    async def until(self, cond: object, timeout: float = 20.0) -> None:
        def holds() -> bool:
            try:
                return bool(cond())  # type: ignore[operator]
            except IndexError:  # no such session yet
                return False

        async def wait() -> None:
            while not holds():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), timeout)


async def with_agent(fed: ScriptedFederator, body: object, backend: SimBackend | None = None,
                     **config: Any) -> Agent:
    server = grpc.aio.server()
    agent_pb2_grpc.add_AgentServiceServicer_to_server(fed, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    backend = backend or SimBackend(FLEET["c-1"])
    agent = Agent(AgentConfig(cluster="c-1", region="r", target=f"127.0.0.1:{port}", max_backoff=0.2, **config),
                  backend)
    task = asyncio.create_task(agent.run())
    try:
        await body(agent)  # type: ignore[operator]
    finally:
        task.cancel()
        await backend.stop()
        await server.stop(0)
    return agent


def kinds(msgs: list[agent_pb2.AgentMessage]) -> list[str]:
    return [m.WhichOneof("body") or "?" for m in msgs]


__all__ = ["FLEET", "SPEC", "ScriptedFederator", "kinds", "launch", "with_agent"]
