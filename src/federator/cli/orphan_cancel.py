"""`federator cancel --orphans [--cluster C]`: cancel the placements agents run of jobs the store has no record of.

Why a module of its own: the rest of `cancel` is about jobs a user owns (cli/cancel.py, cli/bulk_cancel.py); this
is an admin's decision about a store (server/orphan_cancel.py, ClusterService.CancelOrphans), with its own words.
"""

from __future__ import annotations

import argparse
import sys

import grpc

from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.cli.exit_codes import Exit


def add_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("--orphans", action="store_true",
                   help="admins: cancel now every placement an agent runs of a job the federator's store has no "
                        "record of (ORPHANS in `get clusters`), rather than after the federator's --orphan-grace")
    c.add_argument("--cluster", default="", metavar="NAME", help="with --orphans: only this member cluster's")


def usage_problem(args: argparse.Namespace) -> str:
    """Whether --orphans (and --cluster) make one command, or "" when they do or are not given."""
    if args.cluster and not args.orphans:
        return "--cluster goes with --orphans"
    if args.orphans and (args.jobs or args.array or args.queue or args.all_queues or args.phase or args.owner
                         or args.name_prefix or args.selector is not None):
        return "--orphans cancels placements of jobs the store has no record of: give no job, --queue or filter"
    return ""


def run(channel: grpc.Channel, args: argparse.Namespace, *, timeout: float) -> int:
    """One CancelOrphans call; a line per cluster it cancelled orphans on, or why none. A federator before 0.16.0
    has no such call: said so, with what does the same there, rather than a bare "Method not found!"."""
    try:
        reply = jobs_pb2_grpc.ClusterServiceStub(channel).CancelOrphans(
            jobs_pb2.CancelOrphansRequest(cluster=args.cluster), timeout=timeout)
    except grpc.RpcError as err:
        if getattr(err, "code", lambda: None)() is not grpc.StatusCode.UNIMPLEMENTED:
            raise
        print(f"error: the federator at {args.server} cannot cancel orphans: it is older than 0.16.0 "
              "(UNIMPLEMENTED); there, restart it with --orphan-grace 0 (every orphan is cancelled at its member's "
              "next report), then once more with your usual --orphan-grace", file=sys.stderr)
        return Exit.FAILED
    where = f"cluster {args.cluster}" if args.cluster else "any cluster"
    if not reply.cancelled:
        print(f"no orphans on {where}: nothing cancelled")
        return 0
    for c in reply.clusters:
        more = f" and {c.cancelled - len(c.placement_ids)} more" if c.cancelled > len(c.placement_ids) else ""
        print(f"cluster {c.cluster}: cancelled {c.cancelled} orphan placement{'s' if c.cancelled != 1 else ''} "
              f"({', '.join(c.placement_ids)}{more})")
    return 0


__all__ = ["add_arguments", "run", "usage_problem"]
