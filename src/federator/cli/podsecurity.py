"""The pod security flags, one parser for `federator serve` and `federator agent`.

The federator holds what users submit to a level, and every member's agent holds
what it launches to its own; the flags are spelled, defaulted and refused alike
so that an operator reading one reads the other.
"""

from __future__ import annotations

import argparse
from typing import Literal

from federator.security.podsecurity import PodSecurity, PodSecurityLevel, capability_name

_HELP = {
    "server": "the Kubernetes Pod Security Standards level every submitted pod template is held to; a job that "
              "breaks it is refused naming the field",
    "agent": "the Kubernetes Pod Security Standards level this member holds every workload it launches to, "
             "whatever the federator's: a placement that breaks it is refused naming the field, and the level is "
             "reported as the cluster label federator.io/pod-security",
}


def add_pod_security_arguments(p: argparse.ArgumentParser, *, role: Literal["server", "agent"]) -> None:
    """--pod-security (default baseline, for both: the level Kubernetes itself recommends for workloads that are
    not the cluster's own), --allow-capability NAME (repeatable), --allow-host-network."""
    g = p.add_argument_group("pod security (what a job's pod templates may ask of a member's nodes)")
    g.add_argument("--pod-security", choices=[level.value for level in PodSecurityLevel], default="baseline",
                   help=f"{_HELP[role]} (default %(default)s)")
    g.add_argument("--allow-capability", action="append", default=[], metavar="NAME",
                   help="a Linux capability containers may add beyond the level's, such as IPC_LOCK for RDMA "
                        "(repeat for more)")
    g.add_argument("--allow-host-network", action="store_true",
                   help="let pods use the host's network (and so host ports), as some RDMA fabrics need")


def pod_security_of(args: argparse.Namespace) -> PodSecurity:
    """The flags as a PodSecurity; a ValueError names the flag, not the field behind it."""
    try:
        return PodSecurity(level=PodSecurityLevel(args.pod_security),
                           allowed_capabilities=frozenset(capability_name(c) for c in args.allow_capability),
                           allow_host_network=args.allow_host_network)
    except ValueError as exc:
        raise ValueError(str(exc).replace("pod_security.allowed_capabilities:", "--allow-capability:")) from None


__all__ = ["add_pod_security_arguments", "pod_security_of"]
