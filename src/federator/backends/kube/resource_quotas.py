"""ResourceQuotas in the namespaces the agent places work in, held against the accelerators it reports.

Why: a provider caps federated work the ordinary Kubernetes way, with a ResourceQuota
(`requests.nvidia.com/gpu: 4`) in the workload namespace. The agent counted nodes only, so `get clusters`
kept offering all 16 A100s, a 2 x 8 gang was sent there, and the API server refused every pod ("exceeded
quota") until the gang timeout (outside provider QA F6). The agent now reports no more free devices of a
resource than the quotas leave (`hard - used`), the way it holds back a Kueue ClusterQueue's quota
(`kueue_quota.within_quota`, whose rule this reuses: the freest nodes keep their devices, the rest is counted
in AcceleratorPool.quota_held_accelerators, and each pool spends its own copy, since a gang runs on one pool).

Which keys: `requests.<resource>` (the only form Kubernetes takes for an extended resource), and
`limits.<resource>` and the bare `<resource>` in case a quota names them; the tightest counts. The hard limit
is the one the quota controller has put in `status.hard` (what admission enforces), else `spec.hard`; what
is used is `status.used`, which counts every pod of the namespace, the provider's own too. A quota with
scopes is held like any other: the agent does not judge which pods a scope selects, and holding back too much
costs a placement elsewhere, while too little costs a refused gang.

Which namespaces: the report says one number per pool for every queue, so with `--namespace-per-queue`
(`<namespace>-<queue>` per queue) it cannot say a per-queue room. The agent holds back by the tightest quota
of the namespaces it uses: `--namespace` and every namespace named `<namespace>-...`. A provider who caps one
queue's namespace caps what every queue is offered on this member; that errs on the side the federator can
recover from (the job waits, or goes elsewhere) rather than a gang sent to be refused.

Pure apart from `ResourceQuotas`, which holds the informer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from federator.backends.kube.api import ForbiddenError, KubeApi, KubeError, Resource
from federator.backends.kube.devices import quantity_int
from federator.backends.kube.informer import Informer

RESOURCE_QUOTAS = Resource("v1", "resourcequotas")

Obj = Mapping[str, Any]
log = logging.getLogger("federator.agent.kube")


def quota_keys(resource: str) -> tuple[str, ...]:
    """The `hard` keys of a ResourceQuota that bound `resource`."""
    return (f"requests.{resource}", f"limits.{resource}", resource)


def applies(namespace: str, base: str, *, per_queue: bool) -> bool:
    """Whether a quota in `namespace` bounds the agent's placements: `--namespace`, and per queue every
    `<namespace>-...` (tenant_namespaces.tenant_namespace's names, hashed ones included)."""
    return namespace == base or (per_queue and namespace.startswith(f"{base}-"))


def quota_room(quotas: Iterable[Obj], resources: Iterable[str], *, base: str,
               per_queue: bool = False) -> dict[str, int]:
    """Per resource of `resources` some applicable quota bounds, the least room (hard - used, at least 0) any of
    them leaves; a resource no quota bounds is left out (unbounded)."""
    wanted = list(resources)
    out: dict[str, int] = {}
    for quota in quotas:
        meta, spec, status = quota.get("metadata") or {}, quota.get("spec") or {}, quota.get("status") or {}
        if not applies(str(meta.get("namespace") or ""), base, per_queue=per_queue):
            continue
        hard: Mapping[str, Any] = status.get("hard") or spec.get("hard") or {}
        used: Mapping[str, Any] = status.get("used") or {}
        for resource in wanted:
            for key in quota_keys(resource):
                if key in hard:
                    room = max(0, quantity_int(hard[key]) - quantity_int(used.get(key)))
                    out[resource] = min(out.get(resource, room), room)
    return out


class ResourceQuotas:
    """The ResourceQuotas of the agent's namespaces, watched (`informer`) where RBAC lets the agent read them."""

    def __init__(self, api: KubeApi, *, base: str, per_queue: bool, watch_timeout: int = 60) -> None:
        self.api = api
        self.base = base
        self.per_queue = per_queue
        self.informer = Informer(api, RESOURCE_QUOTAS, namespace=None if per_queue else base,
                                 name="resourcequotas", watch_timeout=watch_timeout)

    def readable(self) -> bool:
        """Blocking: whether the agent may list ResourceQuotas (agent chart 0.4.6 grants it). If not, quotas are
        not held against the report, and the log says how to mend it."""
        try:
            self.api.list(RESOURCE_QUOTAS, None if self.per_queue else self.base)
        except ForbiddenError as exc:
            log.warning("ResourceQuotas not read: the agent may not list resourcequotas (%s); its report counts "
                        "nodes only, and a gang a quota in %s would refuse may be sent here. Apply the agent "
                        "chart's RBAC (deploy/kubernetes/rbac-agent.yaml)", exc, self.base)
            return False
        except KubeError as exc:
            log.warning("ResourceQuotas not read: listing resourcequotas failed (%s)", exc)
            return False
        return True

    def room(self, resources: Iterable[str]) -> dict[str, int]:
        """`quota_room` over the quotas seen (nothing before the informer started)."""
        if not self.informer.started:
            return {}
        return quota_room(self.informer.cache.values(), resources, base=self.base, per_queue=self.per_queue)


__all__ = ["RESOURCE_QUOTAS", "ResourceQuotas", "applies", "quota_keys", "quota_room"]
