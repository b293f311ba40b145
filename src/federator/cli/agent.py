"""`federator agent`: run the agent of one member cluster."""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from federator.cli.certs import add_tls_arguments, tls_files
from federator.cli.podsecurity import add_pod_security_arguments, pod_security_of
from federator.listen import server_address

if TYPE_CHECKING:
    from federator.agent.agent import AgentConfig
    from federator.backends.sim import ClusterSpec
    from federator.security.tls import TlsFiles

DEFAULT_SERVER = os.environ.get("FEDERATOR_SERVER", "127.0.0.1:7070")
DEFAULT_GANG_TIMEOUT = 120.0  # = backends.kube.admission.DEFAULT_GANG_TIMEOUT_SECONDS (not imported: no kube here)
DEFAULT_KUEUE_ADMISSION_TIMEOUT = 600.0  # = backends.kube.admission.DEFAULT_KUEUE_ADMISSION_TIMEOUT_SECONDS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    a = sub.add_parser("agent", help="run an agent for one member cluster")
    a.add_argument("--cluster", required=True, help="member cluster name")
    a.add_argument("--region", help="the cluster's region (default: the one its certificate binds, `federator certs "
                                    "issue --region`; else, with --sim, the fleet file's); one contradicting the "
                                    "certificate's stops the agent")
    a.add_argument("--server", default=DEFAULT_SERVER, type=server_address,
                   help="federator gRPC address (default %(default)s), or a gRPC target: with two federator "
                        "replicas outside a cluster, both as `ipv4:HOST1:PORT1,HOST2:PORT2` or one DNS name of "
                        "both, `dns:///NAME:PORT` (only the leader serves; an address that does not answer is "
                        "given up after 5 s); with the chart, its Service, which only the leader backs")
    a.add_argument("--sim", type=Path, metavar="FLEET_FILE",
                   help="run a simulated cluster from this fleet file: a fleet YAML, or a node CSV (.csv) as "
                        "`federator sim --fleet` takes it (with a cluster column the rows of --cluster, without one "
                        "every row)")
    a.add_argument("--accelerator-catalog", type=Path, metavar="FILE",
                   help="accelerator catalog YAML merged over the built-in one (more vendors, device plugins, models); "
                        "a file with errors is refused naming the line")
    a.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="cluster label (repeatable)")
    a.add_argument("--provider", default="", metavar="NAME",
                   help="the provider running this cluster: the label federator.io/provider (usage is accounted by "
                        "it), and with --certs-dir the certificate from providers/NAME/ (signed by its CA)")
    a.add_argument("--maintenance", default="", metavar="REASON",
                   help="the provider's maintenance: the federator sends this cluster no new work while the agent "
                        "runs with it, and the agent refuses a new placement sent anyway (what runs here stays; "
                        "shown as Cordoned with REASON by get clusters). One line, at most 256 characters; restart "
                        "the agent without it to take work again")
    a.add_argument("--no-logs", action="store_true",
                   help="keep the output of this cluster's pods in the member: the agent does not serve `federator "
                        "logs` (its Hello lists no \"logs\" feature) and users are told this cluster does not "
                        "serve logs (default: served, to the job's owner and whoever may see the job)")
    a.add_argument("--time-scale", type=float, default=1.0, help="simulated durations are multiplied by this")
    a.add_argument("--kubeconfig", type=Path, help="run on a real member cluster through this kubeconfig")
    a.add_argument("--in-cluster", action="store_true", help="run on the cluster of this pod (service account)")
    a.add_argument("--namespace", default="federator-workloads",
                   help="namespace of the workloads placements run as (default %(default)s)")
    a.add_argument("--namespace-per-queue", action="store_true",
                   help="Kubernetes: run each queue's placements in a namespace of its own, <--namespace>-<queue> "
                        "(a hashed form where that is no DNS label), so tenants share no Secrets, PVCs, "
                        "ServiceAccounts or quota; the agent creates a missing one (labelled, with the Pod Security "
                        "level and a same-namespace-only NetworkPolicy) and needs cluster-wide RBAC "
                        "(deploy/kubernetes/rbac-agent-namespace-per-queue.yaml) (default: off, all in --namespace)")
    a.add_argument("--scheduler-config", type=Path, metavar="FILE",
                   help="the member's KubeSchedulerConfiguration (or a ConfigMap holding it): warn when its "
                        "scoring spreads accelerators, and label the cluster federator.io/member-scheduler-scoring")
    a.add_argument("--discovery-interval", type=float, default=60.0, metavar="SECONDS",
                   help="Kubernetes: look for newly installed workload kinds (JobSet, LeaderWorkerSet, ... CRDs) "
                        "this often (default %(default)s)")
    a.add_argument("--fence-after", type=float, default=0.0, metavar="SECONDS",
                   help="stop every placement after this long without a message from the federator (a cut, a "
                        "silent link or a pause, and the federator itself down: set it above the longest "
                        "federator outage you plan to recover from); at most the federator's --lost-after minus "
                        "its --order-max-age, else the agent refuses to run (default: off while running; on resume "
                        "from a pause the agent still fences past that bound)")
    a.add_argument("--metrics-listen", default="", metavar="HOST:PORT",
                   help="serve the agent's /metrics, /healthz (alive) and /readyz (connected and reporting) "
                        "here; port 0 picks a free one (default: off)")
    a.add_argument("--metrics-token-file", type=Path, metavar="FILE",
                   help="with --metrics-listen: /metrics answers only a scrape that sends this file's token as "
                        "`Authorization: Bearer` (Prometheus: authorization.credentials_file); re-read when it "
                        "changes; /healthz and /readyz stay open (default: no token)")
    a.add_argument("--ready-file", type=Path,
                   help="write the endpoint's bound URLs here as JSON once it serves (with --metrics-listen)")
    a.add_argument("--kueue-queue", default="", metavar="LOCALQUEUE",
                   help="Kubernetes: hand every workload to Kueue through this LocalQueue (in --namespace): created "
                        "suspended with the kueue.x-k8s.io/queue-name label, Kueue admits each gang whole "
                        "(default: off)")
    a.add_argument("--gang-timeout", type=float, default=DEFAULT_GANG_TIMEOUT, metavar="SECONDS",
                   help="Kubernetes without --kueue-queue: a training gang whose pods are not all bound to nodes "
                        "this long after launch is deleted and reported refused, so the federator places it again "
                        "and no partial gang holds accelerators; 0 turns it off (default %(default)gs)")
    a.add_argument("--cluster-domain", default="cluster.local", metavar="DOMAIN",
                   help="Kubernetes: the member's DNS domain (its kubelets' --cluster-domain): an elastic gang's "
                        "torchrun rendezvous endpoint is replica 0's FQDN <job>-0.<job>.<namespace>.svc.DOMAIN, "
                        "the name under which its torchrun knows to host the store (default %(default)s)")
    a.add_argument("--kueue-admission-timeout", type=float, default=DEFAULT_KUEUE_ADMISSION_TIMEOUT,
                   metavar="SECONDS",
                   help="Kubernetes with --kueue-queue: when Kueue has held a placement suspended this long "
                        "(its quota cannot admit it yet), the agent asks the federator to move it, and asks again "
                        "each time as long again; the federator moves the job if another member can run it now, "
                        "else it keeps its place in Kueue's queue; 0 never asks (default %(default)gs)")
    a.add_argument("--sim-launch-latency", type=float, default=0.0, metavar="SECONDS",
                   help="simulate a slow cluster API: each launch takes this long (default 0)")
    add_pod_security_arguments(a, role="agent")
    add_tls_arguments(a, role="agent")
    a.set_defaults(func=_agent)


def agent_config(args: argparse.Namespace, labels: dict[str, str], *, region: str | None = None,
                 tls: TlsFiles | None = None) -> AgentConfig:
    """The agent's configuration from `federator agent` flags, one builder for every backend (the simulated
    cluster and Kubernetes alike get --fence-after and the /metrics endpoint)."""
    from federator.agent.agent import AgentConfig

    return AgentConfig(cluster=args.cluster, region=region if region is not None else args.region or "",
                       target=args.server, labels=labels,
                       tls=tls, fence_after=args.fence_after, metrics_listen=args.metrics_listen,
                       metrics_token_file=getattr(args, "metrics_token_file", None),
                       ready_file=args.ready_file, maintenance=getattr(args, "maintenance", "").strip(),
                       serve_logs=not getattr(args, "no_logs", False))


def _agent(args: argparse.Namespace) -> int:
    from federator.agent.agent import Agent
    from federator.agent.bound_region import agent_region
    from federator.agent.endpoint import ListenError, parse_listen
    from federator.agent.runner import run
    from federator.backends.sim import FleetError
    from federator.backends.sim.pool_names import unknown_models
    from federator.backends.sim.runtime import SimBackend
    from federator.catalog import CatalogError, use_catalog_file
    from federator.readyfile import ready_file_problem
    from federator.security.metrics_token import MetricsToken, MetricsTokenError
    from federator.security.podsecurity_member import POLICY_LABELS, policy_labels
    from federator.security.tls import TlsError
    from federator.yamltext import read_text

    try:
        use_catalog_file(args.accelerator_catalog)
    except CatalogError as exc:
        print(f"federator agent: --accelerator-catalog: {exc}", file=sys.stderr)
        return 2
    upkeep = maintenance_problem(args.maintenance)
    if upkeep:
        print(f"federator agent: --maintenance: {upkeep}", file=sys.stderr)
        return 2
    labels: dict[str, str] = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"federator agent: --label: expected KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        labels[key] = value
    if args.provider:
        from federator.security.limits import LABEL_VALUE

        if not LABEL_VALUE.match(args.provider):
            print(f"federator agent: --provider: must be a label value (letters, digits, '-', '_' or '.', at most "
                  f"63, beginning and ending with a letter or digit), got {args.provider[:80]!r}", file=sys.stderr)
            return 2
        labels["federator.io/provider"] = args.provider
    problem = ready_file_problem(args.ready_file)
    if problem:
        print(f"federator agent: {problem}", file=sys.stderr)
        return 2
    try:
        pod_security = pod_security_of(args)
    except ValueError as exc:
        print(f"federator agent: {exc}", file=sys.stderr)
        return 2
    # The member's own level, as the federator's PodSecurity filter reads it: set by the flags alone, so that
    # the label can never say less than the agent enforces.
    own = policy_labels(pod_security)
    said = sorted(k for k in labels if k in POLICY_LABELS)
    if said:
        print(f"federator agent: --label: {said[0]} is set by --pod-security, --allow-capability and "
              "--allow-host-network, not by a label", file=sys.stderr)
        return 2
    labels.update(own)
    if not args.time_scale > 0:  # NaN too
        print(f"federator agent: --time-scale: must be a positive number, got {args.time_scale:g}", file=sys.stderr)
        return 2
    if not args.fence_after >= 0:
        print(f"federator agent: --fence-after: must be 0 (off) or more seconds, got {args.fence_after:g}",
              file=sys.stderr)
        return 2
    try:
        if args.metrics_listen:
            parse_listen(args.metrics_listen)
        if args.metrics_token_file is not None and not args.metrics_listen:
            raise MetricsTokenError("--metrics-token-file: guards the endpoint of --metrics-listen, which is not set")
        MetricsToken.load(args.metrics_token_file)
        tls = tls_files(args, role="agent", name=args.cluster)
        if tls is not None:
            tls.channel_credentials()  # fail now, naming the file, rather than on every reconnect
    except (ListenError, MetricsTokenError, TlsError) as exc:
        print(f"federator agent: {exc}{_issue_hint(args, exc)}", file=sys.stderr)
        return 2
    cert = tls.cert if tls is not None else None
    if args.kubeconfig is not None or args.in_cluster:
        from federator.backends.kube.main import run_agent
        from federator.backends.kube.scheduler_config import SCORING_LABEL, check_scheduler_config

        if args.scheduler_config is not None:
            try:
                check = check_scheduler_config(read_text(args.scheduler_config), source=str(args.scheduler_config))
            except OSError as exc:
                print(f"federator agent: --scheduler-config: {exc.strerror or exc}", file=sys.stderr)
                return 2
            except ValueError as exc:
                print(f"federator agent: --scheduler-config: {args.scheduler_config}: {exc}", file=sys.stderr)
                return 2
            for problem in check.problems:
                print(f"federator agent: warning: {problem}", file=sys.stderr)
            labels.setdefault(SCORING_LABEL, check.scoring)

        bound = agent_region(flag=args.region or "", cert=cert)
        refused = bound.problem or _hello_problem(args.cluster, bound.region, labels)
        if refused:
            print(f"federator agent: {refused}", file=sys.stderr)
            return 2
        return run_agent(args, agent_config(args, labels, region=bound.region, tls=tls), pod_security=pod_security,
                         region_from=bound.source)
    if args.sim is None:
        print("federator agent: --sim FLEET_FILE, --kubeconfig PATH or --in-cluster is required",
              file=sys.stderr)
        return 2
    try:
        fleet = sim_fleet(args.sim, args.cluster)
    except FleetError as exc:
        print(f"federator agent: {exc}", file=sys.stderr)
        return 2
    spec = fleet.get(args.cluster)
    if spec is None:
        print(f"federator agent: --cluster: {args.cluster!r} is not in {args.sim} "
              f"(clusters: {', '.join(sorted(fleet))})", file=sys.stderr)
        return 2
    for warning in unknown_models([spec]):
        print(f"federator agent: warning: {warning}", file=sys.stderr)
    backend = SimBackend(spec, time_scale=args.time_scale, pod_security=pod_security)
    if args.sim_launch_latency > 0:
        backend = _SlowLaunches(backend, args.sim_launch_latency)  # type: ignore[assignment]
    fleet_labels = {k: v for k, v in spec.labels if k not in POLICY_LABELS}  # the flags say the level, not the file
    bound = agent_region(flag=args.region or "", cert=cert, fallback=spec.region, fallback_source="fleet file")
    config = agent_config(args, {**fleet_labels, **labels}, region=bound.region, tls=tls)
    refused = bound.problem or _hello_problem(config.cluster, config.region, config.labels)
    if refused:
        print(f"federator agent: {refused}", file=sys.stderr)
        return 2
    return run(Agent(config, backend))


def sim_fleet(path: Path, cluster: str) -> dict[str, ClusterSpec]:
    """The clusters of `agent --sim`'s fleet file: a fleet YAML, or a node CSV read as `federator sim --fleet` reads it
    (simulate/traces.py), so the planner's real fleet runs as live members too (outside QA, planners P15: the CSV was
    parsed as YAML, "clusters: must be a list of clusters"). A CSV with a cluster column gives its clusters; one
    without is this one member's nodes, every row, named for `cluster` (sim deals such rows into clusters of its own
    naming, which no --cluster would know). FleetError naming the file, the row and the column. The simulator's
    reader is imported for a CSV only: an agent of a fleet YAML starts as before."""
    from federator.backends.sim import ClusterSpec, FleetError, load_fleet

    if path.suffix.lower() != ".csv":
        return load_fleet(path)
    from federator.simulate.traces import TraceError, load_fleet_file

    try:
        fleet = load_fleet_file(path, clusters=1)
    except TraceError as exc:
        raise FleetError(str(exc)) from exc
    if "cluster" in _csv_header(path):
        return fleet
    dealt = next(iter(fleet.values()), None)
    if dealt is None:
        return {}
    nodes = tuple(replace(n, name=f"{cluster}-{n.name.removeprefix(dealt.name + '-')}") for n in dealt.nodes)
    return {cluster: ClusterSpec(cluster, cluster, (), nodes)}


def _csv_header(path: Path) -> list[str]:
    """The column names of a CSV file's first line (read by load_fleet_file already, so it is readable)."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        return [h.strip() for h in next(csv.reader(f), [])]


def maintenance_problem(reason: str) -> str:
    """Why `--maintenance REASON` is not one a federator keeps whole ("" when it is): agent.proto
    CapacityReport.maintenance keeps 256 printable characters of one line."""
    if len(reason.strip()) > 256:
        return f"at most 256 characters, got {len(reason.strip())}"
    if any(not ch.isprintable() for ch in reason):
        return "must be one line of printable text"
    if reason and not reason.strip():
        return "must say why (a reason of blanks only reads as no maintenance)"
    return ""


def _hello_problem(cluster: str, region: str, labels: Mapping[str, str]) -> str | None:
    """What the federator would refuse in this agent's Hello, said now and named by flag: the federator's
    INVALID_ARGUMENT would only be logged, once a second, by an agent retrying for ever."""
    from federator.security.limits import REGION_LABELS, Limits, check_hello

    if not region:  # not given yet (the backend says so by name): a region label cannot be compared with it
        labels = {k: v for k, v in labels.items() if k not in REGION_LABELS}
    problem = check_hello(cluster, region or "r", labels, limits=Limits())
    if problem is None:
        return None
    for field, flag in (("hello.cluster", "--cluster"), ("hello.region", "--region"), ("hello.labels", "--label")):
        if problem.startswith(field):
            return flag + problem[len(field):]
    return problem


class _SlowLaunches:
    """A backend whose launches take `latency` seconds, as a slow cluster API would."""

    def __init__(self, inner: object, latency: float) -> None:
        self._inner = inner
        self._latency = latency

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def launch(self, placement: object, spec: object) -> str | None:

        await asyncio.sleep(self._latency)
        return await self._inner.launch(placement, spec)  # type: ignore[attr-defined, no-any-return]


def _issue_hint(args: argparse.Namespace, exc: Exception) -> str:
    """How to make the agent's certificate when it has none, as `certs init` says its next step: a missing
    --cert or --key file said only "No such file or directory" (outside QA F10)."""
    said = str(exc)
    if not (said.startswith(("--cert: cannot read", "--key: cannot read")) and "No such file" in said):
        return ""
    folder = f" --dir {args.certs_dir}" if args.certs_dir is not None else ""
    provider = f" --provider {args.provider}" if args.provider else ""
    return f"; issue one with `federator certs issue{folder} --cluster {args.cluster}{provider}`"
