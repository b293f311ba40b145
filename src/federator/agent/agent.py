"""The agent: holds one stream to the federator and executes its orders.

It dials out (so member clusters behind NAT work and no member credentials
leave the region), says Hello, reports capacity every report interval, runs
Launch and Cancel orders through its backend, and reports every phase change.
When the stream breaks it reconnects with capped exponential backoff and
re-syncs: it reports every placement it holds *before* its first capacity
report of the session, so the federator knows, when that report arrives, all
the cluster runs (it then cancels superseded placements, re-sends launch
orders lost in flight, and re-queues placements the cluster lost).

It counts what it does in `AgentMetrics` (agent/metrics.py), and with
`metrics_listen` set serves them with its probes (agent/endpoint.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from federator import __version__
from federator.agent.backend import Backend
from federator.agent.endpoint import Endpoint
from federator.agent.metrics import AgentMetrics
from federator.api import convert
from federator.api.v1 import agent_pb2, agent_pb2_grpc
from federator.model import JobPhase
from federator.security.tls import TlsFiles

log = logging.getLogger("federator.agent")
OUTBOX_LIMIT = 10_000
"""Phase updates queued for the federator at most; past that the stream is reset and re-synced."""
KEEPALIVE = [("grpc.keepalive_time_ms", 10_000), ("grpc.keepalive_timeout_ms", 5_000),
             ("grpc.keepalive_permit_without_calls", 1), ("grpc.http2.max_pings_without_data", 0)]
"""A link that silently drops packets is noticed within ~15s, not at the next TCP timeout."""


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
    tls: TlsFiles | None = None  # None: plaintext (the federator must run with --insecure)
    fence_after: float = 0.0  # > 0: stop every placement after this long without the federator
    metrics_listen: str = ""  # HOST:PORT of /metrics, /healthz, /readyz; empty: no endpoint
    ready_file: Path | None = None  # written with the endpoint's bound address once it serves


class Agent:
    def __init__(self, config: AgentConfig, backend: Backend) -> None:
        self.config = config
        self.backend = backend
        self._outbox: asyncio.Queue[agent_pb2.AgentMessage | None] = asyncio.Queue(maxsize=OUTBOX_LIMIT)
        self._report_queued = False
        self._messages: dict[str, str] = {}  # each placement's latest message, repeated by the re-sync
        self.connected = asyncio.Event()
        self.sessions = 0
        self._cut_since: float | None = None  # when the federator was last lost (None: connected)
        self._fence: asyncio.Task[None] | None = None
        self._ending: asyncio.Future[str] | None = None  # set to end the current stream from this side
        self.metrics = AgentMetrics(cluster=config.cluster, region=config.region)
        self.endpoint: Endpoint | None = None

    async def run(self) -> None:
        # The endpoint first: liveness holds while the backend starts and the federator is away.
        if self.config.metrics_listen:
            self.endpoint = Endpoint(self.metrics, self.config.metrics_listen)
            log.info("agent metrics on %s/metrics (probes /healthz, /readyz)", self.endpoint.url)
            self._write_ready_file(self.endpoint)
        loop = asyncio.get_running_loop()
        ticker = loop.create_task(self._tick_loop())
        try:
            await self.backend.start(self._on_update)
            self._cut_since = loop.time()
            if self.config.fence_after > 0:
                self._fence = loop.create_task(self._fence_loop())
            await self._connect_forever()
        finally:
            ticker.cancel()
            if self._fence:
                self._fence.cancel()
            self.metrics.stopped()
            if self.endpoint:
                self.endpoint.stop()

    def _write_ready_file(self, endpoint: Endpoint) -> None:
        if self.config.ready_file is None:
            return
        tmp = self.config.ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"metrics": f"{endpoint.url}/metrics", "healthz": f"{endpoint.url}/healthz",
                                   "readyz": f"{endpoint.url}/readyz", "pid": os.getpid()}))
        tmp.replace(self.config.ready_file)

    async def _tick_loop(self) -> None:
        """Liveness, and the placements-by-phase gauge, refreshed from the event loop every second."""
        while True:
            self.metrics.tick(self.backend.placements())
            await asyncio.sleep(1.0)

    async def _connect_forever(self) -> None:
        async for attempt in AsyncRetrying(
            wait=wait_exponential_jitter(multiplier=0.1, max=self.config.max_backoff),
            retry=retry_if_exception_type((grpc.aio.AioRpcError, StreamEnded, OSError)),
            before_sleep=lambda rs: log.warning("stream to %s lost (%s); reconnecting", self.config.target,
                                                _why(rs.outcome.exception() if rs.outcome else None)),
        ):
            with attempt:
                await self._session()

    def _queue(self, msg: agent_pb2.AgentMessage) -> None:
        try:
            self._outbox.put_nowait(msg)
        except asyncio.QueueFull:  # the federator is not reading: start over, the re-sync carries every phase
            log.warning("%d messages queued for the federator: resetting the stream", OUTBOX_LIMIT)
            while not self._outbox.empty():
                self._outbox.get_nowait()
            self._outbox.put_nowait(None)

    def _on_update(self, placement_id: str, phase: JobPhase, message: str) -> None:
        self._messages[placement_id] = message  # a re-sync repeats it: the reason outlives a broken stream
        self._queue(agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(
            placement_id=placement_id, phase=convert.phase_to_pb(phase), message=message)))
        if phase.is_terminal:
            self._queue_report()  # its resources are free now: waiting jobs need not wait for the next tick

    def _hello(self) -> agent_pb2.AgentMessage:
        return agent_pb2.AgentMessage(hello=agent_pb2.Hello(
            cluster=self.config.cluster, region=self.config.region, labels=self.config.labels,
            agent_version=__version__))

    def _report(self) -> agent_pb2.AgentMessage:
        return agent_pb2.AgentMessage(capacity=convert.capacity_to_pb(self.backend.capacity()))

    def _queue_report(self) -> None:
        """Reports coalesce: at most one waits in the outbox, and it is built when it is sent."""
        if not self._report_queued:
            self._report_queued = True
            self._queue(agent_pb2.AgentMessage())  # an empty body stands for "the current report"

    async def _outgoing(self) -> AsyncIterator[agent_pb2.AgentMessage]:
        yield self._sent(self._hello())
        # Re-sync: every placement this cluster holds, then the report that closes the re-sync.
        held = self.backend.placements()
        self._messages = {pid: m for pid, m in self._messages.items() if pid in held}
        for pid, phase in held.items():
            yield self._sent(agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(
                placement_id=pid, phase=convert.phase_to_pb(phase), message=self._messages.get(pid, ""),
                resync=True)))
        yield self._sent(self._report())
        while True:
            msg = await self._outbox.get()
            if msg is None:
                self._end_session("the outbox overflowed")
                return
            if msg.WhichOneof("body") is None:
                self._report_queued = False
                msg = self._report()
            yield self._sent(msg)

    def _sent(self, msg: agent_pb2.AgentMessage) -> agent_pb2.AgentMessage:
        """Count a message as it is handed to the stream."""
        self.metrics.sent(report=msg.WhichOneof("body") == "capacity")
        return msg

    async def _session(self) -> None:
        tls = self.config.tls
        channel = (grpc.aio.secure_channel(self.config.target, tls.channel_credentials(), options=KEEPALIVE) if tls
                   else grpc.aio.insecure_channel(self.config.target, options=KEEPALIVE))
        async with channel:
            stub = agent_pb2_grpc.AgentServiceStub(channel)
            # Messages queued for a stream that died are stale: the re-sync replaces them.
            self._outbox = asyncio.Queue(maxsize=OUTBOX_LIMIT)
            self._report_queued = False
            loop = asyncio.get_running_loop()
            self._ending = ending = loop.create_future()
            call = stub.Connect(self._outgoing())
            reader = loop.create_task(self._read(call))
            try:
                await asyncio.wait({reader, ending}, return_when=asyncio.FIRST_COMPLETED)
                if not ending.done():
                    reader.result()  # the stream's error, if it failed
                    raise StreamEnded("the federator closed the stream")
                raise StreamEnded(ending.result())
            finally:
                self._ending = None
                call.cancel()
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)  # torn down before the channel closes

    def _end_session(self, why: str) -> None:
        """End the current stream from the agent's side (the reader may be waiting for a message that never
        comes); the agent reconnects and re-syncs."""
        if self._ending is not None and not self._ending.done():
            self._ending.set_result(why)

    async def _read(self, call: grpc.aio.StreamStreamCall) -> None:
        """Handle the federator's messages of one stream until it ends."""
        reporter: asyncio.Task[None] | None = None
        try:
            async for msg in call:
                kind = msg.WhichOneof("body")
                if kind == "welcome":
                    self.sessions += 1
                    self.connected.set()
                    self.metrics.session_opened()
                    self._cut_since = None
                    interval = msg.welcome.report_interval_seconds or self.config.report_interval
                    log.info("connected to %s as %s (%s)", self.config.target, self.config.cluster,
                             self.config.region)
                    if reporter is None:
                        reporter = asyncio.get_running_loop().create_task(self._report_loop(interval))
                elif kind == "launch":
                    await self._launch(msg.launch)
                elif kind == "cancel":
                    if msg.cancel.placement_id in self.backend.placements():
                        log.info("cancel placement %s: %s", msg.cancel.placement_id, msg.cancel.reason)
                    self.metrics.cancelled("federator")
                    await self.backend.cancel(msg.cancel.placement_id)
        finally:
            if self.connected.is_set() or self._cut_since is None:
                self._cut_since = asyncio.get_running_loop().time()
            self.connected.clear()
            self.metrics.session_closed()
            if reporter:
                reporter.cancel()

    async def _fence_loop(self) -> None:
        """Self-fencing: cut off from the federator for `fence_after`, stop everything this cluster runs.

        With `fence_after` no longer than the federator's `--lost-after`, the
        old copy of a job is stopped before the federator places it elsewhere,
        even if the partition never heals.
        """
        limit = self.config.fence_after
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, limit / 4))
            if self._cut_since is None or loop.time() - self._cut_since < limit:
                continue
            running = [pid for pid, phase in self.backend.placements().items() if not phase.is_terminal]
            if running:
                self.metrics.self_fences.inc()
            for pid in running:
                log.warning("fenced: stopping placement %s after %.1fs without the federator", pid,
                            loop.time() - self._cut_since)
                self.metrics.cancelled("fence")
                await self.backend.cancel(pid)

    async def _report_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self._queue_report()

    async def _launch(self, launch: agent_pb2.Launch) -> None:
        try:
            placement = convert.placement_from_pb(launch.placement)
            spec = convert.spec_from_pb(launch.spec)
        except convert.WireError as exc:
            log.warning("refusing a malformed launch order for %r: %s", launch.placement.placement_id, exc)
            self._queue(agent_pb2.AgentMessage(ack=agent_pb2.Ack(
                placement_id=launch.placement.placement_id, ok=False, message=f"malformed launch: {exc}")))
            self.metrics.launched("refused", None)
            return
        again = placement.placement_id in self.backend.placements()
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            why = await self.backend.launch(placement, spec)
            self.metrics.launched("ok" if why is None else "refused", loop.time() - started)
        except Exception as exc:  # a backend failure refuses this placement, it does not kill the agent
            log.exception("launch of %s failed", placement.placement_id)
            why = f"launch failed: {exc}"
            self.metrics.launched("failed", loop.time() - started)
        if why is None and not again:
            log.info("launched placement %s (job %s, generation %d, %d replicas)", placement.placement_id,
                     placement.job_id, placement.generation, placement.replicas)
        elif why is None:
            log.info("placement %s is already here: nothing new started", placement.placement_id)
        self._queue(agent_pb2.AgentMessage(ack=agent_pb2.Ack(
            placement_id=placement.placement_id, ok=why is None, message=why or "launched")))
        if why is None:
            self._queue_report()


def _why(exc: BaseException | None) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc) if exc else "?"
