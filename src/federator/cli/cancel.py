"""`federator cancel JOB...`, or an array's tasks (`--array`), or a queue's jobs (`--queue`, `--all-queues`:
cli/bulk_cancel.py), or an admin's `--orphans` (cli/orphan_cancel.py).

Jobs named (ids, namespace/names, names, array ids) are cancelled in turn, one Cancel each over one channel, as
`kubectl delete` takes several (outside QA ML E8: `federator cancel A B C` was "unrecognized arguments"). Each
outcome is printed: `job ID Cancelled`; `job ID Succeeded, already ended: nothing to cancel` for a job that had
ended (the federator changes nothing and audits it `unchanged`), which is not a failure, as for one job; an
array's line for an array id. A job not found or refused is said (`error: KEY: ...`) and the others go on; the
exit status is the first failure's (cli/exit_codes.py: 3 not found, 1 refused), 0 when every job named was
cancelled or had ended. A federator that stops answering (UNAVAILABLE, a deadline) stops the run there: the jobs
not tried are named and the status is that failure's (4); the same command again is safe, the jobs it cancelled
being said as already ended.
"""

from __future__ import annotations

import argparse
import sys

import grpc

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.cli import bulk_cancel, calls, orphan_cancel
from federator.cli.array_holds import ended_line, tasks_of
from federator.cli.certs import client_options
from federator.cli.exit_codes import Exit, for_rpc
from federator.cli.submit_array import cancel_array
from federator.model import JobPhase
from federator.security.tls import TlsError
from federator.server.arrays import array_id_problem


def run(args: argparse.Namespace) -> int:
    problem = orphan_cancel.usage_problem(args) or ("" if args.orphans else bulk_cancel.usage_problem(args))
    if not problem and any(not key.strip() for key in getattr(args, "jobs", None) or ()):  # new60b N6
        problem = "a job to cancel is named by its id, namespace/name or name, not an empty string"
    if problem:
        print(f"federator cancel: {problem}", file=sys.stderr)
        return Exit.USAGE
    try:
        with client_options(args).channel() as channel:
            if args.orphans:  # an admin's call about the store, not about jobs (cli/orphan_cancel.py)
                return orphan_cancel.run(channel, args, timeout=calls.CALL_TIMEOUT)
            jobs = jobs_pb2_grpc.JobServiceStub(channel)
            if args.queue or args.all_queues:  # every matching job over this one channel (cli/bulk_cancel.py)
                return bulk_cancel.run(jobs, args, timeout=calls.CALL_TIMEOUT, served=lambda: calls.features(channel))
            if args.array:
                return _array(jobs, args.array)
            return cancel_named(jobs, args)
    except (grpc.RpcError, TlsError) as err:
        return calls.fail(err, args)


def cancel_named(stub: jobs_pb2_grpc.JobServiceStub, args: argparse.Namespace) -> int:
    """Each job of `args.jobs` cancelled in turn, its outcome printed (module docstring: the exit status)."""
    keys = list(dict.fromkeys(args.jobs))  # a key given twice is one job: cancelled once, said once
    first = 0
    for i, key in enumerate(keys):
        try:
            said = cancel_one(stub, key)
        except grpc.RpcError as err:
            code = calls.fail(err, args, prefix=f"{key}: " if len(keys) > 1 else "")
            rest = keys[i + 1:]
            if rest and for_rpc(err) is Exit.UNAVAILABLE:  # no answer: the others would wait as long for none
                print(f"federator cancel: stopped at {key}; not tried: {', '.join(rest)}; run the same command "
                      "again (a job it cancelled is then said as already ended)", file=sys.stderr)
                return code
            first = first or code
            continue
        print(said, flush=True)
    return first


def _array(stub: jobs_pb2_grpc.JobServiceStub, array_id: str) -> int:
    """`--array ID`: every task of the array (one CancelJobs operation); exit 3 when there is no task to see, as
    `get jobs --array` says it."""
    said = array_cancelled(stub, array_id)
    if not said:
        print("error: " + (_not_an_array(stub, array_id) or f"no task of array {array_id!r} that you may see (its id "
                           "as `submit --array` printed it; tasks removed after they ended are not counted)"),
              file=sys.stderr)
        return Exit.NOT_FOUND
    print(said)
    return 0


def _not_an_array(stub: jobs_pb2_grpc.JobServiceStub, key: str) -> str:
    """What to say of `--array KEY` naming no array but a job the caller sees (new60b: `cancel --array l2` said "no
    task of array 'l2'", read as a typo or a job gone): that it is a job, and to cancel it without --array; "" when
    it names no job either."""
    try:
        job = convert.job_from_pb(stub.Get(jobs_pb2.GetJobRequest(job_id=key), timeout=calls.CALL_TIMEOUT))
    except grpc.RpcError:
        return ""
    task = job.spec.array
    of = f", a task of array {task.array_id}" if task is not None else ""
    return (f"{key!r} is a job ({job.job_id}{of}, {job.phase}), not an array: cancel it without --array "
            f"(federator cancel {key})" + (f", or every task of its array with --array {task.array_id}"
                                           if task is not None else ""))


def array_cancelled(stub: jobs_pb2_grpc.JobServiceStub, array_id: str) -> str:
    """Every task of the array cancelled (cli/submit_array.py `cancel_array`), and its line; "" when no task of it
    is there to see. An array whose tasks have all ended is said so, as a job that had ended is, not "not found"
    (CancelJobs matches only tasks that have not ended)."""
    matched, cancelled, operation = cancel_array(stub, array_id, timeout=calls.CALL_TIMEOUT)
    if matched:
        rest = "; the others had ended or are not yours" if cancelled < matched else ""
        return (f"array {array_id}: cancelled {cancelled} of {matched} task{'s' if matched != 1 else ''}{rest} "
                f"(audit operation {operation})")
    ended = tasks_of(stub, array_id)
    if not ended:
        return ""
    return ended_line(array_id, len(ended), "cancel")


def cancel_one(stub: jobs_pb2_grpc.JobServiceStub, key: str) -> str:
    """One Cancel of `key` (a job's id, namespace/name or name; or an array's id: every task), and its line.
    Raises the RpcError of a job neither found nor an array, or refused."""
    before = _phase(stub, key)
    try:
        job = convert.job_from_pb(stub.Cancel(jobs_pb2.CancelJobRequest(job_id=key), timeout=calls.CALL_TIMEOUT))
    except grpc.RpcError as err:  # no such job: an array's id names every task (cli/submit_array.py)
        if getattr(err, "code", lambda: None)() is not grpc.StatusCode.NOT_FOUND:
            raise
        said = array_cancelled(stub, key) if not array_id_problem(key) else ""
        if not said:
            raise err from None
        return said
    if job.phase.is_terminal and (job.phase is not JobPhase.CANCELLED or (before is not None and before.is_terminal)):
        return f"job {job.job_id} {job.phase}, already ended: nothing to cancel"
    return f"job {job.job_id} {job.phase}"


def _phase(stub: jobs_pb2_grpc.JobServiceStub, key: str) -> JobPhase | None:
    """The job's phase before the Cancel (None when the Get fails: the Cancel is made all the same, so its answer,
    and its audit line, is the one said): a Cancel answers an ended job as it is, so only this tells a job
    cancelled earlier from one cancelled now."""
    try:
        return convert.job_from_pb(stub.Get(jobs_pb2.GetJobRequest(job_id=key), timeout=calls.CALL_TIMEOUT)).phase
    except grpc.RpcError:
        return None


__all__ = ["array_cancelled", "cancel_named", "cancel_one", "run"]
