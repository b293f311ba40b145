"""`federator cordon | uncordon`: take a member cluster out of scheduling and put it back (server/cordons.py).

An admin's commands, as `kubectl cordon` is a cluster admin's. The answer says what changed, and warns when the
federator does not know the cluster (a typo cordons a name no agent uses).
"""

from __future__ import annotations

import argparse
import sys

import grpc

from federator.api.v1 import jobs_pb2
from federator.cli.certs import client_options
from federator.cli.client import CALL_TIMEOUT, _fail, _server, connect
from federator.security.tls import TlsError
from federator.timestamps import utc_seconds


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("cordon", help="take a member cluster out of scheduling (admins); what it runs stays",
                       description="No new work goes to the cluster until `federator uncordon`: a retry, a "
                                   "scale-up or a failover goes elsewhere. What it runs stays, and its agent stays "
                                   "connected. Kept across the federator's restarts. Admins only.")
    c.add_argument("cluster", help="the member cluster's name")
    c.add_argument("--reason", default="", help="why, shown by `federator get clusters` (one line, at most 256 "
                                                "characters)")
    _server(c)
    c.set_defaults(func=_cordon)
    u = sub.add_parser("uncordon", help="let a cordoned or quarantined member cluster take new work (admins)",
                       description="End the cluster's cordon and any quarantine it is under: it takes new work at "
                                   "once. Admins only.")
    u.add_argument("cluster", help="the member cluster's name")
    _server(u)
    u.set_defaults(func=_uncordon)


def _cordon(args: argparse.Namespace) -> int:
    try:
        with connect(client_options(args)) as (_, clusters):
            reply = clusters.Cordon(jobs_pb2.CordonClusterRequest(cluster=args.cluster, reason=args.reason),
                                    timeout=CALL_TIMEOUT)
    except (grpc.RpcError, TlsError) as err:
        return _fail(err, args)
    by = f"by {reply.cordoned_by} at {utc_seconds(reply.cordoned_at)}" + (f": {reply.reason}" if reply.reason else "")
    print(f"cluster {reply.cluster} cordoned ({by})" if reply.changed
          else f"cluster {reply.cluster} was cordoned already ({by})")
    if not reply.known:
        print(f"warning: no agent of a cluster named {reply.cluster!r} has connected to this federator; it is "
              "cordoned from its first connection", file=sys.stderr)
    return 0


def _uncordon(args: argparse.Namespace) -> int:
    try:
        with connect(client_options(args)) as (_, clusters):
            reply = clusters.Uncordon(jobs_pb2.UncordonClusterRequest(cluster=args.cluster), timeout=CALL_TIMEOUT)
    except (grpc.RpcError, TlsError) as err:
        return _fail(err, args)
    if not reply.changed:
        print(f"cluster {reply.cluster} was neither cordoned nor quarantined")
    else:
        ended = (["cordon"] if reply.cordoned_by else []) + (["quarantine"] if reply.quarantine_lifted else [])
        print(f"cluster {reply.cluster} uncordoned ({' and '.join(ended)} ended); it takes new work")
    if not reply.known:
        print(f"warning: no agent of a cluster named {reply.cluster!r} has connected to this federator",
              file=sys.stderr)
    return 0
