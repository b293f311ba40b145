"""ClusterService: member clusters as the API shows them (proto/federator/v1/jobs.proto).

List, a page at a time; Cordon, Uncordon, Drain, Forget and CancelOrphans, each authorised and audited at this edge.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.jobfile import FieldProblem
from federator.model import JobId
from federator.model.cordon import Cordon
from federator.security.audit import AuditLog
from federator.security.auth import Authenticator
from federator.security.authz import Allowed, Authorizer
from federator.server import cluster_list, cordons, duplicates
from federator.server.drain_call import drain_call, provider_caller, provider_uncordon
from federator.server.edge import Edge
from federator.server.errors import bad_request, cut
from federator.server.federator import Federator
from federator.server.leases import forgotten_by_kubectl, why_not_forgettable
from federator.server.maintenance_windows import checked_window
from federator.server.orphan_cancel import cancel_orphans_call
from federator.store.errors import StoreRefused, StoreUnavailable


class ClusterService(Edge, jobs_pb2_grpc.ClusterServiceServicer):
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
        draining = fed.drains.on(fed.cordons.draining())  # once a call too: each drain's jobs left (drains.py)

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
                if cordon is not None:  # a maintenance window is not in force before its start (maintenance_windows)
                    status.cordoned, status.cordoned_by, status.cordoned_at, status.cordon_reason = \
                        cordon.in_force(fed.clock()), cordon.by, cordon.at, cordon.reason
                    status.window_from, status.window_until = cordon.window_from, cordon.window_until
                    if cordon.drain is not None:  # server/drains.py
                        status.draining = cordon.drain.describe()
                        left = draining[rec.name] if rec.name in draining else fed.drains.left(rec.name)
                        status.drain_jobs_left = len(left)
                        status.drain_jobs_surging = fed.drains.surges.starting(rec.name, left)  # drain_surge.py
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
                status.reports_refused, status.reports_refused_since = \
                    rec.reports_refused, rec.reports_refused_since  # server/refused_reports.py
                status.orphan_placements = fed.orphans.count(rec.name)  # server/orphans.py
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
        """No new work on the cluster until Uncordon (server/cordons.py), or in its maintenance window alone
        (server/maintenance_windows.py)."""
        return await _cordon_call(self, "cordon", request.cluster, request.reason, context,
                                  window=(request.window_from, request.window_until))

    async def Uncordon(self, request: jobs_pb2.UncordonClusterRequest,  # noqa: N802
                       context: grpc.aio.ServicerContext) -> jobs_pb2.CordonClusterResponse:
        """The cluster takes new work again: its cordon and any quarantine end."""
        return await _cordon_call(self, "uncordon", request.cluster, "", context)

    async def Drain(self, request: jobs_pb2.DrainClusterRequest,  # noqa: N802
                    context: grpc.aio.ServicerContext) -> jobs_pb2.DrainClusterResponse:
        """Cordon the cluster and move its federated work elsewhere (server/drains.py, server/drain_call.py)."""
        return await drain_call(self, request, context)

    async def CancelOrphans(self, request: jobs_pb2.CancelOrphansRequest,  # noqa: N802
                            context: grpc.aio.ServicerContext) -> jobs_pb2.CancelOrphansResponse:
        """A cluster's orphans (or every cluster's) cancelled now, not after --orphan-grace (orphan_cancel.py)."""
        return await cancel_orphans_call(self, request, context)

    async def Forget(self, request: jobs_pb2.ForgetClusterRequest,  # noqa: N802
                     context: grpc.aio.ServicerContext) -> jobs_pb2.ForgetClusterResponse:
        """A Lost cluster forgotten now, as --forget-lost-after would later (server/leases.py): admins only."""
        who = await self.principal(context)
        obj = {"kind": "MemberCluster", "name": request.cluster[:80]}
        if not who.admin:
            message = f"forget {request.cluster[:80]!r}: only an admin may forget a member cluster (rule: admin)"
            self.audit.record("forget", identity=who, obj=obj, result="refused",
                              code=grpc.StatusCode.PERMISSION_DENIED.name, rule="admin", message=message)
            await self.refuse(context, "admin", message, action="forget", cluster=request.cluster[:80])
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
                       context: grpc.aio.ServicerContext, *,
                       window: tuple[float, float] = (0.0, 0.0)) -> jobs_pb2.CordonClusterResponse:
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
        await edge.refuse(context, "admin", message, action=action, cluster=cluster[:80])
    try:
        cluster, reason = cordons.checked(cluster, reason)
        window = checked_window(*window, edge.fed.clock())
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
            held = Cordon(who.user, fed.clock(), reason, window_from=window[0], window_until=window[1])
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
    reply.window_from, reply.window_until = held.window_from, held.window_until
    took = f"took over the cordon of {before.by}" if action == "cordon" and before is not None else ""
    said = {**obj, **({"reason": reason} if reason else {}),  # a maintenance window's times too (Unix seconds)
            **({"window_from": window[0], "window_until": window[1]} if any(window) else {})}
    edge.audit.record(action, identity=who, obj=said, result="accepted",
                      rule="admin", message=took if reply.changed else f"already {action}ed")
    return reply
