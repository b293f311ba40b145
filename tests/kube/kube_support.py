"""Helpers of the Kubernetes tests (importable as `kube_support`): the federation on the test bed, kubectl views."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import ROOT

try:  # rootdir on sys.path
    from tests.testbed.testbed import Testbed
except ImportError:  # pytest's "prepend" import mode puts tests/ on sys.path
    sys.path.insert(0, str(ROOT / "tests" / "testbed"))
    from testbed import Testbed  # type: ignore[no-redef]

from federator.backends.kube.api import KubeApi
from federator.backends.kube.controller import FederatedJobController
from federator.backends.kube.cordons import KubeCordonStore
from federator.backends.kube.store import KubeJobStore
from federator.local import LocalFederation, Process
from federator.server.federator import ClusterRecord, Federator

from builders import cluster, pool

CRDS = ROOT / "deploy" / "helm" / "federator" / "crds"
RBAC = ROOT / "deploy" / "kubernetes"
EXAMPLES_K8S = ROOT / "examples" / "k8s"
WORKLOADS = "federator-workloads"
REGIONS = {"member-a": "east", "member-b": "west"}
H100 = "NVIDIA-H100-80GB-HBM3"
JOBS_NAMESPACE = "default"  # the session federator watches this namespace; other tests use their own
LEASE_NAMESPACE = "federator-system"  # the Lease "federator" there: deploy/kubernetes/rbac-federator.yaml
# The Lease's times of the tests that SIGKILL a leader and wait it out: short, for the takeover to come soon, yet
# with room for a loaded machine (2 CPUs shared): at 4 s / 3 s the reservation handover test found a new leader that
# stepped down the moment it had started, since it renewed only once started (fixed: backends/kube/host.py,
# tests/kube/test_kube_lease_start_testbed.py).
LEASE_TIMES = ("--lease-duration", "10", "--renew-deadline", "8", "--retry-period", "0.5")


def prepare(bed: Testbed, *, users: bool = False) -> None:
    """The chart's CRDs established in the host and the RBAC manifests of deploy/kubernetes applied: the federator's
    in the host (and the users' with `users`), the agent's in every member."""
    bed.kubectl("host", "apply", "-f", str(CRDS))
    bed.kubectl("host", "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    bed.kubectl("host", "apply", "-f", str(RBAC / "rbac-federator.yaml"))
    if users:
        bed.kubectl("host", "apply", "-f", str(RBAC / "rbac-users.yaml"))
    for member in bed.members:
        bed.kubectl(member, "apply", "-f", str(RBAC / "rbac-agent.yaml"))


@contextmanager
def own_bed(directory: Path, **start: Any) -> Iterator[Testbed]:
    """A test bed of a module's own (`start`: Testbed.start's nodes, controllers, ...), `prepare`d, stopped after."""
    bed = Testbed.start(directory, **start)
    try:
        prepare(bed)
        yield bed
    finally:
        bed.stop()


@contextmanager
def federation(bed: Testbed, workdir: Path, *serve_args: str, watch: str | None = JOBS_NAMESPACE) -> Iterator[Kube]:
    """`federator serve` on the host and a `federator agent` per member, real processes as a user starts them, each
    its service account with exactly the rules of deploy/kubernetes/rbac-*.yaml; stopped after. The federator
    watches `watch` (JOBS_NAMESPACE; None: every namespace), reports every 0.5 s and cycles every 0.2 s; `serve_args`
    add to that. The caller waits for what its tests need ready (the members, a workload kind)."""
    with serving(bed, workdir, *serve_args, watch=watch) as fed:
        for member in bed.members:
            kubeconfig = service_account_kubeconfig(bed, member, "federator-agent",
                                                    workdir / f"agent-{member}.kubeconfig")
            fed.start_kube_agent(member, kubeconfig=kubeconfig, region=REGIONS[member])
        yield Kube(bed, fed, workdir)


@contextmanager
def serving(bed: Testbed, workdir: Path, *serve_args: str,
            watch: str | None = JOBS_NAMESPACE) -> Iterator[KubeFederation]:
    """`federator serve` on the host alone, a real process as a user starts it, its service account with exactly
    the rules of deploy/kubernetes/rbac-federator.yaml; stopped after, with every agent the caller started on it
    (`federation` starts one per member; a module whose agents take flags of their own starts them itself). It
    watches `watch` (None: every namespace), reports every 0.5 s and cycles every 0.2 s; `serve_args` add to that."""
    host = service_account_kubeconfig(bed, "host", "federator", workdir / "federator.kubeconfig")
    fed = KubeFederation(workdir=workdir, tls=False, serve_args=[
        "--kubeconfig", str(host), *(("--watch-namespace", watch) if watch else ()), "--lease-namespace",
        LEASE_NAMESPACE, "--report-interval", "0.5", "--cycle-interval", "0.2", *serve_args])
    try:
        fed.start_server(timeout=60)
        yield fed
    finally:
        fed.stop()


def ready_members(k: Kube) -> list[str]:
    """The members whose MemberCluster says Ready, sorted: what a federation's fixture waits for."""
    return sorted(i["metadata"]["name"] for i in k.json("host", "get", "memberclusters")["items"]
                  if (i.get("status") or {}).get("state") == "Ready")


@contextmanager
def host_alone(directory: Path, namespace: str) -> Iterator[Testbed]:
    """A host control plane alone, with the chart's CRDs established and `namespace` made: for the tests that run
    the federator in their own process against a real API server."""
    bed = Testbed.start(directory, members=())
    try:
        bed.kubectl("host", "apply", "-f", str(CRDS))
        bed.kubectl("host", "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        bed.kubectl("host", "create", "namespace", namespace)
        yield bed
    finally:
        bed.stop()


def host_bed(namespace: str) -> Callable[[pytest.TempPathFactory], Iterator[Testbed]]:
    """A module's `host` fixture (`host = host_bed(NAMESPACE)`): a host control plane alone (`host_alone`), one for
    the module, with the chart's CRDs and `namespace` made."""

    @pytest.fixture(scope="module")
    def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
        """A host control plane alone, with the chart's CRDs."""
        with host_alone(tmp_path_factory.mktemp(f"{namespace}-bed"), namespace) as bed:
            yield bed

    return host


def queue_yaml(name: str, spec: dict[str, Any]) -> str:
    """A Queue object (`spec` as given), for `kubectl apply -f -`."""
    return yaml.safe_dump({"apiVersion": "federator.io/v1alpha1", "kind": "Queue", "metadata": {"name": name},
                           "spec": spec})


def fj_yaml(name: str, namespace: str, **spec: Any) -> str:
    """A FederatedJob in `namespace`, for `kubectl apply -f -`: training, a CPU and an accelerator a replica,
    `spec`'s fields over that."""
    return yaml.safe_dump({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                           "metadata": {"name": name, "namespace": namespace},
                           "spec": {"kind": "training", "resources": {"cpu": "1", "nvidia.com/gpu": 1}, **spec}})


def h100_job_yaml(name: str, queue: str) -> str:
    """A FederatedJob in JOBS_NAMESPACE and `queue`: one replica of 8 H100s, whose pod kwok runs 600 s (it holds its
    accelerators for the test's length), for `kubectl apply -f -`."""
    return fj_yaml(name, JOBS_NAMESPACE, replicas=1, queue=queue, acceleratorModels=["H100"],
                   resources={"nvidia.com/gpu": 8, "cpu": "2"},
                   template={"metadata": {"annotations": {"pod-complete.stage.kwok.x-k8s.io/delay": "600s"}}})


def member_bed(label: str, member: str, **start: Any) -> Callable[[pytest.TempPathFactory], Iterator[Testbed]]:
    """A module's `bed` fixture (`bed = member_bed("pod-nodes", MEMBER, controllers=...)`): a test bed of its own
    with `member` alone (`start`: Testbed.start's nodes, controllers, ...) and WORKLOADS made there, for the tests
    that run a KubeBackend in their own process against a real member."""

    @pytest.fixture(scope="module")
    def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
        """A test bed of one member, with WORKLOADS made."""
        tb = Testbed.start(tmp_path_factory.mktemp(f"{label}-bed"), members=(member,), **start)
        try:
            tb.kubectl(member, "create", "namespace", WORKLOADS)
            yield tb
        finally:
            tb.stop()

    return bed


def workload_pods(bed: Testbed, member: str) -> list[dict[str, Any]]:
    """The pods in `member`'s WORKLOADS namespace, as kubectl reads them."""
    return list(json.loads(bed.kubectl(member, "get", "pods", "-n", WORKLOADS, "-o", "json").stdout)["items"])


class Clock:
    """The federator's clock in a test that runs it in its own process: it reads `now`, which the test sets."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class InProcess:
    """A federator run in the test's own process on the host's API server (`in_process`): its FederatedJob store and
    controller, with nothing else of `federator serve` around them."""

    api: KubeApi
    store: KubeJobStore
    fed: Federator
    ctl: FederatedJobController

    def join(self, name: str) -> ClusterRecord:
        """Cluster `name` (region: what comes before its "-") connected, with one 8 x H100 node free."""
        region = name.split("-")[0]
        rec = self.fed.connect(cluster=name, region=region, labels={})
        self.fed.report(rec, cluster(name, region, pool(H100, nodes=1, free=8)).capacity)
        return rec


@contextmanager
def in_process(host: Testbed, namespace: str, *, cordons: bool = True) -> Iterator[InProcess]:
    """A federator in this process on `host`'s API server, its jobs in `namespace`; with `cordons`, its cordons and
    drains kept in the MemberClusters (none loaded: the test writes them). Its store closed after. Made inside the
    test's event loop (the controller's calls are coroutines)."""
    api = KubeApi.connect(host.host.kubeconfig)
    store = KubeJobStore(api, namespace=namespace)
    fed = Federator(store=store)
    ctl = FederatedJobController(fed, api, store, namespace=namespace)
    if cordons:
        fed.cordons.attach(KubeCordonStore(api), load=False)
    try:
        yield InProcess(api, store, fed, ctl)
    finally:
        store.close()


@asynccontextmanager
async def controller_running(host: Testbed, namespace: str) -> AsyncIterator[InProcess]:
    """`in_process` without cordons, its controller started (watching the FederatedJobs of `namespace`) and stopped
    after, before its store is closed: the set-up of the tests that drive a FederatedJob with kubectl and read what
    the federator made of it."""
    with in_process(host, namespace, cordons=False) as fx:
        await fx.ctl.start()
        try:
            yield fx
        finally:
            await fx.ctl.stop()


def service_account_kubeconfig(tb: Testbed, cluster: str, account: str, path: Path,
                               namespace: str = "federator-system") -> Path:
    """A kubeconfig for `cluster` that authenticates as a service account (a TokenRequest token)."""
    token = tb.kubectl(cluster, "create", "token", account, "-n", namespace, "--duration=24h").stdout.strip()
    config = yaml.safe_load(tb.cluster(cluster).kubeconfig.read_text())
    for user in config["users"]:
        user["user"] = {"token": token}
    path.write_text(yaml.safe_dump(config))
    return path


class KubeFederation(LocalFederation):
    """A LocalFederation whose agents run the Kubernetes backend against real member clusters."""

    def start_kube_agent(self, cluster: str, *, kubeconfig: Path, region: str, namespace: str = WORKLOADS,
                         extra_args: Sequence[str] = ()) -> Process:
        args = ["agent", "--cluster", cluster, "--region", region, "--server", self.grpc_target,
                "--kubeconfig", str(kubeconfig), "--namespace", namespace, "--discovery-interval", "1",
                *self._tls_args(), *extra_args]
        proc = self._spawn(f"agent-{cluster}", args)
        self.agents[cluster] = proc
        return proc

    def spawn(self, name: str, args: list[str]) -> Process:
        return self._spawn(name, args)


@dataclass
class Kube:
    """What a test needs: the test bed and the federation running on it."""

    tb: Testbed
    fed: KubeFederation
    workdir: Path
    extra: list[Process] = field(default_factory=list)

    def kubectl(self, cluster: str, *args: str, input: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.tb.kubectl(cluster, *args, input=input, check=check)

    def json(self, cluster: str, *args: str) -> Any:
        return json.loads(self.kubectl(cluster, *args, "-o", "json").stdout)

    def fj(self, name: str, namespace: str = JOBS_NAMESPACE) -> dict[str, Any] | None:
        proc = self.kubectl("host", "get", "fj", name, "-n", namespace, "-o", "json", check=False)
        return json.loads(proc.stdout) if proc.returncode == 0 else None

    def phase(self, name: str, namespace: str = JOBS_NAMESPACE) -> str:
        obj = self.fj(name, namespace)
        return str(((obj or {}).get("status") or {}).get("phase", ""))

    def event_messages(self, name: str, namespace: str = JOBS_NAMESPACE) -> list[str]:
        """The messages of the host's Events about the object `name` (a FederatedJob): what a user reads there."""
        events = self.json("host", "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}")
        return [str(e.get("message", "")) for e in events["items"]]

    def drain_node(self, cluster: str, node: str) -> None:
        """`kubectl drain` of a member's node as its operator runs it: cordoned, its pods evicted (the Eviction API)."""
        self.kubectl(cluster, "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--force",
                     "--timeout=60s")

    def member_jobs(self, cluster: str) -> list[dict[str, Any]]:
        return list(self.json(cluster, "get", "jobs", "-n", WORKLOADS)["items"])

    def logs(self) -> str:
        parts = []
        for proc in [p for p in (self.fed.server, *self.fed.agents.values(), *self.extra) if p]:
            try:
                parts.append(f"--- {proc.name}\n{proc.log.read_text()[-4000:]}")
            except OSError:
                pass
        return "\n".join(parts)


def usage_record(workdir: Path, pid: str) -> tuple[float, float | None] | None:
    """(start, end) of the placement's usage record in the `--db` of the federator run in `workdir`
    (LocalFederation's federator.db), None while it has none."""
    db = sqlite3.connect(f"file:{workdir / 'federator.db'}?mode=ro", uri=True, timeout=10)
    try:
        row = db.execute("SELECT start, end_time FROM usage WHERE placement_id = ?", (pid,)).fetchone()
    finally:
        db.close()
    return (float(row[0]), None if row[1] is None else float(row[1])) if row else None


def pods_finished(kube: Kube, member: str, pid: str) -> list[tuple[str, float]] | None:
    """(exit reason, finishedAt) of every container of the placement's pods on `member` once all of them stopped
    (kwok's delay and fail annotations end them), else None."""
    pods = kube.json(member, "get", "pods", "-n", WORKLOADS, "-l", f"federator.io/placement-id={pid}")["items"]
    ends = []
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (cs.get("state") or {}).get("terminated") or {}
            if not terminated.get("finishedAt"):
                return None
            stamp = str(terminated["finishedAt"]).replace("Z", "+00:00")
            ends.append((str(terminated.get("reason", "")), datetime.fromisoformat(stamp).timestamp()))
    return ends or None


@contextmanager
def agent_stopped(kube: Kube, member: str) -> Iterator[None]:
    """`member`'s `federator agent` process SIGSTOPped (a VM pause, a long GC: its member runs on, its stream falls
    silent) for the block, and resumed after it, however the block ends."""
    pid = kube.fed.agents[member].popen.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


class PhaseWatch:
    """Every phase the API server stored for each FederatedJob, in order, from now on.

    A raw watch from the resourceVersion of a list taken now, so no write made
    after this returns is missed however late the kubectl process starts.
    """

    def __init__(self, tb: Testbed, namespace: str) -> None:
        path = f"/apis/federator.io/v1alpha1/namespaces/{namespace}/federatedjobs"
        listed = json.loads(tb.kubectl("host", "get", "--raw", f"{path}?limit=1").stdout)
        version = listed["metadata"]["resourceVersion"]
        handle = tb.cluster("host")
        self.proc = subprocess.Popen(
            [str(tb.bin_dir / "kubectl"), f"--kubeconfig={handle.kubeconfig}", "get", "--raw",
             f"{path}?watch=1&resourceVersion={version}&timeoutSeconds=900"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.phases: dict[str, list[str]] = {}
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                obj = json.loads(line)["object"]
            except (ValueError, KeyError):
                continue
            phase = (obj.get("status") or {}).get("phase")
            seen = self.phases.setdefault(obj["metadata"]["name"], [])
            if phase and (not seen or seen[-1] != phase):
                seen.append(phase)

    def of(self, name: str) -> list[str]:
        return list(self.phases.get(name, []))

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
