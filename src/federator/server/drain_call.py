"""`ClusterService.Drain`, the gRPC edge of a drain (server/drains.py says what a drain does and why).

A module of its own so the edge's checks (an admin, or the cluster's own provider; the arguments, the store
written first, audited) sit beside nothing but this call, as Cordon's do in server/cluster_service.py.
`provider_caller` serves Uncordon too: a provider ends the drains it made (security/provider_rights.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import grpc

from federator.api.v1 import jobs_pb2
from federator.jobfile import FieldProblem
from federator.model import Job
from federator.model.cordon import SURGE_SECONDS, Drain, surge_problem
from federator.security import provider_rights
from federator.security.provider_rights import ProviderCaller
from federator.server import cordons
from federator.server.drain_fit import NoRoom, no_room_elsewhere
from federator.server.drains import SHOWN_JOBS
from federator.server.errors import bad_request, cut
from federator.store.errors import StoreRefused, StoreUnavailable

if TYPE_CHECKING:
    from federator.server.services import ClusterService


ADMIN_OR_PROVIDER = "; or its provider, with one of its clusters' certificates (rule: provider)"


def provider_caller(edge: ClusterService, context: grpc.aio.ServicerContext) -> ProviderCaller | None:
    """The caller as a provider, when it holds a verified cluster certificate (security/provider_rights.py)."""
    peer = edge.auth.cluster_caller(context.auth_context())
    if peer is None or peer.identity is None:
        return None
    return ProviderCaller(peer.identity.name, peer.issuer)


async def drain_call(edge: ClusterService, request: jobs_pb2.DrainClusterRequest,
                     context: grpc.aio.ServicerContext) -> jobs_pb2.DrainClusterResponse:
    """Drain `request.cluster`: an admin, or its provider (security/provider_rights.py), the arguments checked, the
    drain stored before it holds, audited. `dry_run`: the same checks, nothing changed (`_dry_run`).
    The reply counts the jobs the drain will requeue and names up to SHOWN_JOBS of them, and those the other
    clusters have no room for now (server/drain_fit.py); none is requeued by the call itself (the loop's next
    turn begins, woken now)."""
    obj = {"kind": "MemberCluster", "name": request.cluster[:80]}
    asked = f"drain{' (dry run)' if request.dry_run else ''} {request.cluster[:80]!r}"
    provider = provider_caller(edge, context)
    if provider is not None:  # a provider's cluster certificate: its own provider's clusters (provider_rights.py)
        await edge.cluster_acts_for_no_user(context, provider.cluster)
        who, rule = provider.principal(), provider_rights.RULE
        refusal = provider_rights.drain_refusal(provider, request.cluster, edge.auth.trust)
        message = f"{asked}: {refusal}"
    else:
        who, rule = await edge.principal(context), "admin"
        refusal = "" if who.admin else "only an admin may drain a member cluster (rule: admin)"
        message = f"{asked}: {refusal}{ADMIN_OR_PROVIDER if refusal else ''}"
    if refusal:
        edge.audit.record("drain", identity=who, obj=obj, result="refused",
                          code=grpc.StatusCode.PERMISSION_DENIED.name, rule=rule, message=message)
        await edge.refuse(context, rule, message, action="drain", cluster=request.cluster[:80])
    try:
        cluster, reason = cordons.checked(request.cluster, request.reason)
        surge = surge_checked(request.surge_seconds)
    except cordons.CordonError as exc:
        edge.audit.record("drain", identity=who, obj=obj, result="failed",
                          code=grpc.StatusCode.INVALID_ARGUMENT.name, message=str(exc))
        await context.abort_with_status(bad_request(str(exc), [FieldProblem(exc.field, str(exc))]))
        raise AssertionError("unreachable") from exc
    fed = edge.fed
    if request.dry_run:  # changes nothing: not audited, as a List is not
        return await _dry_run(edge, cluster, surge)
    before = fed.cordons.get(cluster)  # a provider's, which an admin's drain takes over (server/cordons.py)
    try:
        changed, cordon = await fed.cordons.drain(cluster, Drain(who.user, fed.clock(), reason, surge))
    except (StoreUnavailable, StoreRefused, OSError) as exc:  # nothing changed: a retry may succeed
        message = f"{exc}; the cluster was not drained"
        edge.audit.record("drain", identity=who, obj=obj, result="failed",
                          code=grpc.StatusCode.UNAVAILABLE.name, message=message)
        await context.abort(grpc.StatusCode.UNAVAILABLE, cut(message))
        raise AssertionError("unreachable") from exc
    held = cordon.drain or Drain(who.user, fed.clock(), reason, surge)  # always set: `drain` returns the drained
    left = fed.drains.left(cluster)
    reply = _reply(edge, cluster, held, left, await no_room_elsewhere(fed, cluster, left))
    reply.changed = changed
    fed.wake()
    took = f"; took over the cordon of {before.by}" if before is not None and cordon.by != before.by else ""
    edge.audit.record("drain", identity=who, obj={**obj, "reason": reason} if reason else obj, result="accepted",
                      rule=rule, message=f"{len(left)} job(s) to move{took}" if changed else "already drained")
    return reply


def surge_checked(seconds: float) -> float:
    """`DrainClusterRequest.surge_seconds` as the drain's bound: 0 the default, else within bounds
    (model/cordon.py `surge_problem`); a CordonError naming the field otherwise."""
    if seconds == 0:
        return SURGE_SECONDS
    problem = surge_problem(seconds)
    if problem:
        raise cordons.CordonError("surge_seconds", problem)
    return float(seconds)


async def _dry_run(edge: ClusterService, cluster: str, surge: float) -> jobs_pb2.DrainClusterResponse:
    """What a drain of `cluster` would answer now, nothing changed (DrainClusterRequest.dry_run). The jobs named
    are those with a placement on `cluster`, which the caller may drain: a provider's are jobs its own provider
    runs there (its agent holds their orders); where they would go, and other clusters' jobs, are not said."""
    fed = edge.fed
    holding = fed.cordons.get(cluster)
    drain = holding.drain if holding is not None else None
    left = fed.drains.left(cluster)
    reply = _reply(edge, cluster, drain or Drain("", 0.0, "", surge), left, await no_room_elsewhere(fed, cluster, left))
    reply.dry_run = True
    return reply


def _reply(edge: ClusterService, cluster: str, held: Drain, left: Sequence[Job],
           no_room: NoRoom) -> jobs_pb2.DrainClusterResponse:
    fed = edge.fed
    return jobs_pb2.DrainClusterResponse(
        cluster=cluster, drained_by=held.by, drained_at=held.at, reason=held.reason, known=cluster in fed.clusters,
        jobs=len(left), job_ids=[str(job.job_id) for job in left[:SHOWN_JOBS]],
        waiting=fed.drains.waiting(cluster) if left else "", surge_seconds=fed.drains.surges.bound(held),
        no_room_elsewhere=no_room.count, no_room_elsewhere_job_ids=list(no_room.job_ids))


async def provider_uncordon(edge: ClusterService, provider: ProviderCaller, cluster: str,
                            context: grpc.aio.ServicerContext) -> jobs_pb2.CordonClusterResponse:
    """A provider's Uncordon: only of a cordon its own provider's drain made, the arguments checked, stored first,
    audited; no quarantine lifted (security/provider_rights.py)."""
    who, fed = provider.principal(), edge.fed
    obj = {"kind": "MemberCluster", "name": cluster[:80]}
    held = fed.cordons.get(cluster)
    if held is not None:
        refusal = provider_rights.uncordon_refusal(provider, cluster, held.by, edge.auth.trust)
    elif not provider_rights.speaks_for(provider, cluster, edge.auth.trust):
        refusal = provider_rights.not_its_own(provider, cluster, edge.auth.trust, "uncordon")
    else:
        refusal = ""  # its own cluster, not cordoned: nothing to end, answered as such below
    if refusal:
        message = f"uncordon {cluster[:80]!r}: {refusal}"
        edge.audit.record("uncordon", identity=who, obj=obj, result="refused",
                          code=grpc.StatusCode.PERMISSION_DENIED.name, rule=provider_rights.RULE, message=message)
        await edge.refuse(context, provider_rights.RULE, message, action="uncordon", cluster=cluster[:80])
    try:
        cluster, _ = cordons.checked(cluster)
    except cordons.CordonError as exc:
        edge.audit.record("uncordon", identity=who, obj=obj, result="failed",
                          code=grpc.StatusCode.INVALID_ARGUMENT.name, message=str(exc))
        await context.abort_with_status(bad_request(str(exc), [FieldProblem(exc.field, str(exc))]))
        raise AssertionError("unreachable") from exc
    try:
        ended = await fed.cordons.uncordon(cluster) if held is not None else None
    except (StoreUnavailable, StoreRefused, OSError) as exc:  # nothing changed: a retry may succeed
        message = f"{exc}; the cluster was not uncordoned"
        edge.audit.record("uncordon", identity=who, obj=obj, result="failed",
                          code=grpc.StatusCode.UNAVAILABLE.name, message=message)
        await context.abort(grpc.StatusCode.UNAVAILABLE, cut(message))
        raise AssertionError("unreachable") from exc
    reply = jobs_pb2.CordonClusterResponse(cluster=cluster, known=cluster in fed.clusters, changed=ended is not None,
                                           drain_ended=ended is not None and ended.drain is not None,
                                           cordoned=fed.cordons.maintenance.get(cluster) is not None)
    if ended is not None:
        reply.cordoned_by, reply.cordoned_at, reply.reason = ended.by, ended.at, ended.reason
    edge.audit.record("uncordon", identity=who, obj=obj, result="accepted", rule=provider_rights.RULE,
                      message="" if reply.changed else "already uncordoned")
    return reply


__all__ = ["drain_call", "provider_caller", "provider_uncordon", "surge_checked"]
