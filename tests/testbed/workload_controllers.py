"""The real workload controllers of the test bed: JobSet, Kueue, LeaderWorkerSet (and Trainer CRDs).

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
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: Controllers the test bed can run on a member.
RUNNABLE: tuple[str, ...] = ("jobset", "kueue", "lws")
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

#: Why a controller cannot run here (reported when a test asks for it).
NOT_RUNNABLE: Mapping[str, str] = {
    "trainer": (
        "Kubeflow Trainer v2.0.0's manager always starts its cert-controller rotator "
        "(cmd/trainer-controller-manager/main.go calls cert.ManageCerts unconditionally): it issues "
        "its webhook certificate for the Service DNS name kubeflow-trainer-controller-manager.<ns>.svc "
        "and waits for the Secret to be mounted into its cert dir by a kubelet, so as a plain process "
        "on 127.0.0.1 its webhooks (and with them its controllers) never become ready. "
        "Its CRDs install (crds={member: ('trainer',)}) so TrainJob objects are checked "
        "against the real schema."
    ),
}


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
