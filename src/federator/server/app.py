"""Wire the federator process together: store, scheduler, gRPC server, /metrics."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from federator.accounting import SqliteUsageStore, UsageMeter, attach
from federator.accounting.retention import UsagePruner, UsageRetention
from federator.api.v1 import agent_pb2_grpc, identity_pb2_grpc, jobs_pb2_grpc, queues_pb2_grpc, usage_pb2_grpc
from federator.backends.kube.options import KubeOptions
from federator.listen import ListenError
from federator.metrics import LABEL_LIMIT, Metrics
from federator.readyfile import write_ready_file
from federator.scheduler import COMPILED, Scheduler
from federator.security.audit import AuditLog
from federator.security.auth import Authenticator, RevocationList, load_tokens
from federator.security.authz import Authorizer, TenancyPolicy
from federator.security.limits import Limits
from federator.security.metrics_token import MetricsToken, MetricsTokenError
from federator.security.open_queues import open_queues, open_queues_warning
from federator.security.seal_keys import SealKeyError, load_seal_keys
from federator.security.serving_reload import ServingFiles
from federator.security.tls import ServedTls, TlsError, TlsFiles
from federator.security.trust import PROVIDER_LABEL, Trust, TrustError
from federator.security.trust_reload import TrustFile
from federator.server import seals, store_health
from federator.server.audit_trail import AuditTrail, attach_trail
from federator.server.early_failures import EarlyFailurePolicy
from federator.server.federator import ClusterRecord, Federator
from federator.server.grpc_server import build_server
from federator.server.health import add_health
from federator.server.identity_service import IdentityService
from federator.server.kept_room import KeptRoom
from federator.server.leases import DEFAULT_FORGET_LOST_AFTER_SECONDS
from federator.server.metrics_endpoint import MetricsEndpoint
from federator.server.orphans import DEFAULT_ORPHAN_GRACE_SECONDS
from federator.server.outbox import stopping
from federator.server.outside_regions import say_outside
from federator.server.policy_file import PolicyFile, PolicyFileError
from federator.server.policy_use import use_policy
from federator.server.queue_service import QueueService
from federator.server.refusals import DEFAULT_MAX_REFUSALS
from federator.server.reloads import Reloads
from federator.server.retention import Retention, RetentionPolicy
from federator.server.services import AgentService, ClusterService, JobService, decode_guard
from federator.server.settle import DEFAULT_SETTLE_SECONDS
from federator.server.start_deadline import DEFAULT_START_TIMEOUT_SECONDS
from federator.server.terms import StreamTerms, check_terms, default_order_max_age
from federator.server.usage_service import UsageService, region_now, vendor_now
from federator.steady_clock import SteadyClock
from federator.store import SqliteJobStore, StoreError
from federator.store.cordons import SqliteCordonStore
from federator.store.identity import FileState
from federator.store.members import SqliteMemberStore
from federator.store.moves import MoveStore, SqliteMoveStore
from federator.store.quarantines import SqliteQuarantineStore
from federator.store.reservation_clocks import ReservationClockStore, SqliteReservationClockStore
from federator.store.silent_cancels import SqliteSilentCancelStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from federator.backends.kube.host import KubeMode

log = logging.getLogger("federator.server")


@dataclass(frozen=True, slots=True)
class ServeOptions:
    listen: str = "127.0.0.1:7070"
    metrics_listen: str = "127.0.0.1:9090"
    metrics_token_file: Path | None = None  # set: /metrics asks for this bearer token (security/metrics_token.py)
    metrics_queue_labels: int = LABEL_LIMIT  # distinct queue label values before the rest read "other"
    db: Path = Path("federator.db")
    report_interval: float = 2.0
    lease_seconds: float = 10.0
    lost_after_seconds: float = 120.0
    forget_lost_after: float = DEFAULT_FORGET_LOST_AFTER_SECONDS  # server/leases.py; 0: never
    start_timeout: float = DEFAULT_START_TIMEOUT_SECONDS  # server/start_deadline.py; 0: never
    early_failures: EarlyFailurePolicy = EarlyFailurePolicy()  # server/early_failures.py, server/quarantine.py
    cycle_interval: float = 1.0
    settle_seconds: float = DEFAULT_SETTLE_SECONDS  # server/settle.py
    ready_file: Path | None = None
    policy: Path | None = None  # scheduling policy YAML; None = the defaults
    kube: KubeOptions | None = None  # Kubernetes mode: FederatedJobs are the store; a Lease picks the leader
    tls: TlsFiles | None = None  # None only with insecure=True
    insecure: bool = False
    revocation_list: Path | None = None
    token_file: Path | None = None
    token_listen: str = ""  # a server-TLS listener for bearer-token clients of the job API
    limits: Limits = Limits()
    audit_log: str | None = None  # a file path, or "-" for stdout; None: no audit log
    trust: Path | None = None  # provider CAs and the clusters each may certify (security/trust.py)
    trust_absent_ok: bool = False  # a trust file not there yet is no providers, read once it appears (--certs-dir)
    trust_poll_seconds: float = 5.0  # how often the trust file is looked at for changes; 0: on SIGHUP only
    order_max_age: float = 0.0  # the bound on a Launch's age; 0: default_order_max_age(lost_after_seconds)
    reflection: bool = False  # serve gRPC server reflection
    retention: RetentionPolicy = RetentionPolicy()  # finished jobs (server/retention.py); store mode only
    orphan_grace: float = DEFAULT_ORPHAN_GRACE_SECONDS  # server/orphans.py; 0: cancelled at once
    max_refusals: int = DEFAULT_MAX_REFUSALS  # server/giving_up.py; 0: never
    usage_retention: UsageRetention = UsageRetention()  # usage records (accounting/retention.py); both modes
    seal_key_file: Path | None = None  # seals and page tokens outlive the serving key (security/seal_keys.py)


def _policy(opts: ServeOptions) -> PolicyFile | None:
    """The policy file, read and checked whole before anything is opened (None: no --policy, the defaults)."""
    try:
        return PolicyFile(opts.policy) if opts.policy else None
    except PolicyFileError as exc:
        raise SystemExit(f"--policy: {exc}") from exc


async def _watch_wal(store: SqliteJobStore, every: float = 2.0) -> None:
    """Look for a lost -wal every few seconds, writes or not: what it held is copied into the file at once, not at
    the next write, which a crash may never reach (store/identity.py, SqliteJobStore.rescue)."""
    while not await asyncio.to_thread(store.rescue):
        await asyncio.sleep(every)


def _say_undeclared(tenancy: TenancyPolicy) -> None:
    """What a queue nobody declared is under this policy (rule undeclared-queue), said once at start."""
    if tenancy.closes_undeclared:
        log.info("--policy: the policy has tenancy or access lists and defaultQueue no access list: a queue the "
                 "policy (or a Queue object) does not declare takes submissions from tenancy.admins only; others "
                 "are refused naming the queues they may use. Jobs stored in such a queue before are kept and run. "
                 "To open undeclared queues to everyone, set defaultQueue.access: {anyone: true} "
                 "(docs/security.md, \"Access rules\")")
    elif tenancy.multi_tenant and tenancy.default_access is not None and tenancy.default_access.anyone:
        log.warning("--policy: defaultQueue.access is {anyone: true}: any caller may submit to a queue the policy "
                    "does not declare, and each such queue has defaultQueue's quota, a fair share and (with the "
                    "agent's namespacePerQueue) a member namespace of its own, shared by whoever names it "
                    "(docs/security.md, \"Access rules\")")


def _authorizer(opts: ServeOptions, policy: PolicyFile | None) -> Authorizer:
    tenancy = policy.current.tenancy if policy is not None else TenancyPolicy()
    _say_undeclared(tenancy)
    if opts.kube and (open_warning := open_queues_warning(open_queues(tenancy))):  # secqa61 M2
        log.warning("%s", open_warning)
    if opts.kube and (tenancy.namespace_lists or tenancy.default_namespace_list):
        log.warning("--policy: a queue's namespaces list binds namespaces in standalone mode only and is ignored "
                    "here: in Kubernetes mode RBAC and a Queue's namespaceSelector do (docs/security.md)")
    return Authorizer(tenancy)


def _say_insecure(opts: ServeOptions) -> None:
    """What --insecure means for callers, said once the store's jobs are loaded: a start refused for a bad store
    is then its one line, not a warning and then the refusal."""
    if opts.insecure:
        log.warning("--insecure: no caller has an identity; every job API caller acts as the admin 'anonymous'")
        if opts.limits.max_pending_jobs_per_user is not None:  # what the default (half the federator's) is not
            log.warning("--insecure: --max-pending-jobs-per-user %d bounds the pending jobs of every job API "
                        "caller together, since all of them are the one user 'anonymous'",
                        opts.limits.max_pending_jobs_per_user)


def provider_of(rec: ClusterRecord | None) -> str:
    """A member cluster's provider: its `federator.io/provider` label (the agent's --provider)."""
    return rec.labels.get(PROVIDER_LABEL, "") if rec is not None else ""


TICK_SECONDS = 5.0


async def _tick(meter: UsageMeter, every: float = TICK_SECONDS) -> None:
    """Keep the accelerator-seconds counter current for running placements."""
    while True:
        await asyncio.sleep(every)
        meter.tick()


def _audit_revoked(audit: AuditLog, entries: list[str], provider: str = "") -> None:
    """A revocation list gained entries (`federator certs revoke`): one audit line each."""
    for entry in entries:
        obj = {"kind": "Certificate", "revoked": entry}
        if provider:
            obj["provider"] = provider
        audit.record("certificate.revoke", identity=None, obj=obj, result="accepted",
                     message="loaded from the revocation list; the federator refuses it from now on")


def _trust(opts: ServeOptions, audit: AuditLog, metrics: Metrics) -> TrustFile | None:
    if opts.trust is None:
        return None
    if opts.tls is None or opts.insecure:
        raise SystemExit("--trust: provider CAs need TLS (not --insecure)")
    try:
        trust = TrustFile(opts.trust, federation_ca=opts.tls.ca, absent_ok=opts.trust_absent_ok,
                          on_revoked=lambda provider, entries: _audit_revoked(audit, entries, provider))
    except TrustError as exc:
        raise SystemExit(f"--trust: {exc}") from exc
    for p in trust.current.providers.values():
        log.info("provider %s: its CA certifies clusters %s", p.name, ", ".join(p.clusters))
    metrics.trust_reload_failing.set(0)
    return trust


def _served(opts: ServeOptions, trust: TrustFile | None) -> tuple[ServedTls | None, ServingFiles | None]:
    """What the TLS listeners serve, and the files it is re-read from (None, None with --insecure)."""
    if opts.insecure or opts.tls is None:
        return None, None
    try:
        served = opts.tls.served(trust.current.bundle_pem() if trust is not None else None)
    except TlsError as exc:
        raise SystemExit(f"serve: {exc}") from exc
    return served, ServingFiles(opts.tls, served, with_ca=trust is None)


def _subscribe_trust(trust: TrustFile, *, auth: Authenticator, roots: ServedTls, agents: AgentService) -> None:
    """Who holds a reloaded trust, in the order a caller meets it: the TLS handshake (a new provider's CA accepted,
    a removed one's refused, from the next connection on), the authenticator (every call), and the live agent
    streams (those it no longer admits ended). Each is a listener of its own, so one that refuses the new trust
    has those before it handed the old back (security/watched.py); the streams come last because an ended stream
    cannot be put back (its agent reconnects, and is judged by the trust then in force)."""
    trust.subscribe(lambda _old, new: roots.use_client_roots(new.bundle_pem()))
    trust.subscribe(lambda _old, new: auth.use_trust(new))
    trust.subscribe(lambda _old, new: _retrust(agents, new))


def _retrust(agents: AgentService, trust: Trust) -> None:
    ended = agents.retrust(trust)
    if ended:
        log.warning("the reloaded trust file ended the streams of clusters %s", ", ".join(sorted(ended)))


def _add_port(flag: str, address: str, add: Callable[[str], int]) -> int:
    """Bind one listener; a busy or bad address is a one-line error naming the flag, not a traceback.

    grpcio reports a failed bind either as port 0 (older releases) or as a RuntimeError (1.5x on)."""
    try:
        port = add(address)
    except RuntimeError as exc:  # gRPC has logged the cause (e.g. "Address already in use") just before
        raise SystemExit(f"{flag}: cannot bind {address}: in use, or not an address of this host") from exc
    if port == 0:
        raise SystemExit(f"{flag}: cannot bind {address}")
    return port


def _token_listen_problem(opts: ServeOptions) -> str:
    """What keeps the bearer-token listener from serving ("" if nothing), naming the flag at fault: a token
    travels only over TLS, so --insecure is the conflict even when the TLS files and --token-file are given."""
    if opts.insecure:
        return ("bearer tokens are served over TLS only, and --insecure turns TLS off; drop --insecure "
                "(the main listener then uses the TLS files too) or drop --token-listen")
    missing = [what for what, absent in (("TLS files (--certs-dir or --ca/--cert/--key)", opts.tls is None),
                                         ("--token-file", opts.token_file is None)) if absent]
    return f"needs {' and '.join(missing)}" if missing else ""


def _bind(server: grpc.aio.Server, opts: ServeOptions, served: ServedTls | None) -> tuple[int, int]:
    """The main listener (mTLS, or plaintext with --insecure) and the optional bearer-token listener.

    `served`: what both TLS listeners present and trust, replaced when the TLS files or the trust file are
    reloaded (server/reloads.py)."""
    try:
        if opts.insecure:
            port = _add_port("--listen", opts.listen, server.add_insecure_port)
        elif served is None:
            raise SystemExit("serve: TLS needs --certs-dir or --ca/--cert/--key (or --insecure for plaintext)")
        else:
            creds = served.credentials(require_client_auth=True)
            port = _add_port("--listen", opts.listen, lambda address: server.add_secure_port(address, creds))
        if not opts.token_listen:
            return port, 0
        problem = _token_listen_problem(opts)
        if problem or served is None:  # (no TLS is always a problem: the `or` is for mypy)
            raise SystemExit(f"--token-listen: {problem}")
        token_creds = served.credentials(require_client_auth=False)
        token_port = _add_port("--token-listen", opts.token_listen,
                               lambda address: server.add_secure_port(address, token_creds))
    except TlsError as exc:
        raise SystemExit(f"serve: {exc}") from exc
    return port, token_port


async def _prepare_kube_mode(opts: KubeOptions) -> KubeMode:
    """Connect to the host cluster and, with leader election, wait until this replica leads.

    Imported here, not at the top: the `kubernetes` package loads only in Kubernetes mode."""
    from federator.backends.kube.host import KubeMode

    return await KubeMode.prepare(opts)


async def serve(opts: ServeOptions) -> None:
    metrics = Metrics(label_limit=opts.metrics_queue_labels)
    # /metrics first: a standby replica waiting for the Lease is alive (liveness probes) but serves no gRPC.
    try:
        httpd = MetricsEndpoint(metrics.registry, opts.metrics_listen, token=MetricsToken.load(opts.metrics_token_file))
    except (ListenError, MetricsTokenError) as exc:
        raise SystemExit(str(exc)) from exc
    # Every input that can be judged without the store is judged before it is opened: a policy refused after
    # the store was created left an empty store (and its lock) behind, which the next start took for the real one
    # (outside QA, tenants F5).
    policy = _policy(opts)
    scheduler, authz = Scheduler(policy.current.config if policy else None), _authorizer(opts, policy)
    if (sizing := KeptRoom.of(opts.limits.max_pending_jobs, len(scheduler.config.queues)).sizing_problem()):
        log.warning("%s", sizing)
    try:
        audit = AuditLog(opts.audit_log, background=True,  # written by a thread of its own, not the loop
                         on_line=lambda action, result: metrics.audit_lines.labels(action, result).inc())
    except OSError as exc:
        raise SystemExit(f"--audit-log: cannot open {opts.audit_log}: {exc.strerror or exc}") from exc
    trust = _trust(opts, audit, metrics)
    try:
        seal_keys = load_seal_keys(opts.seal_key_file) if opts.seal_key_file else None
    except SealKeyError as exc:
        raise SystemExit(str(exc)) from exc
    try:
        tokens = load_tokens(opts.token_file) if opts.token_file else []
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--token-file: {exc}") from exc
    try:
        revocations = RevocationList(opts.revocation_list, on_revoked=lambda entries: _audit_revoked(audit, entries))
    except ValueError as exc:
        raise SystemExit(f"--revocation-list: {exc}") from exc
    kube = await _prepare_kube_mode(opts.kube) if opts.kube else None  # a standby waits here for the Lease
    try:
        store = kube.store if kube else SqliteJobStore(opts.db)
    except StoreError as exc:  # in use by another federator, or not a store this version reads: its own line
        raise SystemExit(str(exc)) from exc
    except (OSError, sqlite3.Error) as exc:
        raise SystemExit(f"--db: cannot open the job store {opts.db}: {exc}") from exc
    try:  # Kubernetes mode too: mount a volume at --db to keep usage across restarts
        usage = SqliteUsageStore(opts.db)
    except (OSError, sqlite3.Error) as exc:
        raise SystemExit(f"--db: cannot open the usage records in {opts.db}: {exc}") from exc
    try:  # the members a restart expects back; in Kubernetes mode the MemberClusters are that memory
        members = None if kube else SqliteMemberStore(opts.db)
    except (OSError, sqlite3.Error) as exc:
        raise SystemExit(f"--db: cannot open the member clusters in {opts.db}: {exc}") from exc
    clusters: dict[str, ClusterRecord] = {}
    clock = SteadyClock()  # a step of the host's clock moves no lease and dates no order wrong (steady_clock.py)
    metrics.clock_offset.set_function(clock.offset)
    meter = UsageMeter(usage, metrics=metrics, clock=clock, provider_of=lambda name: provider_of(clusters.get(name)),
                       region_of=region_now(clusters), vendor_of=vendor_now(clusters),
                       gap_seconds=3 * TICK_SECONDS, hold_seconds=opts.lost_after_seconds)
    try:  # loads every job: a row that is not one stops the start, named (store/sqlite.py)
        fed = Federator(store=store, scheduler=scheduler, metrics=metrics, clock=clock,
                        report_interval=opts.report_interval,
                        lease_seconds=opts.lease_seconds, lost_after_seconds=opts.lost_after_seconds,
                        forget_lost_after=opts.forget_lost_after, start_timeout=opts.start_timeout,
                        early_failures=opts.early_failures,
                        cycle_interval=opts.cycle_interval,
                        limits=opts.limits, settle_seconds=opts.settle_seconds,
                        members=members, orphan_grace=opts.orphan_grace)
    except StoreError as exc:
        raise SystemExit(str(exc)) from exc
    _say_insecure(opts)
    clusters = fed.clusters
    cordon_store = None if kube else SqliteCordonStore(opts.db)  # kube: the MemberClusters' spec (KubeMode.start)
    if cordon_store is not None:
        fed.cordons.attach(cordon_store)
    # Quarantines are kept beside the cordons (server/quarantine_store.py); kube: the MemberClusters' annotation
    quarantine_store = None if kube else SqliteQuarantineStore(opts.db)
    if quarantine_store is not None:
        fed.early.quarantine.attach(quarantine_store, now=fed.clock())
    # Reservations' clocks (server/reservations.py); kube: the gangs' FederatedJob status (kube/reservation_clocks.py)
    clock_store: ReservationClockStore = kube.reservation_clocks if kube else SqliteReservationClockStore(opts.db)
    fed.cycles.reserved.attach(clock_store, now=fed.clock())
    # Each job's last move (store/moves.py); kube: its FederatedJob status (kube/move_times.py)
    move_store: MoveStore = kube.moves if kube else SqliteMoveStore(opts.db)
    fed.cycles.rebalancer.attach(move_store, now=fed.clock())
    if fed.cycles.pending_count > opts.limits.max_pending_jobs:  # every Submit is refused until the backlog drains
        log.warning("the store holds %d pending jobs, over --max-pending-jobs %d: every Submit is refused "
                    "(RESOURCE_EXHAUSTED) until fewer are pending", fed.cycles.pending_count,
                    opts.limits.max_pending_jobs)
    attach(fed, meter)
    # Where each job ran, in the audit log: placements made and ended, and ends (server/audit_trail.py)
    attach_trail(fed, AuditTrail(audit, provider_of=lambda name: provider_of(clusters.get(name))))
    # Placements cancelled on a silent member, their end awaited for their usage (server/silent_cancels.py): after the
    # meter, which dates what a member Lost meanwhile ran; kube: the MemberClusters (backends/kube/silent_cancels.py)
    silent_store = None if kube else SqliteSilentCancelStore(opts.db)
    if silent_store is not None:
        fed.silent_cancels.attach(silent_store, now=fed.clock())
    metrics.watch_store(lambda: fed.journal.queued, lambda: fed.journal.lazy,
                        unwritten=kube.store.unwritten if kube else store_health.unwritten(fed))
    db_file = store.file if isinstance(store, SqliteJobStore) else usage.file  # kube: --db is usage only
    if db_file is not None:
        metrics.store_file_gone.set_function(lambda: float(db_file.state() is not FileState.SAME))
    if kube:
        kube.store.on_write_error = lambda reason: metrics.store_write_errors.labels(reason.value).inc()
    else:
        fed.journal.on_error = store_health.count_errors(metrics)
    metrics.state_loop = asyncio.get_running_loop()  # scrapes read the federator's state on its loop
    metrics.leader.set(1)
    metrics.leader_acquisitions.inc()
    # The jobs just loaded live as long as the process: keep them out of the cyclic GC's full collections,
    # which otherwise walk every one of them (seconds with 100,000 jobs) while the loop waits.
    gc.freeze()
    auth = Authenticator(insecure=opts.insecure, revocations=revocations, tokens=tokens,
                         trust=trust.current if trust is not None else None)
    # The transport refuses anything far past the limit; the services refuse (and count) the rest.
    max_bytes = 4 * opts.limits.max_message_bytes
    # Shed past a bound on calls in flight, each method's calls taken up in a queue of their own (grpc_server.py)
    server = build_server(metrics, decode_guard(fed), max_message_bytes=max_bytes)
    fed.refusals.limit = opts.max_refusals  # a job no member takes fails (server/giving_up.py)
    fed.early.groups_of = authz.groups_of_owner  # an organisation's users are one owner to the quarantine
    terms = StreamTerms(report_interval=opts.report_interval, lease_seconds=opts.lease_seconds,
                        lost_after=opts.lost_after_seconds, clock=fed.clock,
                        order_max_age=opts.order_max_age or default_order_max_age(opts.lost_after_seconds))
    problem = check_terms(lease_seconds=terms.lease_seconds, lost_after=terms.lost_after,
                          order_max_age=terms.order_max_age)
    if problem is not None:
        raise SystemExit(f"serve: {problem}")
    agent_service = AgentService(fed, auth, authz=authz, audit=audit, terms=terms, kube=kube is not None)
    agent_pb2_grpc.add_AgentServiceServicer_to_server(agent_service, server)
    served, serving = _served(opts, trust)
    # Page tokens (paging.py) and the seals of Launches and job-ending Cancels (seals.py, required of an agent's word
    # unless --insecure) outlive a restart and a failover; with --seal-key-file a renewed serving key too
    seals.use_keys(seal_keys, served.key if served is not None else None, required=served is not None)
    if trust is not None and served is not None:
        _subscribe_trust(trust, auth=auth, roots=served, agents=agent_service)
    reloads = Reloads(metrics, trust=trust, serving=serving, policy=policy, audit=audit)
    if policy is not None:
        policy.subscribe(lambda old, new: use_policy(old, new, fed=fed, authz=authz, kube=kube))
    jobs_pb2_grpc.add_JobServiceServicer_to_server(
        JobService(fed, auth, authz=authz, audit=audit, namespaces=kube.namespace_gate(authz) if kube else None),
        server)
    cluster_service = ClusterService(fed, auth, authz=authz, audit=audit, kube=kube is not None)
    jobs_pb2_grpc.add_ClusterServiceServicer_to_server(cluster_service, server)
    usage_pb2_grpc.add_UsageServiceServicer_to_server(UsageService(cluster_service, usage), server)
    identity_pb2_grpc.add_IdentityServiceServicer_to_server(IdentityService(cluster_service, kube=kube is not None),
                                                            server)
    queues_pb2_grpc.add_QueueServiceServicer_to_server(QueueService(cluster_service), server)
    health_servicer = await add_health(server, reflect=opts.reflection)
    port, token_port = _bind(server, opts, served)
    await server.start()
    host = opts.listen.rpartition(":")[0]
    ready = {"grpc": f"{host}:{port}", "metrics": f"{httpd.url}/metrics", "pid": os.getpid(),
             "tls": not opts.insecure}
    if token_port:
        ready["grpc_token"] = f"{opts.token_listen.rpartition(':')[0]}:{token_port}"
    jobs_from = f"FederatedJob status in {kube.store.api.server}" if kube else opts.db  # kube: --db keeps usage only
    log.info("federator serving gRPC on %s (%s), metrics on %s, %d jobs loaded from %s, placement core %s",
             ready["grpc"], "INSECURE plaintext" if opts.insecure else "mTLS", ready["metrics"], len(fed.jobs),
             jobs_from,
             "compiled" if COMPILED else "interpreted (see setup.py: about half the placements per second)")
    say_outside(fed.jobs.values(), fed.scheduler.config)  # a fence narrowed while it was down (outside_regions.py)

    stop = asyncio.Event()
    # A replica stopping, or one whose Lease may be lost by its own clock, welcomes no agent and sends no order
    # (backends/kube/fencing.py): a deposed leader resumed from a pause re-synced the members beside the new one
    agent_service.leads = lambda: not stop.is_set() and (kube is None or kube.fence.holds())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # SIGHUP re-reads the trust file, the TLS files and the policy file; without them it is only logged (its
    # default would end the federator)
    loop.add_signal_handler(signal.SIGHUP, reloads.on_sighup)
    watching = loop.create_task(reloads.watch(opts.trust_poll_seconds)) \
        if reloads.watched and opts.trust_poll_seconds > 0 else None
    if opts.ready_file:  # once the signals are handled: whoever reads it may send one
        write_ready_file(opts.ready_file, ready)
    httpd.serving = True  # /readyz (the chart's readiness probe): ready once serving, as the ready file says
    if kube:  # who is expected back is known once kube.start has listed the MemberClusters
        fed.settling.known = False
    runner = loop.create_task(fed.run())
    ticker = loop.create_task(_tick(meter))
    # Kubernetes mode: a job lives as long as its FederatedJob, the user's object (server/retention.py).
    sweeper = None if kube else loop.create_task(Retention(fed, opts.retention).run())
    wal_watch = loop.create_task(_watch_wal(store)) if isinstance(store, SqliteJobStore) else None
    # Both modes: Kubernetes mode's usage records are in --db too (accounting/store.py).
    pruner = loop.create_task(UsagePruner(usage, opts.usage_retention, clock=clock,
                                          on_pruned=metrics.usage_records_pruned.inc).run())
    if kube:
        await kube.start(fed, on_lost=stop.set, authz=authz, audit=audit)
        fed.settling.known = True
        fed.wake()
    await stop.wait()
    log.info("federator stopping")
    httpd.serving = False  # /readyz: out of the Service while it drains
    # Agent streams end first, with UNAVAILABLE ("reconnect to its standby"), before the writes below: no order of
    # this replica's reaches a member while it steps down (`agent_service.leads` refuses new Hellos)
    await health_servicer.enter_graceful_shutdown()
    for rec in list(fed.clusters.values()):  # agent streams end with a status, as any the federator ends, not cut
        if rec.connected:
            fed.close_stream(rec, stopping(rec.name))
    runner.cancel()
    ticker.cancel()
    if watching is not None:
        watching.cancel()
    if sweeper is not None:
        sweeper.cancel()
    pruner.cancel()
    if wal_watch is not None:
        wal_watch.cancel()
    if kube is None or kube.fence.holds():  # the changes not written yet; kube: while this replica leads
        await fed.early.quarantine.writes.close()
    if kube:  # the Lease given up after the last write below, not before it (backends/kube/fencing.py)
        await kube.stop(release=False)
    fed.end_watches()  # watches end with a status too
    await server.stop(grace=2.0)
    httpd.stop()
    fed.membership.flush()
    # What is queued written (group_commit.py), the writer thread joined; kube: only while the Lease is this
    # replica's, else dropped (fencing.py)
    await asyncio.to_thread(fed.journal.close)
    store.close()
    if kube:
        await kube.release()
    if members is not None:
        members.close()
    if cordon_store is not None:
        cordon_store.close()
    if quarantine_store is not None:
        quarantine_store.close()
    clock_store.close()
    if silent_store is not None:
        silent_store.close()
    move_store.close()
    usage.close()
    audit.close()
    if kube and kube.lost:
        raise SystemExit("federator: lost the leader Lease; exiting so that a standby takes over")
