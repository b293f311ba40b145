"""`federator scale JOB --replicas N`: one Scale of an inference job, its phase, replicas and what shrank or
stopped printed after it."""

from __future__ import annotations

import argparse

import grpc

from federator.api import convert
from federator.api.v1 import jobs_pb2
from federator.cli import calls
from federator.cli.certs import client_options
from federator.security.tls import TlsError


def run(args: argparse.Namespace) -> int:
    try:
        with calls.connect(client_options(args)) as (jobs, _):
            request = jobs_pb2.ScaleJobRequest(job_id=args.job, replicas=args.replicas)
            job = convert.job_from_pb(jobs.Scale(request, timeout=calls.CALL_TIMEOUT))
    except (grpc.RpcError, TlsError) as err:
        return calls.fail(err, args)
    waiting = f", {job.replicas_waiting} waiting" if job.replicas_waiting else ""
    count = f"{job.spec.replicas} replica{'' if job.spec.replicas == 1 else 's'}"
    said = job.message.split("; ")[0] if job.message.startswith("scaled from ") else ""  # what shrank or stopped
    print(f"job {job.job_id} {job.phase}, {count}{waiting}" + (f": {said}" if said else ""))
    return 0


__all__ = ["run"]
