"""Entry points of Kubernetes mode, called by the CLI: the agent on a member cluster.

Kept here rather than in `cli/` so the command-line modules stay small and the
`kubernetes` package is imported only when Kubernetes mode is asked for.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from federator.agent.agent import AgentConfig
    from federator.security.podsecurity import PodSecurity

log = logging.getLogger("federator.agent.kube")
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_DOMAIN = re.compile(r"^(?=.{1,200}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$")


def run_agent(args: argparse.Namespace, config: AgentConfig, *, pod_security: PodSecurity,
              region_from: str = "--region") -> int:
    """`federator agent --kubeconfig PATH | --in-cluster`: the agent with the Kubernetes backend, in the region of
    `config` (`region_from`: what gave it, --region or the agent's certificate; agent/bound_region.py)."""
    from federator.agent.agent import Agent
    from federator.agent.runner import run
    from federator.backends.kube.api import AGENT_FIELD_MANAGER, KubeApi, KubeError
    from federator.backends.kube.backend import KubeBackend
    from federator.backends.kube.namespace_claim import NamespaceClaim
    from federator.backends.kube.options import default_lease_namespace
    from federator.security.podsecurity import describe

    if not config.region:
        print("federator agent: --region is required with the Kubernetes backend, unless the agent's certificate "
              "binds its region (`federator certs issue --cluster NAME --region R`)", file=sys.stderr)
        return 2
    if args.sim is not None:
        print("federator agent: --sim and --kubeconfig/--in-cluster exclude each other", file=sys.stderr)
        return 2
    if not (math.isfinite(args.discovery_interval) and args.discovery_interval > 0):
        print("federator agent: --discovery-interval must be a positive number of seconds", file=sys.stderr)
        return 2
    if not (math.isfinite(args.gang_timeout) and args.gang_timeout >= 0):
        print("federator agent: --gang-timeout: must be 0 (off) or more seconds", file=sys.stderr)
        return 2
    if not (math.isfinite(args.kueue_admission_timeout) and args.kueue_admission_timeout >= 0):
        print("federator agent: --kueue-admission-timeout: must be 0 (off) or more seconds", file=sys.stderr)
        return 2
    if not _DNS_NAME.match(args.namespace):
        print(f"federator agent: --namespace: {args.namespace[:80]!r} is not a namespace name (a lower-case DNS "
              "label of at most 63 characters)", file=sys.stderr)
        return 2
    if not _DNS_DOMAIN.match(args.cluster_domain):
        print(f"federator agent: --cluster-domain: {args.cluster_domain[:80]!r} is not a DNS domain (lower-case "
              "labels joined by dots, as cluster.local; the kubelets' --cluster-domain)", file=sys.stderr)
        return 2
    if args.kueue_queue and not _DNS_NAME.match(args.kueue_queue):
        print(f"federator agent: --kueue-queue: {args.kueue_queue!r} is not a LocalQueue name (a lower-case DNS "
              "name of at most 63 characters)", file=sys.stderr)
        return 2
    try:
        api = KubeApi.connect(None if args.in_cluster else args.kubeconfig, manager=AGENT_FIELD_MANAGER)
    except KubeError as exc:
        print(f"federator agent: --kubeconfig: {exc}", file=sys.stderr)
        return 2
    backend = KubeBackend(api, namespace=args.namespace, discovery_interval=args.discovery_interval,
                          cluster=args.cluster, kueue_queue=args.kueue_queue, gang_timeout=args.gang_timeout,
                          kueue_timeout=args.kueue_admission_timeout, pod_security=pod_security,
                          namespace_per_queue=args.namespace_per_queue,
                          own_namespace=default_lease_namespace() if args.in_cluster else "", events=True,
                          federator=args.server, cluster_domain=args.cluster_domain,
                          # The namespace is this federation's while this agent runs there (namespace_claim.py)
                          claim=NamespaceClaim(api, namespace=args.namespace, cluster=args.cluster,
                                               federation=args.server))
    log.info("agent for %s (region %s, from %s) on %s, workloads in namespace %s at pod security %s, fence after "
             "%s, gangs admitted by %s", args.cluster, config.region, region_from, api.server,
             f"{args.namespace}-<queue> (--namespace-per-queue)" if args.namespace_per_queue else args.namespace,
             describe(pod_security),
             f"{args.fence_after:g}s" if args.fence_after > 0 else "never",
             f"Kueue (LocalQueue {args.kueue_queue}, "
             + (f"moved if held {args.kueue_admission_timeout:g}s and another member can run it)"
                if args.kueue_admission_timeout > 0 else "never moved)")
             if args.kueue_queue else
             f"nothing (gang timeout {args.gang_timeout:g}s)" if args.gang_timeout > 0 else "nothing (no gang timeout)")
    return run(Agent(config, backend), fatal=(KubeError,))


__all__ = ["run_agent"]
