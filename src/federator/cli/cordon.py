"""`federator cordon | uncordon | forget`: take a member cluster out of scheduling, put it back, or drop a Lost one.

An admin's commands, as `kubectl cordon` is a cluster admin's. The answer says what changed, and warns when the
federator does not know the cluster (a typo cordons a name no agent uses). A provider puts its own cluster in
maintenance from its agent instead (`federator agent --maintenance REASON`, server/maintenance.py), which
`uncordon` does not end. `forget` is --forget-lost-after's forgetting now, for standalone mode (server/leases.py).
"""

from __future__ import annotations

import argparse
import sys

import grpc

from federator.api.v1 import jobs_pb2
from federator.cli.calls import CALL_TIMEOUT, connect, fail, server_arguments
from federator.cli.certs import client_options
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
    server_arguments(c)
    c.set_defaults(func=_cordon)
    u = sub.add_parser("uncordon", help="let a cordoned or quarantined member cluster take new work (admins)",
                       description="End the cluster's cordon and any quarantine it is under: it takes new work at "
                                   "once. Admins only.")
    u.add_argument("cluster", help="the member cluster's name")
    server_arguments(u)
    u.set_defaults(func=_uncordon)
    f = sub.add_parser("forget", help="forget a Lost member cluster now, as --forget-lost-after would later (admins)",
                       description="The cluster leaves get clusters, the metrics and the members a restart "
                                   "expects; an agent that connects with its name later joins as a new member. "
                                   "Only a Lost cluster, with no agent connected and no placement of a job not "
                                   "finished, may be forgotten. Admins only. Refused in Kubernetes mode, where "
                                   "kubectl delete mc NAME forgets a Lost cluster.")
    f.add_argument("cluster", help="the member cluster's name")
    server_arguments(f)
    f.set_defaults(func=_forget)


def _cordon(args: argparse.Namespace) -> int:
    try:
        with connect(client_options(args)) as (_, clusters):
            reply = clusters.Cordon(jobs_pb2.CordonClusterRequest(cluster=args.cluster, reason=args.reason),
                                    timeout=CALL_TIMEOUT)
    except (grpc.RpcError, TlsError) as err:
        return fail(err, args)
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
        return fail(err, args)
    if not reply.changed:
        print(f"cluster {reply.cluster} was neither cordoned nor quarantined"
              + ("; its provider has it in maintenance, which only its agent ends" if reply.cordoned else ""))
    else:
        ended = (["cordon"] if reply.cordoned_by else []) + (["drain"] if reply.drain_ended else []) + \
            (["quarantine"] if reply.quarantine_lifted else [])
        print(f"cluster {reply.cluster} uncordoned ({' and '.join(ended)} ended); "
              + ("its provider still has it in maintenance: no new work until its agent stops asking"
                 if reply.cordoned else "it takes new work"))
    if not reply.known:
        print(f"warning: no agent of a cluster named {reply.cluster!r} has connected to this federator",
              file=sys.stderr)
    return 0


def _forget(args: argparse.Namespace) -> int:
    try:
        with connect(client_options(args)) as (_, clusters):
            reply = clusters.Forget(jobs_pb2.ForgetClusterRequest(cluster=args.cluster), timeout=CALL_TIMEOUT)
    except (grpc.RpcError, TlsError) as err:
        return fail(err, args)
    print(f"cluster {reply.cluster} forgotten (Lost since {utc_seconds(reply.lost_at)}); an agent that connects "
          "with its name later joins as a new member")
    return 0
