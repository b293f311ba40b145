"""The agent's stream to the federator: Hello, re-sync, reports, and the contact that decides when to fence.

Why a module of its own: one stream's life (dial, Hello, wait for the Welcome and take its terms, re-sync, then
the outbox and a report every interval, while the federator's messages are read) and the liveness around it (a
lease without a message ends the stream; a pause or a gap past the fence limit fences first) are a protocol of
their own, agent.proto's, whatever the orders do. The session hands orders over as they arrive (agent/orders.py)
and asks the placements' re-sync of agent/updates.py; reconnecting after a stream ends is agent/reconnect.py's.

A stream ends by an exception: the federator's (a gRPC error, which the reconnect loop reads for a refusal), or
`StreamEnded` when it closed the stream or this side ended it (`Session.end`: a silent lease, an overflowed
outbox, a JobUpdate dropped over the budget).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc

from federator import __version__
from federator.agent.backend import Backend, Resizer
from federator.agent.certificates import CertificateCheck
from federator.agent.config import AgentConfig
from federator.agent.dialing import connect_deadline
from federator.agent.federator_errors import ErrorLog
from federator.agent.fencing import PAUSE_SECONDS, ConfigConflict, Contact, Terms
from federator.agent.final_updates import FinalPhases
from federator.agent.logs import LogAnswers, follows_logs, serves_logs
from federator.agent.member_health import MemberHealth
from federator.agent.metrics import AgentMetrics
from federator.agent.orders import Orders
from federator.agent.outbox import Outbox
from federator.agent.pacing import UpdatePace, dropped_update
from federator.agent.placement_deltas import SentList
from federator.agent.rejections import LOUD, OVER_BOUND, Rejections, reason_label
from federator.agent.updates import PlacementUpdates
from federator.api import convert
from federator.api.v1 import agent_pb2, agent_pb2_grpc
from federator.keepalive import AGENT_KEEPALIVE
from federator.model import AgentFeature
from federator.security.tls import FRESH_CONNECTION

log = logging.getLogger("federator.agent")
KEEPALIVE = AGENT_KEEPALIVE
"""Transport-level liveness (federator/keepalive.py, with the server's policy that accepts it); the
application-level one (no message for a lease) usually notices first."""
CHANNEL_OPTIONS = KEEPALIVE + FRESH_CONNECTION + connect_deadline()
"""An unanswering address of the target (a frozen replica) is given up after 5 s, not gRPC's 20 (agent/dialing.py)."""
WELCOME_TIMEOUT = 45.0
"""A stream that has not been welcomed this long after it was opened is given up (a silent link at connect).
Longer than the 30 s gRPC core holds a call its federator has not yet picked up (a loaded event loop), so a busy
federator's Welcome, or its CANCELLED, comes first: at 10 s an agent gave up a stream still waiting its turn and
joined the back of the queue with a new Hello, again and again (soak finding S4: 100 agents took 5 minutes to
connect, 1,407 streams given up). A dead link is still noticed sooner by the transport's keepalive."""
UNWELCOMED = "no Welcome"
"""How `StreamEnded` begins for a stream given up before its Welcome (agent/reconnect.py reads it)."""
TICK = 0.25
CERTIFICATE_CHECK_TICKS = 2400
"""Every 10 minutes (in ticks) the TLS files' dates are read again, so the expiry metric follows a renewal made
while the stream is up (they are read after every failed connection too)."""


class StreamEnded(Exception):
    """The federator closed or lost the stream; reconnect."""


class Session:
    """One stream at a time to the federator, and what lasts across them: the terms, the contact, the budget."""

    def __init__(self, config: AgentConfig, backend: Backend, *, contact: Contact, metrics: AgentMetrics,
                 member: MemberHealth, certificates: CertificateCheck | None, instance: str, outbox: Outbox,
                 orders: Orders, updates: PlacementUpdates, finals: FinalPhases) -> None:
        self.config = config
        self.backend = backend
        self.contact = contact  # this stream's last message, on a clock that counts through pauses
        self.metrics = metrics
        self.member = member
        self.certificates = certificates
        self.instance = instance
        self.outbox = outbox
        self.orders = orders
        self.updates = updates
        self.finals = finals
        self.connected = asyncio.Event()
        self.sessions = 0  # streams welcomed so far
        self.last_contact = contact.clock()  # the last message of any stream (for --fence-after)
        self.terms: Terms | None = None  # the latest Welcome's
        self.fatal: ConfigConflict | None = None  # set: a configuration the federator's rule refuses (agent stops)
        self._fence_limit = config.fence_after if config.fence_after > 0 else float("inf")
        self._ending: asyncio.Future[str] | None = None  # set to end the current stream from this side
        self._pace = UpdatePace()  # the federator's JobUpdate budget, kept across streams (agent/pacing.py)
        self._errors = ErrorLog(log)  # the federator's Errors, each logged once while it lasts
        self._rejections = Rejections()  # those saying capacity is not seen or offered: ERROR once (rejections.py)
        self.logs = LogAnswers(backend, outbox, serve=config.serve_logs)  # LogsRequests (agent/logs.py)
        self.sent_list = SentList()  # the reports' placement list, said as a change where the federator takes it

    async def watch(self) -> None:
        """Every quarter second: a pause noticed (and fenced), the federator's silence, --fence-after, and
        (every second) liveness and the placements-by-phase gauge."""
        n = 0
        while True:
            await asyncio.sleep(TICK)
            n += 1
            if n % 4 == 0:
                self.metrics.tick(self.backend.placements())
            if n % CERTIFICATE_CHECK_TICKS == 0 and self.certificates is not None:
                self.certificates.check()
            jump = self.contact.tick()
            if jump > PAUSE_SECONDS:
                away = self.contact.clock() - self.last_contact
                log.warning("resumed after a pause of %.1fs (process stopped or machine suspended); %.1fs since "
                            "the last message from the federator", jump, away)
                if away > self._fence_limit:
                    await self.orders.fence_all(f"{away:.1f}s without the federator (paused), over the fence "
                                                f"limit {self._fence_limit:g}s")
                    self.end("resumed after a pause past the fence limit")
                    continue
            if self._ending is not None:
                self._check_liveness()
            away = self.contact.clock() - self.last_contact
            if self.config.fence_after > 0 and away >= self.config.fence_after:
                await self.orders.fence_all(f"{away:.1f}s without the federator")

    def _check_liveness(self) -> None:
        """The application-level liveness of the stream: the federator sends something every heartbeat
        interval, so a lease without a message means a dead or silent link, whatever TCP says."""
        age = self.contact.age()
        if not self.connected.is_set():
            if age > WELCOME_TIMEOUT:
                self.end(f"{UNWELCOMED} {age:.1f}s after connecting")
        elif self.terms is not None and self.terms.lease_seconds > 0 and age > self.terms.lease_seconds:
            log.warning("no message from the federator for %.1fs (lease %gs): the link is dead or silent; "
                        "reconnecting", age, self.terms.lease_seconds)
            self.end(f"no message from the federator for {age:.1f}s")

    def hello(self) -> agent_pb2.AgentMessage:
        """The first message of every stream: who this agent is, and what it can do (agent.proto, Hello)."""
        return agent_pb2.AgentMessage(hello=agent_pb2.Hello(
            cluster=self.config.cluster, region=self.config.region, labels=self.config.labels,
            agent_version=__version__, gang_admission=str(getattr(self.backend, "gang_admission", "")),
            features=[AgentFeature.LOST.value, AgentFeature.SEALS.value,  # seals: agent/launch_seals.py
                      *([AgentFeature.RESIZE.value] if isinstance(self.backend, Resizer) else []),
                      *([AgentFeature.LOGS.value] if serves_logs(self.backend, self.config.serve_logs) else []),
                      *([AgentFeature.LOGS_SINCE.value] if follows_logs(self.backend, self.config.serve_logs)
                        else [])],
            instance=self.instance))

    def federator_error(self, error: agent_pb2.Error) -> None:
        """Count an Error by its reason and log it: one saying part of the member's capacity is not seen or not
        offered (`implausible_report`, `over_bound`) at ERROR once per stream (rejections.py); any other once
        while it lasts, an applied report's as applied (federator_errors.py)."""
        self.metrics.rejected(error.reason)
        if dropped_update(error):  # which of the run were dropped is not said: the re-sync sends them all
            log.warning("the federator dropped a JobUpdate over its budget (%s): starting a new stream, whose "
                        "re-sync carries every placement's phase", error.message[:300])
            self.end("a JobUpdate dropped over the federator's budget")
            return
        if error.placement_id or reason_label(error.reason) not in LOUD:
            self._errors.error(error.reason, error.message, error.placement_id)
            return
        level = self._rejections.level(error.reason)  # about the reports: a placement's went to self._errors
        what = "took a report clamped" if error.reason == OVER_BOUND else "refused a message"
        log.log(level, "the federator %s (%s): %s%s", what, error.reason, error.message,
                "" if level <= logging.DEBUG else "; said once: the same again at DEBUG")

    def report(self) -> agent_pb2.AgentMessage:
        """The capacity report as of now (built as it is sent: reports coalesce in the outbox)."""
        cap = self.backend.capacity()
        unlabelled = getattr(self.backend, "unlabelled_accelerators", None)  # the Kubernetes backend's (F3)
        if unlabelled is not None:
            self.metrics.unlabelled(unlabelled)
        unsupported = getattr(self.backend, "unsupported_accelerators", None)  # the same backend's (V2)
        if unsupported is not None:
            self.metrics.unsupported(unsupported)
        shared = getattr(self.backend, "shared_namespace_agents", None)  # the same backend's: a shared --namespace
        if shared is not None:
            self.metrics.shared_namespace_agents(len(shared))
        if not self.member.reachable:  # its caches are stale: say why, not what they hold (agent.proto)
            return agent_pb2.AgentMessage(capacity=agent_pb2.CapacityReport(
                sequence=cap.sequence, member_unreachable=self.member.why, maintenance=self.config.maintenance))
        report = convert.capacity_to_pb(cap)
        report.maintenance = self.config.maintenance  # in every report: the federator does not store it
        self.sent_list.shape(report)  # the placements as a change to the last report's (placement_deltas.py)
        return agent_pb2.AgentMessage(capacity=report)

    async def _outgoing(self) -> AsyncIterator[agent_pb2.AgentMessage]:
        yield self._sent(self.hello())
        # Nothing more until the federator has taken the Hello: a federator that refuses this agent ends the call
        # after reading it, and a write racing that end made gRPC report the call as "INTERNAL: Internal error
        # from Core" instead of the federator's PERMISSION_DENIED and its reason (so the agent neither said why
        # nor backed off as a refused agent does).
        await self.connected.wait()
        # Re-sync: every placement this cluster holds, and those that ended lately (agent/updates.py), then the
        # report that closes the re-sync.
        for update in self.updates.resync(self.backend):
            yield self._sent(agent_pb2.AgentMessage(job_update=update))
        yield self._sent(self.report())
        while True:
            msg = await self.outbox.get()
            if msg is None:
                self.end("the outbox overflowed")
                return
            if msg.WhichOneof("body") is None:
                msg = self.report()
            elif msg.WhichOneof("body") == "job_update":
                await self._paced()
            yield self._sent(msg)

    async def _paced(self) -> None:
        """Wait until one more JobUpdate is within the federator's budget, and charge it (agent/pacing.py)."""
        wait = self._pace.wait()
        if wait > 0:
            self.metrics.updates_paced.inc(wait)
            await asyncio.sleep(wait)
        self._pace.spend()

    def _sent(self, msg: agent_pb2.AgentMessage) -> agent_pb2.AgentMessage:
        """Count a message as it is handed to the stream."""
        self.metrics.sent(report=msg.WhichOneof("body") == "capacity")
        return msg

    async def stream(self) -> None:
        """One stream, from dial to end: raises how it ended (a gRPC error, StreamEnded), for agent/reconnect.py."""
        tls = self.config.tls
        channel = (grpc.aio.secure_channel(self.config.target, tls.channel_credentials(), options=CHANNEL_OPTIONS)
                   if tls else grpc.aio.insecure_channel(self.config.target, options=CHANNEL_OPTIONS))
        async with channel:
            stub = agent_pb2_grpc.AgentServiceStub(channel)
            self.outbox.renew()  # messages queued for a stream that died are stale: the re-sync replaces them
            loop = asyncio.get_running_loop()
            self._ending = ending = loop.create_future()
            self.contact.session_started()
            # Written by a task of ours (call.write), not handed to gRPC as a request iterator: gRPC's own
            # consumer task and an async generator closed while it waits were what left "Task was destroyed but
            # it is pending!" and "aclose(): asynchronous generator is already running" at every teardown.
            call = stub.Connect()
            reader = loop.create_task(self._read(call))
            writer = loop.create_task(self._write(call))
            try:
                await asyncio.wait({reader, ending}, return_when=asyncio.FIRST_COMPLETED)
                if not ending.done():
                    reader.result()  # the stream's error, if it failed
                    raise StreamEnded("the federator closed the stream")
                raise StreamEnded(ending.result())
            finally:
                self._ending = None
                call.cancel()
                for task in (writer, reader):
                    task.cancel()
                await asyncio.gather(writer, reader, return_exceptions=True)  # torn down before the channel

    async def _write(self, call: grpc.aio.StreamStreamCall) -> None:
        """Send the Hello, the re-sync and then the outbox, until the session ends."""
        try:
            async for msg in self._outgoing():
                await call.write(msg)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            # The call ended under us. The reader still hands on what the federator sent before the end (a
            # Cancel, say), and then sees the end itself: ending the session here would cut that short.
            return

    def end(self, why: str) -> None:
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
                sent_at = msg.welcome.federator_time if kind == "welcome" else \
                    msg.heartbeat.federator_time if kind == "heartbeat" else 0.0
                gap = self.contact.heard(sent_at, welcome=kind == "welcome",
                                         hello_received_at=msg.welcome.hello_received_at if kind == "welcome" else 0.0)
                self.last_contact = self.contact.clock()
                if gap > self._fence_limit:  # it may have waited in a buffer while this process was frozen
                    await self.orders.fence_all(f"a message arrived after {gap:.1f}s of silence (paused or cut "
                                                f"off), over the fence limit {self._fence_limit:g}s")
                    self.end("a gap past the fence limit: re-syncing")
                    return
                if kind == "welcome":
                    if not self._welcomed(msg.welcome):
                        return
                    interval = msg.welcome.report_interval_seconds or self.config.report_interval
                    if reporter is None:
                        reporter = asyncio.get_running_loop().create_task(self._report_loop(interval))
                elif kind == "heartbeat" and self.terms is not None:  # fresh, it confirms late launches before it
                    self.orders.late.dated(age=self.contact.order_age(sent_at),
                                           bound=self.terms.order_max_age_seconds)
                elif kind == "error":
                    self.federator_error(msg.error)
                elif kind in ("launch", "cancel", "resize"):
                    self.orders.take(msg)  # carried out in its placement's turn, the stream read on (orders.py)
                elif kind == "logs":
                    self.logs.take(msg.logs)  # read off the reader, answered on this stream (agent/logs.py)
                elif kind == "placement_list_wanted":  # a change it could not apply: the full list, now
                    log.info("the federator asks for the full placement list: %s", msg.placement_list_wanted.reason)
                    self.sent_list.wanted()
                    self.outbox.put_report()
        finally:
            self.orders.late.stream_down()  # what no later message confirmed never starts (late_launches.py)
            self.finals.stream_down()
            self.connected.clear()
            self.metrics.session_closed()
            if reporter:
                reporter.cancel()

    def _welcomed(self, welcome: agent_pb2.Welcome) -> bool:
        """Take the federator's terms; False (and the agent stops) if --fence-after breaks its rule."""
        self.terms = Terms(lease_seconds=welcome.lease_seconds, lost_after_seconds=welcome.lost_after_seconds,
                           order_max_age_seconds=welcome.order_max_age_seconds,
                           heartbeat_interval_seconds=welcome.heartbeat_interval_seconds)
        try:
            self._fence_limit = self.terms.fence_limit(self.config.fence_after)
        except ConfigConflict as exc:
            log.error("%s", exc)
            self.fatal = exc
            self.end("a configuration the federator's rule refuses")
            return False
        self._pace.agreed(welcome)
        self.sent_list.stream_up(welcome)  # this stream's first report lists its placements in full
        self.orders.late.stream_up(welcome.features)  # late launches held for confirmation if it confirms them
        self.finals.stream_up(welcome.lost_after_seconds)  # final phases age from here on (FinalPhases.prune)
        self.sessions += 1
        self.connected.set()
        self.metrics.session_opened()
        self._rejections.new_stream()
        travel = self.contact.welcome_travel  # dated so, this stream's orders look up to this much older
        if travel > welcome.order_max_age_seconds / 2 > 0:
            log.warning("the Welcome took up to %.1fs on its way (the Hello's round trip less the federator's time "
                        "answering it): every order of this stream is dated up to that much older, and one within "
                        "it of its %gs bound is taken as stale; a slow or lossy link, or a federator too busy to "
                        "take the stream up (a call its gRPC held unread counts as travel)", travel,
                        welcome.order_max_age_seconds)
        # Two limits, said apart (chaos QA F6: "fence limit 15s" read as if a cut-off agent stopped its work then)
        log.info("connected to %s as %s (%s, instance %s); fences after a pause past %gs; while cut off: %s",
                 self.config.target, self.config.cluster, self.config.region, self.instance, self._fence_limit,
                 f"after {self.config.fence_after:g}s (--fence-after)" if self.config.fence_after > 0 else
                 "never (--fence-after not set: its work runs on, and may run beside its replacement once the "
                 "cluster is Lost)")
        return True

    async def _report_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.outbox.put_report()


__all__ = ["CERTIFICATE_CHECK_TICKS", "CHANNEL_OPTIONS", "KEEPALIVE", "TICK", "UNWELCOMED", "WELCOME_TIMEOUT",
           "Session", "StreamEnded"]
