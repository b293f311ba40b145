"""`federator cordon | uncordon | forget`: take a member cluster out of scheduling, put it back, or drop a Lost one.

An admin's commands, as `kubectl cordon` is a cluster admin's. The answer says what changed, and warns when the
federator does not know the cluster (a typo cordons a name no agent uses). A provider puts its own cluster in
maintenance from its agent instead (`federator agent --maintenance REASON`, server/maintenance.py), which
`uncordon` does not end. With `--from`/`--until` a cordon is a maintenance window (server/maintenance_windows.py):
in force only between the two, and until it begins the cluster takes only jobs whose run bound ends by its start.
`forget` is --forget-lost-after's forgetting now, for standalone mode (server/leases.py).
"""

from __future__ import annotations

import argparse
import sys
import time

import grpc

from federator.api.v1 import jobs_pb2
from federator.cli.calls import CALL_TIMEOUT, connect, fail, server_arguments
from federator.cli.certs import client_options
from federator.cli.times import FORMS, local_text, parse_time
from federator.security.tls import TlsError
from federator.timestamps import utc_seconds


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("cordon", help="take a member cluster out of scheduling (admins); what it runs stays",
                       description="No new work goes to the cluster until `federator uncordon`: a retry, a "
                                   "scale-up or a failover goes elsewhere. What it runs stays, and its agent stays "
                                   "connected. Kept across the federator's restarts. Admins only. With --from "
                                   "and --until, a maintenance window: until --from the cluster takes only the "
                                   "jobs whose run bound (spec.maxRunSeconds, else the queue's) ends by --from; "
                                   "a job with no bound, or one that would cross it, is not started there (its "
                                   "reason says so). From --from it is a cordon (what runs stays; `federator "
                                   "drain` moves it off); at --until it ends by itself. `uncordon` cancels it.")
    c.add_argument("cluster", help="the member cluster's name")
    c.add_argument("--reason", default="", help="why, shown by `federator get clusters` (one line, at most 256 "
                                                "characters)")
    c.add_argument("--from", dest="window_from", default="", metavar="TIME",
                   help=f"a maintenance window's start, in the future: {FORMS}; with --until alone, now")
    c.add_argument("--until", dest="window_until", default="", metavar="TIME",
                   help="the window's end, after --from: the cluster takes new work again by itself (without it, "
                        "the cordon holds from --from until uncordoned)")
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


def _window(args: argparse.Namespace) -> tuple[float, float] | None:
    """--from and --until as Unix seconds (0: not given), or None once the error is said."""
    now, out = time.time(), []
    for flag, value in (("--from", args.window_from), ("--until", args.window_until)):
        try:
            out.append(parse_time(value, now=now) if value.strip() else 0.0)
        except ValueError as err:
            print(f"error: {flag}: {err}", file=sys.stderr)
            return None
    return out[0], out[1]


def _cordon(args: argparse.Namespace) -> int:
    window = _window(args)
    if window is None:
        return 2
    try:
        with connect(client_options(args)) as (_, clusters):
            reply = clusters.Cordon(jobs_pb2.CordonClusterRequest(cluster=args.cluster, reason=args.reason,
                                                                  window_from=window[0], window_until=window[1]),
                                    timeout=CALL_TIMEOUT)
    except (grpc.RpcError, TlsError) as err:
        return fail(err, args)
    by = f"by {reply.cordoned_by} at {utc_seconds(reply.cordoned_at)}" + (f": {reply.reason}" if reply.reason else "")
    if reply.window_from or reply.window_until:  # a maintenance window (server/maintenance_windows.py)
        until = f"until {local_text(reply.window_until)}" if reply.window_until else "until uncordoned"
        by += f"; a maintenance window from {local_text(reply.window_from) if reply.window_from else 'now'} {until}"
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
