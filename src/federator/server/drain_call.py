"""`ClusterService.Drain`, the gRPC edge of a drain (server/drains.py says what a drain does and why).

A module of its own so the edge's checks (admins only, the arguments, the store written first, audited) sit
beside nothing but this call, as Cordon's do in server/services.py, which is long enough.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from federator.api.v1 import jobs_pb2
from federator.jobfile import FieldProblem
from federator.model.cordon import Drain
from federator.server import cordons
from federator.server.drains import SHOWN_JOBS
from federator.server.errors import bad_request, cut
from federator.store.errors import StoreRefused, StoreUnavailable

if TYPE_CHECKING:
    from federator.server.services import ClusterService


async def drain_call(edge: ClusterService, request: jobs_pb2.DrainClusterRequest,
                     context: grpc.aio.ServicerContext) -> jobs_pb2.DrainClusterResponse:
    """Drain `request.cluster`: admins only, the arguments checked, the drain stored before it holds, audited.
    The reply counts the jobs the drain will requeue and names up to SHOWN_JOBS of them; none is requeued by the
    call itself (the loop's next turn begins, woken now)."""
    who = await edge.principal(context)
    obj = {"kind": "MemberCluster", "name": request.cluster[:80]}
    if not who.admin:
        message = f"drain {request.cluster[:80]!r}: only an admin may drain a member cluster (rule: admin)"
        edge.audit.record("drain", identity=who, obj=obj, result="refused",
                          code=grpc.StatusCode.PERMISSION_DENIED.name, rule="admin", message=message)
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, message)
    try:
        cluster, reason = cordons.checked(request.cluster, request.reason)
    except cordons.CordonError as exc:
        edge.audit.record("drain", identity=who, obj=obj, result="failed",
                          code=grpc.StatusCode.INVALID_ARGUMENT.name, message=str(exc))
        await context.abort_with_status(bad_request(str(exc), [FieldProblem(exc.field, str(exc))]))
        raise AssertionError("unreachable") from exc
    fed = edge.fed
    try:
        changed, cordon = await fed.cordons.drain(cluster, Drain(who.user, fed.clock(), reason))
    except (StoreUnavailable, StoreRefused, OSError) as exc:  # nothing changed: a retry may succeed
        message = f"{exc}; the cluster was not drained"
        edge.audit.record("drain", identity=who, obj=obj, result="failed",
                          code=grpc.StatusCode.UNAVAILABLE.name, message=message)
        await context.abort(grpc.StatusCode.UNAVAILABLE, cut(message))
        raise AssertionError("unreachable") from exc
    held = cordon.drain or Drain(who.user, fed.clock(), reason)  # always set: `drain` returns the drained cordon
    left = fed.drains.left(cluster)
    reply = jobs_pb2.DrainClusterResponse(cluster=cluster, changed=changed, drained_by=held.by, drained_at=held.at,
                                          reason=held.reason, known=cluster in fed.clusters, jobs=len(left),
                                          job_ids=[str(job.job_id) for job in left[:SHOWN_JOBS]],
                                          waiting=fed.drains.waiting(cluster) if left else "",
                                          surge_seconds=fed.drains.surges.seconds)
    fed.wake()
    edge.audit.record("drain", identity=who, obj={**obj, "reason": reason} if reason else obj, result="accepted",
                      rule="admin", message=f"{len(left)} job(s) to move" if changed else "already drained")
    return reply


__all__ = ["drain_call"]
