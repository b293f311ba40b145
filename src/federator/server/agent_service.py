"""AgentService: the agents' stream (proto/federator/v1/agent.proto).

Hello, Welcome, then orders one way and reports, acks and job updates the other. Every agent message is checked
against the agent contract (server/validation.py) and each agent's report rate is limited (`security.limits`)
before it is applied: an agent is a provider's process, judged, never trusted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import NoReturn

import grpc

from federator.api import convert
from federator.api.v1 import agent_pb2, agent_pb2_grpc
from federator.model import ClusterCapacity, JobId
from federator.model.cluster import AgentFeature, GangAdmission
from federator.security.audit import AuditLog
from federator.security.auth import AuthDenied, Authenticator, Peer
from federator.security.authz import Authorizer
from federator.security.limits import RejectReason, TokenBucket, check_hello
from federator.security.region_binding import binding_of
from federator.security.trust import PROVIDER_LABEL, Trust
from federator.server import cluster_regions, duplicates, over_bound, refused_reports, region_mismatch, seals, shrink
from federator.server.cluster_prices import priced, repriced
from federator.server.clusters import over_provider_cap
from federator.server.consistency import INCONSISTENT_REPORT, as_listed, contradictions
from federator.server.edge import Edge, Malformed
from federator.server.errors import cut
from federator.server.federator import ClusterRecord, Federator
from federator.server.invalid_specs import found_invalid
from federator.server.order_messages import order_to_pb
from federator.server.orders import ErrorNotice, ListWanted
from federator.server.outbox import AGENT_CLOSED, EndCode, Ending, stopping
from federator.server.placement_ids import job_of
from federator.server.placement_lists import Unapplied, rebuild
from federator.server.refusal_log import RefusalLog
from federator.server.refused_messages import RefusedMessages
from federator.server.replica_counts import counts_of
from federator.server.report_lane import Examined, ReportLane, examine
from federator.server.reports import charged
from federator.server.terms import StreamTerms, default_order_max_age
from federator.server.unbounded_reports import UnboundedReports
from federator.server.validation import Refusal, agent_text, check_hello_fields

log = logging.getLogger("federator.server")
HELLO_TIMEOUT_SECONDS = 10.0


@dataclass(slots=True)
class _Stream:
    """A live agent stream as the trust file judged it: who (the peer, its certificate) claimed what (the
    Hello's labels as sent, before the federator stamped the provider). A reloaded trust judges it again."""

    rec: ClusterRecord
    peer: Peer
    hello_labels: dict[str, str]
    lane: ReportLane | None = None  # its reports, examined off the loop in order (server/report_lane.py)


class AgentService(Edge, agent_pb2_grpc.AgentServiceServicer):
    """The agent stream: Hello, Welcome, then orders (and heartbeats when there are none) one way and the agent's
    messages the other, each checked against the agent contract (server/validation.py) before it is applied."""

    def __init__(self, federator: Federator, auth: Authenticator | None = None, *,
                 authz: Authorizer | None = None, audit: AuditLog | None = None,
                 terms: StreamTerms | None = None, kube: bool = False) -> None:
        super().__init__(federator, auth, authz=authz, audit=audit)
        self.kube = kube  # the MemberCluster objects are the members' record: a refusal names `kubectl delete mc`
        self.leads: Callable[[], bool] = lambda: True  # False once stopping or deposed: no Hello, no order (app.py)
        self.terms = terms or StreamTerms(
            report_interval=federator.report_interval, lease_seconds=federator.lease_seconds,
            lost_after=federator.lost_after_seconds,
            order_max_age=default_order_max_age(federator.lost_after_seconds), clock=federator.clock)
        self._streams: dict[int, _Stream] = {}  # by session: the streams a reloaded trust file judges again
        self.refusals = RefusalLog(log)  # a refused agent retries for ever: a WARNING per identity and reason
        self.refused_messages = RefusedMessages(federator.metrics.agent_messages_refused, federator.clock)
        self.unbounded = UnboundedReports()  # absurd claims no trust bound covers: said (server/unbounded_reports.py)

    def retrust(self, trust: Trust) -> list[str]:
        """A reloaded trust file: end each live stream it no longer admits (its provider removed, its cluster
        bound elsewhere, its region no longer one of its provider's, ...) with PERMISSION_DENIED saying why, and
        return their clusters. Such a cluster goes as a cluster whose stream dropped goes: Partitioned now, Lost
        after --lost-after (its placements then re-placed, server/federator.py `check_leases`), never sooner,
        since its agent may still run them. Streams the new trust admits go on, their price bounded by its
        minPrice/maxPrice (server/cluster_prices.py)."""
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
            else:
                if issuer != peer.issuer:  # the same CA under another provider name: its provider is that name now
                    stream.peer = replace(peer, issuer=issuer)
                    if issuer:
                        rec.labels[PROVIDER_LABEL] = issuer
                # its price as the reloaded minPrice/maxPrice bound it, from the claim of its Hello
                rec.labels = repriced(trust, cluster=rec.name, issuer=issuer, kept=rec.labels,
                                      hello=stream.hello_labels)
        return ended

    async def Connect(  # noqa: N802 - gRPC method name
        self, request_iterator: AsyncIterator[agent_pb2.AgentMessage], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[agent_pb2.FederatorMessage]:
        opened = self.fed.clock()
        # Said in the Welcome (agent.proto, Welcome.hello_received_at): the earliest this federator can vouch the
        # stream and its Hello had reached it, so the agent bounds the Welcome's travel with no more of this
        # loop's time counted as travel than the wait before this handler ran.
        hello_received_at = self.terms.clock()
        try:  # not wait_for: on 3.11 it drops a cancel landing as the Hello comes (woken.py), and runs on
            async with asyncio.timeout(HELLO_TIMEOUT_SECONDS):
                first = await anext(request_iterator)
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
        if not self.leads():  # a replica stepping down orders no member: the agent goes to the one that leads
            await context.abort(grpc.StatusCode.UNAVAILABLE, stopping(hello.cluster).message)
        peer = self.auth.agent(context.auth_context(), hello.cluster)
        if isinstance(peer, AuthDenied):
            self.refusals.refused(hello.cluster[:80], peer.reason.value,
                                  f"refused an agent stream claiming cluster {hello.cluster[:80]!r}: {peer.message}")
            await self.deny(context, peer)
        # The region is the agent's claim and the scheduler places latency-sensitive jobs by it: a provider the
        # trust file binds to regions may not claim another (its clusters would draw the jobs meant for others').
        region_problem = self.auth.trust.region_problem(peer.issuer, hello.region) if self.auth.trust else ""
        if region_problem:
            await self._refuse_hello(context, hello.cluster, RejectReason.BAD_HELLO, grpc.StatusCode.INVALID_ARGUMENT,
                                     region_problem)
        bound = binding_of(self.auth.trust, peer.issuer, hello.cluster, peer.certificate)
        known = self.fed.clusters.get(hello.cluster)
        mismatch = region_mismatch.found(known, bound, now=self.fed.clock())
        if mismatch is not None and known is not None:  # its record and its binding disagree: said once, shown
            message = region_mismatch.refused(self.fed, self.audit, known, mismatch, kube=self.kube,
                                              claimed=hello.region, via=peer.via, peer_address=context.peer() or "",
                                              provider=peer.issuer)
            self.rejected(RejectReason.BAD_HELLO)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, message)
            return
        bound_problem = bound.problem(hello.cluster, hello.region)  # its certificate's or trust file's region
        if bound_problem:
            cluster_regions.refused_bound(self.fed, self.audit, hello.cluster, bound, hello.region, bound_problem,
                                          via=peer.via, peer_address=context.peer() or "", provider=peer.issuer)
            self.rejected(RejectReason.BAD_HELLO)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, bound_problem)
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
        labels = priced(self.auth.trust, cluster=hello.cluster, issuer=peer.issuer, labels=labels)
        over = over_provider_cap(self.fed.clusters, cluster=hello.cluster, provider=labels.get(PROVIDER_LABEL, ""),
                                 cap=self.fed.limits.max_clusters_per_provider)
        if over:
            await self._refuse_hello(context, hello.cluster, RejectReason.LIMIT_EXCEEDED,
                                     grpc.StatusCode.RESOURCE_EXHAUSTED, over)
        current = self.fed.clusters.get(hello.cluster)
        when = {"now": self.fed.clock(), "lease_seconds": self.fed.lease_seconds,
                "stalled": self.fed.stalls.since(current.last_seen_at) if current else 0.0}
        twin = duplicates.refusal(current, instance=hello.instance, **when)
        if twin and current is not None:  # a second agent: the one that holds the cluster keeps it, untouched
            duplicates.refuse(self.fed, current, peer_address=context.peer() or "", message=twin, log=self.refusals)
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, twin)
            return
        moved = cluster_regions.claim(current, hello.cluster, hello.region)  # the region it has, not each Hello's
        if moved is not None:
            message = cluster_regions.refused(self.fed, self.audit, moved, via=peer.via,
                                              peer_address=context.peer() or "", kube=self.kube,
                                              provider=peer.issuer)
            self.rejected(RejectReason.BAD_HELLO)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, message)
            return
        taken = duplicates.takeovers(current, instance=hello.instance, **when)
        before = current.region if current is not None else ""
        rec = self.fed.connect(cluster=hello.cluster, region=hello.region, labels=labels)
        rec.region_mismatch = None  # admitted: its region and its binding agree (server/region_mismatch.py)
        cluster_regions.registered(self.audit, rec, via=peer.via, before=before, provider=peer.issuer,
                                   bound_by=bound.by)
        rec.takeovers = taken
        rec.instance, rec.peer_address = hello.instance, context.peer() or ""
        rec.certificate_not_after = peer.certificate.not_valid_after_utc.timestamp() if peer.certificate else 0.0
        rec.gang_admission = GangAdmission.parse(hello.gang_admission)
        rec.features = AgentFeature.parse(hello.features)
        if AgentFeature.SEALS not in rec.features and seals.current().required:
            log.warning("cluster %s: its agent does not say seals back (its Hello.features does not list \"seals\"): "
                        "after a restore of the store its running placements are not adopted on its word, and its "
                        "word never ends a job (docs/security.md, \"What an agent's word can end, or take\")",
                        rec.name)
        stream = self._streams[rec.session] = _Stream(rec, peer, dict(hello.labels))
        stream.lane = ReportLane(lambda report, examined: self._finish_report(rec, report, examined, stream))
        reader = asyncio.get_running_loop().create_task(self._read(rec, request_iterator, stream))
        try:
            yield self.terms.welcome(reports_per_second=self.fed.limits.reports_per_second,
                                     report_burst=self.fed.limits.report_burst,
                                     report_bytes_per_second=self.fed.limits.report_bytes_per_second,
                                     job_updates_per_second=self.fed.limits.job_updates_per_second,
                                     job_update_burst=self.fed.limits.job_update_burst,
                                     hello_received_at=hello_received_at)
            while True:
                try:  # not wait_for: on 3.11 it drops a cancel landing as an order comes (woken.py), and runs on
                    async with asyncio.timeout(self.terms.heartbeat_interval):
                        order = await rec.outbox.get()
                except TimeoutError:  # nothing to send: a heartbeat, the agent's proof the stream is alive
                    beat = self.terms.heartbeat(rec.last_seen_at)
                    if beat is not None:
                        yield beat
                    continue
                if order is None or not self.leads():
                    break
                yield order_to_pb(order, self.terms, rec.name, silent=self.fed.clock() - rec.last_seen_at -
                                   self.fed.stalls.since(rec.last_seen_at))
            ending = rec.outbox.ending if self.leads() else stopping(rec.name)
            if ending is not None and ending.code is not EndCode.OK:  # a server-side end says why, never a bare OK
                log.info("ending the stream of cluster %s: %s %s", rec.name, ending.code, ending.message)
                await context.abort(grpc.StatusCode[ending.code.value], ending.message)
        finally:
            self._streams.pop(rec.session, None)
            reader.cancel()
            rec.logs.stream_ended(rec.name)  # a logs call waiting on this stream is answered now (server/logs.py)
            if rec.reports is not None:  # a report held over the rate: the stream ending keeps it if the budget may
                rec.reports.cancel()
                held = rec.reports.closing()
                if held is not None and self.fed.clusters.get(rec.name) is rec:
                    stream.lane.submit(held)  # after any report of the stream still in flight
            self.refused_messages.ended(rec)  # its last window of unlogged refusals summed up
            self.fed.disconnect(rec)

    async def _refuse_hello(self, context: grpc.aio.ServicerContext, cluster: str, reason: RejectReason,
                            code: grpc.StatusCode, problem: str) -> NoReturn:
        """Refuse a Hello its own fields passed but the trust or the limits refuse: logged once a window for the
        cluster and reason (a refused agent retries for ever: RefusalLog), counted, and the stream aborted."""
        self.refusals.refused(cluster, reason.value, f"refused an agent stream of cluster {cluster!r}: {problem}")
        self.rejected(reason)
        await context.abort(code, problem)
        raise AssertionError("unreachable")  # context.abort raises

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
                if stream.lane is not None:  # a report in flight (read before, or held and released by its
                    await stream.lane.idle()  # timer) is applied before anything the agent sent after it
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
            self._refuse(rec, Refusal(RejectReason.OVERSIZED, size_problem), report=kind == "capacity")
            return RejectReason.OVERSIZED
        if kind == "job_update" and rec.resynced and not self._update_budget(rec, msg.job_update.placement_id):
            return RejectReason.RATE_LIMITED
        refusal = rec.checks.check(msg, phase_of=lambda pid: self.fed.current_phase(rec.name, pid))
        if refusal is not None:
            self.fed.heard(rec)  # a refused message still shows the agent is alive
            self._refuse(rec, refusal, report=kind == "capacity")
            return refusal.reason
        reason: RejectReason | None = None
        try:
            if kind == "capacity":
                unlisted = self._unlisted(rec, msg.capacity)
                if unlisted is None:
                    return self._report(rec, msg.capacity)
                return unlisted.refusal.reason if unlisted.refusal is not None else None
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
                self.fed.orphans.adoption.reapplied.said(rec.name, u.placement_id, u.job_digest)  # reapplied.py
                self.fed.orphans.adoption.sealed(rec.name, u.placement_id, u.launch_seal)  # server/seals.py
                ended = seals.job_ended(rec.name, u, self.fed.current_phase(rec.name, u.placement_id), self.fed.metrics)
                lost = u.lost and self._lost_listed(rec, u.placement_id)
                self.fed.job_update(rec, u.placement_id, convert.phase_from_pb(u.phase), agent_text(u.message),
                                    admission_overdue=u.admission_overdue, counts=counts_of(u), lost=lost,
                                    ended_at=u.ended_at, job_ended=ended)
                self.fed.orphans.adoption.said_model(rec.name, u.placement_id, u.accelerator_model)  # adoption.py
            elif kind == "ack":
                if msg.ack.resize:  # the answer to a Resize: owed no more; a refusal replaces it (server/shrink.py)
                    if not msg.ack.ok:
                        shrink.refused(self.fed, rec, msg.ack.placement_id, agent_text(msg.ack.message))
                    else:
                        shrink.acked(self.fed, rec, msg.ack.placement_id)
                elif msg.ack.ok:
                    self.fed.acked(rec, msg.ack.placement_id)
                elif msg.ack.invalid:  # the member's API refused the object: the job's fault, once confirmed
                    found_invalid(self.fed, rec, msg.ack.placement_id, agent_text(msg.ack.message))
                else:
                    self.fed.refused(rec, msg.ack.placement_id, agent_text(msg.ack.message))
            elif kind == "logs":
                self.fed.heard(rec)
                answer = rec.logs.answered(msg.logs)
                if answer == "late":  # its user was told it did not answer in time; dropped (server/logs.py)
                    log.info("cluster %s answered logs request %s after its deadline: dropped", rec.name,
                             msg.logs.request_id[:80])
                elif answer == "unknown":
                    rid = msg.logs.request_id[:80]
                    self._refuse(rec, Refusal(RejectReason.UNEXPECTED,
                                              f"logs.request_id: {rid!r} was never sent on this stream (a "
                                              "LogsReply answers a LogsRequest of the same stream); dropped"))
                    return RejectReason.UNEXPECTED
            else:
                reason = RejectReason.UNEXPECTED
        except convert.WireError as exc:
            self._refuse(rec, Refusal(RejectReason.MALFORMED, f"{kind}: {str(exc)[:400]}"),
                         report=kind == "capacity")
            return RejectReason.MALFORMED
        if reason is RejectReason.RATE_LIMITED:
            pass  # counted when a newer report replaced it unapplied (_report), never answered
        elif reason is not None:
            self._refuse(rec, Refusal(reason, f"{kind}: not a message an agent sends"))
        return reason

    def _unlisted(self, rec: ClusterRecord, report: agent_pb2.CapacityReport) -> Unapplied | None:
        """None when the report lists its placements in full, rebuilt from its delta if it says one
        (server/placement_lists.py); else why not: it is not taken, and the agent is asked once for its list."""
        unapplied = rebuild(rec.placement_list, report)
        if unapplied is None:
            return None
        self.fed.heard(rec)
        if unapplied.refusal is not None:
            self._refuse(rec, unapplied.refusal, report=True)
        if unapplied.wanted:
            self.fed.metrics.placement_list_asks.labels(rec.name, unapplied.reason.value).inc()
            log.info("cluster %s: its report's placement delta was not applied, its full list is asked for: %s",
                     rec.name, unapplied.wanted[:300])
            if rec.connected and not rec.closing:
                rec.outbox.put(ListWanted(cut(unapplied.wanted)))
        return unapplied

    def _lost_listed(self, rec: ClusterRecord, placement_id: str) -> bool:
        """Whether JobUpdate.lost counts from this agent: only if its Hello.features lists "lost" (agent.proto). The
        field spares a failure the early-failure rule and its cluster the quarantine, and ends the job at once, so
        an agent that never said it marks lost placements does not get that on one flag (secqa61 L2): its update
        is taken as an ordinary failure, and the agent told with an Error naming the field."""
        if AgentFeature.LOST in rec.features:
            return True
        pid = placement_id[:200]
        if self.fed.current_phase(rec.name, placement_id) is None:  # not "taken as" anything (goagentqa62 L1)
            self._refuse(rec, Refusal(RejectReason.UNEXPECTED,
                                      f"job_update.placement_id: {pid!r} is not a placement current on this "
                                      "cluster (a JobUpdate reports a placement sent to it); its lost is not read, "
                                      "and the update changes no job", pid))
            return False
        self._refuse(rec, Refusal(RejectReason.MALFORMED,
                                  f"job_update.lost: set for {placement_id[:200]!r} by an agent whose Hello.features "
                                  "does not list \"lost\"; taken as an ordinary failure (the early-failure rule "
                                  "applies). An agent that marks lost placements lists the feature in its Hello",
                                  placement_id[:200]))
        return False

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
        field. A served stream's report is examined off the loop and applied in its turn (server/report_lane.py;
        None then, whatever comes of it); one handled outside a stream (tests), here and now."""
        stream = self._streams.get(rec.session)
        if stream is not None and stream.lane is not None:
            stream.lane.submit(report)
            return None
        return self._finish_report(rec, report, examine(report), stream)

    def _finish_report(self, rec: ClusterRecord, report: agent_pb2.CapacityReport, examined: Examined,
                       stream: _Stream | None) -> RejectReason | None:
        """Apply an examined report on the loop: the trust file's bounds (`stream`'s provider, asked as the trust
        is now), then the capacity. A report whose stream was superseded meanwhile is dropped: the newer stream's
        reports are the newer ones."""
        if self.fed.clusters.get(rec.name) is not rec:
            return None
        refusal, cap = examined.refusal, examined.capacity
        if examined.fields_ok:
            self.fed.cordons.maintenance.reported(  # the provider's own cordon (server/maintenance.py)
                rec.name, report.maintenance, provider=rec.labels.get(PROVIDER_LABEL, ""), now=self.fed.clock())
        if cap is not None:
            over = self._over_trust_bound(stream, cap)
            if over:
                refusal = Refusal(RejectReason.IMPLAUSIBLE_REPORT, over)
            else:
                cap = self._within_accelerator_bound(rec, stream, cap)
        if refusal is not None or cap is None:
            assert refusal is not None
            self.fed.heard(rec)
            self._refuse(rec, charged(rec.reports, refusal, report.ByteSize()), report=True)
            return refusal.reason
        rec.checks.accepted_report(cap.sequence)
        refused_reports.taken(rec)
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
            if job is not None and p is not None and p.cluster == rec.name and p.phase.is_active:
                listed.append(as_listed(p, job.spec))  # a gang of pod sets at what its sets hold
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

    def _over_trust_bound(self, stream: _Stream | None, cap: ClusterCapacity) -> str:
        """"" unless the trust file bounds what a cluster of this stream's provider may claim and the report claims
        more (Trust.capacity_problem). Asked of the trust as it is now, so a reload lowering a bound applies from
        the next report."""
        if self.auth.trust is None or stream is None:
            return ""
        return self.auth.trust.capacity_problem(stream.peer.issuer, cap)

    def _within_accelerator_bound(self, rec: ClusterRecord, stream: _Stream | None,
                                  cap: ClusterCapacity) -> ClusterCapacity:
        """The report clamped to its provider's maxAccelerators (server/over_bound.py), said when that changes."""
        bound = self.auth.trust.accelerator_bound(stream.peer.issuer) \
            if self.auth.trust is not None and stream is not None else None
        clamped = over_bound.clamp(cap, bound[1])[0] if bound is not None else cap
        self.unbounded.taken(rec.name, cap.total_accelerator_milli, bounded=bound is not None)
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

    def _refuse(self, rec: ClusterRecord, refusal: Refusal, *, report: bool = False) -> None:
        """Count a refused agent message, log it, and tell the agent (an Error on its stream, if it has room).
        `report`: it was a capacity report, also counted and shown for the cluster (server/refused_reports.py)."""
        self.rejected(refusal.reason)
        if report:  # logged there: once per distinct refusal, not per report
            refused_reports.refused(self.fed, rec, refusal)
        else:  # within a budget per stream, counted per cluster (outside fuzz QA F2)
            self.refused_messages.refused(rec, refusal)
        if rec.connected and not rec.closing:  # Errors beyond the outbox's ERROR_LIMIT waiting are dropped
            rec.outbox.put(ErrorNotice(refusal.reason.value, refusal.message, refusal.placement_id))
