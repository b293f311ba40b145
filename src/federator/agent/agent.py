"""The agent: holds one stream to the federator and executes its orders.

It dials out (so member clusters behind NAT work and no member credentials
leave the region), says Hello, reports capacity every report interval, runs
Launch and Cancel orders through its backend, and reports every phase change.
When the stream breaks it reconnects with capped exponential backoff and
re-reports every placement it holds, so a restarted federator re-syncs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from federator import __version__
from federator.agent.backend import Backend
from federator.api import convert
from federator.api.v1 import agent_pb2, agent_pb2_grpc
from federator.model import JobPhase

log = logging.getLogger("federator.agent")


class StreamEnded(Exception):
    """The federator closed or lost the stream; reconnect."""


@dataclass
class AgentConfig:
    cluster: str
    region: str
    target: str
    labels: dict[str, str] = field(default_factory=dict)
    report_interval: float = 2.0
    max_backoff: float = 5.0


class Agent:
    def __init__(self, config: AgentConfig, backend: Backend) -> None:
        self.config = config
        self.backend = backend
        self._outbox: asyncio.Queue[agent_pb2.AgentMessage] = asyncio.Queue()
        self.connected = asyncio.Event()
        self.sessions = 0

    async def run(self) -> None:
        await self.backend.start(self._on_update)
        async for attempt in AsyncRetrying(
            wait=wait_exponential_jitter(initial=0.1, max=self.config.max_backoff),
            retry=retry_if_exception_type((grpc.aio.AioRpcError, StreamEnded, OSError)),
            before_sleep=lambda rs: log.warning("stream to %s lost (%s); reconnecting", self.config.target,
                                                rs.outcome.exception() if rs.outcome else "?"),
        ):
            with attempt:
                await self._session()

    def _on_update(self, placement_id: str, phase: JobPhase, message: str) -> None:
        self._outbox.put_nowait(agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(
            placement_id=placement_id, phase=convert.phase_to_pb(phase), message=message)))

    def _hello(self) -> agent_pb2.AgentMessage:
        return agent_pb2.AgentMessage(hello=agent_pb2.Hello(
            cluster=self.config.cluster, region=self.config.region, labels=self.config.labels,
            agent_version=__version__))

    def _report(self) -> agent_pb2.AgentMessage:
        return agent_pb2.AgentMessage(capacity=convert.capacity_to_pb(self.backend.capacity()))

    async def _outgoing(self) -> AsyncIterator[agent_pb2.AgentMessage]:
        yield self._hello()
        yield self._report()
        # Re-sync: tell the federator every placement this cluster holds.
        for pid, phase in self.backend.placements().items():
            yield agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(
                placement_id=pid, phase=convert.phase_to_pb(phase), message="resync"))
        while True:
            yield await self._outbox.get()

    async def _session(self) -> None:
        async with grpc.aio.insecure_channel(self.config.target) as channel:
            stub = agent_pb2_grpc.AgentServiceStub(channel)
            # Messages queued for a stream that died are stale: resync replaces them.
            self._outbox = asyncio.Queue()
            call = stub.Connect(self._outgoing())
            reporter: asyncio.Task[None] | None = None
            try:
                async for msg in call:
                    kind = msg.WhichOneof("body")
                    if kind == "welcome":
                        self.sessions += 1
                        self.connected.set()
                        interval = msg.welcome.report_interval_seconds or self.config.report_interval
                        log.info("connected to %s as %s (%s)", self.config.target, self.config.cluster,
                                 self.config.region)
                        if reporter is None:
                            reporter = asyncio.get_running_loop().create_task(self._report_loop(interval))
                    elif kind == "launch":
                        await self._launch(msg.launch)
                    elif kind == "cancel":
                        await self.backend.cancel(msg.cancel.placement_id)
            finally:
                self.connected.clear()
                if reporter:
                    reporter.cancel()
            raise StreamEnded("the federator closed the stream")

    async def _report_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self._outbox.put_nowait(self._report())

    async def _launch(self, launch: agent_pb2.Launch) -> None:
        placement = convert.placement_from_pb(launch.placement)
        try:
            spec = convert.spec_from_pb(launch.spec)
            why = await self.backend.launch(placement, spec)
        except Exception as exc:  # a backend failure refuses this placement, it does not kill the agent
            log.exception("launch of %s failed", placement.placement_id)
            why = f"launch failed: {exc}"
        self._outbox.put_nowait(agent_pb2.AgentMessage(ack=agent_pb2.Ack(
            placement_id=placement.placement_id, ok=why is None, message=why or "launched")))
        if why is None:
            self._outbox.put_nowait(self._report())
