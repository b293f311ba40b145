"""Entry points of Kubernetes mode, called by the CLI: the agent on a member cluster.

Kept here rather than in `cli/` so the command-line modules stay small and the
`kubernetes` package is imported only when Kubernetes mode is asked for.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from federator.agent.agent import AgentConfig
    from federator.security.tls import TlsFiles

log = logging.getLogger("federator.agent.kube")


def agent_config(args: argparse.Namespace, labels: dict[str, str], *, tls: TlsFiles | None = None) -> AgentConfig:
    """The agent's configuration from `federator agent` flags: the same fields as the simulated backend's,
    --fence-after included (a member cluster cut off from the federator stops its placements itself)."""
    from federator.agent.agent import AgentConfig

    return AgentConfig(cluster=args.cluster, region=args.region, target=args.server, labels=labels, tls=tls,
                       fence_after=args.fence_after, metrics_listen=args.metrics_listen, ready_file=args.ready_file)


def run_agent(args: argparse.Namespace, labels: dict[str, str]) -> int:
    """`federator agent --kubeconfig PATH | --in-cluster`: the agent with the Kubernetes backend."""
    from federator.agent.agent import Agent
    from federator.backends.kube.api import KubeApi, KubeError
    from federator.backends.kube.backend import KubeBackend

    if not args.region:
        print("federator agent: --region is required with the Kubernetes backend", file=sys.stderr)
        return 2
    if args.sim is not None:
        print("federator agent: --sim and --kubeconfig/--in-cluster exclude each other", file=sys.stderr)
        return 2
    tls: TlsFiles | None = None
    try:
        from federator.cli.certs import tls_files
        from federator.security.tls import TlsError

        try:
            tls = tls_files(args, role="agent", name=args.cluster)
            if tls is not None:
                tls.channel_credentials()
        except TlsError as exc:
            print(f"federator agent: {exc}", file=sys.stderr)
            return 2
    except ImportError:  # a build without mTLS support
        pass
    try:
        api = KubeApi.connect(None if args.in_cluster else args.kubeconfig)
    except KubeError as exc:
        print(f"federator agent: --kubeconfig: {exc}", file=sys.stderr)
        return 2
    backend = KubeBackend(api, namespace=args.namespace)
    agent = Agent(agent_config(args, labels, tls=tls), backend)
    log.info("agent for %s (%s) on %s, workloads in namespace %s, fence after %s", args.cluster, args.region,
             api.server, args.namespace, f"{args.fence_after:g}s" if args.fence_after > 0 else "never")
    try:
        asyncio.run(agent.run())
    except KeyboardInterrupt:
        pass
    except KubeError as exc:
        print(f"federator agent: {exc}", file=sys.stderr)
        return 1
    return 0


__all__ = ["agent_config", "run_agent"]
