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

Only this agent's own pods count (agent_identity.py: its cluster and `--namespace`, written on every pod it makes).
The managed-by label says "a federator agent's", not whose: an agent whose RBAC was narrowed took the pods of
another agent on the same member, whose `--namespace` was `<this one's>-team`, for its own leftovers, and
reported those placements to its federator as lost, Failed (the member's name, which ends every placement id, the
same in both federations). Another agent's pods are left alone (logged at INFO); pods that carry no identity
(made by an agent before 0.12.0, or by hand) cannot be told apart: never reported, named at WARNING with the way
out, and still adopted where the agent may watch workloads everywhere (each workload then kept only if it is
labelled with the queue of its namespace: `TenantNamespaces.owns`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from federator.backends.kube.agent_identity import AgentIdentity
from federator.backends.kube.api import PODS, ForbiddenError, KubeApi, KubeError
from federator.backends.kube.kinds import resource_of
from federator.backends.kube.workloads import SELECTOR, adapter_for, placement_of
from federator.lost_placements import lost_message

if TYPE_CHECKING:
    from federator.backends.kube.backend import KubeBackend

log = logging.getLogger("federator.agent.kube")


@dataclass(frozen=True, slots=True)
class Found:
    """The federator's pods in namespaces `<base>-*`, by whose they are: namespace -> placement ids, sorted."""

    ours: dict[str, list[str]] = field(default_factory=dict)  # carrying this agent's identity
    unmarked: dict[str, list[str]] = field(default_factory=dict)  # carrying none: made before 0.12.0, or by hand
    others: dict[str, list[str]] = field(default_factory=dict)  # another agent's (its identity another's)

    def adoptable(self) -> dict[str, list[str]]:
        """Where the agent, if it may watch workloads everywhere, looks for its own (`owns` decides each)."""
        out = {ns: list(pids) for ns, pids in self.ours.items()}
        for ns, pids in self.unmarked.items():
            out[ns] = sorted({*out.get(ns, []), *pids})
        return dict(sorted(out.items()))


def stranded(pods: Iterable[Mapping[str, Any]], base: str, identity: AgentIdentity | None = None) -> Found:
    """Of the federator's pods, those in a namespace `<base>-*` (the per-queue namespaces of this agent's
    `--namespace`), by whose they are (`identity`: this agent's; None takes every one as unmarked)."""
    found: dict[str, dict[str, set[str]]] = {"ours": {}, "unmarked": {}, "others": {}}
    for pod in pods:
        meta = pod.get("metadata") or {}
        namespace = str(meta.get("namespace") or "")
        pid = placement_of(pod)
        if pid and namespace.startswith(f"{base}-"):
            mine = identity.owns(pod) if identity is not None else None
            which = "unmarked" if mine is None else "ours" if mine else "others"
            found[which].setdefault(namespace, set()).add(pid)
    ours, unmarked, others = ({ns: sorted(pids) for ns, pids in sorted(found[k].items())}
                              for k in ("ours", "unmarked", "others"))
    return Found(ours, unmarked, others)


def find(api: KubeApi, base: str, identity: AgentIdentity | None = None) -> tuple[Found, str]:
    """(stranded placements, why they cannot be adopted: "" when the agent may watch workloads everywhere).
    Blocking: call in a thread. A pod list that fails finds nothing (logged): the start goes on as before."""
    try:
        pods = api.list(PODS, None, label_selector=SELECTOR).get("items") or []
    except KubeError as exc:
        log.warning("could not look for placements left in %s-* namespaces (listing pods: %s)", base, exc)
        return Found(), ""
    found = stranded(pods, base, identity)
    if not found.ours and not found.unmarked:
        return found, ""
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


def _listed(found: Mapping[str, list[str]]) -> str:
    return "; ".join(f"{ns}: {', '.join(pids[:5])}" + (f" and {len(pids) - 5} more" if len(pids) > 5 else "")
                     for ns, pids in found.items())


async def adopt(backend: KubeBackend) -> dict[str, str]:
    """Without --namespace-per-queue: adopt the placements left in per-queue namespaces (see the module), before
    the workload informers start. Returns those it cannot adopt, each with the message to report it Failed with
    once the backend has started: only this agent's own (their pods carry its identity)."""
    tenants = backend.tenants
    if tenants.per_queue:
        return {}  # it watches every tenant namespace already
    found, problem = await asyncio.to_thread(find, backend.api, tenants.base, backend.identity)
    if found.others:
        log.info("pods of other federator agents run in namespaces named like this agent's per-queue ones (%s): "
                 "they carry another agent's identity, so they are left alone", _listed(found.others))
    if problem and found.unmarked:
        log.warning("federator pods that carry no agent's identity (made by an agent older than 0.12.0, or by hand) "
                    "run in namespaces named like this agent's per-queue ones (%s), which it may not watch (%s). "
                    "Whose they are cannot be told, so they are not reported: if they are this agent's, run it with "
                    "--namespace-per-queue (chart: namespacePerQueue: true) until they end, or delete them "
                    "(kubectl delete jobs,deployments -n NAMESPACE -l app.kubernetes.io/managed-by=federator)",
                    _listed(found.unmarked), problem)
    if problem:
        if not found.ours:
            return {}
        log.error("placements still run in per-queue namespaces while --namespace-per-queue is off (%s), and this "
                  "agent cannot see or cancel them: %s. Each is reported Failed (its phase cannot be followed, "
                  "nor a cancel reach it), while its pods may still run. Either run with --namespace-per-queue "
                  "(chart: namespacePerQueue: true) until they end, or delete them (kubectl delete "
                  "jobs,deployments -n NAMESPACE -l app.kubernetes.io/managed-by=federator)", _listed(found.ours),
                  problem)
        return lost(found.ours, problem, backend.cluster)
    adoptable = found.adoptable()
    if not adoptable:
        return {}
    tenants.adopted = frozenset(adoptable)
    for informer in backend.workloads.values():  # not started yet: they list every namespace from their start
        informer.namespace, informer.accept = None, tenants.owns
    log.warning("--namespace-per-queue is off, but placements still run in per-queue namespaces (%s): watching "
                "them there too, so they are reported and may be cancelled; new placements go to %s",
                _listed(adoptable), tenants.base)
    return {}


__all__ = ["Found", "adopt", "find", "lost", "stranded"]
