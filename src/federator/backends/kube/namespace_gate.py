"""Which host namespaces a job may be made in: one rule for kubectl and gRPC alike, and the namespaces no
job submitted over gRPC may touch.

A FederatedJob made with kubectl is in a namespace its author may write to (RBAC decided that), and the
controller checks the Queue's `namespaceSelector` against that namespace's labels. A job submitted over gRPC
becomes a FederatedJob that the federator itself creates, with its own rights, in whatever `spec.namespace`
the caller wrote: without this gate a tenant of a queue that selects only `team-b` namespaces made objects
in `team-a` (where they showed in team-a's `kubectl get fj` and took the names there), in `kube-system` and
in the federator's own namespace. So over gRPC:

- the Queue's `namespaceSelector` (the policy file's `defaultQueue.namespaceSelector` for a queue without
  one) must select the namespace, as for kubectl (rule `namespace-selector`);
- `kube-*` namespaces (the host's own components) and the federator's own namespace (its Lease, its
  credentials, its RBAC) are refused always, to admins too (rule `reserved-namespace`): the federator acts
  there with its own service account's rights, which no API caller should borrow, and an operator who
  means it has kubectl.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from federator.backends.kube.api import NAMESPACES, KubeApi, KubeError, NotFoundError
from federator.model import JobSpec
from federator.security.authz import Authorizer, Denied, Rule
from federator.store.errors import StoreUnavailable

log = logging.getLogger("federator.kube.namespaces")
RESERVED_PREFIX = "kube-"


async def namespace_labels(api: KubeApi, namespace: str) -> dict[str, str]:
    """A namespace's labels; {} for one that does not exist (KubeError for an API server that did not answer)."""
    try:
        ns = await asyncio.to_thread(api.get, NAMESPACES, namespace)
    except NotFoundError:
        return {}
    return {str(k): str(v) for k, v in ((ns.get("metadata") or {}).get("labels") or {}).items()}


def selector_applies(authz: Authorizer, queue: str) -> bool:
    policy = authz.policy
    return policy.queue_namespaces.get(queue, policy.default_namespaces) is not None


class HostNamespaces:
    """The gate of gRPC Submits in Kubernetes mode (server/namespace_gate.py's `NamespaceGate`)."""

    def __init__(self, api: KubeApi, authz: Authorizer, *, own: Iterable[str] = ()) -> None:
        self.api = api
        self.authz = authz
        self.own = frozenset(n for n in own if n)

    def reserved(self, namespace: str) -> str:
        """Why a namespace is closed to jobs submitted over gRPC ("" when it is not)."""
        if namespace.startswith(RESERVED_PREFIX):
            return "kube-* namespaces hold the host cluster's own components"
        if namespace in self.own:
            return "it is the federator's own namespace (its Lease, credentials and RBAC)"
        return ""

    async def refusal(self, spec: JobSpec) -> Denied | None:
        why = self.reserved(spec.namespace)
        if why:
            return Denied(Rule.RESERVED_NAMESPACE,
                          f"spec.namespace: {Rule.RESERVED_NAMESPACE}: jobs submitted over the API may not be made in "
                          f"namespace {spec.namespace!r}, whatever the queue: {why}")
        if not selector_applies(self.authz, spec.queue):
            return None
        try:
            labels = await namespace_labels(self.api, spec.namespace)
        except KubeError as exc:  # not a verdict on the job: the caller retries
            raise StoreUnavailable(f"spec.namespace: the labels of namespace {spec.namespace!r} could not be read "
                                   f"to check queue {spec.queue!r}'s namespaceSelector ({exc})") from exc
        decision = self.authz.namespace(spec.queue, spec.namespace, labels)
        if isinstance(decision, Denied):
            return Denied(decision.rule, f"spec.namespace: {decision.message}")
        return None


__all__ = ["RESERVED_PREFIX", "HostNamespaces", "namespace_labels", "selector_applies"]
