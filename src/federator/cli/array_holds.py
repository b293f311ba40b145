"""`federator hold ARRAY_ID` and `federator release ARRAY_ID`: every task of an array at once (Slurm's `scontrol hold
1234` of an array), where the key names no job.

Why a module of its own: `hold` and `release` take jobs one by one (cli/hold.py); an array's id is tried when no
job has the key, as `federator cancel ARRAY_ID` does (cli/cancel.py). Done by the client over the calls a user has
(ListJobs with filter.array_id, then each task's Hold or Release, each audited as the task's own), not by a new
request: an array is at most 1000 tasks, and a hold of each is what an auditor reads either way.

What is done to each task (its phase and hold as listed): `hold` holds the Pending tasks not held (a throttled one
too: it takes no slot then); a Placed or Running task is passed over (a hold never stops work that runs), as are
ended ones. `release` releases the held ones. A task that changed in between (placed before its Hold) is counted
as passed over; any other refusal (an admin's hold you may not release) is said and makes the exit status. An
array you may see but not manage (a group's, `jobs: view`) is refused for its owner, who is every task's (one
Submit made them): that refusal is said once and the other tasks are not asked, where each was (an array of 1000
made 1000 refused calls, 1000 error lines and 1000 audit lines of one mistaken command). One line says what was
done: `array sweep-3f9a1c: held 7 of 10 tasks (passed over: 2 placed or running (a hold never stops work that
runs), 1 ended)`; of an array whose every task has ended, `array sweep-3f9a1c: all 10 of its tasks had ended:
nothing to hold`, exit 0, as `cancel` says it.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.cli import calls
from federator.cli.exit_codes import error_reason
from federator.cli.job_list import list_matching
from federator.model import Job, JobPhase
from federator.model.array import array_id_problem
from federator.server.errors import Refused
from federator.server.job_listing import Query

NOT_YOURS = (Refused.NOT_OWNER.value, Refused.GROUP_VIEW_ONLY.value)
"""The ErrorInfo reasons of a refusal by the job's owner rather than by the task (an admin's hold is ADMIN_ONLY)."""


def tasks_of(jobs: jobs_pb2_grpc.JobServiceStub, key: str) -> list[Job]:
    """The tasks of the array `key` names that the caller may see ([] when it names none, or is no array id)."""
    if array_id_problem(key):
        return []
    return list_matching(lambda request: jobs.List(request, timeout=calls.CALL_TIMEOUT), Query(array_id=key))


def hold_array(jobs: jobs_pb2_grpc.JobServiceStub, array_id: str, tasks: list[Job], action: str,
               refused: Callable[[str, grpc.RpcError], None]) -> str:
    """Hold (or release) each task it applies to; the line that says what was done. `refused(task_id, err)` is
    told of each refusal that is not a task having moved on."""
    if tasks and all(job.phase.is_terminal for job in tasks):  # as `cancel ARRAY_ID` says it (cli/cancel.py)
        return ended_line(array_id, len(tasks), action)
    holding = action == "hold"
    done = moved = 0
    wanted = [job for job in tasks if job.phase is JobPhase.PENDING and (job.hold is None) == holding]
    for at, job in enumerate(wanted):
        try:
            if holding:
                after = jobs.Hold(jobs_pb2.HoldJobRequest(job_id=job.job_id), timeout=calls.CALL_TIMEOUT)
            else:
                after = jobs.Release(jobs_pb2.ReleaseJobRequest(job_id=job.job_id), timeout=calls.CALL_TIMEOUT)
        except grpc.RpcError as err:
            if err.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                moved += 1  # placed (or ended, or removed) since it was listed: passed over as those listed so
                continue
            refused(job.job_id, err)
            if err.code() is grpc.StatusCode.PERMISSION_DENIED and error_reason(err) in NOT_YOURS:
                return _line(array_id, tasks, action, done, _rest(tasks, holding, moved, not_yours=len(wanted) - at))
            continue
        task = convert.job_from_pb(after)
        if (task.hold is not None) == holding and not task.phase.is_terminal:
            done += 1
        else:
            moved += 1
    return _line(array_id, tasks, action, done, _rest(tasks, holding, moved))


def ended_line(array_id: str, count: int, action: str) -> str:
    """An array whose every task has ended: nothing to do, which is no failure (exit 0, as a cancel of it). Before,
    `held 0 of 3 tasks (passed over: 3 ended)` read as if the hold had been tried and failed (small60)."""
    return f"array {array_id}: {'its task' if count == 1 else f'all {count} of its tasks'} had ended: nothing to " \
           f"{action}"


def _line(array_id: str, tasks: list[Job], action: str, done: int, rest: str) -> str:
    """`array ID: held N of M tasks (passed over: ...)`."""
    return f"array {array_id}: {'held' if action == 'hold' else 'released'} {done} of {len(tasks)} task" \
           f"{'s' if len(tasks) != 1 else ''}{rest}"


def _rest(tasks: list[Job], holding: bool, moved: int, *, not_yours: int = 0) -> str:
    """The tasks passed over, and why; `not_yours`: those not asked once the array's owner was refused."""
    active = sum(1 for j in tasks if j.phase in (JobPhase.PLACED, JobPhase.RUNNING))
    ended = sum(1 for j in tasks if j.phase.is_terminal)
    already = sum(1 for j in tasks if j.phase is JobPhase.PENDING and (j.hold is not None) == holding)
    running = "placed or running (a hold never stops work that runs)" if holding else "placed or running"
    parts = [f"{n} {what}" for n, what in ((active, running), (ended, "ended"),
                                           (already, "held already" if holding else "not held"),
                                           (moved, "changed meanwhile"),
                                           (not_yours, f"not yours to {'hold' if holding else 'release'}")) if n]
    return f" (passed over: {', '.join(parts)})" if parts else ""


__all__ = ["ended_line", "hold_array", "tasks_of"]
