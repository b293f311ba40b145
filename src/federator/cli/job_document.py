"""`federator get job NAME -o yaml|json`: a job as the FederatedJob document a user writes, with its status.

Why: `-o yaml` printed the store's row (`accelerator_milli: 8000`, `memory_bytes: 68719476736`, `submitted_at:
1796477750.01`), names and units no job file has, so what the runbooks call "the request" could not be read
against the file, nor edited and submitted again (outside QA). Now the request is in the job file's own shape
(`jobfile_writing.spec_to_document`, the inverse of `parse_job`, with quantities as a person writes them: `cpu: "32"`,
`memory: 64Gi`; not in spec_to_document itself, whose bytes derive the CLI's request ids), so `federator submit
-f` takes the printed document as it is (a job file's `status` is read and ignored); and the status is the
FederatedJob status the Kubernetes store writes (`resources.job_status`: camelCase, times in RFC 3339 UTC), so
`federator get job` and `kubectl get fj -o yaml` name each thing alike.

The annotations the federator sets on a job are left out of its metadata: the owner (`federator.io/user`,
`federator.io/groups`) is in `status.owner`, and the request id (`federator.io/request-id`) names one submission:
a document submitted again with it would be answered "unchanged", its edits ignored. So is an array task's
membership (`federator.io/array-*`, server/arrays.py), which only an array Submit may set: it is said as
`status.array` (arrayId, taskId, maxRunning), and the document submitted again is a job of its own.
"""

from __future__ import annotations

import time
from typing import Any

from federator.backends.kube.resources import hold_status, job_status
from federator.cli.output import cores
from federator.jobfile import REQUEST_ID_ANNOTATION
from federator.jobfile_writing import spec_to_document
from federator.model import Job, JobSpec, format_bytes
from federator.model.array import ARRAY_ANNOTATIONS
from federator.security.authz import DELEGATE_ANNOTATION, GROUPS_ANNOTATION, USER_ANNOTATION

SET_BY_THE_FEDERATOR = frozenset({REQUEST_ID_ANNOTATION, USER_ANNOTATION, GROUPS_ANNOTATION, DELEGATE_ANNOTATION,
                                  *ARRAY_ANNOTATIONS})
"""Job annotations the federator writes, whatever a submitted job said (security/authz.py, server/intake.py)."""

KUBERNETES_OBJECT_STATUS = ("conditions", "observedGeneration")
"""Status fields about a FederatedJob object (its generation, its conditions' transition times), which a job
read over the API has none of: left out rather than made up."""


def request_document(spec: JobSpec) -> dict[str, Any]:
    """The job file of `spec`: what `parse_job` reads back into the same spec, less the federator's annotations."""
    doc = spec_to_document(spec)
    resources = doc["spec"].get("resources")
    if resources:
        if spec.resources.cpu_milli:
            resources["cpu"] = cores(spec.resources.cpu_milli)
        if spec.resources.memory_bytes:
            resources["memory"] = format_bytes(spec.resources.memory_bytes)
    meta = doc["metadata"]
    annotations = {k: v for k, v in meta.pop("annotations", {}).items() if k not in SET_BY_THE_FEDERATOR}
    if annotations:
        meta["annotations"] = annotations
    return doc


def job_document(job: Job, *, now: float | None = None) -> dict[str, Any]:
    """The FederatedJob document of `job`: its request (`request_document`) and its status."""
    status = job_status(job, now=time.time() if now is None else now)
    for key in KUBERNETES_OBJECT_STATUS:
        status.pop(key, None)
    if job.hold is not None and job.phase.is_terminal:  # the record of who held a job that ended held (types.proto
        status["hold"] = hold_status(job.hold)  # Job.hold), which a FederatedJob's status drops (kubectl's Held column)
    task = job.spec.array
    if task is not None:  # a task of an array (types.proto ArrayTask)
        status["array"] = {"arrayId": task.array_id, "taskId": task.task_id, "maxRunning": task.max_running}
    return {**request_document(job.spec), "status": status}


__all__ = ["SET_BY_THE_FEDERATOR", "job_document", "request_document"]
