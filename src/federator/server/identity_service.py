"""IdentityService: who the federator takes a caller to be, what the policy lets them use, and what it serves.

Why: a client learned which queues it may use only by submitting to a wrong
one and parsing the PERMISSION_DENIED text, its groups only from the
annotations of a job it had submitted, and nothing of the server's version or
features (outside portal QA, M5 and M4). A transport like the others in
`edge.py` (the same authentication edge, delegation included): the
answers are the tenancy policy's own decisions (`Authorizer.submit`, the
queue's namespaces), so they cannot drift from what Submit does.
"""

from __future__ import annotations

import grpc

from federator import __version__
from federator.api.features import FEATURES
from federator.api.v1 import identity_pb2, identity_pb2_grpc
from federator.security.authz import Allowed, Principal, Submitter
from federator.security.namespaces import queue_namespaces
from federator.server import submit_room
from federator.server.edge import Edge

CLUSTER_VIA = "cluster-certificate"


class IdentityService(Edge, identity_pb2_grpc.IdentityServiceServicer):
    """WhoAmI for any authenticated caller: a user (after delegation), an admin, or a provider's cluster."""

    def __init__(self, edge: Edge, *, kube: bool = False) -> None:
        super().__init__(edge.fed, edge.auth, authz=edge.authz, audit=edge.audit)
        self.kube = kube  # Kubernetes mode: namespaces are bound by Queue objects' selectors, not by lists

    async def WhoAmI(self, request: identity_pb2.WhoAmIRequest,  # noqa: N802
                     context: grpc.aio.ServicerContext) -> identity_pb2.WhoAmIResponse:
        cluster = self.auth.cluster_reader(context.auth_context())
        if cluster is not None:  # a provider's agent credentials: ClusterService.List of that one cluster only
            return identity_pb2.WhoAmIResponse(user=cluster, via=CLUSTER_VIA, role=identity_pb2.ROLE_PROVIDER,
                                               version=__version__, features=FEATURES)
        who = await self.principal(context)
        return identity_pb2.WhoAmIResponse(
            user=who.user, groups=sorted(who.groups), via=who.via,
            role=identity_pb2.ROLE_ADMIN if who.admin else identity_pb2.ROLE_USER,
            actor=who.actor.user if who.actor is not None else "", queues=self.grants(who),
            any_queue=who.admin or (not self.authz.policy.closes_undeclared and self._admits_undeclared(who)),
            version=__version__, features=FEATURES, **self.own_limits(who))

    def grants(self, who: Principal) -> list[identity_pb2.QueueGrant]:
        """The declared queues `who` may submit to (as Submit decides), each with the namespaces its jobs may name
        when the queue binds them (standalone, multi-tenant, not an admin), and the queue's limits as Submit reads
        them (server/submit_room.py): its pending cap and count, its maxPriority and maxRunSeconds."""
        p = self.authz.policy
        config = self.fed.scheduler.config
        bound = p.multi_tenant and not self.kube and not who.admin
        return [identity_pb2.QueueGrant(
                    name=q, namespaces=queue_namespaces(q, p.namespace_lists, p.default_namespace_list, p.declared)
                    if bound else (), pending_jobs=_limit(submit_room.queue_pending(self.fed, q)),
                    max_priority=config.max_priority(q)[0], max_run_seconds=config.max_run_seconds(q)[0])
                for q in sorted(p.declared) if isinstance(self.authz.submit(who, q), Allowed)]

    def own_limits(self, who: Principal) -> dict[str, identity_pb2.SubmitLimit]:
        """The caller's limits over every queue (WhoAmIResponse.user_*), and a delegate's budget (delegate_*): the
        actor's for a delegated call, the caller's own when it is a delegate calling as itself (so a portal can
        watch its budget without borrowing a user's name). Each with its use now, read as Submit reads it."""
        fed = self.fed
        owner = Submitter(user=who.user)
        out = {"user_pending_jobs": _limit(submit_room.user_pending(fed, owner)),
               "user_unfinished_bytes": _limit(submit_room.user_bytes(fed, owner))}
        delegate = who.actor.user if who.actor is not None else \
            who.user if who.user in self.authz.policy.delegates else None
        if delegate is not None:
            out |= {"delegate_pending_jobs": _limit(submit_room.delegate_pending(fed, delegate)),
                    "delegate_unfinished_bytes": _limit(submit_room.delegate_bytes(fed, delegate))}
        return out

    def _admits_undeclared(self, who: Principal) -> bool:
        """Whether a queue nobody declared takes this caller's jobs: defaultQueue's access list (none: open)."""
        access = self.authz.policy.default_access
        return access is None or access.admits(who)


def _limit(held: submit_room.Held) -> identity_pb2.SubmitLimit:
    return identity_pb2.SubmitLimit(limit=held.limit, used=held.used, source=held.source)


__all__ = ["CLUSTER_VIA", "IdentityService"]
