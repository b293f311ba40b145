"""SubmitRequest.validate_only: every check and warning of a Submit, nothing made, reserved or stored.

Why: `federator submit --strict` submitted the job and, at a warning, cancelled it (outside QA HPC, stop 56). A
watcher or an auditor saw a job accepted then cancelled, and a scheduling cycle could place it in between, so a
member started a workload the user had refused. Now the CLI asks first: the federator runs the Submit's checks
(server/intake.py `Intake.check`: the same code path as a Submit, stopped before the job is reserved), answers its
warnings or its refusal, and the CLI submits only what passed.

Decided here:

- Audited as `submit.check`, never `submit`: a refused check is a probe of the policy an auditor should see, and
  an accepted one made nothing, so no `submit` line may claim a job was accepted.
- The answer's job has an empty job_id: nothing was made (a reply with an id is a Submit that was not a check:
  a federator older than 0.15.0 ignores validate_only; the CLI asks WhoAmI for "jobs.submit_validate_only" first).
- A request id seen before answers that job, replayed, as a Submit would: the Submit after it makes nothing new.
- With an array (since 0.16.0; 0.15.0 refused it, INVALID_ARGUMENT naming validate_only): `arrays.check_array`
  runs the array's own checks, every task's name, and every check of the first index's task, which stands for all
  (the tasks differ only by name and index; no check or warning reads either), so `submit --strict --array` refuses
  the whole array at a warning before any task is made. The pending caps over all the tasks stay the Submit's (all
  or none): a check cannot count tasks that do not exist as pending.
- A refused check counts in federator_jobs_rejected_total as the refused Submit would have; the Submit is then not
  sent, so nothing is counted twice.
"""

from __future__ import annotations

from collections.abc import Callable

from federator.api.v1 import jobs_pb2
from federator.model import Job, JobHold, JobSpec
from federator.server.arrays import array_request, check_array
from federator.server.dependencies import Visible
from federator.server.federator import Federator
from federator.server.intake import SubmitError

ACTION = "submit.check"
"""The audit action of a check (security/audit.py ACTIONS)."""


def check_submit(fed: Federator, request: jobs_pb2.SubmitRequest, owned: JobSpec, hold: JobHold | None,
                 visible: Visible, taken: Callable[[JobSpec, str], SubmitError | None]) -> tuple[Job, Job | None]:
    """A validate-only Submit of `owned` (authorized, its owner stamped): (the job as it would be accepted, the job
    its request id made before or None); a refusal raises as the Submit's would."""
    if request.HasField("array"):
        return check_array(fed, owned, array_request(request.array), request_id=request.request_id, hold=hold,
                           visible=visible, taken=taken)
    refused = taken(owned, request.request_id)
    if refused is not None:
        raise refused
    job, new = fed.intake.check(owned, request_id=request.request_id, hold=hold, visible=visible)
    return job, None if new else job


__all__ = ["ACTION", "check_submit"]
