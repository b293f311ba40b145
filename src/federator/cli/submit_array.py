"""`federator submit job.yaml --array 0-99%10` and `federator cancel ARRAY_ID`: job arrays from the command line.

Why a module of its own: `submit` and `cancel` each gain a branch, and what an array asks and answers (one document
only, the request id of the array, the summary line, the fallback of `cancel` to an array's id) is one concern
(server/arrays.py keeps the tasks and the throttle; jobs.proto SubmitRequest.array is the contract).

- The array's request id is derived from the job's (its file's own, or its content's: cli/request_ids.py) and the
  indices, so the same command run again answers the same tasks, and the same file with other indices is another
  array.
- `federator cancel KEY`: KEY is a job first (its id, namespace/name or name: a task is `sweep-7`, Slurm's
  `scancel 1234_7`); when no job has it, every task of the array of that id (CancelJobs with array_id: one
  `cancel.bulk` audit line, and each task's own), as `scancel 1234` does. No --yes: naming the array is the
  choice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import grpc

from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.model import Job
from federator.model.array import parse_indices


def arrayed(requests: list[jobs_pb2.SubmitRequest], indices: str) -> str:
    """Make the one Submit an array's (in place); what is wrong ('' if nothing)."""
    if len(requests) != 1:
        return (f"--array: takes one job document, and these files hold {len(requests)}; an array's tasks differ "
                "only by their index (FEDERATOR_ARRAY_TASK_ID)")
    parsed = parse_indices(indices)
    if isinstance(parsed, str):
        return "--array: " + parsed.removeprefix("array.indices: ")
    request = requests[0]
    request.array.CopyFrom(jobs_pb2.JobArray(indices=indices, max_running=parsed.max_running))
    base = request.request_id or ""
    digest = hashlib.sha256(f"{base}\x00{indices}".encode()).hexdigest()[:40]
    request.request_id = f"array-{digest}"
    request.spec.annotations.pop("federator.io/request-id", None)  # the array's id is the request's, derived above
    return ""


def summary(array_id: str, tasks: Sequence[Job], *, replayed: bool, max_running: int) -> str:
    """The line an array's submit prints."""
    first, last = tasks[0].spec, tasks[-1].spec
    names = first.name if len(tasks) == 1 else f"{first.name} .. {last.name}"
    throttle = f", at most {max_running} running at once" if max_running else ""
    held = " held" if tasks[0].hold is not None else ""
    verb = "unchanged (submitted before)" if replayed else f"submitted{held}"
    return (f"array {array_id} {verb}: {len(tasks)} task{'s' if len(tasks) != 1 else ''} {names} "
            f"({first.namespace}, queue {first.queue}){throttle}; cancel every task: federator cancel {array_id}")


def cancel_array(stub: jobs_pb2_grpc.JobServiceStub, array_id: str, *, timeout: float) -> tuple[int, int, str]:
    """Every task of the array cancelled, page after page: (tasks matched, cancelled, the audit operation id).
    Raises the RpcError of a federator before 0.15.0 or a store that refused (the tasks before it stay
    cancelled)."""
    token, matched, cancelled, operation = "", 0, 0, ""
    while True:
        reply = stub.CancelJobs(jobs_pb2.CancelJobsRequest(array_id=array_id, page_token=token, max_jobs=500),
                                timeout=timeout)
        matched, operation = reply.matched, reply.operation_id
        cancelled += sum(1 for r in reply.results if r.outcome == jobs_pb2.CANCEL_OUTCOME_CANCELLED)
        failed = [r for r in reply.results if r.outcome == jobs_pb2.CANCEL_OUTCOME_FAILED]
        if failed:
            raise _Stopped(f"task {failed[0].job_id}: {failed[0].message}; {cancelled} cancelled so far: "
                           f"run the cancel again for the rest")
        token = reply.next_page_token
        if not token:
            return matched, cancelled, operation


class _Stopped(grpc.RpcError):
    """The federator's store did not take a task's cancel."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return self.message


__all__ = ["arrayed", "cancel_array", "summary"]
