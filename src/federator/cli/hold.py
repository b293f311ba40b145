"""`federator hold JOB...` and `federator release JOB...`: keep waiting jobs from being placed, and let them go.

Why: Slurm users hold a job (`scontrol hold`, `sbatch --hold`) to submit a pipeline ahead and release each step
when its data is ready, or to keep a job queued while its input is fixed; admins hold a user's work during an
incident (outside QA, HPC H8). Cancel and resubmit lost the job's place in its queue and its history. These
commands call JobService.Hold and Release (server/job_holds.py says what a hold is); `federator submit --hold`
(or a job file's spec.held: true) submits a job held (cli/client.py), and takes back one the federator did not hold.

Each job named is held (or released) in turn, and each outcome printed ("released" only when a hold was let go:
`not held, unchanged`, or `not held (it has ended), unchanged`, as Slurm's "Job has already finished"); one that
fails does not stop the others, and the exit status is the first failure's (cli/exit_codes.py), 0 when every job
is held (or released).
"""

from __future__ import annotations

import argparse

import grpc

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.cli import calls
from federator.cli.array_holds import hold_array, tasks_of
from federator.cli.calls import connect, fail, server_arguments
from federator.cli.certs import client_options
from federator.model import Job
from federator.security.tls import TlsError
from federator.timestamps import utc_seconds


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    h = sub.add_parser("hold", help="keep pending jobs from being placed until released (they stay queued)",
                       description="Hold pending jobs: each stays Pending, keeps its place in its queue, and is "
                                   "never placed until `federator release`. Only a Pending job may be held (a "
                                   "running one is refused: cancel it to stop it). An admin's hold of another "
                                   "user's job only an admin releases. Holding a held job changes nothing.")
    h.add_argument("jobs", nargs="+", metavar="JOB",
                   help="job id, namespace/name, or name; or an array's id: its Pending tasks")
    server_arguments(h)
    h.set_defaults(func=_hold)
    r = sub.add_parser("release", help="let held jobs be placed again",
                       description="Release held jobs: each is placed when room comes, in its place in its queue. "
                                   "Releasing a job that is not held changes nothing.")
    r.add_argument("jobs", nargs="+", metavar="JOB",
                   help="job id, namespace/name, or name; or an array's id: its held tasks")
    server_arguments(r)
    r.set_defaults(func=_release)


def held_words(job: Job) -> str:
    """How a held job's hold reads: `held by alice at 2026-12-06T18:00:00Z` ("admin bob" for an admin's hold)."""
    if job.hold is None:
        return "not held"
    who = f"admin {job.hold.by}" if job.hold.admin else job.hold.by
    return f"held by {who} at {utc_seconds(job.hold.at)}"


def released_words(before: Job | None, after: Job) -> str:
    """What a release did, from the job before it (None: unknown) and the Release answer: "released" only when it
    let go of a hold; a job not held, or one that ended (a hold is of a waiting job), is "not held, unchanged", as
    users.md says."""
    if after.phase.is_terminal:  # even one cancelled while held: its status.hold is a record, no longer a hold
        return "not held (it has ended), unchanged"
    if after.hold is not None:
        return held_words(after)
    return "released" if before is None or before.hold is not None else "not held, unchanged"


def _hold(args: argparse.Namespace) -> int:
    return _each(args, "hold")


def _release(args: argparse.Namespace) -> int:
    return _each(args, "release")


def _each(args: argparse.Namespace, action: str) -> int:
    first_failure = 0
    failed: list[int] = []  # the exit status of each task of an array refused
    try:
        with connect(client_options(args)) as (jobs, _):
            for key in args.jobs:
                try:
                    before = _before(jobs, key) if action == "release" else None
                    job = _call(jobs, action, key)
                except grpc.RpcError as err:
                    try:
                        tasks = tasks_of(jobs, key) if err.code() is grpc.StatusCode.NOT_FOUND else []
                    except grpc.RpcError as listed:  # whether it is an array is unknown: that failure is said
                        first_failure = first_failure or fail(listed, args, prefix=f"{key}: ")
                        continue
                    if tasks:  # no job has the key: an array's id names its tasks (cli/array_holds.py)
                        print(hold_array(jobs, key, tasks, action, lambda task, e: failed.append(
                            fail(e, args, prefix=f"task {task}: "))), flush=True)
                        first_failure = first_failure or (failed[0] if failed else 0)
                        continue
                    code = fail(err, args, prefix=f"{key}: ")
                    first_failure = first_failure or code
                    continue
                if action == "hold":
                    print(f"job {job.job_id} {job.phase}, {held_words(job)}", flush=True)
                else:
                    print(f"job {job.job_id} {job.phase}, {released_words(before, job)}", flush=True)
    except TlsError as err:
        return fail(err, args)
    return first_failure


def _before(jobs: jobs_pb2_grpc.JobServiceStub, key: str) -> Job | None:
    """The job as it is before a release (the Release answer alone cannot say whether it let go of a hold); None
    when the Get fails: the Release is made all the same, so its refusal is the one said, and audited."""
    try:
        return convert.job_from_pb(jobs.Get(jobs_pb2.GetJobRequest(job_id=key), timeout=calls.CALL_TIMEOUT))
    except grpc.RpcError:
        return None


def _call(jobs: jobs_pb2_grpc.JobServiceStub, action: str, key: str) -> Job:
    if action == "hold":
        return convert.job_from_pb(jobs.Hold(jobs_pb2.HoldJobRequest(job_id=key), timeout=calls.CALL_TIMEOUT))
    return convert.job_from_pb(jobs.Release(jobs_pb2.ReleaseJobRequest(job_id=key), timeout=calls.CALL_TIMEOUT))


__all__ = ["held_words", "register", "released_words"]
