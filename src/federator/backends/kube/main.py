"""Entry points of Kubernetes mode, called by the CLI: the agent on a member cluster.

Kept here rather than in `cli/` so the command-line modules stay small and the
`kubernetes` package is imported only when Kubernetes mode is asked for.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from federator.agent.agent import AgentConfig

log = logging.getLogger("federator.agent.kube")


def run_agent(args: argparse.Namespace, config: AgentConfig) -> int:
    """`federator agent --kubeconfig PATH | --in-cluster`: the agent with the Kubernetes backend."""
    from federator.agent.agent import Agent
    from federator.backends.kube.api import KubeApi, KubeError
    from federator.backends.kube.backend import KubeBackend
    from federator.cli.agent import run

    if not args.region:
        print("federator agent: --region is required with the Kubernetes backend", file=sys.stderr)
        return 2
    if args.sim is not None:
        print("federator agent: --sim and --kubeconfig/--in-cluster exclude each other", file=sys.stderr)
        return 2
    try:
        api = KubeApi.connect(None if args.in_cluster else args.kubeconfig)
    except KubeError as exc:
        print(f"federator agent: --kubeconfig: {exc}", file=sys.stderr)
        return 2
    if args.discovery_interval <= 0:
        print("federator agent: --discovery-interval must be a positive number of seconds", file=sys.stderr)
        return 2
    backend = KubeBackend(api, namespace=args.namespace, discovery_interval=args.discovery_interval)
    log.info("agent for %s (%s) on %s, workloads in namespace %s, fence after %s", args.cluster, args.region,
             api.server, args.namespace, f"{args.fence_after:g}s" if args.fence_after > 0 else "never")
    return run(Agent(config, backend), fatal=(KubeError,))


__all__ = ["run_agent"]
