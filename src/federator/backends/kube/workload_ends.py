"""When a placement's workload ended, as the member recorded it: what the agent dates the end by.

Why a module of its own: the agent noted an end when its callback ran, and so a job that ended while the agent was
paused, or while its member's API server was slow to tell it, was billed to when the agent noticed (outside billing
QA F9: 181.1 accelerator-seconds for a 120 accelerator-second job, after an 18 s pause of the agent). The member
knows better: each container of a pod says when it stopped (`state.terminated.finishedAt`, written by the kubelet),
and a workload's controller records when the workload completed or failed (a Job's `completionTime`, the
lastTransitionTime of its terminal condition). This reads that time; the agent converts it to its own clock and
bounds it by what it saw itself (agent/ended.py), and the federator clamps it again (server/end_times.py), so a
wrong member clock shortens a bill to the run's start at worst, never lengthens it.

In order, the first that says:

1. for a Failed workload, the fault that failed it, where its time is known (pod_faults.py: the failing container's
   finishedAt, read with the placement's pods once it failed; a deletion's request): the gang ended then;
2. the pods the agent holds, when every container of every one of them stopped: the last finishedAt;
3. the workload's own record: `status.completionTime` (Job, the Kubeflow kinds), `status.endTime` (RayJob), else
   when its terminal condition turned True (a JobSet's Completed or Failed, a Job's Failed).

None when none says (the agent then dates the end when it saw it). Kubernetes writes these to the second, so an
end read here is up to a second early: a bill it shortens by under a second, never lengthens.

Pure: plain dicts (the API objects) in, a number out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from federator.backends.kube.pod_faults import PodFault, api_seconds

TERMINAL_CONDITIONS = ("Complete", "SuccessCriteriaMet", "Completed", "Succeeded", "Failed", "FailureTarget")
"""The condition types whose turning True ends a workload, across the kinds the agent reads."""
_RECORDED_ENDS = ("completionTime", "endTime")


def pods_finished_at(pods: Iterable[Mapping[str, Any]]) -> float | None:
    """The last finishedAt of the pods' containers when every container of every pod stopped and says when; None
    when a pod is still running a container (the workload has not released it), or there is no pod."""
    last: float | None = None
    for pod in pods:
        status = pod.get("status") or {}
        containers = list(status.get("containerStatuses") or [])
        if not containers:
            return None
        for cs in containers:
            finished = api_seconds((((cs or {}).get("state") or {}).get("terminated") or {}).get("finishedAt"))
            if finished is None:
                return None
            last = finished if last is None else max(last, finished)
    return last


def recorded_end(workload: Mapping[str, Any]) -> float | None:
    """When the workload's controller recorded it ended: its completion or end time, else when its terminal
    condition turned True (the latest, if several did); None if it says neither."""
    status = workload.get("status") or {}
    for key in _RECORDED_ENDS:
        if (at := api_seconds(status.get(key))) is not None:
            return at
    turned = [at for c in status.get("conditions") or [] if isinstance(c, Mapping)
              and c.get("type") in TERMINAL_CONDITIONS and c.get("status") == "True"
              and (at := api_seconds(c.get("lastTransitionTime"))) is not None]
    return max(turned, default=None)


def workload_ended_at(workload: Mapping[str, Any], pods: Iterable[Mapping[str, Any]],
                      fault: PodFault | None = None) -> float | None:
    """When a workload in a final phase ended on the member's clock (see module for the order), None if unknown."""
    if fault is not None and fault.at is not None:
        return fault.at
    pods = list(pods)
    if pods and (finished := pods_finished_at(pods)) is not None:
        return finished
    return recorded_end(workload)


__all__ = ["TERMINAL_CONDITIONS", "pods_finished_at", "recorded_end", "workload_ended_at"]
