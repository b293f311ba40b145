"""gRPC transports of the federator: AgentService, JobService, ClusterService.

The only server module that touches generated stubs: it translates wire
messages to domain calls on `Federator` and domain errors to gRPC status codes.
It is also the federator's edge against hostile input: every caller is
authenticated (`security.auth`), every message is size-checked and every
agent's report rate is limited (`security.limits`) before the state machine
sees it; refusals are counted by reason and never stop the federator serving
anyone else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, NoReturn

import grpc
from google.protobuf.message import Message

from federator.api import convert
from federator.api.v1 import agent_pb2, agent_pb2_grpc, jobs_pb2, jobs_pb2_grpc, types_pb2
from federator.jobfile import REQUEST_ID_ANNOTATION, FieldProblem, JobFileError, shown
from federator.model import ClusterCapacity, Job, JobId, JobSpec
from federator.model.cluster import AgentFeature, GangAdmission
from federator.model.cordon import Cordon
from federator.security.audit import AuditLog
from federator.security.auth import AuthDenied, Authenticator, Peer
from federator.security.authz import Allowed, Authorizer, Denied, Principal, recorded_owner, stamp_owner, submitter_of
from federator.security.delegation import ON_BEHALF_OF, on_behalf, requested
from federator.security.limits import RejectReason, TokenBucket, check_capacity, check_hello
from federator.security.pki import Identity, IdentityKind
from federator.security.trust import PROVIDER_LABEL, Trust
from federator.server import cluster_list, cordons, duplicates, over_bound, shrink, watch_stream
from federator.server.admission import name_taken
from federator.server.cancel_jobs import cancel_jobs
from federator.server.clusters import over_provider_cap
from federator.server.consistency import INCONSISTENT_REPORT, contradictions
from federator.server.drain_call import drain_call, provider_caller, provider_uncordon
from federator.server.errors import Exhausted, PressedLimit, bad_request, cut, exhausted, problems_of
from federator.server.federator import ClusterRecord, Federator
from federator.server.intake import (
    AlreadyExists,
    ByteBudgetFull,
    QueueFull,
    QueuePendingLimit,
    RequestIdConflict,
    SubmitError,
    UserPendingLimit,
    kindless_problems,
)
from federator.server.invalid_specs import found_invalid
from federator.server.job_keys import Ambiguous, resolve
from federator.server.job_listing import Query, QueryError, query_of, token_problem
from federator.server.job_table import View
from federator.server.leases import forgotten_by_kubectl, why_not_forgettable
from federator.server.namespace_gate import NamespaceGate
from federator.server.orders import ErrorNotice, LaunchOrder, Order, ResizeOrder
from federator.server.orphans import job_of
from federator.server.outbox import AGENT_CLOSED, EndCode, Ending
from federator.server.paging import PageTokenError, page
from federator.server.refusal_log import RefusalLog
from federator.server.replica_counts import counts_of
from federator.server.scaling import ScaleProblem, ScaleRefused
from federator.server.terms import StreamTerms, default_order_max_age
from federator.server.validation import Refusal, agent_text, check_hello_fields, check_plausible, check_report_fields
from federator.store.errors import NameTaken, StoreRefused, StoreUnavailable

log = logging.getLogger("federator.server")
HELLO_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Malformed:
    """A request whose bytes do not decode: handed to the servicer instead of failing inside gRPC."""

    message: str


class DecodeGuard(grpc.aio.ServerInterceptor):
    """Undecodable requests get INVALID_ARGUMENT naming the problem and are counted (reason `malformed`).

    Without it gRPC answers UNKNOWN and nothing is counted. On the agent stream
    a bad frame reaches the servicer as `Malformed`, which drops it and keeps
    the stream.
    """

    def __init__(self, on_malformed: Callable[[], None]) -> None:
        self._on_malformed = on_malformed

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(details)
        if handler is None or handler.request_deserializer is None:
            return handler
        decode = handler.request_deserializer
        method = details.method

        def safe(data: bytes) -> Any:
            try:
                return decode(data)
            except Exception as exc:  # noqa: BLE001 - whatever the decoder raises, the caller sent it
                return Malformed(f"{method}: the request cannot be decoded ({type(exc).__name__}: {exc})")

        async def refuse(request: object, context: grpc.aio.ServicerContext) -> None:
            if isinstance(request, Malformed):
                self._on_malformed()
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)

        if handler.unary_unary:
            inner = handler.unary_unary

            async def unary(request: object, context: grpc.aio.ServicerContext) -> object:
                await refuse(request, context)
                return await inner(request, context)

            return grpc.unary_unary_rpc_method_handler(unary, safe, handler.response_serializer)
        if handler.unary_stream:
            inner_stream = handler.unary_stream

            async def streaming(request: object, context: grpc.aio.ServicerContext) -> AsyncIterator[object]:
                await refuse(request, context)
                async for item in inner_stream(request, context):
                    yield item

            return grpc.unary_stream_rpc_method_handler(streaming, safe, handler.response_serializer)
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(handler.stream_stream, safe, handler.response_serializer)
        return handler


def _order_to_pb(order: Order, terms: StreamTerms) -> agent_pb2.FederatorMessage:
    if isinstance(order, LaunchOrder):
        # Without its owner: a provider runs an organisation's work, and learns its queue (its tenant), never which
        # of the organisation's people submitted it; who did is the federator's to account and authorise.
        launch = agent_pb2.Launch(placement=convert.placement_to_pb(order.placement),
                                  spec=convert.spec_to_pb(recorded_owner(order.spec, "")))
        terms.stamp(launch)  # dated as it leaves: the agent refuses it once it is older than its bound
        return agent_pb2.FederatorMessage(launch=launch)
    if isinstance(order, ResizeOrder):
        return agent_pb2.FederatorMessage(resize=agent_pb2.Resize(
            placement_id=order.placement_id, generation=order.generation, replicas=order.replicas,
            reason=order.reason))
    if isinstance(order, ErrorNotice):
        return agent_pb2.FederatorMessage(error=agent_pb2.Error(reason=order.reason, message=order.message,
                                                                placement_id=order.placement_id))
    return agent_pb2.FederatorMessage(cancel=agent_pb2.Cancel(placement_id=order.placement_id, reason=order.reason))


class _Edge:
    """What every service shares: the federator, the authenticator, and refusal helpers."""

    def __init__(self, federator: Federator, auth: Authenticator | None = None, *,
                 authz: Authorizer | None = None, audit: AuditLog | None = None) -> None:
        self.fed = federator
        self.auth = auth or Authenticator(insecure=True)
        self.authz = authz or Authorizer()
        self.audit = audit or AuditLog(None)

    def rejected(self, reason: RejectReason) -> None:
        self.fed.metrics.messages_rejected.labels(reason.value).inc()

    async def deny(self, context: grpc.aio.ServicerContext, denied: AuthDenied) -> NoReturn:
        self.rejected(denied.reason)
        code = grpc.StatusCode.UNAUTHENTICATED if denied.unauthenticated else grpc.StatusCode.PERMISSION_DENIED
        await context.abort(code, denied.message)
        raise AssertionError("unreachable")  # context.abort raises

    async def user(self, context: grpc.aio.ServicerContext) -> Peer:
        peer = self.auth.user(context.auth_context(), context.invocation_metadata() or ())
        if isinstance(peer, AuthDenied):
            await self.deny(context, peer)
        return peer

    async def principal(self, context: grpc.aio.ServicerContext) -> Principal:
        """The caller as the tenancy policy sees them (user, groups, admin): the user a delegate acts for when the
        call asks for one and tenancy.delegates grants it (security/delegation.py), else the caller itself. A
        refused delegation is PERMISSION_DENIED naming rule `delegate`, and an audit line."""
        metadata = context.invocation_metadata() or ()
        peer = await self.user(context)
        who = on_behalf(self.authz, peer, metadata,
                        revoked=lambda user: self.auth.revocations.revoked(Identity(IdentityKind.USER, user), -1))
        if isinstance(who, Denied):
            asked = requested(metadata)
            self.audit.record("delegate", identity=self.authz.principal(peer),
                              obj={"on_behalf_of": asked[0][0][:253] if asked and asked[0] else ""},
                              result="refused", code="PERMISSION_DENIED", rule=who.rule.value, message=who.message)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, who.message)
            raise AssertionError("unreachable")  # context.abort raises
        return who

    async def cluster_acts_for_no_user(self, context: grpc.aio.ServicerContext, cluster: str) -> None:
        """PERMISSION_DENIED (and a `delegate` audit line) for a cluster certificate's call that asks to act for a
        user: such a caller is served as itself, and was so silently, where docs/security.md promises a request
        to act for a user is refused, never ignored (portal re-test N7)."""
        asked = requested(context.invocation_metadata() or ())
        if asked is None:
            return
        message = (f"{ON_BEHALF_OF}: delegate: a cluster certificate (cluster {cluster[:80]}) acts for no user; "
                   f"call with the user's own certificate, or a delegate's")
        self.audit.record("delegate", identity=Principal(f"cluster {cluster[:80]}", via="certificate"),
                          obj={"on_behalf_of": asked[0][0][:253] if asked[0] else ""}, result="refused",
                          code="PERMISSION_DENIED", rule="delegate", message=message)
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, message)

    async def sized(self, context: grpc.aio.ServicerContext, what: str, msg: Message) -> None:
        problem = self.fed.limits.check_size(what, msg.ByteSize())
        if problem is not None:
            self.rejected(RejectReason.OVERSIZED)
            await context.abort_with_status(exhausted(problem, Exhausted.MESSAGE_TOO_LARGE))


@dataclass(slots=True)
class _Stream:
    """A live agent stream as the trust file judged it: who (the peer, its certificate) claimed what (the
    Hello's labels as sent, before the federator stamped the provider). A reloaded trust judges it again."""

    rec: ClusterRecord
    peer: Peer
    hello_labels: dict[str, str]


class AgentService(_Edge, agent_pb2_grpc.AgentServiceServicer):
    """The agent stream: Hello, Welcome, then orders (and heartbeats when there are none) one way and the agent's
    messages the other, each checked against the agent contract (server/validation.py) before it is applied."""

    def __init__(self, federator: Federator, auth: Authenticator | None = None, *,
                 authz: Authorizer | None = None, audit: AuditLog | None = None,
                 terms: StreamTerms | None = None) -> None:
        super().__init__(federator, auth, authz=authz, audit=audit)
        self.terms = terms or StreamTerms(
            report_interval=federator.report_interval, lease_seconds=federator.lease_seconds,
            lost_after=federator.lost_after_seconds,
            order_max_age=default_order_max_age(federator.lost_after_seconds), clock=federator.clock)
        self._streams: dict[int, _Stream] = {}  # by session: the streams a reloaded trust file judges again
        self.refusals = RefusalLog(log)  # a refused agent retries for ever: a WARNING per identity and reason

    def retrust(self, trust: Trust) -> list[str]:
        """A reloaded trust file: end each live stream it no longer admits (its provider removed, its cluster
        bound elsewhere, its region no longer one of its provider's, ...) with PERMISSION_DENIED saying why, and
        return their clusters. Such a cluster goes as a cluster whose stream dropped goes: Partitioned now, Lost
        after --lost-after (its placements then re-placed, server/federator.py `check_leases`), never sooner,
        since its agent may still run them. Streams the new trust admits as before are not touched."""
        ended: list[str] = []
        for stream in list(self._streams.values()):
            rec, peer = stream.rec, stream.peer
            if peer.identity is None or peer.certificate is None or rec.closing or not rec.connected:
                continue
            issuer, problem = trust.admits(peer.identity, peer.certificate, region=rec.region,
                                           labels=stream.hello_labels)
            if problem:
                if peer.issuer and peer.issuer not in trust.providers:
                    problem = (f"provider {peer.issuer!r}, whose CA signed its certificate, is no longer in the "
                               "trust file")
                message = f"cluster {rec.name}: the reloaded trust file no longer admits it: {problem}"
                self.rejected(RejectReason.UNTRUSTED)
                self.fed.close_stream(rec, Ending(EndCode.PERMISSION_DENIED, message))
                ended.append(rec.name)
            elif issuer != peer.issuer:  # the same CA under another provider name: its provider is that name now
                stream.peer = replace(peer, issuer=issuer)
                if issuer:
                    rec.labels[PROVIDER_LABEL] = issuer
        return ended

    async def Connect(  # noqa: N802 - gRPC method name
        self, request_iterator: AsyncIterator[agent_pb2.AgentMessage], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[agent_pb2.FederatorMessage]:
        opened = self.fed.clock()
        try:
            first = await asyncio.wait_for(anext(request_iterator), HELLO_TIMEOUT_SECONDS)
        except TimeoutError:
            # A Hello that waited unread while this federator's loop was held (a stall, a SIGSTOP) is not the
            # agent's fault: counted as a bad Hello, every stall looked like agents sending garbage (outside SRE).
            if not self.fed.stalls.since(opened):
                self.rejected(RejectReason.BAD_HELLO)
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED,
                                f"hello: no Hello within {HELLO_TIMEOUT_SECONDS:g}s of opening the stream; "
                                "the first message must be a Hello")
            return
        except StopAsyncIteration:
            # The agent gave up on the stream before it said anything (its own deadline while this federator
            # was slow, or it was stopping): nothing malformed was sent, so nothing is counted as rejected.
            log.info("an agent stream from %s ended before its Hello", context.peer())
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                "hello: the stream ended before its first message, which must be a Hello")
            return
        if isinstance(first, Malformed):
            self.rejected(RejectReason.MALFORMED)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"hello: {first.message}")
            return
        await self.sized(context, "hello", first)
        if first.WhichOneof("body") != "hello":
            self.rejected(RejectReason.BAD_HELLO)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"hello: the first message must be a Hello, got {first.WhichOneof('body')}")
            return
        hello = first.hello
        problem = check_hello(hello.cluster, hello.region, hello.labels, limits=self.fed.limits) or \
            check_hello_fields(hello) or duplicates.check_instance(hello.instance)
        if problem is not None:
            self.rejected(RejectReason.BAD_HELLO)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
            return
        peer = self.auth.agent(context.auth_context(), hello.cluster)
        if isinstance(peer, AuthDenied):
            self.refusals.refused(hello.cluster[:80], peer.reason.value,
                                  f"refused an agent stream claiming cluster {hello.cluster[:80]!r}: {peer.message}")
            await self.deny(context, peer)
        # The region is the agent's claim and the scheduler places latency-sensitive jobs by it: a provider the
        # trust file binds to regions may not claim another (its clusters would draw the jobs meant for others').
        region_problem = self.auth.trust.region_problem(peer.issuer, hello.region) if self.auth.trust else ""
        if region_problem:
            self.refusals.refused(hello.cluster, RejectReason.BAD_HELLO.value,
                                  f"refused an agent stream of cluster {hello.cluster!r}: {region_problem}")
            self.rejected(RejectReason.BAD_HELLO)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, region_problem)
            return
        labels = dict(hello.labels)
        label_problem = self.auth.trust.provider_label_problem(peer.issuer, hello.cluster, labels) \
            if self.auth.trust else ""
        if label_problem:  # its usage would be accounted to a provider whose CA did not certify it
            self.refusals.refused(hello.cluster, RejectReason.IDENTITY_MISMATCH.value,
                                  f"refused an agent stream of cluster {hello.cluster!r}: {label_problem}")
            await self.deny(context, AuthDenied(RejectReason.IDENTITY_MISMATCH, label_problem))
        if peer.issuer:  # the trust file binds this cluster to a provider: that is its provider
            labels[PROVIDER_LABEL] = peer.issuer
        over = over_provider_cap(self.fed.clusters, cluster=hello.cluster, provider=labels.get(PROVIDER_LABEL, ""),
                                 cap=self.fed.limits.max_clusters_per_provider)
        if over:
            self.refusals.refused(hello.cluster, RejectReason.LIMIT_EXCEEDED.value,
                                  f"refused an agent stream of cluster {hello.cluster!r}: {over}")
            self.rejected(RejectReason.LIMIT_EXCEEDED)
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, over)
            return
        current = self.fed.clusters.get(hello.cluster)
        twin = duplicates.refusal(current, instance=hello.instance, now=self.fed.clock(),
                                  lease_seconds=self.fed.lease_seconds,
                                  stalled=self.fed.stalls.since(current.last_seen_at) if current else 0.0)
        if twin and current is not None:  # a second agent: the one that holds the cluster keeps it, untouched
            duplicates.refuse(self.fed, current, peer_address=context.peer() or "", message=twin, log=self.refusals)
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, twin)
            return
        rec = self.fed.connect(cluster=hello.cluster, region=hello.region, labels=labels)
        rec.instance, rec.peer_address = hello.instance, context.peer() or ""
        rec.certificate_not_after = peer.certificate.not_valid_after_utc.timestamp() if peer.certificate else 0.0
        rec.gang_admission = GangAdmission.parse(hello.gang_admission)
        rec.features = AgentFeature.parse(hello.features)
        stream = self._streams[rec.session] = _Stream(rec, peer, dict(hello.labels))
        reader = asyncio.get_running_loop().create_task(self._read(rec, request_iterator, stream))
        try:
            yield self.terms.welcome(reports_per_second=self.fed.limits.reports_per_second,
                                     report_burst=self.fed.limits.report_burst,
                                     report_bytes_per_second=self.fed.limits.report_bytes_per_second,
                                     job_updates_per_second=self.fed.limits.job_updates_per_second,
                                     job_update_burst=self.fed.limits.job_update_burst)
            while True:
                try:
                    order = await asyncio.wait_for(rec.outbox.get(), self.terms.heartbeat_interval)
                except TimeoutError:  # nothing to send: a heartbeat, the agent's proof the stream is alive
                    beat = self.terms.heartbeat(rec.last_seen_at)
                    if beat is not None:
                        yield beat
                    continue
                if order is None:
                    break
                yield _order_to_pb(order, self.terms)
            ending = rec.outbox.ending
            if ending is not None and ending.code is not EndCode.OK:  # a server-side end says why, never a bare OK
                log.info("ending the stream of cluster %s: %s %s", rec.name, ending.code, ending.message)
                await context.abort(grpc.StatusCode[ending.code.value], ending.message)
        finally:
            self._streams.pop(rec.session, None)
            reader.cancel()
            if rec.reports is not None:  # a report held over the rate: the stream ending keeps it if the budget may
                rec.reports.cancel()
                held = rec.reports.closing()
                if held is not None and self.fed.clusters.get(rec.name) is rec:
                    self._apply_report(rec, held)
            self.fed.disconnect(rec)

    async def _read(self, rec: ClusterRecord, requests: AsyncIterator[agent_pb2.AgentMessage],
                    stream: _Stream) -> None:
        """Apply the agent's messages as they come; while its orders pile up unread (server/outbox.py), take no
        more of them, so what its messages make the federator answer cannot grow without bound."""
        ending = AGENT_CLOSED
        try:
            async for msg in requests:
                if self.auth.revoked(stream.peer):
                    log.warning("cluster %s: its certificate was revoked; closing its stream", rec.name)
                    self.rejected(RejectReason.REVOKED)
                    ending = Ending(EndCode.PERMISSION_DENIED, f"cluster {rec.name}: its certificate was revoked")
                    break
                self.handle(rec, msg)
                await rec.outbox.room()
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        except grpc.aio.AbortError:  # the federator ended the stream itself (Lost, superseded, ...), saying why
            pass
        except Exception:
            log.exception("agent stream of %s failed", rec.name)
            ending = Ending(EndCode.UNAVAILABLE, f"cluster {rec.name}: the federator failed reading the stream; "
                                                 "reconnect")
        finally:
            self.fed.close_stream(rec, ending)

    def handle(self, rec: ClusterRecord, msg: agent_pb2.AgentMessage | Malformed) -> RejectReason | None:
        """Apply one agent message; a bad one is counted, logged, answered with an Error and dropped, never
        fatal."""
        if isinstance(msg, Malformed):
            self._refuse(rec, Refusal(RejectReason.MALFORMED, msg.message[:400]))
            return RejectReason.MALFORMED
        kind = msg.WhichOneof("body")
        size_problem = self.fed.limits.check_size(kind or "message", msg.ByteSize())
        if size_problem is not None:
            self._refuse(rec, Refusal(RejectReason.OVERSIZED, size_problem))
            return RejectReason.OVERSIZED
        if kind == "job_update" and rec.resynced and not self._update_budget(rec, msg.job_update.placement_id):
            return RejectReason.RATE_LIMITED
        refusal = rec.checks.check(msg, phase_of=lambda pid: self.fed.current_phase(rec.name, pid))
        if refusal is not None:
            self.fed.heard(rec)  # a refused message still shows the agent is alive
            self._refuse(rec, refusal)
            return refusal.reason
        reason: RejectReason | None = None
        try:
            if kind == "capacity":
                return self._report(rec, msg.capacity)
            elif kind == "job_update":
                u = msg.job_update
                if job_of(u.placement_id, rec.name) is None:  # never this cluster's, whatever the store knows:
                    self.fed.heard(rec)  # refused in words that say nothing of another tenant's job (security m2)
                    pid = u.placement_id[:200]
                    self._refuse(rec, Refusal(RejectReason.UNEXPECTED,
                                              f"job_update.placement_id: {pid!r} is not a placement of this cluster "
                                              f"(its ids are JOB.g<generation>.{rec.name}; a JobUpdate reports a "
                                              "placement sent to this cluster; this one changes nothing)", pid))
                    return RejectReason.UNEXPECTED
                self.fed.job_update(rec, u.placement_id, convert.phase_from_pb(u.phase), agent_text(u.message),
                                    admission_overdue=u.admission_overdue, counts=counts_of(u))
            elif kind == "ack":
                if msg.ack.resize:  # the answer to a Resize: only a refusal changes anything (server/shrink.py)
                    if not msg.ack.ok:
                        shrink.refused(self.fed, rec, msg.ack.placement_id, agent_text(msg.ack.message))
                    else:
                        self.fed.heard(rec)
                elif msg.ack.ok:
                    self.fed.acked(rec, msg.ack.placement_id)
                elif msg.ack.invalid:  # the member's API refused the object: the job's fault, once confirmed
                    found_invalid(self.fed, rec, msg.ack.placement_id, agent_text(msg.ack.message))
                else:
                    self.fed.refused(rec, msg.ack.placement_id, agent_text(msg.ack.message))
            else:
                reason = RejectReason.UNEXPECTED
        except convert.WireError as exc:
            self._refuse(rec, Refusal(RejectReason.MALFORMED, f"{kind}: {str(exc)[:400]}"))
            return RejectReason.MALFORMED
        if reason is RejectReason.RATE_LIMITED:
            pass  # counted when a newer report replaced it unapplied (_report), never answered
        elif reason is not None:
            self._refuse(rec, Refusal(reason, f"{kind}: not a message an agent sends"))
        return reason

    def _update_budget(self, rec: ClusterRecord, placement_id: str) -> bool:
        """Whether a JobUpdate is within its cluster's budget (Limits.job_updates_per_second, job_update_burst).
        One over it is dropped and counted; the first of a run is answered with an Error (`rate_limited`), the rest
        only counted, so a looping agent is told once, not once per update it loops on."""
        limits = self.fed.limits
        if rec.updates is None:
            rec.updates = TokenBucket(limits.job_updates_per_second, limits.job_update_burst, clock=self.fed.clock)
        if rec.updates.take():
            rec.updates_limited = False
            return True
        self.fed.heard(rec)
        self.fed.metrics.job_updates_limited.labels(rec.name).inc()
        if not rec.updates_limited:
            rec.updates_limited = True
            pid = placement_id[:200]
            message = (f"job_update: over this cluster's budget of {limits.job_updates_per_second:g} JobUpdates a "
                       f"second ({limits.job_update_burst} at once); this one and every one more are dropped until "
                       "the budget refills: send each placement's latest phase again then")
            log.warning("cluster %s: %s (federator_job_updates_limited_total)", rec.name, message)
            if rec.connected and not rec.closing:
                rec.outbox.put(ErrorNotice(RejectReason.RATE_LIMITED.value, message, pid))
        return False

    def _report(self, rec: ClusterRecord, report: agent_pb2.CapacityReport) -> RejectReason | None:
        """Apply a report now, or hold it (the newest over the rate) and apply it once the rate allows
        (server/reports.py); RATE_LIMITED when it is held."""
        gate = rec.reports
        if gate is not None:
            now, dropped = gate.offer(report)
            if dropped:
                self.rejected(RejectReason.RATE_LIMITED)  # an older held report, never applied
            if now is None:
                rec.checks.accepted_report(report.sequence)  # no older report may follow the one waiting
                self.fed.heard(rec)
                self._release_later(rec)
                return RejectReason.RATE_LIMITED
        return self._apply_report(rec, report)

    def _apply_report(self, rec: ClusterRecord, report: agent_pb2.CapacityReport) -> RejectReason | None:
        """Decode and check a report (server/validation.py), then apply it; a bad one is refused naming the
        field."""
        refusal: Refusal | None = None
        problem = check_report_fields(report)
        if problem is not None:
            refusal = Refusal(RejectReason.MALFORMED, problem)
        else:
            self.fed.cordons.maintenance.reported(  # the provider's own cordon (server/maintenance.py)
                rec.name, report.maintenance, provider=rec.labels.get(PROVIDER_LABEL, ""), now=self.fed.clock())
            try:
                cap = convert.capacity_from_pb(report)
                problem = check_capacity(cap)
                if problem is not None:
                    raise convert.WireError(problem)
            except convert.WireError as exc:
                refusal = Refusal(RejectReason.MALFORMED, f"capacity: {str(exc)[:400]}")
            else:
                implausible = check_plausible(cap) or self._over_trust_bound(rec, cap)
                if implausible:
                    refusal = Refusal(RejectReason.IMPLAUSIBLE_REPORT, implausible)
                else:
                    cap = self._within_accelerator_bound(rec, cap)
        if refusal is not None:
            self.fed.heard(rec)
            self._refuse(rec, refusal)
            return refusal.reason
        rec.checks.accepted_report(cap.sequence)
        self.fed.report(rec, cap, unreachable=report.member_unreachable)
        if rec.capacity is cap:  # taken (a report of an unreachable member is not)
            self._check_consistent(rec, cap)
        return None

    def _check_consistent(self, rec: ClusterRecord, cap: ClusterCapacity) -> None:
        """A report whose pools contradict the live placements it lists (server/consistency.py): those placements
        are taken as not subtracted, the agent is told (an Error per such report), it is counted, and it is logged
        when the cluster's contradicting pools change."""
        fed = self.fed
        listed = []
        for pid in cap.placement_ids:
            job = fed.jobs.get(fed.placement_index.get(pid, JobId("")))
            p = next((p for p in job.placements if p.placement_id == pid), None) if job is not None else None
            if p is not None and p.cluster == rec.name and p.phase.is_active:
                listed.append(p)
        found = contradictions(cap, listed)
        rec.uncounted = frozenset(pid for c in found for pid in c.placement_ids)
        pools = tuple(c.pool for c in found)
        if pools != rec.inconsistent:
            if found:
                log.warning("cluster %s: its report contradicts the placements it lists, so the federator holds "
                            "their resources itself: %s", rec.name, "; ".join(c.message() for c in found[:3]))
            else:
                log.info("cluster %s: its reports agree with the placements they list again", rec.name)
            rec.inconsistent = pools
        if not found:
            return
        fed.metrics.inconsistent_reports.labels(rec.name).inc()
        if rec.connected and not rec.closing:
            rec.outbox.put(ErrorNotice(INCONSISTENT_REPORT, cut("; ".join(c.message() for c in found))))

    def _over_trust_bound(self, rec: ClusterRecord, cap: ClusterCapacity) -> str:
        """"" unless the trust file bounds what a cluster of this stream's provider may claim and the report claims
        more (Trust.capacity_problem). Asked of the trust as it is now, so a reload lowering a bound applies from
        the next report."""
        stream = self._streams.get(rec.session)
        if self.auth.trust is None or stream is None:
            return ""
        return self.auth.trust.capacity_problem(stream.peer.issuer, cap)

    def _within_accelerator_bound(self, rec: ClusterRecord, cap: ClusterCapacity) -> ClusterCapacity:
        """The report clamped to its provider's maxAccelerators (server/over_bound.py), said when that changes."""
        stream = self._streams.get(rec.session)
        bound = self.auth.trust.accelerator_bound(stream.peer.issuer) \
            if self.auth.trust is not None and stream is not None else None
        clamped = over_bound.clamp(cap, bound[1])[0] if bound is not None else cap
        message = over_bound.clamped_message(reported_milli=cap.total_accelerator_milli, bound=bound[1],
                                             provider=bound[0]) \
            if bound is not None and cap.total_accelerator_milli > bound[1] * 1000 else ""
        if message:
            self.fed.metrics.reports_clamped.labels(rec.name).inc()
        if message != rec.over_bound:
            if message:
                log.warning("cluster %s: its report is clamped to its provider's bound: %s", rec.name, message)
                if rec.connected and not rec.closing:
                    rec.outbox.put(ErrorNotice(over_bound.OVER_BOUND, cut(message)))
            else:
                log.info("cluster %s: its reports are within its provider's maxAccelerators again", rec.name)
            rec.over_bound = message
        return clamped

    def _release_later(self, rec: ClusterRecord) -> None:
        gate = rec.reports
        if gate is None or gate.held is None or gate.timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called off the loop (tests): the next report, or release_held, applies it
            return
        gate.timer = loop.call_later(gate.due() + 0.001, self.release_held, rec)

    def release_held(self, rec: ClusterRecord) -> None:
        """Apply the report held over the rate limit, if the rate allows it now and its stream still speaks for
        the cluster (a newer stream's reports are the newer ones); else try again when it will."""
        gate = rec.reports
        if gate is None:
            return
        gate.timer = None
        if self.fed.clusters.get(rec.name) is not rec or rec.closing:
            gate.held = None
            return
        report = gate.release()
        if report is not None:
            self._apply_report(rec, report)
        self._release_later(rec)

    def _refuse(self, rec: ClusterRecord, refusal: Refusal) -> None:
        """Count a refused agent message, log it, and tell the agent (an Error on its stream, if it has room)."""
        self.rejected(refusal.reason)
        log.warning("cluster %s: refused a message (%s): %s", rec.name, refusal.reason, refusal.message)
        if rec.connected and not rec.closing:  # Errors beyond the outbox's ERROR_LIMIT waiting are dropped
            rec.outbox.put(ErrorNotice(refusal.reason.value, refusal.message, refusal.placement_id))


def decode_guard(federator: Federator) -> DecodeGuard:
    return DecodeGuard(lambda: federator.metrics.messages_rejected.labels(RejectReason.MALFORMED.value).inc())


def _job_object(job: Job | None, spec: JobSpec | None = None, key: str = "") -> dict[str, str]:
    """What an audit line says a job is."""
    spec = job.spec if job is not None else spec
    obj = {"kind": "Job"}
    if spec is not None:
        obj |= {"namespace": spec.namespace, "name": spec.name, "queue": spec.queue}
    if job is not None:
        obj["job_id"] = job.job_id
    elif key:
        obj["job_id"] = key
    return obj


def _holder_told(exc: NameTaken, may_see: Callable[[Job], bool], fed: Federator) -> str:
    """What a Submit refused for a name another FederatedJob holds tells its caller: the holding job only to a
    caller who may see it (as `SubmitError.told`); tenants share namespaces."""
    other = fed.jobs.get(JobId(exc.holder)) if exc.holder else None
    shown = str(exc) if other is None or may_see(other) else exc.vague
    return f"{shown}; the job was not accepted"


def _limit_of(exc: QueueFull) -> PressedLimit:
    """ErrorInfo.metadata["limit"] of a back-pressure refusal: which cap or budget it met (jobs.proto, Submit)."""
    if isinstance(exc, QueuePendingLimit):
        return PressedLimit.QUEUE
    if isinstance(exc, UserPendingLimit):
        return PressedLimit.USER
    if isinstance(exc, ByteBudgetFull):
        return PressedLimit.FEDERATOR_BYTES if exc.owner is None else PressedLimit.USER_BYTES
    return PressedLimit.FEDERATOR


def _spec_of(pb: types_pb2.JobSpec) -> JobSpec:
    """The submitted spec; a WireError when it cannot be read. Without a kind the rest of a spec cannot be
    read as one job, yet the client should hear everything else that is wrong with it in the same answer:
    the kind's problem comes with what the spec gets wrong under either kind (intake.kindless_problems)."""
    try:
        return convert.spec_from_pb(pb)
    except convert.WireError as exc:
        problem = str(exc)
        if not problem.startswith("spec.kind: "):
            raise
        kinds = []
        # A workload brings its own kind (an unknown enum value beside it is the only thing wrong with the kind).
        for kind in (types_pb2.JOB_KIND_UNSPECIFIED,) if pb.workload_json else \
                (types_pb2.JOB_KIND_TRAINING, types_pb2.JOB_KIND_INFERENCE):
            copy = types_pb2.JobSpec()
            copy.CopyFrom(pb)
            copy.kind = kind
            kinds.append(convert.spec_from_pb(copy))
        problems = [FieldProblem("spec.kind", problem.removeprefix("spec.kind: ")), *kindless_problems(kinds)]
        every = JobFileError(problems)
        raise convert.WireError(str(every)) from every


class JobService(_Edge, jobs_pb2_grpc.JobServiceServicer):
    """The job API. Each call is decided by `security.authz` at this edge: Submit by the queue's access list
    (and, in Kubernetes mode, `namespaces`: may the job be made in its host namespace), Get/List/Watch/Cancel
    by whose job it is, Cancel and Scale by whether they may manage it. Submit, Cancel and Scale, accepted or
    refused, are audited."""

    def __init__(self, federator: Federator, auth: Authenticator | None = None, *,
                 authz: Authorizer | None = None, audit: AuditLog | None = None,
                 namespaces: NamespaceGate | None = None) -> None:
        super().__init__(federator, auth, authz=authz, audit=audit)
        self.namespaces = namespaces
        self.watch_seats = watch_stream.Seats(federator.limits.max_watches_per_user)  # per user (watch_stream.py)

    async def Submit(self, request: jobs_pb2.SubmitRequest,  # noqa: N802
                     context: grpc.aio.ServicerContext) -> jobs_pb2.SubmitResponse:
        who = await self.principal(context)
        await self.sized(context, "submit", request)
        code, message, rule, job, spec = grpc.StatusCode.OK, "", "", None, None
        told = ""  # what the caller hears, where the audit line holds more (SubmitError.told)
        pressed: QueueFull | None = None  # back-pressure: answered with its ErrorInfo and RetryInfo
        replayed: Job | None = None
        problems: list[FieldProblem] = []
        try:
            spec = _spec_of(request.spec)
            decision: Allowed | Denied = self.authz.submit(who, spec.queue)
            if isinstance(decision, Allowed) and self.namespaces is not None:
                decision = await self.namespaces.refusal(spec) or decision
            elif isinstance(decision, Allowed):  # standalone: the namespace is the queue's (security/namespaces.py)
                placed = self.authz.place(who, spec)
                decision, spec = (placed, spec) if isinstance(placed, Denied) else (decision, placed)
            rule = decision.rule.value
            if isinstance(decision, Denied):
                code, message = grpc.StatusCode.PERMISSION_DENIED, decision.message
            else:
                owned = stamp_owner(spec, who)  # a request id is its owner's own (intake.py)
                taken = name_taken(self.fed, owned, request_id=request.request_id, run_again=request.run_again,
                                   may_manage=lambda last: isinstance(self.authz.job(who, last, manage=True), Allowed))
                if taken is not None:
                    raise taken
                replayed = self.fed.intake.job_for_request(
                    submitter_of(owned), request.request_id or spec.annotation(REQUEST_ID_ANNOTATION))
                job = await self.fed.submit_async(owned, request_id=request.request_id)
        except QueueFull as exc:
            code, message, pressed = grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), exc
        except (AlreadyExists, RequestIdConflict) as exc:  # the audit keeps the whole message; the caller, its own
            code = grpc.StatusCode.ALREADY_EXISTS if isinstance(exc, AlreadyExists) else \
                grpc.StatusCode.FAILED_PRECONDITION
            message, told = str(exc), exc.told(lambda other: bool(self.authz.visible(who, [other])))
        except StoreUnavailable as exc:  # retryable: with the same request id a retry cannot make two jobs
            code, message = grpc.StatusCode.UNAVAILABLE, f"{exc}; the job was not accepted"
        except NameTaken as exc:  # Kubernetes mode: a FederatedJob that is not this job's holds the name
            code, message = grpc.StatusCode.ALREADY_EXISTS, f"{exc}; the job was not accepted"
            told = _holder_told(exc, lambda other: bool(self.authz.visible(who, [other])), self.fed)
        except StoreRefused as exc:  # not retryable as it stands (a namespace the host cluster lacks, say)
            code, message = grpc.StatusCode.FAILED_PRECONDITION, f"{exc}; the job was not accepted"
        except (SubmitError, convert.WireError) as exc:
            if isinstance(exc, convert.WireError):
                self.rejected(RejectReason.MALFORMED)
            code, message = grpc.StatusCode.INVALID_ARGUMENT, cut(str(exc))
            problems = problems_of(exc)
        result = "accepted" if code is grpc.StatusCode.OK else \
            "refused" if code is grpc.StatusCode.PERMISSION_DENIED else "failed"
        self.audit.record("submit", identity=who, obj=_job_object(job, spec), result=result, code=code.name,
                          rule=rule, message=message, request_id=request.request_id)
        if job is None and code is grpc.StatusCode.INVALID_ARGUMENT:
            await context.abort_with_status(bad_request(message, problems))  # the bad fields, as data
        if job is None and pressed is not None:
            await context.abort_with_status(exhausted(message, Exhausted.BACK_PRESSURE, retry_after=pressed.retry_after,
                                                      metadata={"limit": _limit_of(pressed).value}))
        if job is None:
            await context.abort(code, cut(told or message))
            raise AssertionError("unreachable")
        return jobs_pb2.SubmitResponse(job=convert.job_to_pb(job), replayed=replayed is not None,
                                       warnings=self.fed.intake.warnings(job.spec))

    async def _find(self, who: Principal, key: str, context: grpc.aio.ServicerContext, *,
                    manage: bool = False, verb: str = "") -> tuple[Job | None, Denied | None]:
        """The job `key` names (an id, namespace/name, or a name: server/job_keys.py), or why not; a name in
        several namespaces the caller may see ends the call with FAILED_PRECONDITION listing them."""
        job = resolve(self.fed.jobs, key, lambda named: self.authz.visible(who, named))
        if job is None:
            return None, None
        if isinstance(job, Ambiguous):
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, job.message)
            raise AssertionError("unreachable")
        decision = self.authz.job(who, job, manage=manage, verb=verb)
        if isinstance(decision, Denied) and not self.authz.visible(who, [job]):
            # One the caller may not see is answered as one nobody has (NOT_FOUND): a refusal confirmed another
            # tenant's job name (outside QA F1). The refusal, naming the job, is for the audit line only.
            return None, Denied(decision.rule, f"{decision.message} (job {job.job_id}; answered as no job)")
        return job, decision if isinstance(decision, Denied) else None

    @staticmethod
    async def _need_job_id(job_id: str, context: grpc.aio.ServicerContext) -> None:
        """An empty job_id is a client's mistake, not a job nobody has: it read as NOT_FOUND "no job ... ''"."""
        if not job_id:
            problem = FieldProblem("job_id", "must not be empty")
            await context.abort_with_status(bad_request(str(problem), [problem]))

    async def Get(self, request: jobs_pb2.GetJobRequest,  # noqa: N802
                  context: grpc.aio.ServicerContext) -> types_pb2.Job:
        who = await self.principal(context)
        await self._need_job_id(request.job_id, context)
        job, denied = await self._find(who, request.job_id, context)
        if job is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no job with id or name {shown(request.job_id)}")
            raise AssertionError("unreachable")
        if denied is not None:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, denied.message)
        return convert.job_to_pb(job)

    def _visible(self, who: Principal, *, after: tuple[float, str] | None = None, queue: str = "",
                 query: Query | None = None) -> Iterator[Job]:
        """The jobs `who` may see, in submission order after `after` (or as `query` orders and filters them): the
        table's index says where to look, the policy decides each job served (so an index fault can only hide a
        job, never show one), and the filter applies to what the policy lets through."""
        query = query or Query(queue=queue)
        seen = self.authz.view(who)
        view = None if seen is None else View(*seen)
        for job in query.matching(self.fed.jobs.in_order(after=after, view=view, queue=query.queue, owner=query.owner,
                                                         newest_first=query.newest_first)):
            if view is None or self.authz.visible(who, [job]):
                yield job

    async def List(self, request: jobs_pb2.ListJobsRequest,  # noqa: N802
                   context: grpc.aio.ServicerContext) -> jobs_pb2.ListJobsResponse:
        who = await self.principal(context)
        try:  # the server's message limit: a page never passes what the contract tells a client to accept
            query = query_of(request)
            got = page(lambda after: self._visible(who, after=after, query=query),
                       page_size=request.page_size, page_token=request.page_token,
                       max_bytes=self.fed.limits.max_message_bytes, fingerprint=query.fingerprint,
                       default=query.is_default, newest_first=query.newest_first)
        except (QueryError, PageTokenError) as exc:
            found = exc.problems if isinstance(exc, QueryError) else [token_problem(str(exc))]
            await context.abort_with_status(bad_request("; ".join(str(p) for p in found), found))
            raise AssertionError("unreachable") from exc
        applied_filter, applied_order = query.applied()
        return jobs_pb2.ListJobsResponse(jobs=got.jobs, next_page_token=got.next_token,
                                         applied_filter=applied_filter, applied_order=applied_order)

    async def _to_manage(self, who: Principal, job_id: str, action: str,
                         context: grpc.aio.ServicerContext) -> tuple[Job, str]:
        """The job a Cancel or Scale (`action`, as audited) names, and the rule that lets `who` manage it; the call
        ends NOT_FOUND or PERMISSION_DENIED otherwise, audited as such."""
        await self._need_job_id(job_id, context)
        job, denied = await self._find(who, job_id, context, manage=True, verb=action)
        if job is None:
            message = f"no job with id or name {shown(job_id)}"
            self.audit.record(action, identity=who, obj=_job_object(None, key=job_id), result="failed",
                              code=grpc.StatusCode.NOT_FOUND.name, rule=denied.rule.value if denied else "",
                              message=denied.message if denied else message)
            await context.abort(grpc.StatusCode.NOT_FOUND, message)
            raise AssertionError("unreachable")
        if denied is not None:
            self.audit.record(action, identity=who, obj=_job_object(job), result="refused",
                              code=grpc.StatusCode.PERMISSION_DENIED.name, rule=denied.rule.value,
                              message=denied.message)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, denied.message)
        decision = self.authz.job(who, job, manage=True)
        return job, decision.rule.value if isinstance(decision, Allowed) else ""

    async def Cancel(self, request: jobs_pb2.CancelJobRequest,  # noqa: N802
                     context: grpc.aio.ServicerContext) -> types_pb2.Job:
        who = await self.principal(context)
        job, rule = await self._to_manage(who, request.job_id, "cancel", context)
        try:
            job = self.fed.cancel(job.job_id)
        except StoreUnavailable as exc:  # nothing changed: the job runs on as before, and a retry may succeed
            message = f"{exc}; the job was not cancelled"
            self.audit.record("cancel", identity=who, obj=_job_object(job), result="failed",
                              code=grpc.StatusCode.UNAVAILABLE.name, message=message)
            await context.abort(grpc.StatusCode.UNAVAILABLE, message)
            raise AssertionError("unreachable") from exc
        self.audit.record("cancel", identity=who, obj=_job_object(job), result="accepted", rule=rule)
        return convert.job_to_pb(job)

    async def CancelJobs(self, request: jobs_pb2.CancelJobsRequest,  # noqa: N802
                         context: grpc.aio.ServicerContext) -> jobs_pb2.CancelJobsResponse:
        """Every job of a queue a filter takes, selected under the caller's visibility, each decided and audited
        as a Cancel of it and the whole as one `cancel.bulk` (server/cancel_jobs.py)."""
        return await cancel_jobs(self, request, context)

    async def Scale(self, request: jobs_pb2.ScaleJobRequest,  # noqa: N802
                    context: grpc.aio.ServicerContext) -> types_pb2.Job:
        """An inference job's new replica count (server/scaling.py), decided and audited as a Cancel is."""
        who = await self.principal(context)
        job, rule = await self._to_manage(who, request.job_id, "scale", context)
        asked = {**_job_object(job), "replicas": str(request.replicas), "was": str(job.spec.replicas)}
        try:
            job = self.fed.scale(job.job_id, request.replicas)
        except ScaleRefused as exc:
            code = grpc.StatusCode.INVALID_ARGUMENT if exc.problem is ScaleProblem.INVALID else \
                grpc.StatusCode.FAILED_PRECONDITION
            self.audit.record("scale", identity=who, obj=asked, result="failed", code=code.name, message=str(exc))
            if code is grpc.StatusCode.INVALID_ARGUMENT:
                await context.abort_with_status(bad_request(str(exc), [FieldProblem("replicas", str(exc))]))
            await context.abort(code, cut(str(exc)))
            raise AssertionError("unreachable") from exc
        except StoreUnavailable as exc:  # nothing changed and no member was told: a retry may succeed
            message = f"{exc}; the job was not scaled"
            self.audit.record("scale", identity=who, obj=asked, result="failed",
                              code=grpc.StatusCode.UNAVAILABLE.name, message=message)
            await context.abort(grpc.StatusCode.UNAVAILABLE, message)
            raise AssertionError("unreachable") from exc
        self.audit.record("scale", identity=who, obj=asked, result="accepted", rule=rule)
        return convert.job_to_pb(job)

    async def Watch(self, request: jobs_pb2.WatchJobsRequest,  # noqa: N802
                    context: grpc.aio.ServicerContext) -> AsyncIterator[types_pb2.Job]:
        """A snapshot, then changes; bookmarks, revisions and resume on request (server/watch_stream.py)."""
        async for pb in watch_stream.watch(self, request, context):
            yield pb


class ClusterService(_Edge, jobs_pb2_grpc.ClusterServiceServicer):
    """Member clusters, a page at a time (server/cluster_list.py): every caller may list them; placement ids,
    which name jobs, only as the caller may see those jobs. `kube`: the federator runs in Kubernetes mode, where
    the MemberCluster objects are the record of the members (Forget is refused there: leases.py)."""

    def __init__(self, federator: Federator, auth: Authenticator | None = None, *, authz: Authorizer | None = None,
                 audit: AuditLog | None = None, kube: bool = False) -> None:
        super().__init__(federator, auth, authz=authz, audit=audit)
        self.kube = kube

    async def List(self, request: jobs_pb2.ListClustersRequest,  # noqa: N802
                   context: grpc.aio.ServicerContext) -> jobs_pb2.ListClustersResponse:
        own = self.auth.cluster_reader(context.auth_context())  # a provider's: its own cluster alone, read-only
        if own is not None:
            await self.cluster_acts_for_no_user(context, own)
        who = await self.principal(context) if own is None else None
        try:
            asked = cluster_list.checked(request)
        except cluster_list.ListRequestError as exc:
            await context.abort_with_status(bad_request(str(exc), [FieldProblem(exc.field, str(exc))]))
            raise AssertionError("unreachable") from exc
        fed = self.fed
        active = fed.cycles.active_by_cluster()  # once a call: what each cluster holds that its report may not count

        def rows(names: Sequence[str]) -> list[cluster_list.Row]:
            out = []
            for name in names:
                rec = fed.clusters.get(name)
                if rec is None:  # gone since the page began
                    continue
                held = active.get(name, ())
                info = fed.cycles.reserved_info(rec, held)
                status = jobs_pb2.ClusterStatus(name=rec.name, region=rec.region, state=rec.state.value,
                                                labels=rec.labels, last_report_at=rec.last_report_at,
                                                placements=len(held), gang_admission=rec.gang_admission.value,
                                                report_age_seconds=max(0.0, fed.clock() - rec.last_report_at)
                                                if rec.last_report_at else 0.0)
                cordon = fed.cordons.get(rec.name)  # server/cordons.py
                if cordon is not None:
                    status.cordoned, status.cordoned_by, status.cordoned_at, status.cordon_reason = \
                        True, cordon.by, cordon.at, cordon.reason
                    if cordon.drain is not None:  # server/drains.py
                        status.draining = cordon.drain.describe()
                        status.drain_jobs_left = len(fed.drains.left(rec.name))
                        status.drain_jobs_surging = fed.drains.surges.starting(rec.name)  # server/drain_surge.py
                        status.drain_waiting = fed.drains.waiting_words(rec.name)
                upkeep = fed.cordons.maintenance.get(rec.name)  # its provider's own (server/maintenance.py)
                if upkeep is not None:
                    status.maintenance, status.maintenance_since = upkeep.reason, upkeep.at
                quarantine = fed.early.quarantine.holding(rec.name, fed.clock())  # server/quarantine.py
                if quarantine is not None:
                    status.quarantined_until, status.quarantine_reason = quarantine.until, quarantine.why
                if rec.unreachable:  # its agent cannot reach the member (server/member_health.py)
                    status.member_unreachable, status.member_unreachable_since = rec.unreachable, rec.unreachable_since
                status.duplicate_agent = duplicates.shown(rec, fed.clock())  # a second agent refused lately
                status.over_bound = rec.over_bound  # its report clamped to its provider's bound (over_bound.py)
                out.append(cluster_list.Row(status, info.capacity if info is not None else None))
            return out

        shown = cluster_list.Visibility(
            admin=who is not None and who.admin,
            job_of=lambda pid: fed.jobs.get(fed.placement_index.get(pid, JobId(""))),
            may_see=lambda job: who is not None and isinstance(self.authz.job(who, job, manage=False), Allowed))
        # half the transport's limit: a page never fails to send, whatever the reports hold
        return await cluster_list.build_page(
            cluster_list.names_after(fed.clusters if own is None else [own] if own in fed.clusters else [],
                                     asked.after), request=asked,
            max_bytes=2 * fed.limits.max_message_bytes, row=rows, shown=shown)

    async def Cordon(self, request: jobs_pb2.CordonClusterRequest,  # noqa: N802
                     context: grpc.aio.ServicerContext) -> jobs_pb2.CordonClusterResponse:
        """No new work on the cluster until Uncordon (server/cordons.py)."""
        return await _cordon_call(self, "cordon", request.cluster, request.reason, context)

    async def Uncordon(self, request: jobs_pb2.UncordonClusterRequest,  # noqa: N802
                       context: grpc.aio.ServicerContext) -> jobs_pb2.CordonClusterResponse:
        """The cluster takes new work again: its cordon and any quarantine end."""
        return await _cordon_call(self, "uncordon", request.cluster, "", context)

    async def Drain(self, request: jobs_pb2.DrainClusterRequest,  # noqa: N802
                    context: grpc.aio.ServicerContext) -> jobs_pb2.DrainClusterResponse:
        """Cordon the cluster and move its federated work elsewhere (server/drains.py, server/drain_call.py)."""
        return await drain_call(self, request, context)

    async def Forget(self, request: jobs_pb2.ForgetClusterRequest,  # noqa: N802
                     context: grpc.aio.ServicerContext) -> jobs_pb2.ForgetClusterResponse:
        """A Lost cluster forgotten now, as --forget-lost-after would later (server/leases.py): admins only."""
        who = await self.principal(context)
        obj = {"kind": "MemberCluster", "name": request.cluster[:80]}
        if not who.admin:
            message = f"forget {request.cluster[:80]!r}: only an admin may forget a member cluster (rule: admin)"
            self.audit.record("forget", identity=who, obj=obj, result="refused",
                              code=grpc.StatusCode.PERMISSION_DENIED.name, rule="admin", message=message)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, message)
        try:
            cluster, _ = cordons.checked(request.cluster)
        except cordons.CordonError as exc:
            await context.abort_with_status(bad_request(str(exc), [FieldProblem(exc.field, str(exc))]))
            raise AssertionError("unreachable") from exc
        if self.kube:
            message = f"forget: {forgotten_by_kubectl(cluster)}"
            self.audit.record("forget", identity=who, obj=obj, result="failed",
                              code=grpc.StatusCode.FAILED_PRECONDITION.name, message=message)
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, message)
        fed = self.fed
        problem = why_not_forgettable(fed, cluster)
        rec = fed.clusters.get(cluster)
        if not problem and rec is not None and fed.leases.forget(cluster, f"{who.user} forgot it (federator forget)"):
            self.audit.record("forget", identity=who, obj=obj, result="accepted", rule="admin")
            return jobs_pb2.ForgetClusterResponse(cluster=cluster, lost_at=rec.lost_at)
        code = grpc.StatusCode.NOT_FOUND if rec is None else grpc.StatusCode.FAILED_PRECONDITION
        message = f"forget: {problem or f'cluster {cluster!r} cannot be forgotten now'}"
        self.audit.record("forget", identity=who, obj=obj, result="failed", code=code.name, message=message)
        await context.abort(code, message)
        raise AssertionError("unreachable")


async def _cordon_call(edge: ClusterService, action: str, cluster: str, reason: str,
                       context: grpc.aio.ServicerContext) -> jobs_pb2.CordonClusterResponse:
    """Cordon or Uncordon (`action`): admins only (and a provider's Uncordon of its own drain), the arguments
    checked, the store written first, audited."""
    obj = {"kind": "MemberCluster", "name": cluster[:80]}
    provider = provider_caller(edge, context) if action == "uncordon" else None
    if provider is not None:
        await edge.cluster_acts_for_no_user(context, provider.cluster)
        return await provider_uncordon(edge, provider, cluster, context)
    who = await edge.principal(context)
    if not who.admin:
        message = f"{action} {cluster[:80]!r}: only an admin may {action} a member cluster (rule: admin)"
        edge.audit.record(action, identity=who, obj=obj, result="refused",
                          code=grpc.StatusCode.PERMISSION_DENIED.name, rule="admin", message=message)
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, message)
    try:
        cluster, reason = cordons.checked(cluster, reason)
    except cordons.CordonError as exc:
        edge.audit.record(action, identity=who, obj=obj, result="failed",
                          code=grpc.StatusCode.INVALID_ARGUMENT.name, message=str(exc))
        await context.abort_with_status(bad_request(str(exc), [FieldProblem(exc.field, str(exc))]))
        raise AssertionError("unreachable") from exc
    fed = edge.fed
    reply = jobs_pb2.CordonClusterResponse(cluster=cluster, known=cluster in fed.clusters)
    before = fed.cordons.get(cluster)  # a provider's, which an admin's cordon takes over (server/cordons.py)
    try:
        if action == "cordon":
            held = Cordon(who.user, fed.clock(), reason)
            reply.changed = await fed.cordons.cordon(cluster, held)
            reply.cordoned = True
            held = fed.cordons.get(cluster) or held
        else:
            ended = await fed.cordons.uncordon(cluster)
            lifted = fed.early.quarantine.lift(cluster)
            reply.changed, reply.quarantine_lifted = ended is not None or lifted is not None, lifted is not None
            reply.drain_ended = ended is not None and ended.drain is not None  # a drain ends with its cordon
            reply.cordoned = fed.cordons.maintenance.get(cluster) is not None  # its provider's stays
            held = ended or Cordon("", 0.0)
    except (StoreUnavailable, StoreRefused, OSError) as exc:  # nothing changed: a retry may succeed
        message = f"{exc}; the cluster was not {action}ed"
        edge.audit.record(action, identity=who, obj=obj, result="failed",
                          code=grpc.StatusCode.UNAVAILABLE.name, message=message)
        await context.abort(grpc.StatusCode.UNAVAILABLE, cut(message))
        raise AssertionError("unreachable") from exc
    reply.cordoned_by, reply.cordoned_at, reply.reason = held.by, held.at, held.reason
    took = f"took over the cordon of {before.by}" if action == "cordon" and before is not None else ""
    edge.audit.record(action, identity=who, obj={**obj, "reason": reason} if reason else obj, result="accepted",
                      rule="admin", message=took if reply.changed else f"already {action}ed")
    return reply
