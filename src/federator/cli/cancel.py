"""`federator cancel JOB`, or a queue's jobs (`--queue`, `--all-queues`: cli/bulk_cancel.py): one Cancel, the job's
phase after it printed; or an admin's `--orphans` (cli/orphan_cancel.py)."""

from __future__ import annotations

import argparse
import sys

import grpc

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.cli import bulk_cancel, calls, orphan_cancel
from federator.cli.certs import client_options
from federator.cli.submit_array import cancel_array
from federator.security.tls import TlsError
from federator.server.arrays import array_id_problem


def run(args: argparse.Namespace) -> int:
    problem = orphan_cancel.usage_problem(args) or ("" if args.orphans else bulk_cancel.usage_problem(args))
    if problem:
        print(f"federator cancel: {problem}", file=sys.stderr)
        return 2
    try:
        with client_options(args).channel() as channel:
            if args.orphans:  # an admin's call about the store, not about jobs (cli/orphan_cancel.py)
                return orphan_cancel.run(channel, args, timeout=calls.CALL_TIMEOUT)
            jobs = jobs_pb2_grpc.JobServiceStub(channel)
            if args.queue or args.all_queues:  # every matching job over this one channel (cli/bulk_cancel.py)
                return bulk_cancel.run(jobs, args, timeout=calls.CALL_TIMEOUT, served=lambda: calls.features(channel))
            request = jobs_pb2.CancelJobRequest(job_id=args.job)
            try:
                job = convert.job_from_pb(jobs.Cancel(request, timeout=calls.CALL_TIMEOUT))
            except grpc.RpcError as err:  # no such job: an array's id names every task (cli/submit_array.py)
                if getattr(err, "code", lambda: None)() is not grpc.StatusCode.NOT_FOUND:
                    raise
                matched, cancelled, operation = cancel_array(jobs, args.job, timeout=calls.CALL_TIMEOUT) \
                    if not array_id_problem(args.job) else (0, 0, "")
                if not matched:
                    raise err from None
                rest = "; the others had ended or are not yours" if cancelled < matched else ""
                print(f"array {args.job}: cancelled {cancelled} of {matched} task{'s' if matched != 1 else ''}{rest} "
                      f"(audit operation {operation})")
                return 0
    except (grpc.RpcError, TlsError) as err:
        return calls.fail(err, args)
    print(f"job {job.job_id} {job.phase}")
    return 0


__all__ = ["run"]
