"""The agent: holds one stream to the federator and executes its orders.

It dials out (so member clusters behind NAT work and no member credentials
leave the region), says Hello, reports capacity every report interval, runs
Launch, Cancel and Resize orders through its backend, and reports every phase change.
When the stream breaks (or the federator goes silent for a lease: every
Welcome promises a message at least every heartbeat interval) it reconnects
with a capped exponential back-off that a working session resets
(agent/backoff.py), and re-syncs *before* its first capacity report of the
session: every placement it holds, and the final phase of those that ended
lately and are gone. So when that report arrives the federator knows all the
cluster runs and why what is gone ended (it then cancels superseded
placements, re-sends launch orders lost in flight, and re-queues placements
the cluster lost, as refused there if the cluster said so).

Before every side effect it checks its contact with the federator is fresh
(agent/fencing.py): after a gap longer than the fence limit (a pause, a
silent link) it stops every placement it holds first, and it never starts a
Launch older than the order's bound.

It counts what it does in `AgentMetrics` (agent/metrics.py), and with
`metrics_listen` set serves them with its probes (agent/endpoint.py).

Why this module is small: `Agent` only builds the parts and runs them, each in a module of its own role, which
share nothing but what is passed to them here:

- agent/session.py: one stream at a time (Hello, Welcome, re-sync, reports, liveness, the fence on a gap);
- agent/reconnect.py: the wait between streams, and what a refused or misdialed agent says;
- agent/orders.py: Launch, Cancel and Resize on the backend, their duplicates and refusals, and the fence;
- agent/updates.py: the backend's phase changes as JobUpdates, and what the re-sync repeats of each placement;
- agent/final_updates.py: the one builder of a final phase's JobUpdate, and the ends kept for the re-sync;
- agent/outbox.py: the queue the three above write for the session to send.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from federator.agent.backend import Backend, ClaimsNamespace, CountsStops
from federator.agent.certificates import CertificateCheck
from federator.agent.config import AgentConfig
from federator.agent.ended import Ended
from federator.agent.endpoint import Endpoint
from federator.agent.fencing import Contact, Terms
from federator.agent.final_updates import ENDED_KEPT_SECONDS, FinalPhases
from federator.agent.member_health import MemberHealth, Probe
from federator.agent.metrics import AgentMetrics
from federator.agent.orders import ORDERS_AT_ONCE, Orders
from federator.agent.outbox import OUTBOX_LIMIT, Outbox
from federator.agent.reconnect import REFUSED_BACKOFF, REFUSED_HANDSHAKES, Reconnect
from federator.agent.session import CHANNEL_OPTIONS, KEEPALIVE, WELCOME_TIMEOUT, Session, StreamEnded
from federator.agent.updates import PlacementUpdates
from federator.api.v1 import agent_pb2
from federator.readyfile import write_ready_file
from federator.security.metrics_token import MetricsToken

log = logging.getLogger("federator.agent")


class Agent:
    """One member cluster's agent: its backend, and the parts that speak for it to the federator (see module)."""

    def __init__(self, config: AgentConfig, backend: Backend) -> None:
        self.config = config
        self.backend = backend
        # This process, in every Hello (agent.proto, Hello.instance): the federator tells a reconnect of this agent
        # (the same instance takes over at once) from a second agent with the same cluster name (refused).
        self.instance = str(uuid.uuid4())
        self.contact = Contact()  # this stream's last message, on a clock that counts through pauses
        self.metrics = AgentMetrics(cluster=config.cluster, region=config.region,
                                    maintenance=bool(config.maintenance))
        if isinstance(backend, CountsStops):
            backend.count_stops(self.metrics.placement_stopped)
        if isinstance(backend, ClaimsNamespace):  # another federation's agent there: said on /metrics and /readyz
            backend.tell_claim(self.metrics.namespace_claim)
        self.member = MemberHealth(cluster=config.cluster)  # does the member's API answer (agent/member_health.py)
        self.endpoint: Endpoint | None = None
        self.reconnect_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # a test's fake clock
        self.certificates = CertificateCheck(
            config.tls, cluster=config.cluster, provider=config.labels.get("federator.io/provider", ""),
            on_dates=self.metrics.certificate_expires) if config.tls is not None else None
        outbox = self.outbox = Outbox()  # what the parts queue for the stream (agent/outbox.py)
        self._finals = FinalPhases(self.contact)  # the ends the agent says, and keeps for the re-sync
        self._orders = Orders(config, backend, contact=self.contact, metrics=self.metrics, member=self.member,
                              outbox=outbox, finals=self._finals)
        self._updates = PlacementUpdates(outbox, self._finals, fencing=self._orders.fencing,
                                         digests=self._orders.digests, models=self._orders.models,
                                         seals=self._orders.seals)
        self._orders.said_again = self._updates.again
        self._session = Session(config, backend, contact=self.contact, metrics=self.metrics, member=self.member,
                                certificates=self.certificates, instance=self.instance, outbox=outbox,
                                orders=self._orders, updates=self._updates, finals=self._finals)
        self.connected = self._session.connected  # set while a stream is welcomed
        # The handles tests (and bench/) reach for, each the part's own.
        self._on_update = self._updates.on_update  # the backend's callback
        self._launch = self._orders.launch
        self._report = self._session.report
        self._federator_error = self._session.federator_error
        self._queue_report = outbox.put_report

    @property
    def sessions(self) -> int:
        """Streams welcomed so far."""
        return self._session.sessions

    @property
    def terms(self) -> Terms | None:
        """The latest Welcome's terms."""
        return self._session.terms

    @property
    def _outbox(self) -> asyncio.Queue[agent_pb2.AgentMessage | None]:
        """The current stream's queue (None put in it ends the stream: a test's break)."""
        return self.outbox.queue

    @property
    def _fences(self) -> int:
        return self._orders.fences

    @property
    def _ended(self) -> dict[str, Ended]:
        """The final phases kept (agent/final_updates.py): tests read when one was reached."""
        return self._finals.ended

    @property
    def _live_since(self) -> float | None:
        return self._finals.live_since

    @_live_since.setter
    def _live_since(self, at: float | None) -> None:  # a test's stream up since long ago
        self._finals.live_since = at

    async def run(self) -> None:
        if self.config.maintenance:
            log.warning("cluster %s in maintenance (--maintenance): every report asks the federator for no new "
                        "work here (%s); what runs here stays. Restart without --maintenance to take work again",
                        self.config.cluster, self.config.maintenance)
        # The endpoint first: liveness holds while the backend starts and the federator is away.
        if self.config.metrics_listen:
            self.endpoint = Endpoint(self.metrics, self.config.metrics_listen,
                                     token=MetricsToken.load(self.config.metrics_token_file))
            log.info("agent metrics on %s/metrics (probes /healthz, /readyz)", self.endpoint.url)
            self._write_ready_file(self.endpoint)
        if self.certificates is not None:
            self.certificates.at_start()  # an expired file is said now, not as "Socket closed" at every retry
        loop = asyncio.get_running_loop()
        ticker = loop.create_task(self._session.watch())
        probing: asyncio.Task[None] | None = None
        try:
            await self.backend.start(self._on_update)  # waits while another federation holds the backend's namespace
            self._session.last_contact = self.contact.clock()  # a slow start is not time without the federator
            probe: Probe | None = getattr(self.backend, "probe_member", None)  # the simulated backend has none
            if probe is not None:
                probing = loop.create_task(self._probe_loop(probe))
            streams = Reconnect(self._session, sleep=lambda delay: self.reconnect_sleep(delay)).run()
            if isinstance(self.backend, ClaimsNamespace):
                await _unless_fails(streams, self.backend.keep_claim())  # ended when the claim is taken over
            else:
                await streams
        finally:
            ticker.cancel()
            if probing is not None:
                probing.cancel()
            self.metrics.stopped()
            if self.endpoint:
                self.endpoint.stop()

    def _write_ready_file(self, endpoint: Endpoint) -> None:
        if self.config.ready_file is None:
            return
        write_ready_file(self.config.ready_file, {"metrics": f"{endpoint.url}/metrics",
                                                  "healthz": f"{endpoint.url}/healthz",
                                                  "readyz": f"{endpoint.url}/readyz", "pid": os.getpid()})

    async def _probe_loop(self, probe: Probe) -> None:
        """Ask the member's API whether it answers, every report interval; report at once when that turns."""
        while True:
            await asyncio.sleep(self.config.report_interval)
            try:
                problem = await probe()
            except Exception as exc:  # a probe that breaks says the member is not answering, it never ends the agent
                problem = f"probing the API server failed: {exc}"
            turned = self.member.failed(problem) if problem else self.member.succeeded()
            if turned:
                self.metrics.member_reachable(self.member.reachable)
                self._queue_report()


async def _unless_fails(main: Coroutine[Any, Any, None], side: Coroutine[Any, Any, None]) -> None:
    """Run `main` with `side` beside it: `side` raising ends `main` (waited for) and is raised; `side` returning
    (nothing to keep) does not."""
    loop = asyncio.get_running_loop()
    main_task, side_task = loop.create_task(main), loop.create_task(side)
    try:
        await asyncio.wait({main_task, side_task}, return_when=asyncio.FIRST_COMPLETED)
        if not main_task.done() and side_task.exception() is not None:
            raise side_task.exception()  # type: ignore[misc]
        await main_task
    finally:
        side_task.cancel()
        if not main_task.done():
            main_task.cancel()
            await asyncio.gather(main_task, return_exceptions=True)


__all__ = ["CHANNEL_OPTIONS", "ENDED_KEPT_SECONDS", "KEEPALIVE", "ORDERS_AT_ONCE", "OUTBOX_LIMIT", "REFUSED_BACKOFF",
           "REFUSED_HANDSHAKES", "WELCOME_TIMEOUT", "Agent", "AgentConfig", "StreamEnded"]
