"""A gang whose pods the member refuses to create: read from the Job controller's FailedCreate Events.

Why (outside provider QA F6): a ResourceQuota in the workload namespace refused every pod of a 2 x 8 gang
(`Error creating: pods "..." is forbidden: exceeded quota: provider-cap, requested: requests.nvidia.com/gpu=8,
... limited: requests.nvidia.com/gpu=4`), and for two minutes the user read "0 of 2 replicas running", then
"gang timeout ... 0 of 2 pods bound", the word "quota" nowhere. The agent holds quota room back from its report
(resource_quotas.py), but a quota can change between report and launch, and a LimitRange, Pod Security or an
admission webhook refuses pods the same way. Such a refusal lasts until the provider changes something, so the
placement is refused at once in the member's words, and the federator places the job elsewhere.

Where the words are: the Job controller does not put them in the Job's status (no condition says it; the
Deployment path's ReplicaFailure condition is the ReplicaSet controller's, workloads/adapter.py `not_created`);
it writes a Warning Event on the Job, reason `FailedCreate`, message `Error creating: <the API server's error>`,
again at each retry (aggregated: the same Event, its count raised). A JobSet's (and a TrainJob's, through its
JobSet) pods are its child Jobs' (`<jobset>-<replicatedJob>-<index>`), so their Events are on those Jobs.

How they are read: one watch of Events with the field selector `involvedObject.kind=Job,reason=FailedCreate` in
the namespaces the agent's workloads are in (the API server filters: the agent holds only those Events, which
the API server drops after its event TTL, an hour by default; watching every namespace, per queue, it keeps
only those of `--namespace` and `<namespace>-...`). An Event counts for a placement when it is on the
placement's Job (the same name; the same uid where both say one), or on a Job named after the placement's
workload and a dash (its child Jobs). Which words refuse: "forbidden" (a quota, a LimitRange, Pod Security, RBAC
of the controller), "exceeded quota", or an admission webhook that "denied the request". A webhook that could
not be called, or any other error, is taken as passing (the controller retries; the gang timeout still bounds
it).

A restarted agent: the Events listed when the watch starts come before the agent has started (its placements
not yet judged, nothing reported), so each is judged again once it has: a refusal said before the restart still
ends the placement in the member's words. Before, such a gang waited for the next FailedCreate (the member's event
spam filter lets one through every five minutes once a Job has had 25) or for the gang timeout, which named no
quota.

RBAC: `events` list and watch where the agent runs workloads (deploy/kubernetes/rbac-agent*.yaml, the agent
chart). Without it the agent logs how to mend it once and works as before: the gang timeout ends the gang.

Pure apart from `CreateRefusals`, which holds the informer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from federator.backends.kube.api import EVENTS, ForbiddenError, KubeApi, KubeError
from federator.backends.kube.informer import EventHandler, Informer

FAILED_CREATE_SELECTOR = "involvedObject.kind=Job,reason=FailedCreate"
REFUSING_WORDS = ("forbidden", "exceeded quota", "denied the request")
"""Words of a FailedCreate message that say the member refuses the pod, not that it failed for a moment."""

Obj = Mapping[str, Any]
log = logging.getLogger("federator.agent.kube")


def refusing(event: Obj) -> str:
    """The Event's message when it is a FailedCreate saying the member refuses the pods ("" when it is not)."""
    message = str(event.get("message") or "")
    if event.get("reason") != "FailedCreate" or not any(w in message.lower() for w in REFUSING_WORDS):
        return ""
    return message


def names_workload(job_name: str, workload_name: str, *, own_job: bool) -> bool:
    """Whether a Job of that name runs the workload's pods: the workload itself (`own_job`: it is a Job), or one
    of its child Jobs, named after it and a dash (a JobSet's)."""
    return job_name == workload_name if own_job else job_name.startswith(f"{workload_name}-")


def refusal_for(events: Iterable[Obj], namespace: str, workload_name: str, *, own_job: bool, uid: str = "") -> str:
    """The member's refusal of the workload's pods, as the first refusing Event on its Job(s) says it, with the
    Job named ("" when none says so)."""
    for event in events:
        involved = event.get("involvedObject") or {}
        name = str(involved.get("name") or "")
        if involved.get("namespace") != namespace or not names_workload(name, workload_name, own_job=own_job):
            continue
        if own_job and uid and involved.get("uid") and involved.get("uid") != uid:
            continue  # an earlier Job of that name
        if words := refusing(event):
            return f"the member refuses to create its pods (Job {namespace}/{name}, FailedCreate): {words}"
    return ""


class CreateRefusals:
    """The FailedCreate Events on Jobs where the agent runs workloads, watched (`informer`) where RBAC lets it."""

    def __init__(self, api: KubeApi, *, namespace: str | None, base: str, on_event: EventHandler,
                 watch_timeout: int = 60) -> None:
        self.api = api
        self.namespace = namespace
        self.base = base
        # Watching every namespace (per queue), the agent keeps only the Events of its own: `base` and `base-...`.
        self.informer = Informer(api, EVENTS, namespace=namespace, field_selector=FAILED_CREATE_SELECTOR,
                                 on_event=on_event, name="events", watch_timeout=watch_timeout,
                                 accept=None if namespace is not None else self._ours)

    def _ours(self, event: Obj) -> bool:
        namespace = str((event.get("metadata") or {}).get("namespace") or "")
        return namespace == self.base or namespace.startswith(f"{self.base}-")

    def refusal(self, namespace: str, workload_name: str, *, own_job: bool, uid: str = "") -> str:
        """See `refusal_for`, over the Events seen."""
        return refusal_for(self.informer.cache.values(), namespace, workload_name, own_job=own_job, uid=uid)

    def readable(self) -> bool:
        """Blocking: whether the agent may list Events (the agent's RBAC grants it). If not, a gang the member
        refuses to create is ended by the gang timeout, and the log says how to mend it."""
        try:
            self.api.list(EVENTS, self.namespace, field_selector=FAILED_CREATE_SELECTOR)
        except ForbiddenError as exc:
            log.warning("Events not read: the agent may not list events (%s); a gang whose pods the member refuses "
                        "to create (a ResourceQuota, a LimitRange) is refused only at the gang timeout. Apply the "
                        "agent chart's RBAC (deploy/kubernetes/rbac-agent.yaml)", exc)
            return False
        except KubeError as exc:
            log.warning("Events not read: listing events failed (%s)", exc)
            return False
        return True


__all__ = ["FAILED_CREATE_SELECTOR", "CreateRefusals", "names_workload", "refusal_for", "refusing"]
