"""Options of Kubernetes mode for `federator serve`, importable without the `kubernetes` package.

`server/app.py` holds a `KubeOptions` when `--kubeconfig` or `--in-cluster` is
given and then imports `host.KubeMode` (lazily), whose `prepare` connects, waits
for leadership and hands back the job store and the controllers to run. This
module imports nothing of `host`, so the two do not import each other.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def default_identity() -> str:
    return f"{socket.gethostname()}_{os.getpid()}"


def default_lease_namespace() -> str:
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


@dataclass(frozen=True, slots=True)
class KubeOptions:
    kubeconfig: Path | None = None  # None: the pod's service account
    namespace: str | None = None  # FederatedJobs of this namespace only; None: all namespaces
    leader_elect: bool = True
    lease_name: str = "federator"
    lease_namespace: str = field(default_factory=default_lease_namespace)
    identity: str = field(default_factory=default_identity)
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    lease_namespace_given: bool = False  # --lease-namespace on the command line (not the "default" fallback)

    def own_namespaces(self) -> frozenset[str]:
        """The federator's own namespaces, closed to jobs submitted over gRPC: its pod's, and its Lease's when
        named (out of a pod the Lease's namespace falls back to "default", which is the users' too)."""
        own = {self.lease_namespace} if self.lease_namespace_given else set()
        try:
            own.add(SERVICE_ACCOUNT_NAMESPACE.read_text().strip())
        except OSError:
            pass
        return frozenset(n for n in own if n)


def add_kube_arguments(p: argparse.ArgumentParser) -> None:
    """`federator serve` flags of Kubernetes mode."""
    g = p.add_argument_group("Kubernetes mode (FederatedJobs in the host cluster are the job store)")
    g.add_argument("--kubeconfig", type=Path, help="the host cluster's kubeconfig")
    g.add_argument("--in-cluster", action="store_true", help="the host cluster is the one this pod runs in")
    g.add_argument("--watch-namespace", help="FederatedJobs of this namespace only (default: all namespaces)")
    g.add_argument("--no-leader-elect", dest="leader_elect", action="store_false",
                   help="act without holding the Lease (only ever with one replica)")
    g.add_argument("--lease-name", default="federator", help="leader election Lease (default %(default)s)")
    g.add_argument("--lease-namespace", help="namespace of the Lease (default: the pod's, else default)")
    g.add_argument("--identity", help="this replica's name in the Lease (default: hostname_pid)")
    g.add_argument("--lease-duration", type=float, default=15.0, help="seconds (default %(default)s)")
    g.add_argument("--renew-deadline", type=float, default=10.0, help="seconds (default %(default)s)")
    g.add_argument("--retry-period", type=float, default=2.0, help="seconds (default %(default)s)")


_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # a namespace
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")  # a Lease's name


def kube_options_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the Kubernetes-mode flags, naming the flag, before anything connects (None: nothing,
    or not Kubernetes mode). The API server would refuse a bad name only when the first list or Lease ran."""
    if args.kubeconfig is None and not args.in_cluster:
        return None
    for flag, value, rule, what in (
            ("--watch-namespace", args.watch_namespace, _LABEL, "a namespace name (a lower-case DNS label)"),
            ("--lease-namespace", args.lease_namespace, _LABEL, "a namespace name (a lower-case DNS label)"),
            ("--lease-name", args.lease_name, _SUBDOMAIN, "a Lease name (a lower-case DNS subdomain)")):
        if value is not None and not rule.match(value):
            return f"{flag}: must be {what}, got {value[:80]!r}"
    times = (("--retry-period", args.retry_period), ("--renew-deadline", args.renew_deadline),
             ("--lease-duration", args.lease_duration))
    for flag, seconds in times:
        if not (math.isfinite(seconds) and seconds > 0):
            return f"{flag}: must be a positive number of seconds, got {seconds:g}"
    if not args.retry_period < args.renew_deadline < args.lease_duration:
        return (f"--retry-period, --renew-deadline, --lease-duration: each must be shorter than the next, got "
                f"{args.retry_period:g} / {args.renew_deadline:g} / {args.lease_duration:g}")
    return None


def kube_options(args: argparse.Namespace) -> KubeOptions | None:
    """KubeOptions from `add_kube_arguments` flags; None when Kubernetes mode is not asked for."""
    if args.kubeconfig is None and not args.in_cluster:
        return None
    return KubeOptions(
        kubeconfig=None if args.in_cluster else args.kubeconfig, namespace=args.watch_namespace,
        leader_elect=args.leader_elect, lease_name=args.lease_name,
        lease_namespace=args.lease_namespace or default_lease_namespace(),
        identity=args.identity or default_identity(), lease_duration=args.lease_duration,
        renew_deadline=args.renew_deadline, retry_period=args.retry_period,
        lease_namespace_given=args.lease_namespace is not None,
    )


__all__ = ["KubeOptions", "add_kube_arguments", "default_identity", "default_lease_namespace", "kube_options",
           "kube_options_problem"]
