"""`federator serve`: run the federator process."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from federator.backends.kube.options import add_kube_arguments, kube_options, kube_options_problem
from federator.cli.certs import add_tls_arguments, tls_files
from federator.cli.podsecurity import add_pod_security_arguments, pod_security_of
from federator.metrics import LABEL_LIMIT
from federator.server.early_failures import DEFAULT_EARLY_FAILURE_SECONDS, EarlyFailurePolicy
from federator.server.leases import DEFAULT_FORGET_LOST_AFTER_SECONDS
from federator.server.orphans import DEFAULT_ORPHAN_GRACE_SECONDS
from federator.server.quarantine import (
    DEFAULT_QUARANTINE_FAILURES,
    DEFAULT_QUARANTINE_SECONDS,
    DEFAULT_QUARANTINE_WINDOW_SECONDS,
    QuarantinePolicy,
)
from federator.server.refusals import DEFAULT_MAX_REFUSALS
from federator.server.settle import DEFAULT_SETTLE_SECONDS
from federator.server.start_deadline import DEFAULT_START_TIMEOUT_SECONDS

if TYPE_CHECKING:
    from federator.accounting.retention import UsageRetention
    from federator.security.limits import Limits
    from federator.server.retention import RetentionPolicy


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the federator")
    p.add_argument("--listen", default="127.0.0.1:7070", help="gRPC address (default %(default)s)")
    p.add_argument("--metrics-listen", default="127.0.0.1:9090", help="/metrics address (default %(default)s)")
    p.add_argument("--metrics-token-file", type=Path, metavar="FILE",
                   help="/metrics answers only a scrape that sends this file's token as `Authorization: Bearer` "
                        "(Prometheus: authorization.credentials_file); re-read when it changes; /healthz stays "
                        "open for probes (default: no token)")
    p.add_argument("--metrics-queue-labels", type=int, default=LABEL_LIMIT, metavar="N",
                   help="queues the metrics name each (every queue the policy defines, then the first others seen); "
                        "the rest are summed as queue=\"other\". Each is a series of every per-queue metric "
                        "(default %(default)s; raise it for a thousand organisations' queues)")
    p.add_argument("--db", type=Path, default=Path("federator.db"),
                   help="SQLite job store (default %(default)s); a path with no file there starts a new, empty "
                        "store, said in a WARNING (a mistyped --db): what its agents run is then orphans to it "
                        "(--orphan-grace)")
    p.add_argument("--report-interval", type=float, default=2.0,
                   help="seconds between agent capacity reports (default %(default)g)")
    p.add_argument("--lease-seconds", type=float, default=10.0,
                   help="a connected cluster with no report for this long is Partitioned (default %(default)g)")
    p.add_argument("--lost-after", type=float, default=120.0,
                   help="seconds a Partitioned cluster may stay away before it is Lost (default %(default)g)")
    p.add_argument("--start-timeout", type=float, default=DEFAULT_START_TIMEOUT_SECONDS, metavar="SECONDS",
                   help="a placement its cluster has not started (still Placed) this long after it was placed (or "
                        "the cluster was back) is placed again, elsewhere if another cluster has room; a placement "
                        "a member's Kueue holds and no other cluster can run is left there (default %(default)g; "
                        "0: never)")
    p.add_argument("--early-failure-seconds", type=float, default=DEFAULT_EARLY_FAILURE_SECONDS, metavar="SECONDS",
                   help="a placement its cluster reports Failed this soon after it started (or was placed) failed "
                        "early: its job is placed once more, elsewhere first (once per job; not with failover: "
                        "keep), and the failure counts toward the cluster's quarantine (default %(default)g; 0: "
                        "never, Failed is final)")
    p.add_argument("--quarantine-failures", type=int, default=DEFAULT_QUARANTINE_FAILURES, metavar="N",
                   help="early failures of at least two owners within --quarantine-window that quarantine a "
                        "cluster: no new work there for --quarantine-seconds; what it runs stays (default "
                        "%(default)s; 0: never)")
    p.add_argument("--quarantine-window", type=float, default=DEFAULT_QUARANTINE_WINDOW_SECONDS, metavar="SECONDS",
                   help="the window --quarantine-failures are counted in (default %(default)g)")
    p.add_argument("--quarantine-seconds", type=float, default=DEFAULT_QUARANTINE_SECONDS, metavar="SECONDS",
                   help="how long a quarantined cluster takes no new work (default %(default)g)")
    p.add_argument("--forget-lost-after", type=float, default=DEFAULT_FORGET_LOST_AFTER_SECONDS, metavar="SECONDS",
                   help="forget a cluster Lost this long that holds no placement: it leaves get clusters, the "
                        "metrics and the members a restart waits for, and rejoins as new if its agent comes back "
                        "(default %(default)g, a day; 0: never)")
    p.add_argument("--order-max-age", type=float, default=0.0, metavar="SECONDS",
                   help="an agent refuses a Launch older than this; the rule lost_after >= fence_after + "
                        "order_max_age keeps a paused agent from running a job beside its replacement "
                        "(default: 10, or a quarter of --lost-after if less)")
    p.add_argument("--reflection", action="store_true",
                   help="serve gRPC server reflection (for grpcurl and generic clients; default: off)")
    p.add_argument("--cycle-interval", type=float, default=1.0,
                   help="seconds between scheduling cycles at most (default %(default)g)")
    p.add_argument("--settle-seconds", type=float, default=DEFAULT_SETTLE_SECONDS, metavar="SECONDS",
                   help="after a start, place nothing until every member cluster expected back (every member "
                        "it remembers that was not Lost or holds placements; in Kubernetes mode every "
                        "MemberCluster) has reported, or none came back for this long (from the start, then from the "
                        "latest one back; at most six times it in all; default %(default)g; 0: do not wait)")
    p.add_argument("--orphan-grace", type=float, default=DEFAULT_ORPHAN_GRACE_SECONDS, metavar="SECONDS",
                   help="a placement an agent runs of a job this federator's store has no record of (--db replaced, "
                        "deleted or restored from an old backup) is cancelled only once reported this long, so an "
                        "operator can restore the right store first; superseded placements of known jobs are "
                        "cancelled at once (default %(default)g; 0: at once)")
    p.add_argument("--max-refusals", type=int, default=DEFAULT_MAX_REFUSALS, metavar="N",
                   help="a job its clusters refused (an agent would not launch it, or stopped it before it ran) N "
                        "times in a row, with no placement of it running since, fails with the last refusal's words "
                        "instead of being placed again (default %(default)s; 0: never)")
    p.add_argument("--ready-file", type=Path, help="write the bound addresses here as JSON once serving")
    add_kube_arguments(p)
    p.add_argument("--policy", type=Path, metavar="FILE",
                   help="scheduling policy YAML: queues, quotas, access, score weights, preemption, region "
                        "latency; re-read when it changes (--trust-poll-seconds) and on SIGHUP, a bad one refused "
                        "naming the field and the last good one kept; check one with `federator policy check FILE`")
    p.add_argument("--accelerator-catalog", type=Path, metavar="FILE",
                   help="accelerator catalog YAML merged over the built-in one (more vendors, device plugins, models); "
                        "a file with errors is refused naming the line")
    add_tls_arguments(p, role="server")
    p.add_argument("--revocation-list", type=Path,
                   help="revoked clusters, users and serials, re-read when it changes "
                        "(default: revoked.txt in --certs-dir)")
    p.add_argument("--seal-key-file", type=Path, metavar="FILE",
                   help="keys of the seals of Launches and job-ending Cancels, and of page tokens, one base64 key "
                        "(at least 32 bytes: `openssl rand -base64 32`) a line: the first seals, every one verifies; "
                        "read at start. Without it they are keyed from the TLS serving key, and a renewed "
                        "certificate's new key breaks every seal agents hold (docs/security.md)")
    p.add_argument("--trust", type=Path, metavar="FILE",
                   help="provider CAs and the clusters each may certify (default: trust.yaml in --certs-dir, if it "
                        "exists), re-read when it changes and on SIGHUP; see docs/security.md")
    p.add_argument("--trust-poll-seconds", type=float, default=5.0, metavar="SECONDS",
                   help="look at the trust file (and the CA files it names), the TLS files (--cert, --key, "
                        "--ca) and the policy file (--policy) this often, and reload what changed, as a mounted "
                        "Secret or ConfigMap does; SIGHUP reloads them at once (default %(default)g; 0: on SIGHUP "
                        "only)")
    p.add_argument("--token-file", type=Path, help="bearer tokens accepted by the job API, one per line")
    p.add_argument("--token-listen", default="", metavar="ADDRESS",
                   help="also serve the job API here with server-only TLS, for bearer-token clients")
    p.add_argument("--audit-log", metavar="PATH|-",
                   help="append a JSON line per mutating call (submit, cancel, queue change, revocation), "
                        "accepted or refused, to this file, or '-' for stdout (fields: docs/security.md)")
    lim = p.add_argument_group("limits")
    lim.add_argument("--max-message-bytes", type=int, default=1 << 20, help="largest message (default %(default)s)")
    lim.add_argument("--max-replicas", type=int, default=1000, help="replicas per job at most (default %(default)s)")
    lim.add_argument(
        "--max-accelerators-per-job", type=int, default=4096, help="accelerators per job at most (default %(default)s)"
    )
    lim.add_argument("--max-reports-per-second", type=float, default=5.0,
                     help="capacity reports per agent per second, sustained (default %(default)s)")
    lim.add_argument("--max-pending-jobs", type=int, default=250_000,
                     help="pending jobs at most; past it Submit answers RESOURCE_EXHAUSTED with a retry-after "
                          "(default %(default)s)")
    lim.add_argument("--max-pending-jobs-per-queue", type=int, default=None, metavar="N",
                     help="pending jobs of one queue at most, for queues whose policy or Queue object gives no "
                          "maxPendingJobs; past it that queue's Submits answer RESOURCE_EXHAUSTED with a "
                          "retry-after, and other queues' pass (default: half of --max-pending-jobs)")
    lim.add_argument("--max-pending-jobs-per-user", type=int, default=None, metavar="N",
                     help="pending jobs of one user over all queues at most (a FederatedJob made with kubectl has "
                          "no user: its namespace counts as one); past it that user's Submits answer "
                          "RESOURCE_EXHAUSTED with a retry-after, and other users' pass (default: half of "
                          "--max-pending-jobs; with --insecure every caller is the one user 'anonymous')")
    lim.add_argument("--max-watches-per-user", type=int, default=32, metavar="N",
                     help="Watch streams one user may hold open at once; one more answers RESOURCE_EXHAUSTED "
                          "naming the limit (0: no cap; default %(default)s; with --insecure every caller is the "
                          "one user 'anonymous')")
    lim.add_argument("--max-watches", type=int, default=1_000, metavar="N",
                     help="Watch streams open at once in all, every user's; one more answers RESOURCE_EXHAUSTED "
                          "(WATCHES_FULL) with a retry-after, and the last tenth is kept for users holding none "
                          "(0: no cap; default %(default)s: ~0.2 GiB of streams)")
    lim.add_argument("--max-log-follows-per-user", type=int, default=4, metavar="N",
                     help="`federator logs --follow` streams one user may hold open at once; one more answers "
                          "RESOURCE_EXHAUSTED (LOG_FOLLOWS_FULL) with a retry-after (0: no cap; default %(default)s)")
    lim.add_argument("--max-log-follows", type=int, default=200, metavar="N",
                     help="`federator logs --follow` streams open at once in all, every user's; each has the "
                          "members' agents read its job's logs every 2 s; one more answers RESOURCE_EXHAUSTED "
                          "(LOG_FOLLOWS_FULL) with a retry-after (0: no cap; default %(default)s)")
    lim.add_argument("--max-unfinished-bytes", type=int, default=4 << 30, metavar="BYTES",
                     help="bytes of the specs (as stored) of every job not finished (pending, placed, running) at "
                          "most; past it Submit answers RESOURCE_EXHAUSTED with a retry-after "
                          "(default %(default)s, 4 GiB)")
    lim.add_argument("--max-unfinished-bytes-per-user", type=int, default=256 << 20, metavar="BYTES",
                     help="bytes of the specs (as stored) of one user's jobs not finished, over all queues, at most "
                          "(a FederatedJob made with kubectl has no user: its namespace counts as one); past it "
                          "that user's Submits answer RESOURCE_EXHAUSTED with a retry-after, and other users' pass; "
                          "a job bigger than either budget by itself is INVALID_ARGUMENT "
                          "(default %(default)s, 256 MiB)")
    keep = p.add_argument_group("finished jobs (store mode; in Kubernetes mode a job lives as long as its "
                                "FederatedJob)")
    keep.add_argument("--finished-job-ttl", type=float, default=None, metavar="SECONDS",
                      help="remove a finished job (Succeeded, Failed, Cancelled) this long after it finished, from "
                           "Get, List, Watch and the store; usage records stay; 0 keeps finished jobs forever "
                           "(default 604800, a week)")
    keep.add_argument("--max-finished-jobs-per-user", type=int, default=None, metavar="N",
                      help="keep at most N finished jobs per user (a kubectl-made job's namespace counts as one), "
                           "those that never ran going first (cancelled, then failed, while they waited), then the "
                           "oldest; 0: no bound (default 500)")
    p.add_argument("--usage-retention", type=float, default=None, metavar="SECONDS",
                   help="delete a usage record (`federator usage`) this long after its placement ended, in small "
                        "batches every minute; a running placement's record stays; 0 keeps usage forever "
                        "(default 7776000, 90 days). Both modes: the records are in --db")
    lim.add_argument("--max-report-bytes-per-second", type=int, default=16 * 1024, metavar="BYTES",
                     help="capacity report bytes per agent per second, sustained; reports over it wait and the "
                          "newest is applied when the budget allows (default %(default)s; 0: no budget)")
    lim.add_argument("--max-job-updates-per-second", type=float, default=100.0, metavar="N",
                     help="JobUpdates per agent per second, sustained; one over it is dropped, counted "
                          "(federator_job_updates_limited_total) and the first of a run answered with an Error; "
                          "an agent learns it from its Welcome (default %(default)g)")
    lim.add_argument("--job-update-burst", type=int, default=10_000, metavar="N",
                     help="JobUpdates per agent at once, above --max-job-updates-per-second; a session's re-sync "
                          "is not charged (default %(default)s)")
    lim.add_argument("--max-clusters-per-provider", type=int, default=64, metavar="N",
                     help="member clusters of one provider (federator.io/provider) not Lost, connected or not; a "
                          "Hello past it is refused with RESOURCE_EXHAUSTED (default %(default)s; 0: no cap)")
    add_pod_security_arguments(p, role="server")
    p.set_defaults(func=_serve)


def _retention(args: argparse.Namespace) -> RetentionPolicy:
    """The finished-job flags; ValueError names the flag. Refused with Kubernetes mode (it keeps none)."""
    from federator.server.retention import RetentionPolicy
    given = [f for f, v in (("--finished-job-ttl", args.finished_job_ttl),
                            ("--max-finished-jobs-per-user", args.max_finished_jobs_per_user)) if v is not None]
    if given and (args.kubeconfig is not None or args.in_cluster):
        raise ValueError(f"{given[0]}: not used in Kubernetes mode: a job lives as long as its FederatedJob, "
                         "the user's object (delete it to remove the job; bound a namespace's objects with a "
                         "ResourceQuota on count/federatedjobs.federator.io)")
    policy = RetentionPolicy()
    ttl = policy.ttl_seconds if args.finished_job_ttl is None else args.finished_job_ttl
    if not math.isfinite(ttl):
        raise ValueError(f"--finished-job-ttl: must be 0 (keep forever) or more seconds, got {ttl:g}")
    most = policy.max_per_owner if args.max_finished_jobs_per_user is None else args.max_finished_jobs_per_user
    return RetentionPolicy(ttl_seconds=ttl, max_per_owner=most)


def _usage_retention(args: argparse.Namespace) -> UsageRetention:
    """--usage-retention; ValueError names the flag."""
    from federator.accounting.retention import UsageRetention
    return UsageRetention() if args.usage_retention is None else UsageRetention(args.usage_retention)


_LIMIT_FLAGS = {"max_message_bytes": "--max-message-bytes", "max_replicas_per_job": "--max-replicas",
                "max_accelerators_per_job": "--max-accelerators-per-job",
                "reports_per_second": "--max-reports-per-second", "max_pending_jobs": "--max-pending-jobs",
                "max_pending_jobs_per_queue": "--max-pending-jobs-per-queue",
                "max_pending_jobs_per_user": "--max-pending-jobs-per-user",
                "max_watches_per_user": "--max-watches-per-user",
                "max_watches": "--max-watches",
                "max_log_follows_per_user": "--max-log-follows-per-user",
                "max_log_follows": "--max-log-follows",
                "max_unfinished_bytes": "--max-unfinished-bytes",
                "max_unfinished_bytes_per_user": "--max-unfinished-bytes-per-user",
                "max_clusters_per_provider": "--max-clusters-per-provider",
                "report_bytes_per_second": "--max-report-bytes-per-second",
                "job_updates_per_second": "--max-job-updates-per-second",
                "job_update_burst": "--job-update-burst"}


def _limits(args: argparse.Namespace) -> Limits:
    """The limits flags as Limits; a ValueError names the flag, not the field behind it."""
    from federator.security.limits import Limits
    pod_security = pod_security_of(args)
    try:
        return Limits(**{field: getattr(args, flag[2:].replace("-", "_")) for field, flag in _LIMIT_FLAGS.items()},
                      pod_security=pod_security)
    except ValueError as exc:
        said = str(exc)
        for field, flag in _LIMIT_FLAGS.items():
            said = said.replace(f"limits.{field}:", f"{flag}:")
        raise ValueError(said) from None


def _serve(args: argparse.Namespace) -> int:
    from federator.catalog import CatalogError, use_catalog_file
    from federator.listen import check_grpc_listen, parse_listen
    from federator.readyfile import ready_file_problem
    from federator.security.metrics_token import MetricsToken
    from federator.security.pki import CertsDir
    from federator.security.seal_keys import load_seal_keys
    from federator.security.tls import TlsError
    from federator.server.app import ServeOptions, serve

    for flag, value, zero in (("--report-interval", args.report_interval, False),
                              ("--lease-seconds", args.lease_seconds, False),
                              ("--lost-after", args.lost_after, False),
                              ("--forget-lost-after", args.forget_lost_after, True),  # 0: never
                              ("--start-timeout", args.start_timeout, True),  # 0: never
                              ("--early-failure-seconds", args.early_failure_seconds, True),  # 0: never
                              ("--quarantine-window", args.quarantine_window, False),
                              ("--quarantine-seconds", args.quarantine_seconds, False),
                              ("--order-max-age", args.order_max_age, True),  # 0: the default
                              ("--cycle-interval", args.cycle_interval, False),
                              ("--settle-seconds", args.settle_seconds, True),
                              ("--orphan-grace", args.orphan_grace, True),  # 0: at once
                              ("--trust-poll-seconds", args.trust_poll_seconds, True),
                              ("--max-reports-per-second", args.max_reports_per_second, False)):
        # NaN passes every comparison's "is it negative" and inf a timer's; a 0 interval spins the loop.
        if not (math.isfinite(value) and (value > 0 or (zero and value == 0))):
            must = "0 or a positive number" if zero else "a positive number"
            print(f"federator serve: {flag}: must be {must}, got {value:g}", file=sys.stderr)
            return 2
    if args.max_refusals < 0:
        print(f"federator serve: --max-refusals: must be 0 (never) or more, got {args.max_refusals}", file=sys.stderr)
        return 2
    if args.quarantine_failures < 0:
        print(f"federator serve: --quarantine-failures: must be 0 or more, got {args.quarantine_failures}",
              file=sys.stderr)
        return 2
    problem = ready_file_problem(args.ready_file) or kube_options_problem(args)
    if problem:
        print(f"federator serve: {problem}", file=sys.stderr)
        return 2
    if args.metrics_queue_labels < 1:
        print(f"federator serve: --metrics-queue-labels: must be at least 1, got {args.metrics_queue_labels}",
              file=sys.stderr)
        return 2
    try:
        use_catalog_file(args.accelerator_catalog)
    except CatalogError as exc:
        print(f"federator serve: --accelerator-catalog: {exc}", file=sys.stderr)
        return 2
    try:
        check_grpc_listen(args.listen, "--listen")
        parse_listen(args.metrics_listen, "--metrics-listen")
        MetricsToken.load(args.metrics_token_file)
        if args.seal_key_file:  # judged before anything starts; read again by serve()
            load_seal_keys(args.seal_key_file)
        if args.token_listen:
            check_grpc_listen(args.token_listen, "--token-listen")
        tls = tls_files(args, role="server")
        limits = _limits(args)
        retention = _retention(args)
        usage_retention = _usage_retention(args)
    except (TlsError, ValueError) as exc:
        print(f"federator serve: {exc}", file=sys.stderr)
        return 2
    revoked = args.revocation_list or (CertsDir(Path(args.certs_dir)).revoked if args.certs_dir else None)
    trust, trust_absent_ok = args.trust, False
    if trust is None and args.certs_dir:  # watched even before it exists: the first provider needs no restart
        trust = CertsDir(Path(args.certs_dir)).trust
        trust_absent_ok = not args.insecure and tls is not None
        if not trust_absent_ok and not trust.exists():
            trust = None

    opts = ServeOptions(policy=args.policy, listen=args.listen, metrics_listen=args.metrics_listen, db=args.db,
                        metrics_token_file=args.metrics_token_file,
                        metrics_queue_labels=args.metrics_queue_labels,
                        report_interval=args.report_interval, lease_seconds=args.lease_seconds,
                        lost_after_seconds=args.lost_after, forget_lost_after=args.forget_lost_after,
                        start_timeout=args.start_timeout,
                        early_failures=EarlyFailurePolicy(args.early_failure_seconds, QuarantinePolicy(
                            args.quarantine_failures, args.quarantine_window, args.quarantine_seconds)),
                        cycle_interval=args.cycle_interval,
                        settle_seconds=args.settle_seconds, orphan_grace=args.orphan_grace,
                        max_refusals=args.max_refusals,
                        ready_file=args.ready_file, tls=tls, insecure=args.insecure, revocation_list=revoked,
                        token_file=args.token_file, token_listen=args.token_listen, limits=limits,
                        audit_log=args.audit_log, trust=trust, trust_absent_ok=trust_absent_ok,
                        trust_poll_seconds=args.trust_poll_seconds,
                        order_max_age=args.order_max_age,
                        reflection=args.reflection, retention=retention,
                        usage_retention=usage_retention, seal_key_file=args.seal_key_file)
    opts = dataclasses.replace(opts, kube=kube_options(args))
    asyncio.run(serve(opts))
    return 0
