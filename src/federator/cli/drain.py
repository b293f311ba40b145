"""`federator drain CLUSTER --reason TEXT [--yes]`: cordon a member cluster and move its federated jobs elsewhere.

An admin's command, as `kubectl drain` is a cluster admin's, and its provider's (with one of its clusters'
certificates: security/provider_rights.py), shaped as `federator cordon` (cli/cordon.py). It ends
running work (each job is requeued as the same job, server/drains.py), so a cluster that runs any is drained only
with `--yes`: without it the command says how many placements would move and changes nothing (exit 2), as
`federator cancel --queue` does for more than one job. `federator uncordon` ends the drain with the cordon.
"""

from __future__ import annotations

import argparse
import sys

import grpc

from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.cli.certs import client_options
from federator.cli.client import CALL_TIMEOUT, _fail, _server, connect
from federator.security.tls import TlsError
from federator.timestamps import utc_seconds

SHOWN = 10
"""Job ids the answer names at most (the reply names up to 100; `get jobs` shows them all)."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = sub.add_parser("drain", help="cordon a member cluster and move its federated jobs elsewhere (admins, or "
                                     "its provider)",
                       description="The cluster is cordoned (no new work), then each federated job with a placement "
                                   "there is requeued as the same job, reason Drained, and placed elsewhere: a "
                                   "training gang whole, an inference job's replicas there only and surge first "
                                   "(placed elsewhere before they end here). A batch at a time, "
                                   "while the cluster's agent is connected. Kept across the federator's restarts "
                                   "until `federator uncordon`. A cluster that runs jobs is drained only with "
                                   "--yes. Admins, or the cluster's provider with one of its clusters' certificates "
                                   "(--cert/--key; `federator uncordon` the same way ends its drain).")
    d.add_argument("cluster", help="the member cluster's name")
    d.add_argument("--reason", default="", help="why, shown by `federator get clusters` and in each moved job's "
                                                "reason (one line, at most 256 characters)")
    d.add_argument("--yes", action="store_true", help="drain a cluster that runs jobs (they are requeued)")
    _server(d)
    d.set_defaults(func=_drain)


def _drain(args: argparse.Namespace) -> int:
    try:
        with connect(client_options(args)) as (_, clusters):
            if not args.yes:
                held = _placements(clusters, args.cluster)
                if held:
                    print(f"federator drain: cluster {args.cluster} holds {held} placement(s) of federated jobs; "
                          "nothing drained: pass --yes to requeue them elsewhere", file=sys.stderr)
                    return 2
            reply = clusters.Drain(jobs_pb2.DrainClusterRequest(cluster=args.cluster, reason=args.reason),
                                   timeout=CALL_TIMEOUT)
    except (grpc.RpcError, TlsError) as err:
        return _fail(err, args)
    by = f"by {reply.drained_by} at {utc_seconds(reply.drained_at)}" + (f": {reply.reason}" if reply.reason else "")
    named = ", ".join(list(reply.job_ids)[:SHOWN]) + (f" and {reply.jobs - SHOWN} more" if reply.jobs > SHOWN else "")
    print((f"cluster {reply.cluster} draining ({by})" if reply.changed
           else f"cluster {reply.cluster} was draining already ({by})")
          + (f": {reply.jobs} job(s) to move: {named}" if reply.jobs else ": no job to move"))
    if reply.jobs:
        print(f"follow it with `federator get clusters {reply.cluster}` (Draining, then Drained); "
              "`federator uncordon` ends the drain")
    if reply.waiting:
        print(f"warning: the drain waits: {reply.waiting}", file=sys.stderr)
    if not reply.known:
        print(f"warning: no agent of a cluster named {reply.cluster!r} has connected to this federator; it is "
              "cordoned from its first connection", file=sys.stderr)
    return 0


def _placements(clusters: jobs_pb2_grpc.ClusterServiceStub, name: str) -> int:
    """The placements the federator counts on cluster `name` (0: none, or no such cluster), a page at a time."""
    token = ""
    while True:
        page = clusters.List(jobs_pb2.ListClustersRequest(page_token=token), timeout=CALL_TIMEOUT)
        for c in page.clusters:
            if c.name == name:
                return int(c.placements)
        token = page.next_page_token
        if not token:
            return 0
