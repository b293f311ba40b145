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
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from federator import __version__
from federator.agent.backend import Backend, CountsStops, Invalid, Resizer, SaysNodes
from federator.agent.backoff import Backoff
from federator.agent.certificates import CertificateCheck
from federator.agent.duplicate import DuplicateLog
from federator.agent.ended import Ended
from federator.agent.endpoint import Endpoint
from federator.agent.federator_errors import ErrorLog
from federator.agent.fencing import PAUSE_SECONDS, ConfigConflict, Contact, Terms
from federator.agent.final_updates import ENDED_KEPT_SECONDS, FinalPhases
from federator.agent.maintenance import maintenance_refusal
from federator.agent.member_health import MemberHealth, Probe
from federator.agent.metrics import AgentMetrics
from federator.agent.pacing import UpdatePace, dropped_update
from federator.agent.refusal import HandshakeFailure, Lasting, handshake_failure, handshake_hint, lasting
from federator.agent.rejections import LOUD, OVER_BOUND, Rejections, reason_label
from federator.api import convert
from federator.api.v1 import agent_pb2, agent_pb2_grpc
from federator.keepalive import AGENT_KEEPALIVE
from federator.model import AgentFeature, JobPhase
from federator.readyfile import write_ready_file
from federator.security.metrics_token import MetricsToken
from federator.security.tls import FRESH_CONNECTION, TlsError, TlsFiles, dial_hint

log = logging.getLogger("federator.agent")
OUTBOX_LIMIT = 10_000
"""Phase updates queued for the federator at most; past that the stream is reset and re-synced."""
ORDERS_AT_ONCE = 16  # launches and cancels carried out at once (each placement's in order: Agent._in_order)
_Order = agent_pb2.Launch | agent_pb2.Cancel | agent_pb2.Resize
KEEPALIVE = AGENT_KEEPALIVE
"""Transport-level liveness (federator/keepalive.py, with the server's policy that accepts it); the
application-level one (no message for a lease) usually notices first."""
CHANNEL_OPTIONS = KEEPALIVE + FRESH_CONNECTION
REFUSED_BACKOFF = {"initial": 5.0, "factor": 2.0, "maximum": 300.0, "fast_window": 0.0}
"""The back-off after the federator refused this agent (PERMISSION_DENIED: revoked, untrusted, not its identity;
UNAUTHENTICATED; INVALID_ARGUMENT on its Hello), a dial set up wrong (agent/refusal.py), or a TLS handshake
failed by its own files outside their dates or by a CA the federator does not trust (`Agent._lasting_handshake`):
that does not change by retrying, so the agent retries slowly, up to every 5 minutes, to take a lifted refusal
or a renewed certificate without a restart."""
REFUSED_HANDSHAKES = 60
"""Sockets closed in the TLS handshake in a row, this agent's files in date, after which the federator is taken to
refuse its certificate (a CA it does not trust) and the agent backs off as refused: about a minute at the usual
back-off's pace. Not at once: a federator stopping mid-handshake closes sockets too, and a TCP load balancer in
front of a federator that is down may accept and close every connection; neither should cost a 5-minute wait."""
WELCOME_TIMEOUT = 10.0
"""A stream that has not been welcomed this long after it was opened is given up (a silent link at connect)."""
TICK = 0.25
CERTIFICATE_CHECK_TICKS = 2400
"""Every 10 minutes (in ticks) the TLS files' dates are read again, so the expiry metric follows a renewal made
while the stream is up (they are read after every failed connection too)."""


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
    metrics_token_file: Path | None = None  # set: /metrics asks for this bearer token (security/metrics_token.py)
    ready_file: Path | None = None  # written with the endpoint's bound address once it serves
    # Non-empty: the provider's reason for keeping new federated work off this cluster, in every report
    # (agent.proto CapacityReport.maintenance, server/maintenance.py); what runs here stays.
    maintenance: str = ""


class Agent:
    def __init__(self, config: AgentConfig, backend: Backend) -> None:
        self.config = config
        self.backend = backend
        self._outbox: asyncio.Queue[agent_pb2.AgentMessage | None] = asyncio.Queue(maxsize=OUTBOX_LIMIT)
        self._report_queued = False
        self._messages: dict[str, str] = {}  # each placement's latest message, repeated by the re-sync
        self._counts: dict[str, tuple[int, int]] = {}  # each serving placement's (running, ready), re-sent too
        self._nodes: dict[str, tuple[tuple[str, int], ...]] = {}  # each placement's (node, replicas), re-sent too
        self._fencing: dict[str, str] = {}  # placements this agent is stopping on its own, with why
        # Each placement's latest launch or cancel in flight: one placement's orders run in order, different
        # placements' do not wait for each other, and the stream is read meanwhile (`_in_order`).
        self._orders: dict[str, asyncio.Task[None]] = {}
        self._order_slots = asyncio.Semaphore(ORDERS_AT_ONCE)
        self._fences = 0  # fences so far: a launch that began before one and lands after it is stopped
        self._pace = UpdatePace()  # the federator's JobUpdate budget, kept across streams (agent/pacing.py)
        self.connected = asyncio.Event()
        self.sessions = 0
        # This process, in every Hello (agent.proto, Hello.instance): the federator tells a reconnect of this agent
        # (the same instance takes over at once) from a second agent with the same cluster name (refused).
        self.instance = str(uuid.uuid4())
        self.contact = Contact()  # this stream's last message, on a clock that counts through pauses
        self._finals = FinalPhases(self.contact)  # the ends the agent says, and keeps for the re-sync
        self._last_contact = self.contact.clock()  # the last message of any stream (for --fence-after)
        self.terms: Terms | None = None  # the latest Welcome's
        self._fence_limit = config.fence_after if config.fence_after > 0 else float("inf")
        self._fatal: ConfigConflict | None = None
        self._ending: asyncio.Future[str] | None = None  # set to end the current stream from this side
        self.metrics = AgentMetrics(cluster=config.cluster, region=config.region,
                                    maintenance=bool(config.maintenance))
        self._errors = ErrorLog(log)  # the federator's Errors, each logged once while it lasts
        self._rejections = Rejections()  # those saying capacity is not seen or offered: ERROR once (rejections.py)
        if isinstance(backend, CountsStops):
            backend.count_stops(self.metrics.placement_stopped)
        self.member = MemberHealth(cluster=config.cluster)  # does the member's API answer (agent/member_health.py)
        self.endpoint: Endpoint | None = None
        self.reconnect_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # a test's fake clock
        self._closed_in_handshake = 0  # sockets closed in the TLS handshake in a row, files in date
        self.certificates = CertificateCheck(
            config.tls, cluster=config.cluster, provider=config.labels.get("federator.io/provider", ""),
            on_dates=self.metrics.certificate_expires) if config.tls is not None else None

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
        ticker = loop.create_task(self._tick_loop())
        probing: asyncio.Task[None] | None = None
        try:
            await self.backend.start(self._on_update)
            self._last_contact = self.contact.clock()
            probe: Probe | None = getattr(self.backend, "probe_member", None)  # the simulated backend has none
            if probe is not None:
                probing = loop.create_task(self._probe_loop(probe))
            await self._connect_forever()
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

    async def _tick_loop(self) -> None:
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
                away = self.contact.clock() - self._last_contact
                log.warning("resumed after a pause of %.1fs (process stopped or machine suspended); %.1fs since "
                            "the last message from the federator", jump, away)
                if away > self._fence_limit:
                    await self._fence_all(f"{away:.1f}s without the federator (paused), over the fence limit "
                                          f"{self._fence_limit:g}s")
                    self._end_session("resumed after a pause past the fence limit")
                    continue
            if self._ending is not None:
                self._check_liveness()
            away = self.contact.clock() - self._last_contact
            if self.config.fence_after > 0 and away >= self.config.fence_after:
                await self._fence_all(f"{away:.1f}s without the federator")

    def _check_liveness(self) -> None:
        """The application-level liveness of the stream: the federator sends something every heartbeat
        interval, so a lease without a message means a dead or silent link, whatever TCP says."""
        age = self.contact.age()
        if not self.connected.is_set():
            if age > WELCOME_TIMEOUT:
                self._end_session(f"no Welcome {age:.1f}s after connecting")
        elif self.terms is not None and self.terms.lease_seconds > 0 and age > self.terms.lease_seconds:
            log.warning("no message from the federator for %.1fs (lease %gs): the link is dead or silent; "
                        "reconnecting", age, self.terms.lease_seconds)
            self._end_session(f"no message from the federator for {age:.1f}s")

    async def _fence_all(self, why: str) -> None:
        """Stop every placement this cluster runs (self-fencing), before anything else is done."""
        self._fences += 1  # a launch in flight now is stopped as it lands (`_launch`)
        running = [pid for pid, phase in self.backend.placements().items() if not phase.is_terminal]
        if running:
            self.metrics.self_fences.inc()
        for pid in running:
            log.warning("fenced: stopping placement %s: %s", pid, why)
            self.metrics.cancelled("fence")
            self._fencing[pid] = f"fenced by the agent of {self.config.cluster}: {why}"
            try:
                await self.backend.cancel(pid)
            finally:
                self._fencing.pop(pid, None)

    async def _connect_forever(self) -> None:
        backoff = Backoff(maximum=self.config.max_backoff)
        refusals = Backoff(**REFUSED_BACKOFF)  # type: ignore[arg-type]
        refused = ""  # the lasting failure (a refusal, a misdial) as last logged at WARNING: its key
        duplicate = DuplicateLog(log, self.contact.clock)  # refused as a second agent for the cluster (ALREADY_EXISTS)
        while True:
            welcomed = self.sessions
            stuck: Lasting | None = None
            twin = False
            try:
                await self._session()
                why = "the federator closed the stream"
            except (grpc.aio.AioRpcError, StreamEnded, OSError, TlsError) as exc:
                why = _why(exc)  # TlsError: files swapped under the agent (a renewal half done): retried
                twin = isinstance(exc, grpc.aio.AioRpcError) and exc.code() is grpc.StatusCode.ALREADY_EXISTS
                if isinstance(exc, grpc.aio.AioRpcError):  # refused, or dialed wrong: said once, retried slowly
                    stuck = lasting(exc.code(), exc.details() or "", target=self.config.target,
                                    tls=self.config.tls is not None)
                    if self.sessions == welcomed and exc.code() is grpc.StatusCode.UNAVAILABLE:
                        failure = self._handshake_failed(exc.details() or "")
                        stuck = stuck or self._lasting_handshake(failure, exc.details() or "")
            if self._fatal is not None:
                raise self._fatal
            if self.sessions > welcomed:
                backoff.reset()  # that session worked: the federator is back, come back fast next time too
                refusals.reset()  # and it admitted this agent: a refusal after this is news
                refused = ""
                duplicate.reset()
                self._closed_in_handshake = 0
            if stuck is not None:
                await self._refused(why, stuck, refusals, first=stuck.key != refused)
                refused = stuck.key
                continue
            delay = backoff.next()
            if twin:  # another agent holds the cluster: the usual backoff, until it has been gone for a lease
                # An answer, not silence: the placements on this member may be the other agent's; no --fence-after.
                self._last_contact = self.contact.clock()
                duplicate.refused(target=self.config.target, cluster=self.config.cluster, instance=self.instance,
                                  why=why, delay=delay)
                await self.reconnect_sleep(delay)
                continue
            hint = dial_hint(why, self.config.target, tls=self.config.tls is not None) or handshake_hint(
                why, tls=self.config.tls is not None, provider=self.config.labels.get("federator.io/provider", ""),
                attempts=backoff.attempt if self.sessions == welcomed else 0)
            if self.sessions == welcomed and self.certificates is not None and self.certificates.check():
                hint = "the agent's TLS files are outside their dates (the ERROR above says which and what to do)"
            log.warning("stream to %s lost (%s); reconnecting in %.2fs (attempt %d)%s", self.config.target, why,
                        delay, backoff.attempt, f"; hint: {hint}" if hint else "")
            await self.reconnect_sleep(delay)

    def _handshake_failed(self, detail: str) -> HandshakeFailure | None:
        """Count a connect that failed in the TLS handshake, by why (agent/refusal.py `HandshakeFailure`): the
        federator cannot, so this is where a provider's expired or untrusted certificate shows in a metric."""
        failure = handshake_failure(detail, tls=self.config.tls is not None,
                                    own_files_bad=lambda: self.certificates is not None and bool(
                                        self.certificates.check()))
        if failure is not None:
            self.metrics.handshake_failed(failure)
        return failure

    def _lasting_handshake(self, failure: HandshakeFailure | None, detail: str) -> Lasting | None:
        """A failed TLS handshake that retrying soon will not fix, so the agent backs off as refused (up to every
        5 minutes) and says it once (outside QA F5: an agent whose certificate had expired retried about once a
        second for ever, a WARNING each time, a handshake storm on the federator from a hundred such agents):

        - any handshake failure while this agent's own --cert or --ca is outside its dates: only renewed files fix
          it, and they are read again at every attempt (the session's credentials, and `certificates.check`);
        - the federator closing the handshake on files in date REFUSED_HANDSHAKES times in a row: its trust does not
          take this certificate (a provider CA missing from trust.yaml); a restart does not look like that."""
        if failure is None or self.certificates is None:
            self._closed_in_handshake = 0
            return None
        problem = self.certificates.check()
        if problem:
            return Lasting(f"files: {problem}", refused=False,
                           hint="this agent's TLS files are outside their dates (the ERROR above says which and what "
                                "to do); renewed files are read at every attempt, no restart needed")
        if failure is not HandshakeFailure.CERTIFICATE_REFUSED:
            self._closed_in_handshake = 0
            return None
        self._closed_in_handshake += 1
        if self._closed_in_handshake < REFUSED_HANDSHAKES:
            return None
        provider = self.config.labels.get("federator.io/provider", "")
        return Lasting(HandshakeFailure.CERTIFICATE_REFUSED.value, refused=False,
                       hint=handshake_hint(detail, tls=True, provider=provider, attempts=self._closed_in_handshake))

    async def _refused(self, why: str, stuck: Lasting, refusals: Backoff, *, first: bool) -> None:
        """The federator refused this agent, or the dial is set up wrong (agent/refusal.py): say why at WARNING
        when the reason changes (DEBUG at each retry after), and wait longer and longer (REFUSED_BACKOFF). A
        revoked agent, or one whose Hello was refused, used to retry about once a second for ever, with a WARNING
        on both sides each time."""
        delay = refusals.next()
        if first and stuck.refused:
            log.warning("the federator at %s refuses this agent (%s); retrying in %.0fs and less and less often, up "
                        "to every %gs; this is said again only if the reason changes", self.config.target, why, delay,
                        refusals.maximum)
        elif first:
            log.warning("cannot talk to the federator at %s (%s); hint: %s; retrying in %.0fs and less and less "
                        "often, up to every %gs; this is said again only if it changes", self.config.target, why,
                        stuck.hint, delay, refusals.maximum)
        else:
            log.debug("still refused by the federator (%s); retrying in %.0fs (attempt %d)", why, delay,
                      refusals.attempt)
        await self.reconnect_sleep(delay)

    def _queue(self, msg: agent_pb2.AgentMessage) -> None:
        try:
            self._outbox.put_nowait(msg)
        except asyncio.QueueFull:  # the federator is not reading: start over, the re-sync carries every phase
            log.warning("%d messages queued for the federator: resetting the stream", OUTBOX_LIMIT)
            while not self._outbox.empty():
                self._outbox.get_nowait()
            self._outbox.put_nowait(None)

    def _on_update(self, placement_id: str, phase: JobPhase, message: str, *, admission_overdue: bool = False,
                   running: int | None = None, ready: int | None = None,
                   nodes: tuple[tuple[str, int], ...] = ()) -> None:
        if phase is JobPhase.CANCELLED and placement_id in self._fencing:
            message = self._fencing[placement_id]  # why it stopped, for the job's reason, not the backend's "cancelled"
        self._messages[placement_id] = message  # a re-sync repeats it: the reason outlives a broken stream
        if running is not None and not phase.is_terminal:
            self._counts[placement_id] = (running, running if ready is None else ready)  # so does the count
        elif phase.is_terminal:
            self._counts.pop(placement_id, None)
        if nodes and not phase.is_terminal:
            self._nodes[placement_id] = nodes  # JobUpdate.nodes: re-sent with every update, the re-sync's too
        elif phase.is_terminal:
            self._nodes.pop(placement_id, None)
        if not phase.is_terminal:
            self._queue(agent_pb2.AgentMessage(job_update=self._counted(agent_pb2.JobUpdate(
                placement_id=placement_id, phase=convert.phase_to_pb(phase), message=message,
                admission_overdue=admission_overdue and phase is JobPhase.PLACED))))
            return
        self._finals.reached(placement_id, phase, message)
        self._queue(agent_pb2.AgentMessage(job_update=self._counted(
            self._finals.update(placement_id, phase, message, resync=False))))
        self._queue_report()  # its resources are free now: waiting jobs need not wait for the next tick

    def _counted(self, update: agent_pb2.JobUpdate) -> agent_pb2.JobUpdate:
        """`update` with its placement's last replica counts (none for one its backend does not count)."""
        counts = self._counts.get(update.placement_id)
        if counts is not None:
            update.replicas_running, update.replicas_ready = counts
        for node, replicas in self._nodes.get(update.placement_id, ()):
            update.nodes.append(agent_pb2.NodeReplicas(node=node, replicas=replicas))
        return update

    def _hello(self) -> agent_pb2.AgentMessage:
        return agent_pb2.AgentMessage(hello=agent_pb2.Hello(
            cluster=self.config.cluster, region=self.config.region, labels=self.config.labels,
            agent_version=__version__, gang_admission=str(getattr(self.backend, "gang_admission", "")),
            features=[AgentFeature.LOST.value, *([AgentFeature.RESIZE.value] if isinstance(self.backend, Resizer)
                                                 else [])], instance=self.instance))

    def _federator_error(self, error: agent_pb2.Error) -> None:
        """Count an Error by its reason and log it: one saying part of the member's capacity is not seen or not
        offered (`implausible_report`, `over_bound`) at ERROR once per stream (rejections.py); any other once
        while it lasts, an applied report's as applied (federator_errors.py)."""
        self.metrics.rejected(error.reason)
        if dropped_update(error):  # which of the run were dropped is not said: the re-sync sends them all
            log.warning("the federator dropped a JobUpdate over its budget (%s): starting a new stream, whose "
                        "re-sync carries every placement's phase", error.message[:300])
            self._end_session("a JobUpdate dropped over the federator's budget")
            return
        if error.placement_id or reason_label(error.reason) not in LOUD:
            self._errors.error(error.reason, error.message, error.placement_id)
            return
        level = self._rejections.level(error.reason)  # about the reports: a placement's went to self._errors
        what = "took a report clamped" if error.reason == OVER_BOUND else "refused a message"
        log.log(level, "the federator %s (%s): %s%s", what, error.reason, error.message,
                "" if level <= logging.DEBUG else "; said once: the same again at DEBUG")

    def _report(self) -> agent_pb2.AgentMessage:
        cap = self.backend.capacity()
        unlabelled = getattr(self.backend, "unlabelled_accelerators", None)  # the Kubernetes backend's (F3)
        if unlabelled is not None:
            self.metrics.unlabelled(unlabelled)
        if not self.member.reachable:  # its caches are stale: say why, not what they hold (agent.proto)
            return agent_pb2.AgentMessage(capacity=agent_pb2.CapacityReport(
                sequence=cap.sequence, member_unreachable=self.member.why, maintenance=self.config.maintenance))
        report = convert.capacity_to_pb(cap)
        report.maintenance = self.config.maintenance  # in every report: the federator does not store it
        return agent_pb2.AgentMessage(capacity=report)

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

    def _queue_report(self) -> None:
        """Reports coalesce: at most one waits in the outbox, and it is built when it is sent."""
        if not self._report_queued:
            self._report_queued = True
            self._queue(agent_pb2.AgentMessage())  # an empty body stands for "the current report"

    async def _outgoing(self) -> AsyncIterator[agent_pb2.AgentMessage]:
        yield self._sent(self._hello())
        # Nothing more until the federator has taken the Hello: a federator that refuses this agent ends the call
        # after reading it, and a write racing that end made gRPC report the call as "INTERNAL: Internal error
        # from Core" instead of the federator's PERMISSION_DENIED and its reason (so the agent neither said why
        # nor backed off as a refused agent does).
        await self.connected.wait()
        # Re-sync: every placement this cluster holds, then the report that closes the re-sync.
        held = self.backend.placements()
        self._messages = {pid: m for pid, m in self._messages.items() if pid in held}
        self._counts = {pid: c for pid, c in self._counts.items() if pid in held}
        self._nodes = {pid: n for pid, n in self._nodes.items() if pid in held}
        if isinstance(self.backend, SaysNodes):  # a restarted agent's copy is empty: the backend's is not
            self._nodes.update({pid: n for pid, phase in held.items()
                                if not phase.is_terminal and (n := self.backend.nodes_of(pid))})
        for pid, phase in held.items():
            message = self._messages.get(pid, "")
            update = self._finals.update(pid, phase, message, resync=True) if phase.is_terminal else \
                agent_pb2.JobUpdate(placement_id=pid, phase=convert.phase_to_pb(phase), message=message, resync=True)
            yield self._sent(agent_pb2.AgentMessage(job_update=self._counted(update)))
        for pid, ended in self._finals.recently_ended(held).items():
            yield self._sent(agent_pb2.AgentMessage(job_update=self._finals.update(
                pid, ended.phase, ended.message, resync=True)))
        yield self._sent(self._report())
        while True:
            msg = await self._outbox.get()
            if msg is None:
                self._end_session("the outbox overflowed")
                return
            if msg.WhichOneof("body") is None:
                self._report_queued = False
                msg = self._report()
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

    async def _session(self) -> None:
        tls = self.config.tls
        channel = (grpc.aio.secure_channel(self.config.target, tls.channel_credentials(), options=CHANNEL_OPTIONS)
                   if tls else grpc.aio.insecure_channel(self.config.target, options=CHANNEL_OPTIONS))
        async with channel:
            stub = agent_pb2_grpc.AgentServiceStub(channel)
            # Messages queued for a stream that died are stale: the re-sync replaces them.
            self._outbox = asyncio.Queue(maxsize=OUTBOX_LIMIT)
            self._report_queued = False
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
                sent_at = msg.welcome.federator_time if kind == "welcome" else \
                    msg.heartbeat.federator_time if kind == "heartbeat" else 0.0
                gap = self.contact.heard(sent_at, welcome=kind == "welcome")
                self._last_contact = self.contact.clock()
                if gap > self._fence_limit:  # it may have waited in a buffer while this process was frozen
                    await self._fence_all(f"a message arrived after {gap:.1f}s of silence (paused or cut off), "
                                          f"over the fence limit {self._fence_limit:g}s")
                    self._end_session("a gap past the fence limit: re-syncing")
                    return
                if kind == "welcome":
                    if not self._welcomed(msg.welcome):
                        return
                    interval = msg.welcome.report_interval_seconds or self.config.report_interval
                    if reporter is None:
                        reporter = asyncio.get_running_loop().create_task(self._report_loop(interval))
                elif kind == "launch":  # dated as it arrives: its wait in this agent's queue is not its age
                    self._in_order(msg.launch.placement.placement_id, functools.partial(
                        self._launch, age=self.contact.order_age(msg.launch.issued_at), fences=self._fences),
                        msg.launch)
                elif kind == "error":
                    self._federator_error(msg.error)
                elif kind == "cancel":
                    self._in_order(msg.cancel.placement_id, self._cancel, msg.cancel)
                elif kind == "resize":
                    self._in_order(msg.resize.placement_id, self._resize, msg.resize)
        finally:
            self._finals.stream_down()
            self.connected.clear()
            self.metrics.session_closed()
            if reporter:
                reporter.cancel()

    def _in_order(self, placement_id: str, order: Callable[[_Order], Awaitable[None]], body: _Order) -> None:
        """Carry out an order of the federator after the ones of the same placement still in flight, without
        holding the stream. A launch used to be awaited where the stream is read: while a member's API server
        hung on it, no other order was read (a cancel waited behind a launch of another job), and the
        messages that queued up meanwhile read as a silence long enough to fence every placement here."""
        before = self._orders.get(placement_id)

        async def run() -> None:
            if before is not None:
                await asyncio.wait([before])  # its outcome was handled (and logged) where it ran
            async with self._order_slots:
                await order(body)

        task = asyncio.get_running_loop().create_task(run())
        self._orders[placement_id] = task

        def done(t: asyncio.Task[None]) -> None:
            if self._orders.get(placement_id) is t:
                del self._orders[placement_id]
            if not t.cancelled() and t.exception() is not None:
                log.error("order for placement %s failed", placement_id, exc_info=t.exception())

        task.add_done_callback(done)

    async def _cancel(self, cancel: agent_pb2.Cancel) -> None:
        if cancel.placement_id in self.backend.placements():
            log.info("cancel placement %s: %s", cancel.placement_id, cancel.reason)
        self.metrics.cancelled("federator")
        await self.backend.cancel(cancel.placement_id)

    async def _resize(self, resize: agent_pb2.Resize) -> None:
        """Shrink a placement in place; answer only a Resize it cannot carry out (Ack ok=false, resize=true: the
        federator replaces the part). Sent only because the Hello said "resize", so the backend is a Resizer."""
        if not isinstance(self.backend, Resizer):
            return
        try:
            why = await self.backend.resize(resize.placement_id, resize.generation, resize.replicas)
        except Exception as exc:  # noqa: BLE001 - an API error: the federator replaces the part
            log.exception("resize of %s failed", resize.placement_id)
            why = f"resize failed: {exc}"
        if why is None:
            log.info("placement %s: %d replicas from now on (%s)", resize.placement_id, resize.replicas,
                     resize.reason)
            return
        log.warning("placement %s cannot shrink in place: %s", resize.placement_id, why)
        self._queue(agent_pb2.AgentMessage(ack=agent_pb2.Ack(placement_id=resize.placement_id, ok=False, message=why,
                                                              resize=True)))

    def _welcomed(self, welcome: agent_pb2.Welcome) -> bool:
        """Take the federator's terms; False (and the agent stops) if --fence-after breaks its rule."""
        self.terms = Terms(lease_seconds=welcome.lease_seconds, lost_after_seconds=welcome.lost_after_seconds,
                           order_max_age_seconds=welcome.order_max_age_seconds,
                           heartbeat_interval_seconds=welcome.heartbeat_interval_seconds)
        try:
            self._fence_limit = self.terms.fence_limit(self.config.fence_after)
        except ConfigConflict as exc:
            log.error("%s", exc)
            self._fatal = exc
            self._end_session("a configuration the federator's rule refuses")
            return False
        self._pace.agreed(welcome)
        self._finals.stream_up(welcome.lost_after_seconds)  # final phases age from here on (FinalPhases.prune)
        self.sessions += 1
        self.connected.set()
        self.metrics.session_opened()
        self._rejections.new_stream()
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
            self._queue_report()

    async def _launch(self, launch: agent_pb2.Launch, *, age: float | None = None, fences: int | None = None) -> None:
        """Carry out a Launch; `age`: its age as it arrived, `fences`: the fences done by then.

        Its age is taken on arrival (outside QA, chaos F2): a burst of launches waiting their turn behind a
        member that takes seconds per launch aged in this agent's own queue, and were refused as stale, read as
        the member refusing. What a wait here must not do, start an order the agent should no longer act on, is
        what a fence since its arrival says. And one held here already is not stale: it was launched, and the
        federator sent it again after a reconnect (chaos F1: refused as stale, the running copy was cancelled and
        the job started elsewhere, twice in all)."""
        held = launch.placement.placement_id in self.backend.placements()
        if fences is None:  # not from the stream (a test): dated now
            age, fences = self.contact.order_age(launch.issued_at), self._fences
        if self._fences != fences and not held:
            self._queue(agent_pb2.AgentMessage(ack=agent_pb2.Ack(
                placement_id=launch.placement.placement_id, ok=False,
                message="stale order: this agent fenced itself after it arrived")))
            self.metrics.launched("refused", None)
            return
        if not held and age is not None and launch.max_age_seconds > 0 and age > launch.max_age_seconds:
            log.warning("refusing stale launch order %s: issued %.1fs ago, over its bound of %gs",
                        launch.placement.placement_id, age, launch.max_age_seconds)
            self._queue(agent_pb2.AgentMessage(ack=agent_pb2.Ack(
                placement_id=launch.placement.placement_id, ok=False,
                message=f"stale order: issued {age:.1f}s ago, over its bound of {launch.max_age_seconds:g}s")))
            self.metrics.launched("refused", None)
            return
        try:
            placement = convert.placement_from_pb(launch.placement)
            spec = convert.spec_from_pb(launch.spec)
        except convert.WireError as exc:
            log.warning("refusing a malformed launch order for %r: %s", launch.placement.placement_id, exc)
            self._queue(agent_pb2.AgentMessage(ack=agent_pb2.Ack(
                placement_id=launch.placement.placement_id, ok=False, message=f"malformed launch: {exc}")))
            self.metrics.launched("refused", None)
            return
        ended = self._finals.ended.get(placement.placement_id)
        if ended is not None and placement.placement_id not in self.backend.placements():
            # It ran here, ended and the cluster forgot it (the simulated one a minute after, a Kubernetes member
            # after ttlSecondsAfterFinished): the same id twice starts nothing new (contract step 6); its end again.
            log.info("placement %s already ended here (%s): nothing new started", placement.placement_id,
                     ended.phase.value)
            self._queue(agent_pb2.AgentMessage(ack=agent_pb2.Ack(
                placement_id=placement.placement_id, ok=True, message=f"already ended here: {ended.message}")))
            self._queue(agent_pb2.AgentMessage(job_update=self._finals.update(
                placement.placement_id, ended.phase, ended.message, resync=False)))
            return
        if self.config.maintenance and placement.placement_id not in self.backend.placements():
            refusal = maintenance_refusal(cluster=self.config.cluster, reason=self.config.maintenance)
            log.warning("refused placement %s (job %s): %s", placement.placement_id, placement.job_id, refusal)
            self._queue(agent_pb2.AgentMessage(ack=agent_pb2.Ack(
                placement_id=placement.placement_id, ok=False, message=refusal)))
            self.metrics.launched("refused", None)
            return
        if not self.member.reachable and placement.placement_id not in self.backend.placements():
            away = self.member.refusal()  # at once: the launch would wait on an API that does not answer
            log.warning("refused placement %s (job %s): %s", placement.placement_id, placement.job_id, away)
            self._queue(agent_pb2.AgentMessage(ack=agent_pb2.Ack(
                placement_id=placement.placement_id, ok=False, message=away)))
            self.metrics.launched("refused", None)
            return
        again = placement.placement_id in self.backend.placements()
        loop = asyncio.get_running_loop()
        started, fences = loop.time(), self._fences
        try:
            why = await self.backend.launch(placement, spec)
            self.metrics.launched("ok" if why is None else "refused", loop.time() - started)
        except Exception as exc:  # a backend failure refuses this placement, it does not kill the agent
            log.exception("launch of %s failed", placement.placement_id)
            why = f"launch failed: {exc}"
            self.metrics.launched("failed", loop.time() - started)
        if why is None and self._fences != fences:  # the agent fenced while the member was launching it
            why = f"fenced by the agent of {self.config.cluster} while it was being launched"
            log.warning("fenced: stopping placement %s, launched after the fence", placement.placement_id)
            self.metrics.cancelled("fence")
            await self.backend.cancel(placement.placement_id)
        if why is None and not again:
            log.info("launched placement %s (job %s, generation %d, %d replicas)", placement.placement_id,
                     placement.job_id, placement.generation, placement.replicas)
        elif why is None:
            log.info("placement %s is already here: nothing new started", placement.placement_id)
        else:  # the federator hears why too, but this cluster's operator reads this log (e.g. a missing namespace)
            log.warning("refused placement %s (job %s): %s", placement.placement_id, placement.job_id, why)
        self._queue(agent_pb2.AgentMessage(ack=agent_pb2.Ack(
            placement_id=placement.placement_id, ok=why is None, message=why or "launched",
            invalid=isinstance(why, Invalid))))
        if why is None:
            self._queue_report()


def _why(exc: BaseException | None) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc) if exc else "?"


__all__ = ["CHANNEL_OPTIONS", "ENDED_KEPT_SECONDS", "KEEPALIVE", "OUTBOX_LIMIT", "REFUSED_BACKOFF",
           "REFUSED_HANDSHAKES", "Agent", "AgentConfig", "StreamEnded"]
