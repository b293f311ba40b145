"""Which queues let their submitters make FederatedJobs in any namespace of the host (Kubernetes mode).

Why its own module: in Kubernetes mode a job submitted over gRPC becomes a FederatedJob in the namespace its spec
names, with the federator's rights, and only the queue's `namespaceSelector` bounds which (server/namespace_gate.py).
Under a multi-tenant policy a queue without one lets its submitters name another tenant's namespace: their job then
holds a name there, and that tenant's FederatedJobs naming it (`clusters.sameAs`, `dependsOn` by name) follow it
(secqa61 M2). security.md documents the misconfiguration; the federator says it at start, and when Queue objects
change which queues are open, naming them, so an operator need not find it in the docs.
"""

from __future__ import annotations

from federator.security.authz import TenancyPolicy

DEFAULT_QUEUE = "defaultQueue"  # how the queues nobody declared are named in the list: by the policy's field


def open_queues(policy: TenancyPolicy) -> list[str]:
    """The queues (by name, then DEFAULT_QUEUE for the undeclared ones if they take anyone's submissions) whose
    submitters may name any namespace: no namespaceSelector of their own nor defaultQueue's. Empty for a
    single-tenant policy, where every submitter is the same tenant."""
    if not policy.multi_tenant:
        return []
    named = sorted(q for q in policy.declared | set(policy.queue_access)
                   if policy.queue_namespaces.get(q, policy.default_namespaces) is None)
    undeclared_open = not policy.closes_undeclared and policy.default_namespaces is None
    return named + ([DEFAULT_QUEUE] if undeclared_open else [])


def open_queues_warning(queues: list[str]) -> str:
    """The WARNING naming `queues` (open_queues), or "" for none."""
    if not queues:
        return ""
    return (f"--policy: queue(s) {', '.join(queues)} have no namespaceSelector (nor defaultQueue one), so their "
            "submitters may make FederatedJobs in any namespace of the host, another tenant's included, where "
            "that tenant's jobs naming the job (clusters.sameAs, dependsOn by name) follow it: give each queue a "
            "namespaceSelector where tenants share the host by namespace (docs/kubernetes.md, \"Tenants and "
            "namespaces\"; docs/security.md)")


__all__ = ["DEFAULT_QUEUE", "open_queues", "open_queues_warning"]
