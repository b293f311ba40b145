"""FederatedJobs that never became a job: waiting for their Queue, or refused, and open to a corrected spec.

A GitOps tool (Argo CD, Flux) applies objects in no guaranteed order and fixes
a mistake by applying the corrected spec over the object; it never deletes and
creates again on its own (outside QA G1, G3). So two states of a FederatedJob
the federator has not admitted stay open to change:

- **waiting for its Queue** (`queue_wait_status`): a job whose Queue is not
  declared yet (rule undeclared-queue) or whose Queue's namespaceSelector does
  not select its namespace yet waits Pending, `pendingReason.code`
  QueueNotAllowed, and is judged again every `QUEUE_WAIT_RETRY_SECONDS` for as
  long as it exists, as Kueue keeps a Workload whose LocalQueue is missing;
  the Queue created, or the namespace labelled, a moment later admits it.
  Before, it was refused for good, and the next sync found it "unchanged".
- **refused** (`resources.invalid_status`: Failed, no jobId).

The CRD's immutability rules (deploy/helm/federator/crds/federatedjobs.yaml)
let the spec of either change (`open_to_change` is the same test); the
controller judges the new generation. Before it submits such an object it
`reopened_status`es it, with the object's resourceVersion as precondition: the
CRD then holds the spec still, so the job is made of the spec the object keeps
(a spec changed between the read and the job's status write would otherwise
be rebuilt, after a restart, as a job it never was).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federator.backends.kube.api import Obj
from federator.backends.kube.resources import condition, timestamp
from federator.model import JobPhase, ReasonCode

#: pendingReason.code (and the Warning Event's reason) of a FederatedJob waiting for its Queue.
QUEUE_NOT_ALLOWED = "QueueNotAllowed"
#: How often a FederatedJob waiting for its Queue is judged again (the Queue or the namespace label appearing).
QUEUE_WAIT_RETRY_SECONDS = 5.0
#: pendingReason.code of a FederatedJob not submitted yet: a FederatedJob its spec.dependsOn names is not accepted
#: (dependency_waits.py); an accepted job waiting on others has the same code, and a jobId.
DEPENDENCY = ReasonCode.DEPENDENCY.value


def open_to_change(cr: Mapping[str, Any]) -> bool:
    """Whether the CRD lets this object's spec change: never a job (no jobId), and refused (Failed), waiting for
    its Queue, or waiting for a FederatedJob its spec.dependsOn names to be accepted (dependency_waits.py). The
    same test as the CRD's rules make of the old object. Never an array (spec.array): it is no job, so an ended one
    would pass as refused (new59 N6)."""
    status = cr.get("status") or {}
    if status.get("jobId") or (cr.get("spec") or {}).get("array") is not None:
        return False
    reason = status.get("pendingReason") or {}
    return status.get("phase") == JobPhase.FAILED.value or reason.get("code") in (QUEUE_NOT_ALLOWED, DEPENDENCY)


def queue_wait_status(message: str, *, generation: int, now: float,
                      old_conditions: list[Mapping[str, Any]] | None = None, code: str = QUEUE_NOT_ALLOWED) -> Obj:
    """Pending, not admitted: its Queue does not let it in (yet), or (`code` DEPENDENCY) a job it names is not
    accepted yet. The conditions a pending job has, Placed False with the reason, so `kubectl wait
    --for=condition=Placed` waits on it as on any pending job."""
    stamp = timestamp(now)
    old = {str(c.get("type")): c for c in old_conditions or []}
    return {"phase": JobPhase.PENDING.value, "message": message, "observedGeneration": generation,
            "pendingReason": {"code": code, "message": message},
            "conditions": [condition("Placed", False, code, message, stamp, generation, old),
                           condition("Running", False, JobPhase.PENDING.value, "", stamp, generation, old),
                           condition("Finished", False, JobPhase.PENDING.value, "", stamp, generation, old)]}


def reopened_status(generation: int, *, now: float) -> Obj:
    """Pending, judged now: what a refused or queue-waiting object's status says once the controller takes its
    spec (its refusal, or its wait, is no longer the object's word), until the job's own status replaces it."""
    stamp = timestamp(now)
    message = f"spec of generation {generation} being judged"
    return {"phase": JobPhase.PENDING.value, "message": message, "observedGeneration": generation,
            "pendingReason": None,
            "conditions": [condition(kind, False, JobPhase.PENDING.value, "", stamp, generation, {})
                           for kind in ("Placed", "Running", "Finished")]}


__all__ = ["DEPENDENCY", "QUEUE_NOT_ALLOWED", "QUEUE_WAIT_RETRY_SECONDS", "open_to_change", "queue_wait_status",
           "reopened_status"]
