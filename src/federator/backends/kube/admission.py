"""All-or-nothing admission of a gang on a member cluster: pure functions.

The federator places a gang whole, but the member's kube-scheduler binds its
pods one by one: under contention part of a gang can hold accelerators while
the rest waits forever. The agent closes that gap in one of two ways, and tells
the federator which one (`GangAdmission`, sent in its Hello):

* **Kueue** (`--kueue-queue LOCALQUEUE`): the workload is created suspended and
  labelled with the LocalQueue (`kueue_admit`); Kueue reserves quota for all of
  its pods at once and unsuspends it. While it waits, the agent reports Kueue's
  own words (`kueue_wait_message`, from the Workload object's conditions) so the
  user sees "waiting for Kueue admission on member-b: ..." instead of a silent
  Placed. For a placement Kueue holds longer than `--kueue-admission-timeout`
  (`DEFAULT_KUEUE_ADMISSION_TIMEOUT_SECONDS`) the agent asks the federator to
  move it (`JobUpdate.admission_overdue`): the federator moves the job if
  another member can run it now, else it keeps its place in Kueue's queue. The
  agent's report holds the ClusterQueue's quota back (`kueue_quota`), but not
  what a cohort may lend or what local work queued first takes; without the
  timeout a gang sent to a member whose queue cannot admit it would wait there
  for ever while other members sit idle.
* **No gang admitter** (the default): the agent gives each gang `--gang-timeout`
  seconds to have every pod bound to a node (`unbound_gang`); past that it
  deletes the whole workload and reports the placement refused with the reason,
  so the federator re-places it and no partial gang holds accelerators.

One seam for the workload adapters: `kueue_admit` is called on whatever object a
placement renders to, after rendering, so an adapter need not know about Kueue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from federator.backends.kube.workloads.common import REPLICAS_ANNOTATION
from federator.model.cluster import GangAdmission

KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KUEUE_GROUP = "kueue.x-k8s.io"
DEFAULT_GANG_TIMEOUT_SECONDS = 120.0
DEFAULT_KUEUE_ADMISSION_TIMEOUT_SECONDS = 600.0
"""How long Kueue may hold a placement before the agent asks the federator to move it. Longer than the gang
timeout: waiting for quota is Kueue doing its job, and a placement moved gives up its place in Kueue's queue
(the federator moves it only where it can run now)."""

Obj = dict[str, Any]


#: Where each kind Kueue integrates keeps its suspend switch ("" apiGroup = core, by Kueue's framework
#: names). Kinds that are not listed (Deployment, StatefulSet, LeaderWorkerSet) have none: Kueue gates
#: their pods itself once the queue label is on the object.
SUSPEND_FIELD: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("batch", "Job"): ("spec", "suspend"),
    ("jobset.x-k8s.io", "JobSet"): ("spec", "suspend"),
    ("trainer.kubeflow.org", "TrainJob"): ("spec", "suspend"),
    ("kubeflow.org", "PyTorchJob"): ("spec", "runPolicy", "suspend"),
    ("ray.io", "RayJob"): ("spec", "suspend"),
}


def group_kind(obj: Mapping[str, Any]) -> tuple[str, str]:
    api_version = str(obj.get("apiVersion") or "")
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    return group, str(obj.get("kind") or "")


def kueue_admit(manifest: Obj, queue: str) -> Obj:
    """Hand a rendered workload to Kueue: the LocalQueue label, and suspended where the kind can be.

    Changes `manifest` in place and returns it. With an empty `queue` it does nothing.
    """
    if not queue:
        return manifest
    meta = manifest.setdefault("metadata", {})
    meta.setdefault("labels", {})[KUEUE_QUEUE_LABEL] = queue
    path = SUSPEND_FIELD.get(group_kind(manifest))
    if path is not None:
        node = manifest
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = True
    return manifest


def is_suspended(workload: Mapping[str, Any]) -> bool:
    """The workload is held back by its suspend switch (Kueue has not admitted it, or evicted it)."""
    path = SUSPEND_FIELD.get(group_kind(workload))
    if path is None:
        return False
    node: Any = workload
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node is True


def owner_uids(obj: Mapping[str, Any]) -> list[str]:
    return [str(r.get("uid")) for r in (obj.get("metadata") or {}).get("ownerReferences") or [] if r.get("uid")]


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return None


def kueue_state(kueue_workload: Mapping[str, Any] | None) -> tuple[str, str]:
    """(state, Kueue's message) of a Kueue Workload object.

    States: "Admitted", "QuotaReserved" (quota held, admission checks pending),
    "Evicted", "Finished", or "Pending" (no quota yet; Kueue's message says why),
    and "Pending" with an empty message when Kueue has not written anything yet.
    """
    if not kueue_workload:
        return "Pending", ""

    def true(kind: str) -> Mapping[str, Any] | None:
        c = _condition(kueue_workload, kind)
        return c if c is not None and c.get("status") == "True" else None

    for state in ("Finished", "Evicted", "Admitted", "QuotaReserved"):
        c = true(state)
        if c is not None:
            return state, str(c.get("message") or c.get("reason") or "")
    pending = _condition(kueue_workload, "QuotaReserved")
    return "Pending", str((pending or {}).get("message") or (pending or {}).get("reason") or "")


def kueue_wait_message(cluster: str, queue: str, kueue_workload: Mapping[str, Any] | None) -> str:
    """What a suspended placement waits for, in Kueue's words (for `kubectl get fj -o wide`)."""
    state, message = kueue_state(kueue_workload)
    if state == "Evicted":
        what = f"evicted by Kueue on {cluster}"
    elif state == "QuotaReserved":
        what = f"quota reserved by Kueue on {cluster}, waiting for admission checks"
    else:
        what = f"waiting for Kueue admission on {cluster}"
    if not message:
        message = "no Workload yet" if kueue_workload is None else f"queued in LocalQueue {queue}"
    return f"{what}: {message}"


def gang_size(workload: Mapping[str, Any]) -> int:
    """The pods a placement's workload runs here (all its pod sets): its replicas annotation, else its
    parallelism or replicas, else 1."""
    raw = ((workload.get("metadata") or {}).get("annotations") or {}).get(REPLICAS_ANNOTATION)
    spec = workload.get("spec") or {}
    try:
        return int(raw or spec.get("parallelism") or spec.get("replicas") or 1)
    except (TypeError, ValueError):
        return 1


def unbound_gang(pods: Iterable[Mapping[str, Any]], replicas: int) -> str:
    """Why a gang is not whole on its nodes yet ("" when every one of its `replicas` pods is bound).

    A pod counts once it has a node (`spec.nodeName`): from then on it holds that
    node's accelerators, whether or not its containers started.
    """
    pods = [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            or (p.get("spec") or {}).get("nodeName")]
    bound = sum(1 for p in pods if (p.get("spec") or {}).get("nodeName"))
    if bound >= replicas:
        return ""
    why = ""
    for pod in pods:
        for c in (pod.get("status") or {}).get("conditions") or []:
            if c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("message"):
                why = f" ({c.get('message')})"
                break
        if why:
            break
    return f"{bound} of {replicas} pods bound to nodes{why}"


__all__ = [
    "DEFAULT_GANG_TIMEOUT_SECONDS", "DEFAULT_KUEUE_ADMISSION_TIMEOUT_SECONDS",
    "GangAdmission", "KUEUE_GROUP", "group_kind", "KUEUE_QUEUE_LABEL", "SUSPEND_FIELD",
    "is_suspended", "kueue_admit", "kueue_state", "kueue_wait_message", "owner_uids", "gang_size",
    "unbound_gang",
]
