"""`federator drain CLUSTER --reason TEXT [--yes]`: cordon a member cluster and move its federated jobs elsewhere.

An admin's command, as `kubectl drain` is a cluster admin's, and its provider's (with one of its clusters'
certificates: security/provider_rights.py), shaped as `federator cordon` (cli/cordon.py). It ends
running work (each job is requeued as the same job, server/drains.py), so a cluster that runs any is drained only
with `--yes`: without it the command asks the federator for a dry run (DrainClusterRequest.dry_run: the jobs that
would move, and those no other cluster has room for now) and changes nothing (exit 2), as `federator cancel
--queue` does for more than one job. The dry run is the federator's, so a provider's counts every cluster its
certificate may drain (before 0.8.0 the command counted what `get clusters` showed it: its own cluster alone, so a
sibling cluster was drained without --yes). An older federator, without the WhoAmI feature, is asked as before.
`federator uncordon` ends the drain with the cordon.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import grpc

from federator.api.features import CLUSTERS_DRAIN_DRY_RUN, CLUSTERS_DRAIN_SURGE_SECONDS
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.cli.calls import CALL_TIMEOUT, fail, features, server_arguments
from federator.cli.certs import client_options
from federator.model.cordon import surge_problem
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
    d.add_argument("--yes", action="store_true", help="drain a cluster that runs jobs (they are requeued); "
                                                      "without it, a cluster that runs any is not drained: the "
                                                      "command says which jobs would move and which of them fit "
                                                      "on no other cluster now (a dry run)")
    d.add_argument("--surge-seconds", type=_surge, default=0.0, metavar="SECONDS",
                   help="how long the drain waits for an inference job's replacements elsewhere before it ends "
                        "its replicas on this cluster anyway: 1 to 86400 (default: the federator's, 600)")
    server_arguments(d)
    d.set_defaults(func=_drain)


def _surge(text: str) -> float:
    """--surge-seconds: a number of seconds within a drain's bounds (model/cordon.py)."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number of seconds, not {text!r}") from None
    problem = surge_problem(seconds) if seconds else ""
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return seconds


def _drain(args: argparse.Namespace) -> int:
    request = jobs_pb2.DrainClusterRequest(cluster=args.cluster, reason=args.reason, surge_seconds=args.surge_seconds)
    try:
        opts = client_options(args)
        with opts.channel() as channel:
            clusters = jobs_pb2_grpc.ClusterServiceStub(channel)
            served = features(channel)
            if args.surge_seconds and CLUSTERS_DRAIN_SURGE_SECONDS not in served:
                print(f"federator drain: this federator does not take --surge-seconds (no WhoAmI feature "
                      f"{CLUSTERS_DRAIN_SURGE_SECONDS}); nothing drained: drop the flag, or upgrade the federator",
                      file=sys.stderr)
                return 2
            if not args.yes:
                if CLUSTERS_DRAIN_DRY_RUN in served:  # the federator says, for every cluster the caller may drain
                    dry = jobs_pb2.DrainClusterRequest()
                    dry.CopyFrom(request)
                    dry.dry_run = True
                    preview = clusters.Drain(dry, timeout=CALL_TIMEOUT)
                    if preview.jobs:
                        print(f"federator drain: cluster {args.cluster} holds {preview.jobs} federated job(s): "
                              f"{_named(preview.job_ids, preview.jobs)}", file=sys.stderr)
                        _say_no_room(preview, dry_run=True)
                        print("nothing drained: pass --yes to requeue them elsewhere", file=sys.stderr)
                        return 2
                else:  # an older federator: what `get clusters` shows the caller (a provider: its own cluster)
                    held = _placements(clusters, args.cluster)
                    if held:
                        print(f"federator drain: cluster {args.cluster} holds {held} placement(s) of federated "
                              "jobs; nothing drained: pass --yes to requeue them elsewhere", file=sys.stderr)
                        return 2
            reply = clusters.Drain(request, timeout=CALL_TIMEOUT)
    except (grpc.RpcError, TlsError) as err:
        return fail(err, args)
    by = f"by {reply.drained_by} at {utc_seconds(reply.drained_at)}" + (f": {reply.reason}" if reply.reason else "")
    print((f"cluster {reply.cluster} draining ({by})" if reply.changed
           else f"cluster {reply.cluster} was draining already ({by})")
          + (f": {reply.jobs} job(s) to move: {_named(reply.job_ids, reply.jobs)}" if reply.jobs
             else ": no job to move"))
    if reply.jobs:
        print(f"follow it with `federator get clusters {reply.cluster}` (Draining, then Drained); "
              "`federator uncordon` ends the drain")
    _say_no_room(reply, dry_run=False)
    if reply.waiting:
        print(f"warning: the drain waits: {reply.waiting}", file=sys.stderr)
    if not reply.known:
        print(f"warning: no agent of a cluster named {reply.cluster!r} has connected to this federator; it is "
              "cordoned from its first connection", file=sys.stderr)
    return 0


def _named(ids: Sequence[str], count: int) -> str:
    return ", ".join(list(ids)[:SHOWN]) + (f" and {count - SHOWN} more" if count > SHOWN else "")


def _say_no_room(reply: jobs_pb2.DrainClusterResponse, *, dry_run: bool) -> None:
    """The jobs no other cluster has room for now (DrainClusterResponse.no_room_elsewhere): they will wait."""
    if not reply.no_room_elsewhere:
        return
    will = "would be left" if dry_run else "are left"
    print(f"warning: {reply.no_room_elsewhere} of them fit on no other cluster as the fleet is now and {will} "
          f"pending until room comes: {_named(reply.no_room_elsewhere_job_ids, reply.no_room_elsewhere)}",
          file=sys.stderr)


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
