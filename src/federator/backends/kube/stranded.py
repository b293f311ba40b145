"""Placements left in the per-queue namespaces after `--namespace-per-queue` was turned off: found and adopted.

Why: turning the agent chart's `namespacePerQueue` off (the agent restarted without `--namespace-per-queue`) made
the agent watch `--namespace` alone, while gangs still ran in `<--namespace>-<queue>`. It said "0 placements in
namespace federator-workloads", never reported those placements' phases again (the federator kept the job
"Running 2/2": their pods, which the agent reads cluster-wide, still listed them in its capacity reports), and a
cancel found nothing to delete: the tenant's pods kept 16 GPUs until someone noticed (outside provider QA, F7).
The other direction (flag turned on) was handled already: `--namespace` is always one of the places it looks.

Decided: at start, without the flag, the agent lists its placements' pods in every namespace (by the managed-by
label it puts on every pod; it may list pods cluster-wide in both modes) and looks for any in `<--namespace>-*`.
Those namespaces are then watched as the per-queue agent watches them (every namespace, by the managed-by
selector, each workload kept only in the tenant namespace of the queue it is labelled with: `TenantNamespaces
.owns`), so their placements are adopted: reported at the re-sync, their phases followed, and cancellable. New
placements still go to `--namespace`. This needs the cluster-wide workload rights the per-queue chart grants; an
agent whose RBAC was narrowed with the switch cannot see or delete them, and says so at ERROR at every start,
naming the namespaces, the placements and both ways out, rather than leave them silently.

Such a placement is also reported Failed (at the re-sync), its message naming the permission the agent lacks and
the way out, and left out of the report's placement_ids. Before, its pods (read cluster-wide) still listed it there,
so the federator kept the job "Running" though the agent could neither follow nor cancel it. Failed, not Cancelled:
Cancelled says the cluster deleted the placement's objects and has the federator place the job again, while these
pods may still run and hold their accelerators (the job would run twice); the agent cannot delete them. The
message is a lost_placements.LostMessage: the agent sends it with JobUpdate.lost set, by which the federator
knows not to place the job again under its early-failure rule either: the job ends Failed with this message
(server/early_failures.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from federator.backends.kube.api import PODS, ForbiddenError, KubeApi, KubeError
from federator.backends.kube.kinds import resource_of
from federator.backends.kube.workloads import SELECTOR, adapter_for, placement_of
from federator.lost_placements import lost_message

if TYPE_CHECKING:
    from federator.backends.kube.backend import KubeBackend

log = logging.getLogger("federator.agent.kube")


def stranded(pods: Iterable[Mapping[str, Any]], base: str) -> dict[str, list[str]]:
    """Of the federator's pods, those in a namespace `<base>-*` (the per-queue namespaces of this agent's
    `--namespace`): namespace -> the placement ids running there, sorted."""
    found: dict[str, set[str]] = {}
    for pod in pods:
        meta = pod.get("metadata") or {}
        namespace = str(meta.get("namespace") or "")
        pid = placement_of(pod)
        if pid and namespace.startswith(f"{base}-"):
            found.setdefault(namespace, set()).add(pid)
    return {ns: sorted(pids) for ns, pids in sorted(found.items())}


def find(api: KubeApi, base: str) -> tuple[dict[str, list[str]], str]:
    """(stranded placements, why they cannot be adopted: "" when the agent may watch workloads everywhere).
    Blocking: call in a thread. A pod list that fails finds nothing (logged): the start goes on as before."""
    try:
        pods = api.list(PODS, None, label_selector=SELECTOR).get("items") or []
    except KubeError as exc:
        log.warning("could not look for placements left in %s-* namespaces (listing pods: %s)", base, exc)
        return {}, ""
    found = stranded(pods, base)
    if not found:
        return {}, ""
    for kind in ({"apiVersion": "batch/v1", "kind": "Job"}, {"apiVersion": "apps/v1", "kind": "Deployment"}):
        try:
            api.list(resource_of(adapter_for(kind)), None, label_selector=SELECTOR)
        except ForbiddenError as exc:
            return found, (f"its ServiceAccount may not list {_plural(kind)} in every namespace, which RBAC grants "
                           f"only with --namespace-per-queue ({exc})")
        except KubeError as exc:
            return found, f"listing {_plural(kind)} in every namespace failed ({exc})"
    return found, ""


def _plural(kind: Mapping[str, str]) -> str:
    """"jobs.batch": a kind as RBAC and kubectl name it."""
    res = resource_of(adapter_for(kind))
    group = res.group_version.rpartition("/")[0]
    return f"{res.plural}.{group}" if group else res.plural


def lost(found: Mapping[str, list[str]], problem: str, cluster: str) -> dict[str, str]:
    """Placement id -> the message it is reported Failed with: placements this agent may no longer read or delete
    (`problem`, naming the permission) in the per-queue namespaces of `found`."""
    where = cluster or "this cluster"
    return {pid: lost_message(where, f"the placement runs in namespace {ns}, which it no longer watches "
                              f"(--namespace-per-queue is off), and {problem}; it can neither follow nor cancel it, "
                              f"and its pods may still run there holding their accelerators: the provider deletes "
                              f"them (kubectl delete jobs,deployments -n {ns} -l app.kubernetes.io/managed-by="
                              f"federator) or runs the agent with --namespace-per-queue again (chart: "
                              f"namespacePerQueue: true)")
            for ns, pids in found.items() for pid in pids}


async def adopt(backend: KubeBackend) -> dict[str, str]:
    """Without --namespace-per-queue: adopt the placements left in per-queue namespaces (see the module), before
    the workload informers start. Returns those it cannot adopt, each with the message to report it Failed with
    once the backend has started."""
    tenants = backend.tenants
    if tenants.per_queue:
        return {}  # it watches every tenant namespace already
    found, problem = await asyncio.to_thread(find, backend.api, tenants.base)
    if not found:
        return {}
    listed = "; ".join(f"{ns}: {', '.join(pids[:5])}" + (f" and {len(pids) - 5} more" if len(pids) > 5 else "")
                       for ns, pids in found.items())
    if problem:
        log.error("placements still run in per-queue namespaces while --namespace-per-queue is off (%s), and this "
                  "agent cannot see or cancel them: %s. Each is reported Failed (its phase cannot be followed, "
                  "nor a cancel reach it), while its pods may still run. Either run with --namespace-per-queue "
                  "(chart: namespacePerQueue: true) until they end, or delete them (kubectl delete "
                  "jobs,deployments -n NAMESPACE -l app.kubernetes.io/managed-by=federator)", listed, problem)
        return lost(found, problem, backend.cluster)
    tenants.adopted = frozenset(found)
    for informer in backend.workloads.values():  # not started yet: they list every namespace from their start
        informer.namespace, informer.accept = None, tenants.owns
    log.warning("--namespace-per-queue is off, but placements still run in per-queue namespaces (%s): watching "
                "them there too, so they are reported and may be cancelled; new placements go to %s",
                listed, tenants.base)
    return {}


__all__ = ["adopt", "find", "lost", "stranded"]
