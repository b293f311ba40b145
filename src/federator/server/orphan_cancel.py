"""ClusterService.CancelOrphans: an admin cancels a cluster's orphans now, rather than wait out --orphan-grace.

Why (0.16.0): an orphan, a placement an agent runs of a job the store has no record of (server/orphans.py), was held
for --orphan-grace (half an hour by default) and counted only in `federator_orphan_placements`. The grace is there
for an operator to restore the right store; once they have decided there is nothing to restore, the orphans only
take the members' accelerators, and the one way to free them early was to restart the federator with
`--orphan-grace 0`. This call is that decision, taken by an admin, audited, for one cluster or every one
(`federator cancel --orphans [--cluster C]`); proto/federator/v1/jobs.proto says its obligations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc

from federator.api.v1 import jobs_pb2
from federator.jobfile import FieldProblem
from federator.server import cordons
from federator.server.errors import bad_request

if TYPE_CHECKING:
    from federator.server.cluster_service import ClusterService

ACTION = "cancel.orphans"
IDS_SHOWN = 20  # ClusterOrphans.placement_ids: the first ones, so a reply stays small whatever a cluster ran


async def cancel_orphans_call(edge: ClusterService, request: jobs_pb2.CancelOrphansRequest,
                              context: grpc.aio.ServicerContext) -> jobs_pb2.CancelOrphansResponse:
    """Admins only; the cluster's name checked (empty: every cluster); each orphan sent a Cancel now and recorded
    until its member confirms (Orphans.cancel_now); one audit line, refused calls too."""
    who = await edge.principal(context)
    obj: dict[str, Any] = {"kind": "MemberCluster", "name": request.cluster[:80]}
    if not who.admin:
        message = "cancel --orphans: only an admin may cancel a member cluster's orphans (rule: admin)"
        edge.audit.record(ACTION, identity=who, obj=obj, result="refused",
                          code=grpc.StatusCode.PERMISSION_DENIED.name, rule="admin", message=message)
        await edge.refuse(context, "admin", message, action=ACTION, cluster=request.cluster[:80])
    fed = edge.fed
    if request.cluster:
        try:
            cluster, _ = cordons.checked(request.cluster)
        except cordons.CordonError as exc:
            edge.audit.record(ACTION, identity=who, obj=obj, result="failed",
                              code=grpc.StatusCode.INVALID_ARGUMENT.name, message=str(exc))
            await context.abort_with_status(bad_request(str(exc), [FieldProblem(exc.field, str(exc))]))
            raise AssertionError("unreachable") from exc
        if cluster not in fed.clusters:
            message = f"cancel --orphans: cluster {cluster!r} is not a member cluster this federator knows"
            edge.audit.record(ACTION, identity=who, obj=obj, result="failed", code=grpc.StatusCode.NOT_FOUND.name,
                              message=message)
            await context.abort(grpc.StatusCode.NOT_FOUND, message)
        names = [cluster] if fed.orphans.count(cluster) else []
    else:
        names = fed.orphans.clusters_holding()
    reply = jobs_pb2.CancelOrphansResponse()
    for name in names:
        pids = fed.orphans.cancel_now(name, by=who.user)
        reply.clusters.append(jobs_pb2.ClusterOrphans(cluster=name, cancelled=len(pids),
                                                      placement_ids=pids[:IDS_SHOWN]))
        reply.cancelled += len(pids)
    edge.audit.record(ACTION, identity=who, obj={**obj, "cancelled": reply.cancelled},
                      result="accepted" if reply.cancelled else "unchanged", rule="admin",
                      message=", ".join(f"{c.cluster}: {c.cancelled}" for c in reply.clusters))
    return reply


__all__ = ["ACTION", "cancel_orphans_call"]
