"""Real-Kubernetes test bed for federator: one host control plane and N member clusters.

Everything runs as plain processes on 127.0.0.1 with ports chosen at run time:

* one etcd, shared by all clusters (each cluster has its own ``--etcd-prefix``);
* ``host``: kube-apiserver only (the federator's CRDs live there);
* each member (default ``member-a`` and ``member-b``): kube-apiserver,
  kube-controller-manager, kube-scheduler and kwok, which simulates the fake
  GPU nodes the test bed creates (nodes go Ready, pods go Running, pods owned
  by a Job go Succeeded after ``job_pod_duration`` seconds).

Binaries come from ``tests/testbed/build`` (compiled from the Go module proxy
into ``~/.cache/federator/testbed/<k8s version>/bin``).

Usage::

    from tests.testbed.testbed import Testbed   # or put tests/testbed on sys.path

    with Testbed.start(tmp_path) as tb:
        tb.kubectl("member-a", "get", "nodes")
        print(tb.members["member-a"].kubeconfig)

Command line (used by ``tests/testbed/up`` / ``down``)::

    python3 tests/testbed/testbed.py serve WORKDIR   # start, block until SIGTERM/SIGINT, stop
    python3 tests/testbed/testbed.py build           # same as ./build

Only the standard library and PyYAML are used.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import dataclasses
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

try:  # imported as tests.testbed.testbed
    from . import workload_controllers as _wc
except ImportError:  # tests/testbed on sys.path, or run as a script
    import workload_controllers as _wc  # type: ignore[no-redef]

__all__ = [
    "CONTROLLERS",
    "ClusterHandle",
    "DEFAULT_MEMBERS",
    "DraDevice",
    "DEFAULT_NODES",
    "DRA_DRIVER",
    "GPU_PRODUCT_LABEL",
    "GPU_RESOURCE",
    "HOST",
    "KWOK_NODE_ANNOTATION",
    "NodeSpec",
    "Testbed",
    "TestbedError",
    "default_nodes",
    "ensure_binaries",
    "ensure_controllers",
    "gpu_nodes",
]

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "build"
BUILD_CONTROLLERS_SCRIPT = HERE / "build-controllers"
KWOK_STAGES_FILE = HERE / "kwok-stages.yaml"
FAKE_DRA_DRIVER = HERE / "fake_dra_driver.py"
#: The driver (and DeviceClass) name the fake DRA driver publishes under: the NVIDIA DRA driver's.
DRA_DRIVER = "gpu.nvidia.com"

HOST = "host"
DEFAULT_MEMBERS: tuple[str, ...] = ("member-a", "member-b")

GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_COUNT_LABEL = "nvidia.com/gpu.count"
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")

#: Annotation on a Job's pod template that makes kwok fail the pod (exit code 1)
#: instead of completing it (see kwok-stages.yaml).
FAIL_ANNOTATION = "testbed.federator.dev/fail"
#: Annotation on a pod (template) overriding the completion delay, a Go duration ("10s").
DELAY_ANNOTATION = "pod-complete.stage.kwok.x-k8s.io/delay"

#: Controllers run by each member's kube-controller-manager.
MEMBER_CONTROLLERS: tuple[str, ...] = (
    "job-controller",
    "cronjob-controller",
    "deployment-controller",
    "replicaset-controller",
    "statefulset-controller",
    "daemonset-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "ttl-after-finished-controller",
    "pod-garbage-collector-controller",
    "disruption-controller",
    "resourcequota-controller",
    "endpointslice-controller",
    # Removes the node.kubernetes.io/not-ready taint that the TaintNodesByCondition
    # admission plugin puts on every new node, once kwok reports it Ready.
    "node-lifecycle-controller",
    "taint-eviction-controller",
    # Creates a pod's ResourceClaims from its ResourceClaimTemplates (DRA) and
    # removes them with the pod; kube-scheduler then allocates them.
    "resourceclaim-controller",
)
#: Controllers run on the host when ``host_controller_manager=True``.
HOST_CONTROLLERS: tuple[str, ...] = (
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    # A HorizontalPodAutoscaler may target a FederatedJob's scale subresource (tests/kube/test_kube_autoscaler.py).
    "horizontal-pod-autoscaler-controller",
)

SERVICE_CIDR = "10.96.0.0/16"  # only allocated from, never dialled
POD_CIDR = "10.244.0.1/16"  # kwok hands out pod IPs from here; nothing dials them
NODE_IP = "127.0.0.1"  # node InternalIP: the apiserver refuses to proxy to loopback


#: Workload controllers ``Testbed.start(controllers=...)`` can run on a member.
CONTROLLERS: tuple[str, ...] = _wc.RUNNABLE


class TestbedError(RuntimeError):
    """The test bed failed to build, start or answer."""

    __test__ = False  # not a pytest test class


# --------------------------------------------------------------------------- nodes


@dataclass(frozen=True)
class DraDevice:
    """One fake device the test bed's DRA driver publishes in a node's ResourceSlice.

    ``attributes`` values are strings, ints or bools (a ResourceSlice's
    ``string``/``int``/``bool`` attribute); ``capacity`` values are quantities.
    """

    name: str
    attributes: Mapping[str, str | int | bool] = field(default_factory=dict, hash=False)
    capacity: Mapping[str, str] = field(default_factory=dict, hash=False)

    def manifest(self) -> dict[str, Any]:
        """The device entry of a ``resource.k8s.io/v1`` ResourceSlice."""
        def attr(v: str | int | bool) -> dict[str, Any]:
            if isinstance(v, bool):
                return {"bool": v}
            return {"int": v} if isinstance(v, int) else {"string": v}
        return {"name": self.name, "attributes": {k: attr(v) for k, v in self.attributes.items()},
                "capacity": {k: {"value": v} for k, v in self.capacity.items()}}


@dataclass(frozen=True)
class NodeSpec:
    """A fake node managed by kwok.

    ``gpu_product``/``gpus`` make it an NVIDIA GPU node (``nvidia.com/gpu`` and
    the GPU feature discovery product/count labels); leave them empty/0 for any
    other kind and give the vendor's resources in ``extended`` and its labels in
    ``labels`` (tests/testbed/vendors.py has builders for several vendors).
    ``dra_devices`` are published in a ResourceSlice by the test bed's fake DRA
    driver; ``scheduler_ignored_resources`` are left out of the member's
    kube-scheduler fit check (as a scheduler extender such as HAMi's asks).
    """

    name: str
    gpu_product: str
    gpus: int
    cpu: str = "64"
    memory: str = "512Gi"
    pods: int = 110
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    taints: Sequence[Mapping[str, str]] = field(default=(), hash=False)
    extended: Mapping[str, str] = field(default_factory=dict, hash=False)
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)
    dra_devices: Sequence[DraDevice] = field(default=(), hash=False)
    scheduler_ignored_resources: Sequence[str] = field(default=(), hash=False)

    def manifest(self) -> dict[str, Any]:
        """The v1 Node object (with status) that the test bed creates."""
        resources = {
            "cpu": self.cpu,
            "memory": self.memory,
            "pods": str(self.pods),
        }
        labels = {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": "amd64",
            "type": "kwok",
        }
        if self.gpu_product or self.gpus:
            resources[GPU_RESOURCE] = str(self.gpus)
            labels.update({GPU_PRODUCT_LABEL: self.gpu_product, GPU_COUNT_LABEL: str(self.gpus),
                           "nvidia.com/gpu.present": "true"})
        resources.update(self.extended)
        labels.update(self.labels)
        spec: dict[str, Any] = {}
        if self.taints:
            spec["taints"] = [dict(t) for t in self.taints]
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": labels,
                "annotations": {
                    KWOK_NODE_ANNOTATION[0]: KWOK_NODE_ANNOTATION[1],
                    "node.alpha.kubernetes.io/ttl": "0",
                    **self.annotations,
                },
            },
            "spec": spec,
            "status": {"capacity": dict(resources), "allocatable": dict(resources)},
        }


def gpu_nodes(prefix: str, product: str, count: int, gpus: int, **kw: Any) -> list[NodeSpec]:
    """``count`` identical nodes named ``{prefix}-0`` .. ``{prefix}-{count-1}``."""
    return [NodeSpec(f"{prefix}-{i}", product, gpus, **kw) for i in range(count)]


H100 = "NVIDIA-H100-80GB-HBM3"
A100 = "NVIDIA-A100-SXM4-80GB"
L40S = "NVIDIA-L40S"


def default_nodes() -> dict[str, list[NodeSpec]]:
    """The default fleet: member-a 2x8 H100 + 1x4 A100; member-b 2x8 A100 + 2x4 L40S."""
    return {
        "member-a": gpu_nodes("member-a-h100", H100, 2, 8) + gpu_nodes("member-a-a100", A100, 1, 4),
        "member-b": gpu_nodes("member-b-a100", A100, 2, 8) + gpu_nodes("member-b-l40s", L40S, 2, 4),
    }


DEFAULT_NODES: Mapping[str, Sequence[NodeSpec]] = default_nodes()


# --------------------------------------------------------------------------- handles


@dataclass(frozen=True)
class ClusterHandle:
    """How to reach one cluster of the test bed (admin, ``system:masters``)."""

    name: str
    server: str  # https://127.0.0.1:PORT
    kubeconfig: Path  # admin kubeconfig (certificate-authority-data + token)
    token: str  # static bearer token
    ca_file: Path  # CA bundle that signed the apiserver's serving cert

    def to_json(self) -> dict[str, str]:
        return {k: str(v) for k, v in dataclasses.asdict(self).items()}


# --------------------------------------------------------------------------- binaries


def ensure_binaries(*, force: bool = False) -> Path:
    """Build (if needed) and return the directory with the test-bed binaries.

    ``FEDERATOR_TESTBED_BIN`` set to a directory skips the build and uses it.
    Build progress goes to stderr; a cold build takes tens of minutes.
    """
    override = os.environ.get("FEDERATOR_TESTBED_BIN")
    if override:
        return Path(override)
    cmd = [str(BUILD_SCRIPT)] + (["--force"] if force else [])
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise TestbedError(f"{BUILD_SCRIPT} failed with exit code {proc.returncode}")
    lines = proc.stdout.strip().splitlines()
    if not lines:
        raise TestbedError(f"{BUILD_SCRIPT} printed no bin dir")
    return Path(lines[-1])


def ensure_controllers(names: Iterable[str], *, force: bool = False) -> Path:
    """Build (if needed) the named workload controllers; return their cache dir.

    With ``FEDERATOR_TESTBED_BIN`` set, nothing is built: the controllers are looked
    for next to that bin dir (``<bin>/../controllers``).
    """
    override = os.environ.get("FEDERATOR_TESTBED_BIN")
    if override:
        return _wc.controllers_dir(Path(override))
    env = {**os.environ, "TESTBED_CONTROLLERS": " ".join(sorted(set(names)))}
    cmd = [str(BUILD_CONTROLLERS_SCRIPT)] + (["--force"] if force else [])
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    if proc.returncode != 0:
        raise TestbedError(f"{BUILD_CONTROLLERS_SCRIPT} failed with exit code {proc.returncode}")
    return Path(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- helpers

_PR_SET_PDEATHSIG = 1


def _child_setup() -> None:  # runs in the child between fork and exec
    # Die with the parent even if it is SIGKILLed, so no component outlives us.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:  # pragma: no cover - best effort
        pass


def _free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1, outside the kernel's ephemeral range (all held open at once,
    then released).

    An apiserver a fault test restarts keeps its port while its clients redial it; a port from the
    ephemeral range can be taken meanwhile as an outgoing connection's local end. The same reasoning
    as federator.local.free_listen_ports, written again here: `up` runs this file with any python3
    that has PyYAML, not only where the federator package is installed."""
    try:
        low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    candidates = [p for p in range(10000, 65536) if not low <= p <= high]
    secrets.SystemRandom().shuffle(candidates)
    socks: list[socket.socket] = []
    try:
        for port in candidates:
            if len(socks) == n:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            socks.append(s)
        if len(socks) < n:
            raise RuntimeError(f"no {n} free ports on 127.0.0.1 outside the ephemeral range")
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        data = path.read_text(errors="replace").splitlines()
    except OSError:
        return "<no log>"
    return "\n".join(data[-lines:])


def _run(cmd: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise TestbedError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
    return proc


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


class _Api:
    """Minimal HTTPS client for readiness checks and object creation."""

    def __init__(self, server: str, token: str | None, ca_file: Path | None) -> None:
        self.server = server
        self.token = token
        if ca_file is None:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # component /healthz with self-signed certs
        else:
            ctx = ssl.create_default_context(cafile=str(ca_file))
        self.ctx = ctx

    def request(self, method: str, path: str, body: Any = None, timeout: float = 5.0) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as e:
            raw = e.read()
            status = e.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def ok(self, path: str) -> bool:
        try:
            status, _ = self.request("GET", path, timeout=2.0)
        except (OSError, urllib.error.URLError, ssl.SSLError):
            return False
        return status == 200


def _tls_ready(port: int, ca_file: Path) -> bool:
    """A TLS handshake with 127.0.0.1:port succeeds, verified against the test bed CA."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            with ctx.wrap_socket(sock, server_hostname="127.0.0.1"):
                return True
    except (OSError, ssl.SSLError):
        return False


def _kubeconfig(name: str, server: str, ca_pem: bytes, token: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": f"{name}-admin", "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin"}}],
        "current-context": name,
    }


# --------------------------------------------------------------------------- test bed


class Testbed:
    """A running host + member clusters. Use :meth:`start`; stop with :meth:`stop` or ``with``."""

    __test__ = False  # not a pytest test class

    host: ClusterHandle
    members: dict[str, ClusterHandle]
    nodes: dict[str, list[NodeSpec]]
    workdir: Path
    bin_dir: Path
    logs_dir: Path
    startup_seconds: float

    def __init__(self, workdir: Path, bin_dir: Path) -> None:
        self.workdir = workdir
        self.bin_dir = bin_dir
        self.logs_dir = workdir / "logs"
        self.members = {}
        self.nodes = {}
        self.startup_seconds = 0.0
        self._procs: list[_Proc] = []
        # member -> (controller-manager, its port, scheduler, its port, kwok, its port)
        self._health: dict[str, tuple[_Proc, int, _Proc, int, _Proc, int]] = {}
        #: member -> controller name -> (process, health port, webhook port)
        self.controllers: dict[str, dict[str, tuple[_Proc, int, int]]] = {}
        self._controller_plan: dict[str, tuple[str, ...]] = {}
        self._crd_plan: dict[str, tuple[str, ...]] = {}
        self._volumes: list[_wc.SecretVolume] = []  # Secret volumes the test bed mounts as a kubelet would
        self._lock = threading.Lock()
        self._stopped = False

    # ------------------------------------------------------------------ public API

    @classmethod
    def start(
        cls,
        workdir: Path | str,
        *,
        members: Sequence[str] = DEFAULT_MEMBERS,
        nodes: Mapping[str, Sequence[NodeSpec]] | None = None,
        job_pod_duration: float = 3.0,
        host_controller_manager: bool = False,
        controllers: Mapping[str, Sequence[str]] | None = None,
        crds: Mapping[str, Sequence[str]] | None = None,
        bin_dir: Path | None = None,
        timeout: float = 180.0,
    ) -> Testbed:
        """Start etcd, the host apiserver and every member cluster; return when all are ready.

        ``nodes`` maps member name -> node specs; ``None`` means :data:`DEFAULT_NODES`
        (members without an entry get no nodes). ``job_pod_duration`` is how long a
        Job-owned pod stays Running before kwok completes it. ``host_controller_manager``
        adds a kube-controller-manager (garbage collector, namespace, service accounts)
        to the host. Ready means: every apiserver answers /readyz, every member's
        nodes are Ready, its scheduler and controller-manager answer /healthz, and the
        ``default`` ServiceAccount exists in the ``default`` namespace.

        ``controllers`` maps member name -> workload controllers to run there, from
        :data:`CONTROLLERS` (``"jobset"``, ``"kueue"``, ``"lws"``, ``"trainer"``, which
        needs ``"jobset"`` on the same member): their CRDs are installed, each runs as a
        process against the member, and its webhooks are registered (127.0.0.1 URL,
        test bed CA); ready means its ``/readyz`` answers and its webhook server
        accepts TLS. ``crds`` maps member name -> controllers whose CRDs only are
        installed, for kind discovery and schema checks without a controller.
        """
        t0 = time.monotonic()
        workdir = Path(workdir).resolve()
        members = tuple(members)
        if HOST in members or len(set(members)) != len(members):
            raise ValueError(f"member names must be unique and not {HOST!r}: {members}")
        if nodes is None:
            node_map = {m: list(DEFAULT_NODES.get(m, ())) for m in members}
        else:
            unknown = set(nodes) - set(members)
            if unknown:
                raise ValueError(f"nodes given for unknown members: {sorted(unknown)}")
            node_map = {m: list(nodes.get(m, ())) for m in members}
        plans: list[dict[str, tuple[str, ...]]] = []
        for arg, plan in (("controllers", controllers), ("crds", crds)):
            plan = {m: tuple(dict.fromkeys(v)) for m, v in (plan or {}).items()}
            unknown = set(plan) - set(members)
            if unknown:
                raise ValueError(f"{arg} given for unknown members: {sorted(unknown)}")
            plans.append(plan)
        controller_plan, crd_plan = plans
        for m, names in controller_plan.items():
            for name in names:
                need, why = _wc.REQUIRES.get(name, (name, ""))
                if need not in names:
                    raise ValueError(f"controllers[{m!r}] has {name!r} without {need!r}: {why}")
        all_names = [n.name for specs in node_map.values() for n in specs]
        if len(set(all_names)) != len(all_names):
            raise ValueError("node names must be unique across members")

        bins = Path(bin_dir) if bin_dir else ensure_binaries()
        for plan, allowed in ((controller_plan, _wc.RUNNABLE), (crd_plan, _wc.WITH_CRDS)):
            for name in {n for names in plan.values() for n in names} - set(allowed):
                try:
                    _wc.load(bins, name, run=plan is controller_plan)
                except _wc.ControllerUnavailable as e:
                    raise TestbedError(str(e)) from None
        wanted = {n for names in [*controller_plan.values(), *crd_plan.values()] for n in names}
        if wanted and not bin_dir:
            ensure_controllers(wanted & set(_wc.WITH_CRDS))
        for m, names in [*controller_plan.items(), *crd_plan.items()]:
            for name in names:
                try:
                    _wc.load(bins, name, run=name in controller_plan.get(m, ()))
                except _wc.ControllerUnavailable as e:
                    raise TestbedError(str(e)) from None
        for attempt in (1, 2):
            tb = cls(workdir, bins)
            tb.nodes = node_map
            tb._controller_plan = controller_plan
            tb._crd_plan = crd_plan
            atexit.register(tb.stop)
            try:
                tb._start(members, job_pod_duration, host_controller_manager, time.monotonic() + timeout)
            except TestbedError:
                tb.stop()
                # Ports are picked free and released just before the components bind
                # them; if another process grabbed one in between, try once more.
                if attempt == 1 and tb._port_clash():
                    continue
                raise
            except BaseException:
                tb.stop()
                raise
            break
        tb.startup_seconds = time.monotonic() - t0
        tb._write_state()
        return tb

    def __enter__(self) -> Testbed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def clusters(self) -> dict[str, ClusterHandle]:
        """Host and members, by name."""
        return {HOST: self.host, **self.members}

    def cluster(self, name: str) -> ClusterHandle:
        try:
            return self.clusters[name]
        except KeyError:
            raise KeyError(f"no cluster {name!r}; have {sorted(self.clusters)}") from None

    def kubectl(
        self,
        cluster: str,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the test bed's kubectl against ``cluster`` (text mode, output captured).

        With ``check`` (default) a non-zero exit raises :class:`TestbedError` carrying stderr.
        """
        handle = self.cluster(cluster)
        cmd = [
            str(self.bin_dir / "kubectl"),
            f"--kubeconfig={handle.kubeconfig}",
            f"--cache-dir={self.workdir / '.kube-cache'}",
            *args,
        ]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise TestbedError(
                f"kubectl {' '.join(args)} on {cluster} failed ({proc.returncode}):\n"
                f"{proc.stderr}{proc.stdout}"
            )
        return proc

    def kubectl_json(self, cluster: str, *args: str) -> Any:
        """``kubectl ARGS -o json`` parsed."""
        return json.loads(self.kubectl(cluster, *args, "-o", "json").stdout)

    def apply(self, cluster: str, objects: Any) -> subprocess.CompletedProcess[str]:
        """``kubectl apply -f -`` with a YAML string, one object, or a list of objects."""
        if isinstance(objects, str):
            text = objects
        elif isinstance(objects, Mapping):
            text = yaml.safe_dump(dict(objects))
        else:
            text = yaml.safe_dump_all([dict(o) for o in objects])
        return self.kubectl(cluster, "apply", "-f", "-", input=text)

    def pids(self) -> dict[str, int]:
        """Component name -> pid for every process the test bed started and that still runs."""
        return {p.name: p.popen.pid for p in self._procs if p.popen.poll() is None}

    def stop(self) -> None:
        """Stop every process this test bed started (SIGTERM, then SIGKILL). Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            procs = list(self._procs)
            volumes, self._volumes = self._volumes, []
        for volume in volumes:
            volume.stop()
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        # Clients first, then the apiservers, then etcd.
        etcd = [p for p in procs if p.name == "etcd"]
        apis = [p for p in procs if p.name.endswith("-apiserver")]
        rest = [p for p in procs if p not in etcd and p not in apis]
        for group in (rest, apis, etcd):
            self._terminate(group, grace=5.0)
        state = self.workdir / "state.json"
        with contextlib.suppress(OSError):
            state.unlink()

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _terminate(procs: Iterable[_Proc], grace: float) -> None:
        procs = [p for p in procs if p.popen.poll() is None]
        for p in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in procs:
            try:
                p.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.popen.pid, signal.SIGKILL)
                p.popen.wait()
        for p in procs:  # anything left in the process groups
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.popen.pid, signal.SIGKILL)

    def _spawn(
        self, name: str, args: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None
    ) -> _Proc:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        log = self.logs_dir / f"{name}.log"
        with open(log, "ab") as fh:
            fh.write(f"$ {' '.join(args)}\n".encode())
            fh.flush()
            popen = subprocess.Popen(
                list(args),
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=cwd or self.workdir,
                env={**os.environ, **env} if env else None,
                start_new_session=True,
                preexec_fn=_child_setup,
            )
        proc = _Proc(name, popen, log)
        with self._lock:
            if self._stopped:
                self._terminate([proc], grace=0.0)
                raise TestbedError("test bed stopped while starting")
            self._procs.append(proc)
        return proc

    def _port_clash(self) -> bool:
        for p in self._procs:
            with contextlib.suppress(OSError):
                if "address already in use" in p.log.read_text(errors="replace"):
                    return True
        return False

    def _check_alive(self) -> None:
        for p in self._procs:
            code = p.popen.poll()
            if code is not None:
                raise TestbedError(
                    f"{p.name} exited with code {code} during start-up; log {p.log}:\n{_tail(p.log)}"
                )

    def _wait(self, what: str, pred: Any, deadline: float, log: Path | None = None, interval: float = 0.1) -> Any:
        while True:
            self._check_alive()
            result = pred()
            if result:
                return result
            if time.monotonic() > deadline:
                extra = f"\nlog {log}:\n{_tail(log)}" if log else f"\nlogs in {self.logs_dir}"
                raise TestbedError(f"timed out waiting for {what}{extra}")
            time.sleep(interval)

    def _prepare_workdir(self) -> None:
        wd = self.workdir
        wd.mkdir(parents=True, exist_ok=True)
        pidfile = wd / "testbed.pid"
        if pidfile.exists():
            with contextlib.suppress(ValueError, OSError):
                pid = int(pidfile.read_text().strip())
                if pid != os.getpid() and Path(f"/proc/{pid}").exists():
                    raise TestbedError(f"a test bed (pid {pid}) is already running in {wd}")
        for sub in ("etcd", "pki", "logs", "clusters", ".kube-cache"):
            shutil.rmtree(wd / sub, ignore_errors=True)
        for f in ("kubeconfig", "state.json", "kwok-config.yaml"):
            with contextlib.suppress(OSError):
                (wd / f).unlink()
        for sub in ("pki", "logs", "clusters"):
            (wd / sub).mkdir()

    def _make_pki(self) -> tuple[Path, Path, Path, Path]:
        """CA, serving cert for 127.0.0.1/localhost, and a service-account signing key."""
        if shutil.which("openssl") is None:
            raise TestbedError("openssl not found (apt-get install openssl)")
        pki = self.workdir / "pki"
        ca_key, ca_crt = pki / "ca.key", pki / "ca.crt"
        srv_key, srv_csr, srv_crt = pki / "serving.key", pki / "serving.csr", pki / "serving.crt"
        sa_key = pki / "sa.key"
        ext = pki / "serving.ext"
        ext.write_text(
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
            "extendedKeyUsage=serverAuth\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "basicConstraints=critical,CA:FALSE\n"
        )
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _run(["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca_crt, "-days", "3650",
              "-subj", "/CN=federator-testbed-ca",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"])
        _run(["openssl", "req", "-new", *ec, "-keyout", srv_key, "-out", srv_csr,
              "-subj", "/CN=federator-testbed-apiserver"])
        _run(["openssl", "x509", "-req", "-in", srv_csr, "-CA", ca_crt, "-CAkey", ca_key,
              "-CAcreateserial", "-days", "3650", "-extfile", ext, "-out", srv_crt])
        _run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", sa_key])
        return ca_crt, srv_crt, srv_key, sa_key

    def _write_kwok_config(self, job_pod_duration: float) -> Path:
        docs = [d for d in yaml.safe_load_all(KWOK_STAGES_FILE.read_text()) if d]
        ms = max(0, int(job_pod_duration * 1000))
        for d in docs:
            if d["metadata"]["name"] in ("pod-complete", "pod-fail"):
                d["spec"]["delay"]["durationMilliseconds"] = ms
        path = self.workdir / "kwok-config.yaml"
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        return path

    def _start(self, members: tuple[str, ...], job_pod_duration: float, host_cm: bool, deadline: float) -> None:
        self._prepare_workdir()
        bins = self.bin_dir
        missing = [b for b in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
                               "kwok", "kubectl") if not (bins / b).is_file()]
        if missing:
            raise TestbedError(f"missing binaries in {bins}: {missing}")
        ca_crt, srv_crt, srv_key, sa_key = self._make_pki()
        ca_pem = ca_crt.read_bytes()
        kwok_config = self._write_kwok_config(job_pod_duration)
        names = (HOST, *members)
        # etcd client+peer; per cluster: apiserver; per member: cm, scheduler, kwok;
        # per workload controller: webhook + health probe
        n_ctrl = sum(len(v) for v in self._controller_plan.values())
        ports = iter(_free_ports(2 + len(names) + 3 * len(members) + (1 if host_cm else 0) + 2 * n_ctrl))

        # ---- etcd
        etcd_client, etcd_peer = next(ports), next(ports)
        etcd_url = f"http://127.0.0.1:{etcd_client}"
        peer_url = f"http://127.0.0.1:{etcd_peer}"
        etcd = self._spawn("etcd", [
            str(bins / "etcd"),
            "--name=testbed",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=testbed={peer_url}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync=true",
            "--quota-backend-bytes=4294967296",
            "--log-level=warn",
        ])

        # ---- identities + kubeconfigs
        handles: dict[str, ClusterHandle] = {}
        api_ports: dict[str, int] = {}
        for name in names:
            d = self.workdir / "clusters" / name
            d.mkdir(parents=True)
            port = next(ports)
            api_ports[name] = port
            token = secrets.token_hex(24)
            (d / "tokens.csv").write_text(f"{token},admin,admin,system:masters\n")
            server = f"https://127.0.0.1:{port}"
            kc = d / "admin.kubeconfig"
            kc.write_text(yaml.safe_dump(_kubeconfig(name, server, ca_pem, token), sort_keys=False))
            handles[name] = ClusterHandle(name=name, server=server, kubeconfig=kc, token=token, ca_file=ca_crt)
        self.host = handles[HOST]
        self.members = {m: handles[m] for m in members}
        self._write_merged_kubeconfig(ca_pem)

        self._wait("etcd /health", lambda: _Api(etcd_url, None, None).ok("/health"), deadline, etcd.log)

        # ---- apiservers (all at once)
        api_procs: dict[str, _Proc] = {}
        for name in names:
            d = self.workdir / "clusters" / name
            port = api_ports[name]
            admission = ["--disable-admission-plugins=ServiceAccount"] if name == HOST and not host_cm else []
            api_procs[name] = self._spawn(f"{name}-apiserver", [
                str(bins / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                f"--etcd-prefix=/registry/{name}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={d / 'certs'}",
                f"--tls-cert-file={srv_crt}",
                f"--tls-private-key-file={srv_key}",
                f"--token-auth-file={d / 'tokens.csv'}",
                f"--client-ca-file={ca_crt}",
                # Published in kube-system/extension-apiserver-authentication, which the
                # scheduler's and controller-manager's /healthz servers read.
                f"--requestheader-client-ca-file={ca_crt}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                "--authorization-mode=RBAC",
                "--anonymous-auth=false",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--service-account-issuer=https://127.0.0.1:{port}",
                f"--service-account-key-file={sa_key}",
                f"--service-account-signing-key-file={sa_key}",
                "--allow-privileged=true",
                "--endpoint-reconciler-type=none",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                *admission,
            ])
        for name in names:
            h = handles[name]
            api = _Api(h.server, h.token, h.ca_file)
            self._wait(f"{name} apiserver /readyz", lambda api=api: api.ok("/readyz"), deadline,
                       api_procs[name].log, 0.2)

        # ---- member components
        for m in members:
            self._start_member(m, handles[m], ports, ca_crt, sa_key, kwok_config)
        # ---- workload controllers: CRDs first (their managers watch them from the start)
        if self._controller_plan or self._crd_plan:
            self._install_crds(handles, deadline)
            webhook_cert = self._make_webhook_cert()
            for m, ctrl_names in self._controller_plan.items():
                for cname in ctrl_names:
                    self._start_controller(m, handles[m], cname, next(ports), next(ports), webhook_cert)
        if host_cm:
            self._start_controller_manager(HOST, handles[HOST], next(ports), ca_crt, sa_key, HOST_CONTROLLERS)

        # ---- nodes
        for m in members:
            api = _Api(handles[m].server, handles[m].token, handles[m].ca_file)
            for spec in self.nodes[m]:
                status, body = api.request("POST", "/api/v1/nodes", spec.manifest())
                if status not in (200, 201):
                    raise TestbedError(f"creating node {spec.name} in {m}: HTTP {status}: {body}")

        # ---- readiness
        for m in members:
            self._wait_member_ready(m, handles[m], deadline)
        for m in self._controller_plan:
            self._wait_controllers_ready(m, handles[m], ca_pem, deadline)
        if host_cm:
            self._wait_default_sa(HOST, handles[HOST], deadline)

    # ------------------------------------------------------------------ workload controllers

    def _install_crds(self, handles: Mapping[str, ClusterHandle], deadline: float) -> None:
        """Create every requested controller's CRDs in its member; wait until Established."""
        pending: list[tuple[str, str, _Api]] = []
        for m in sorted(set(self._controller_plan) | set(self._crd_plan)):
            api = _Api(handles[m].server, handles[m].token, handles[m].ca_file)
            wanted = dict.fromkeys([*self._controller_plan.get(m, ()), *self._crd_plan.get(m, ())])
            for cname in wanted:
                for crd in _wc.load(self.bin_dir, cname, run=False).crds():
                    status, body = api.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                                               crd, timeout=30.0)
                    if status not in (200, 201, 409):
                        raise TestbedError(f"creating CRD {crd['metadata']['name']} in {m}: HTTP {status}: {body}")
                    pending.append((m, crd["metadata"]["name"], api))

        def established(api: _Api, name: str) -> bool:
            status, body = api.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            conds = (body or {}).get("status", {}).get("conditions") or [] if status == 200 else []
            return any(c.get("type") == "Established" and c.get("status") == "True" for c in conds)

        for m, name, api in pending:
            self._wait(f"CRD {name} Established in {m}", lambda api=api, name=name: established(api, name),
                       deadline, None, 0.1)

    def _make_webhook_cert(self) -> tuple[Path, Path]:
        """A serving cert for 127.0.0.1 signed by the test bed CA, for every webhook server."""
        pki = self.workdir / "pki"
        key, csr, crt = pki / "webhook.key", pki / "webhook.csr", pki / "webhook.crt"
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _run(["openssl", "req", "-new", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=federator-testbed-webhook"])
        _run(["openssl", "x509", "-req", "-in", csr, "-CA", pki / "ca.crt", "-CAkey", pki / "ca.key",
              "-CAcreateserial", "-days", "3650", "-extfile", pki / "serving.ext", "-out", crt])
        return crt, key

    def _start_controller(
        self, m: str, h: ClusterHandle, cname: str, webhook_port: int, health_port: int, cert: tuple[Path, Path]
    ) -> None:
        build = _wc.load(self.bin_dir, cname, run=True)
        if cname == "trainer":
            self._start_trainer(m, h, build, webhook_port, health_port, cert)
            return
        d = self.workdir / "clusters" / m / cname
        cert_dir = d / "certs"
        cert_dir.mkdir(parents=True)
        for dst in (cert_dir, d / "kueue-metrics-certs"):  # see build: kueue_overlay
            dst.mkdir(exist_ok=True)
            shutil.copyfile(cert[0], dst / "tls.crt")
            shutil.copyfile(cert[1], dst / "tls.key")
        namespace = f"{cname}-system"
        api = _Api(h.server, h.token, h.ca_file)
        status, body = api.request("POST", "/api/v1/namespaces",
                                   {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        if status not in (200, 201, 409):
            raise TestbedError(f"creating namespace {namespace} in {m}: HTTP {status}: {body}")
        config = d / "config.yaml"
        config.write_text(yaml.safe_dump(build.configuration(
            namespace=namespace, webhook_port=webhook_port, health_port=health_port, cert_dir=cert_dir)))
        args = [str(build.binary), f"--kubeconfig={h.kubeconfig}", f"--config={config}"]
        if cname in ("jobset", "lws"):
            args.append("--leader-elect=false")
        proc = self._spawn(f"{m}-{cname}", args, cwd=d, env={"POD_NAMESPACE": namespace})
        self.controllers.setdefault(m, {})[cname] = (proc, health_port, webhook_port)

    def _start_trainer(self, m: str, h: ClusterHandle, build: _wc.ControllerBuild, webhook_port: int,
                       health_port: int, cert: tuple[Path, Path]) -> None:
        """Kubeflow Trainer: its flags, its rotator's Secret, and the kubelet's part (workload_controllers doc)."""
        d = self.workdir / "clusters" / m / "trainer"
        # controller-runtime's default webhook cert dir is $TMPDIR/k8s-webhook-server/serving-certs.
        serving = d / "tmp" / "k8s-webhook-server" / "serving-certs"
        serving.mkdir(parents=True)
        shutil.copyfile(cert[0], serving / "tls.crt")
        shutil.copyfile(cert[1], serving / "tls.key")
        rotator_dir = _wc.TRAINER_ROTATOR_CERT_DIR
        try:
            rotator_dir.mkdir(parents=True, exist_ok=True)
            if not os.access(rotator_dir, os.W_OK):
                raise PermissionError(f"not writable by uid {os.getuid()}")
        except OSError as e:
            raise TestbedError(f"Kubeflow Trainer's cert rotator waits for its Secret in the fixed directory "
                               f"{rotator_dir}, which the test bed fills as a kubelet would; cannot: {e}") from None
        ns, secret = _wc.TRAINER_NAMESPACE, _wc.TRAINER_WEBHOOK_SECRET
        api = _Api(h.server, h.token, h.ca_file)
        for path, obj in (
            ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            # Empty, as Trainer's manifests/overlays/manager makes it; the rotator fills it.
            (f"/api/v1/namespaces/{ns}/secrets",
             {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret, "namespace": ns}}),
        ):
            status, body = api.request("POST", path, obj)
            if status not in (200, 201, 409):
                raise TestbedError(f"creating {obj['kind']} {secret if obj['kind'] == 'Secret' else ns} in {m}: "
                                   f"HTTP {status}: {body}")
        args = build.trainer_args(kubeconfig=h.kubeconfig, webhook_port=webhook_port, health_port=health_port)
        proc = self._spawn(f"{m}-trainer", args, cwd=d, env={"TMPDIR": str(d / "tmp")})
        self.controllers.setdefault(m, {})["trainer"] = (proc, health_port, webhook_port)

        def fetch() -> dict[str, str] | None:
            status, body = api.request("GET", f"/api/v1/namespaces/{ns}/secrets/{secret}")
            return (body.get("data") or None) if status == 200 and isinstance(body, dict) else None

        def on_error(msg: str) -> None:
            with contextlib.suppress(OSError), open(proc.log, "a") as fh:
                fh.write(f"[test bed kubelet] {msg}\n")

        volume = _wc.SecretVolume(fetch, rotator_dir, on_error)
        with self._lock:
            self._volumes.append(volume)
        volume.start()

    def _wait_controllers_ready(self, m: str, h: ClusterHandle, ca_pem: bytes, deadline: float) -> None:
        """/readyz of each controller, then its webhook configurations, then its webhook server."""
        api = _Api(h.server, h.token, h.ca_file)
        for cname, (proc, health_port, webhook_port) in self.controllers.get(m, {}).items():
            probe = _Api(f"http://127.0.0.1:{health_port}", None, None)
            self._wait(f"{m} {cname} /readyz", lambda probe=probe: probe.ok("/readyz"), deadline, proc.log, 0.1)
            self._wait(f"{m} {cname} webhook server on 127.0.0.1:{webhook_port}",
                       lambda port=webhook_port: _tls_ready(port, self.workdir / "pki" / "ca.crt"),
                       deadline, proc.log, 0.1)
            for cfg in _wc.load(self.bin_dir, cname, run=True).webhook_configurations(webhook_port, ca_pem):
                plural = "mutatingwebhookconfigurations" if cfg["kind"].startswith("Mutating") else \
                    "validatingwebhookconfigurations"
                status, body = api.request("POST", f"/apis/admissionregistration.k8s.io/v1/{plural}", cfg)
                if status not in (200, 201):
                    raise TestbedError(
                        f"creating {cfg['kind']} {cfg['metadata']['name']} in {m}: HTTP {status}: {body}")

    def _start_controller_manager(
        self, name: str, h: ClusterHandle, port: int, ca_crt: Path, sa_key: Path, controllers: Sequence[str]
    ) -> _Proc:
        d = self.workdir / "clusters" / name
        return self._spawn(f"{name}-controller-manager", [
            str(self.bin_dir / "kube-controller-manager"),
            f"--kubeconfig={h.kubeconfig}",
            f"--authentication-kubeconfig={h.kubeconfig}",
            f"--authorization-kubeconfig={h.kubeconfig}",
            "--leader-elect=false",
            f"--controllers={','.join(controllers)}",
            f"--service-account-private-key-file={sa_key}",
            f"--root-ca-file={ca_crt}",
            f"--cluster-name={name}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={d / 'cm-certs'}",
            "--kube-api-qps=100",
            "--kube-api-burst=200",
            "--concurrent-job-syncs=10",
            "--horizontal-pod-autoscaler-sync-period=1s",
            "--profiling=false",
        ])

    def _start_member(
        self, m: str, h: ClusterHandle, ports: Iterable[int], ca_crt: Path, sa_key: Path, kwok_config: Path
    ) -> None:
        it = iter(ports)
        cm_port, sched_port, kwok_port = next(it), next(it), next(it)
        d = self.workdir / "clusters" / m
        cm = self._start_controller_manager(m, h, cm_port, ca_crt, sa_key, MEMBER_CONTROLLERS)
        sched = self._spawn(f"{m}-scheduler", [
            str(self.bin_dir / "kube-scheduler"),
            f"--kubeconfig={h.kubeconfig}",
            f"--authentication-kubeconfig={h.kubeconfig}",
            f"--authorization-kubeconfig={h.kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={sched_port}",
            f"--cert-dir={d / 'scheduler-certs'}",
            "--kube-api-qps=100",
            "--kube-api-burst=200",
            "--profiling=false",
            *self._scheduler_config_args(m, h),
        ])
        kwok = self._spawn(f"{m}-kwok", [
            str(self.bin_dir / "kwok"),
            f"--kubeconfig={h.kubeconfig}",
            f"--config={kwok_config}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION[0]}={KWOK_NODE_ANNOTATION[1]}",
            f"--cidr={POD_CIDR}",
            f"--node-ip={NODE_IP}",
            "--node-lease-duration-seconds=40",
            f"--server-address=127.0.0.1:{kwok_port}",
        ])
        self._health[m] = (cm, cm_port, sched, sched_port, kwok, kwok_port)
        self._start_dra_driver(m, h, ca_crt)

    def _scheduler_config_args(self, m: str, h: ClusterHandle) -> list[str]:
        """``--config`` for a member whose nodes ask kube-scheduler to ignore some resources, else nothing.

        A scheduler extender such as HAMi's declares the resources it manages
        ``ignoredByScheduler``; the test bed runs no extender, so NodeResourcesFit
        is told the same thing directly.
        """
        ignored = sorted({r for n in self.nodes[m] for r in n.scheduler_ignored_resources})
        if not ignored:
            return []
        config = {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
            "clientConnection": {"kubeconfig": str(h.kubeconfig), "qps": 100, "burst": 200},
            "leaderElection": {"leaderElect": False},
            "profiles": [{"schedulerName": "default-scheduler", "pluginConfig": [
                {"name": "NodeResourcesFit", "args": {"ignoredResources": ignored}}]}],
        }
        path = self.workdir / "clusters" / m / "scheduler-config.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return [f"--config={path}"]

    def _start_dra_driver(self, m: str, h: ClusterHandle, ca_crt: Path) -> None:
        """The fake DRA driver (fake_dra_driver.py) for a member with DRA nodes."""
        devices = {n.name: [d.manifest() for d in n.dra_devices] for n in self.nodes[m] if n.dra_devices}
        if not devices:
            return
        path = self.workdir / "clusters" / m / "dra-devices.json"
        path.write_text(json.dumps(devices, indent=1))
        self._spawn(f"{m}-dra-driver", [
            sys.executable, str(FAKE_DRA_DRIVER), f"--server={h.server}", f"--token={h.token}",
            f"--ca-file={ca_crt}", f"--driver={DRA_DRIVER}", f"--devices={path}", "--interval=2",
        ])

    def _wait_default_sa(self, name: str, h: ClusterHandle, deadline: float) -> None:
        api = _Api(h.server, h.token, h.ca_file)
        self._wait(
            f"default ServiceAccount in {name}",
            lambda: api.ok("/api/v1/namespaces/default/serviceaccounts/default"),
            deadline,
            self.logs_dir / f"{name}-controller-manager.log",
            0.2,
        )

    def _wait_member_ready(self, m: str, h: ClusterHandle, deadline: float) -> None:
        cm, cm_port, sched, sched_port, kwok, kwok_port = self._health[m]
        cm_api = _Api(f"https://127.0.0.1:{cm_port}", None, None)
        sched_api = _Api(f"https://127.0.0.1:{sched_port}", None, None)
        self._wait(f"{m} kube-controller-manager /healthz", lambda: cm_api.ok("/healthz"), deadline, cm.log, 0.2)
        self._wait(f"{m} kube-scheduler /healthz", lambda: sched_api.ok("/healthz"), deadline, sched.log, 0.2)
        api = _Api(h.server, h.token, h.ca_file)
        want = {n.name for n in self.nodes[m]}

        def nodes_ready() -> bool:
            if not want:
                return True
            status, body = api.request("GET", "/api/v1/nodes")
            if status != 200:
                return False
            ready = set()
            for item in body.get("items", []):
                taints = {t.get("key") for t in item.get("spec", {}).get("taints") or []}
                if taints & {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}:
                    continue
                for c in item.get("status", {}).get("conditions") or []:
                    if c.get("type") == "Ready" and c.get("status") == "True":
                        ready.add(item["metadata"]["name"])
            return want <= ready

        self._wait(f"{m} nodes Ready and untainted", nodes_ready, deadline, kwok.log, 0.2)
        self._wait_default_sa(m, h, deadline)
        dra_nodes = {n.name for n in self.nodes[m] if n.dra_devices}
        if dra_nodes:
            def slices_published() -> bool:
                status, body = api.request("GET", "/apis/resource.k8s.io/v1/resourceslices")
                return status == 200 and dra_nodes <= {
                    (i.get("spec") or {}).get("nodeName") for i in body.get("items", [])}
            self._wait(f"{m} ResourceSlices of {sorted(dra_nodes)}", slices_published, deadline,
                       self.logs_dir / f"{m}-dra-driver.log", 0.2)

    def _write_merged_kubeconfig(self, ca_pem: bytes) -> None:
        merged: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}
        for h in self.clusters.values():
            kc = _kubeconfig(h.name, h.server, ca_pem, h.token)
            for k in ("clusters", "users", "contexts"):
                merged[k] += kc[k]
        merged["current-context"] = HOST
        (self.workdir / "kubeconfig").write_text(yaml.safe_dump(merged, sort_keys=False))

    def _write_state(self) -> None:
        state = {
            "workdir": str(self.workdir),
            "bin_dir": str(self.bin_dir),
            "kubeconfig": str(self.workdir / "kubeconfig"),
            "host": self.host.to_json(),
            "members": {k: v.to_json() for k, v in self.members.items()},
            "pids": self.pids(),
            "startup_seconds": round(self.startup_seconds, 2),
        }
        (self.workdir / "state.json").write_text(json.dumps(state, indent=2) + "\n")

    def __repr__(self) -> str:
        clusters = sorted(self.clusters) if hasattr(self, "host") else []
        return f"Testbed(workdir={str(self.workdir)!r}, clusters={clusters})"


# --------------------------------------------------------------------------- CLI


def _serve(workdir: Path, fleet: str = "default", controllers: Mapping[str, Sequence[str]] | None = None) -> int:
    """Start the test bed, write testbed.pid/state.json, block until SIGTERM/SIGINT, stop.

    ``fleet="vendors"`` starts one member per accelerator kind (vendors.vendor_fleet).
    ``controllers`` runs real workload controllers on members, as `Testbed.start` takes them.
    """
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    pidfile = workdir / "testbed.pid"
    pidfile.write_text(f"{os.getpid()}\n")
    try:
        if fleet == "vendors":
            sys.path.insert(0, str(HERE))
            from vendors import vendor_fleet  # the test bed runs as a script here

            nodes = vendor_fleet()
            tb = Testbed.start(workdir, members=tuple(nodes), nodes=nodes, controllers=controllers)
        else:
            tb = Testbed.start(workdir, controllers=controllers)
    except Exception as e:
        print(f"testbed: start failed: {e}", file=sys.stderr, flush=True)
        with contextlib.suppress(OSError):
            pidfile.unlink()
        return 1
    try:
        print(f"testbed: ready in {tb.startup_seconds:.1f}s", flush=True)
        for h in tb.clusters.values():
            running = ", ".join(sorted(tb.controllers.get(h.name, {})))
            print(f"  {h.name:10s} {h.server}  KUBECONFIG={h.kubeconfig}" + (f"  ({running})" if running else ""),
                  flush=True)
        print(f"  all contexts: KUBECONFIG={workdir / 'kubeconfig'}", flush=True)
        (workdir / "ready").write_text("ok\n")
        while not stop.wait(1.0):
            pass
    finally:
        with contextlib.suppress(OSError):
            (workdir / "ready").unlink()
        tb.stop()
        with contextlib.suppress(OSError):
            pidfile.unlink()
        print("testbed: stopped", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="start the test bed and keep it running until SIGTERM/SIGINT")
    s.add_argument("workdir", type=Path)
    s.add_argument("--fleet", choices=("default", "vendors"), default="default",
                   help="default: member-a/member-b with NVIDIA GPUs; vendors: one member per accelerator kind")
    s.add_argument("--controllers", action="append", default=[], metavar="MEMBER=NAME[,NAME...]",
                   help=f"run real workload controllers on a member (repeatable), from: {', '.join(CONTROLLERS)}; "
                        "e.g. member-b=jobset,kueue,lws")
    sub.add_parser("build", help="build the binaries, print the bin dir")
    args = p.parse_args(argv)
    if args.cmd == "build":
        print(ensure_binaries())
        return 0
    controllers: dict[str, list[str]] = {}
    for item in args.controllers:
        member, _, names = item.partition("=")
        unknown = [n for n in names.split(",") if n not in CONTROLLERS]
        if not member or not names or unknown:
            p.error(f"--controllers {item!r}: expected MEMBER=NAME[,NAME...] with names from {', '.join(CONTROLLERS)}")
        controllers.setdefault(member, []).extend(names.split(","))
    return _serve(args.workdir, args.fleet, controllers or None)


if __name__ == "__main__":
    sys.exit(main())
