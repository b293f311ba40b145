"""The real workload controllers of the test bed: JobSet, Kueue, LeaderWorkerSet, Kubeflow Trainer.

``tests/testbed/build`` compiles each controller from the Go module proxy (one
module per controller under ``tests/testbed/controllers/<name>/``) into
``<cache>/<k8s version>/controllers/<name>/`` together with the CRDs and the
webhook manifests taken from the controller's own module (its ``config/`` or
``manifests/`` folder). This module turns those files into what a member cluster
needs to run the controller as a plain process next to its apiserver:

* the CRDs, as shipped;
* the webhook configurations, with the kustomize patches the project ships
  applied (object selectors of the pod webhooks), every ``clientConfig.service``
  replaced by an ``https://127.0.0.1:<port>/<path>`` URL and a ``caBundle`` of
  the test bed CA, and the configuration renamed ``<controller>-<name>`` so two
  controllers never share one;
* the controller's own Configuration file: leader election off, internal cert
  management off (its rotator issues certificates for a cluster Service DNS
  name, which a plain process cannot serve), webhook server on 127.0.0.1 with a
  certificate signed by the test bed CA, health probes on a picked port,
  metrics off.

The controllers talk to the apiserver with the member's admin kubeconfig, so no
RBAC objects are installed. Only the standard library and PyYAML are used.

Kubeflow Trainer v2.0.0 has no Configuration file and no switch for its
cert-controller rotator (``cmd/trainer-controller-manager/main.go`` always calls
``cert.ManageCerts``), so it runs differently, without any change to its build:

* the rotator fills the Secret ``kubeflow-system/kubeflow-trainer-webhook-cert``
  (the test bed creates it empty and its namespace, as Trainer's
  ``manifests/overlays/manager`` does) with a CA and a certificate for the
  Service DNS name, then waits until ``tls.crt`` appears in the fixed directory
  ``/tmp/k8s-webhook-server/serving-certs`` (``pkg/util/cert/cert.go``), where a
  kubelet mounts that Secret in Trainer's Deployment; only then do its
  reconcilers and webhooks start. There is no kubelet here (kwok plays the
  nodes; the controllers are host processes), so :class:`SecretVolume` does the
  kubelet's part for that one volume: it reads the Secret and writes its keys
  into that directory, and keeps them in sync;
* the webhook server reads its serving certificate from controller-runtime's
  default ``$TMPDIR/k8s-webhook-server/serving-certs``: with ``TMPDIR`` set to a
  directory of the test bed, it serves the test bed's 127.0.0.1 certificate,
  which the apiserver can verify (the rotator's names a Service DNS name no
  apiserver here resolves); its webhooks are registered like the others'
  (renamed, so the rotator, which injects its own CA into the configuration
  named ``validator.trainer.kubeflow.org``, leaves ours alone);
* it runs TrainJobs as JobSets, so it needs the JobSet controller on the same
  member (:data:`REQUIRES`).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
import secrets
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: Controllers the test bed can run on a member.
RUNNABLE: tuple[str, ...] = ("jobset", "kueue", "lws", "trainer")
#: Controllers whose CRDs the test bed can install (``crds=``), with or without the controller.
WITH_CRDS: tuple[str, ...] = ("jobset", "kueue", "lws", "trainer")

#: Kueue integrations enabled in the test bed. Kueue waits for a framework's CRD to
#: appear before it starts that integration, so absent CRDs are harmless.
KUEUE_FRAMEWORKS: tuple[str, ...] = (
    "batch/job",
    "jobset.x-k8s.io/jobset",
    "leaderworkerset.x-k8s.io/leaderworkerset",
    "trainer.kubeflow.org/trainjob",
    "kubeflow.org/pytorchjob",
    "ray.io/rayjob",
)
#: Kueue webhooks for integrations that are not enabled above. Their handlers are never
#: registered, and with ``failurePolicy: Fail`` they would reject every pod, Deployment
#: or StatefulSet in the member (Kueue's own kustomization only narrows them by namespace).
_KUEUE_DROPPED_RESOURCES = frozenset({"pods", "deployments", "statefulsets"})

#: Why a controller cannot run here (reported when a test asks for it); none at present.
NOT_RUNNABLE: Mapping[str, str] = {}

#: Controller -> (controller it needs on the same member, why).
REQUIRES: Mapping[str, tuple[str, str]] = {
    "trainer": ("jobset", "Kubeflow Trainer v2 runs every TrainJob as a JobSet"),
}

#: Kubeflow Trainer v2.0.0's fixed names (pkg/util/cert/cert.go, cmd/trainer-controller-manager/main.go).
#: Its namespace comes from the service-account token mount, which a host process lacks.
TRAINER_NAMESPACE = "kubeflow-system"
TRAINER_WEBHOOK_SECRET = "kubeflow-trainer-webhook-cert"
#: The rotator waits for ``tls.crt`` here: the mount path of the Secret volume in Trainer's Deployment.
TRAINER_ROTATOR_CERT_DIR = Path("/tmp/k8s-webhook-server/serving-certs")
#: The ValidatingWebhookConfiguration the rotator injects its own CA into.
TRAINER_ROTATOR_WEBHOOK_CONFIG = "validator.trainer.kubeflow.org"


class ControllerUnavailable(RuntimeError):
    """A controller was asked for but is not built (or cannot run here)."""


@dataclass(frozen=True)
class ControllerBuild:
    """One built controller in the test-bed cache."""

    name: str
    dir: Path
    version: str

    @property
    def binary(self) -> Path:
        return self.dir / "bin" / self.name

    def crds(self) -> list[dict[str, Any]]:
        """The controller's CustomResourceDefinitions, as its module ships them."""
        out: list[dict[str, Any]] = []
        for path in sorted((self.dir / "crds").glob("*.yaml")):
            docs = yaml.safe_load_all(path.read_text())
            out += [d for d in docs if d and d.get("kind") == "CustomResourceDefinition"]
        return out

    def webhook_configurations(self, port: int, ca_pem: bytes) -> list[dict[str, Any]]:
        """Webhook configurations pointing at ``https://127.0.0.1:<port>`` (see module doc)."""
        hooks = self.dir / "webhooks"
        configs = [
            d
            for d in yaml.safe_load_all((hooks / "manifests.yaml").read_text())
            if d and d.get("kind") in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
        ]
        replacements = _patch_values(p for p in sorted(hooks.glob("*.yaml")) if p.name != "manifests.yaml")
        ca = base64.b64encode(ca_pem).decode()
        out = []
        for cfg in configs:
            cfg = copy.deepcopy(cfg)
            # Renamed, so no configuration is shared, and Trainer's rotator (which rewrites the
            # caBundle of the one named TRAINER_ROTATOR_WEBHOOK_CONFIG) never replaces our CA.
            cfg["metadata"] = {"name": f"{self.name}-{cfg['metadata']['name']}"}
            webhooks = []
            for hook in cfg.get("webhooks") or []:
                hook = copy.deepcopy(replacements.get(hook["name"], hook))
                if self.name == "kueue" and _resources(hook) & _KUEUE_DROPPED_RESOURCES:
                    continue
                path = hook["clientConfig"]["service"].get("path", "/")
                hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}", "caBundle": ca}
                webhooks.append(hook)
            cfg["webhooks"] = webhooks
            out.append(cfg)
        return out

    def trainer_args(self, *, kubeconfig: Path, webhook_port: int, health_port: int) -> list[str]:
        """Kubeflow Trainer's command line (it has flags, no Configuration file; see the module doc)."""
        return [str(self.binary), f"--kubeconfig={kubeconfig}", "--leader-elect=false", "--metrics-bind-address=0",
                f"--health-probe-bind-address=127.0.0.1:{health_port}", f"--webhook-server-port={webhook_port}"]

    def configuration(self, *, namespace: str, webhook_port: int, health_port: int, cert_dir: Path) -> dict[str, Any]:
        """The controller's own Configuration object (its ``--config`` file)."""
        group = {"jobset": "config.jobset.x-k8s.io/v1alpha1", "lws": "config.lws.x-k8s.io/v1alpha1",
                 "kueue": "config.kueue.x-k8s.io/v1beta2"}[self.name]
        cfg: dict[str, Any] = {
            "apiVersion": group,
            "kind": "Configuration",
            "leaderElection": {"leaderElect": False},
            "internalCertManagement": {"enable": False},
            "webhook": {"port": webhook_port, "host": "127.0.0.1", "certDir": str(cert_dir)},
            "metrics": {"bindAddress": "0"},
            "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
            "clientConnection": {"qps": 100, "burst": 200},
        }
        if self.name == "kueue":
            cfg["namespace"] = namespace
            cfg["manageJobsWithoutQueueName"] = False
            cfg["integrations"] = {"frameworks": list(KUEUE_FRAMEWORKS)}
            # The on-demand visibility API server binds a fixed port (8082) on all
            # interfaces; nothing in the test bed uses it.
            cfg["featureGates"] = {"VisibilityOnDemand": False}
        return cfg


def module_dir(name: str) -> Path:
    """The Go module source of controller ``name`` (its manifests beyond CRDs and webhooks, e.g. runtimes).

    ``go mod download`` of the version pinned in ``controllers/<name>/go.mod``: the
    build filled the module cache, so this reads it (or fetches it from the proxy).
    """
    here = Path(__file__).resolve().parent / "controllers" / name
    module = {"jobset": "sigs.k8s.io/jobset", "kueue": "sigs.k8s.io/kueue", "lws": "sigs.k8s.io/lws",
              "trainer": "github.com/kubeflow/trainer/v2"}[name]
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly"}
    out = subprocess.run(["go", "mod", "download", "-json", module], capture_output=True, text=True, cwd=here,
                         env=env, timeout=600)
    try:
        info = json.loads(out.stdout or "{}")
    except ValueError:
        info = {}
    if out.returncode or not info.get("Dir"):
        raise ControllerUnavailable(f"go mod download {module} in {here}: {info.get('Error') or out.stderr}")
    return Path(info["Dir"])


def controllers_dir(bin_dir: Path) -> Path:
    """Where ``build`` puts the controllers for the k8s binaries in ``bin_dir``."""
    return Path(bin_dir).parent / "controllers"


def load(bin_dir: Path, name: str, *, run: bool) -> ControllerBuild:
    """The built controller ``name``; :class:`ControllerUnavailable` says why it cannot be used."""
    allowed = RUNNABLE if run else WITH_CRDS
    if name not in allowed:
        why = NOT_RUNNABLE.get(name, "")
        raise ControllerUnavailable(
            f"controller {name!r} cannot be {'started' if run else 'installed'} by the test bed "
            f"(choose from {', '.join(allowed)}){': ' + why if why else ''}"
        )
    d = controllers_dir(bin_dir) / name
    err = d / "build-error.log"
    if run and err.is_file() and not (d / "bin" / name).is_file():
        tail = "\n".join(err.read_text(errors="replace").splitlines()[-20:])
        raise ControllerUnavailable(f"controller {name!r} failed to build (see {err}):\n{tail}")
    if not (d / "crds").is_dir() or (run and not (d / "bin" / name).is_file()):
        raise ControllerUnavailable(
            f"controller {name!r} is not built in {d}: run tests/testbed/build "
            f"(TESTBED_CONTROLLERS must include {name})"
        )
    version = (d / "version").read_text().strip() if (d / "version").is_file() else "?"
    return ControllerBuild(name=name, dir=d, version=version)


class SecretVolume:
    """The kubelet's part for one Secret volume of a controller that runs as a host process.

    A kubelet mounts a pod's Secret volume as one file per key and rewrites the
    files when the Secret changes. Kubeflow Trainer's cert rotator waits for that
    (see the module doc); nothing else plays the kubelet here, so this does, for
    that one volume: ``fetch`` returns the Secret's ``data`` (base64 values, as
    the API serves them) or ``None`` while it does not exist, and every key is
    written to ``target`` atomically (a reader never sees half a file), mode 0600.
    ``stop`` removes the files that still hold what this volume wrote (the
    directory may be shared with another test bed's Trainer, whose files stay).
    """

    def __init__(self, fetch: Callable[[], Mapping[str, str] | None], target: Path,
                 on_error: Callable[[str], None] = lambda _msg: None) -> None:
        self.fetch = fetch
        self.target = target
        self.on_error = on_error
        self.written: dict[str, bytes] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sync(self) -> bool:
        """Write the Secret's current keys; whether it had any (``False``: not filled yet)."""
        data = self.fetch()
        if not data:
            return False
        self.target.mkdir(parents=True, exist_ok=True)
        for key, value in sorted(data.items()):
            content = base64.b64decode(value)
            path = self.target / key
            with contextlib.suppress(OSError):
                if path.read_bytes() == content:
                    self.written[key] = content
                    continue
            tmp = self.target / f".{key}.{os.getpid()}.{secrets.token_hex(4)}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
            os.replace(tmp, path)
            self.written[key] = content
        return True

    def start(self, interval: float = 0.5, resync: float = 5.0) -> None:
        """Sync every ``interval`` seconds until the Secret is filled, then every ``resync`` seconds."""
        def run() -> None:
            filled = False
            while not self._stop.wait(resync if filled else interval):
                try:
                    filled = self.sync() or filled
                except Exception as exc:  # keep playing the kubelet; the controller's log says what waits
                    self.on_error(f"secret volume {self.target}: {exc}")

        self._thread = threading.Thread(target=run, name=f"secret-volume {self.target}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        for key, content in self.written.items():
            path = self.target / key
            with contextlib.suppress(OSError):
                if path.read_bytes() == content:
                    path.unlink()


def _resources(hook: Mapping[str, Any]) -> set[str]:
    return {r for rule in hook.get("rules") or [] for r in rule.get("resources") or []}


def _patch_values(paths: Iterable[Path]) -> dict[str, dict[str, Any]]:
    """Webhook name -> replacement, from the projects' kustomize JSON patches.

    JobSet and LWS ship ``op: replace, path: /webhooks/N`` patches that swap a
    generated pod webhook for one with an ``objectSelector`` (so only their own
    pods reach them). Matching on the webhook name keeps this independent of order.
    """
    out: dict[str, dict[str, Any]] = {}
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, list):
                continue
            for op in doc:
                value = op.get("value") if isinstance(op, dict) else None
                if op.get("op") == "replace" and isinstance(value, dict) and "name" in value:
                    out[value["name"]] = value
    return out
