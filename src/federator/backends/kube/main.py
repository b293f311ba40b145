"""Entry points of Kubernetes mode, called by the CLI: the agent on a member cluster.

Kept here rather than in `cli/` so the command-line modules stay small and the
`kubernetes` package is imported only when Kubernetes mode is asked for.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

log = logging.getLogger("federator.agent.kube")


def run_agent(args: argparse.Namespace, labels: dict[str, str]) -> int:
    """`federator agent --kubeconfig PATH | --in-cluster`: the agent with the Kubernetes backend."""
    from federator.agent.agent import Agent, AgentConfig
    from federator.backends.kube.api import KubeApi, KubeError
    from federator.backends.kube.backend import KubeBackend

    if not args.region:
        print("federator agent: --region is required with the Kubernetes backend", file=sys.stderr)
        return 2
    if args.sim is not None:
        print("federator agent: --sim and --kubeconfig/--in-cluster exclude each other", file=sys.stderr)
        return 2
    config_kwargs: dict[str, object] = {}
    try:
        from federator.cli.certs import tls_files
        from federator.security.tls import TlsError

        try:
            tls = tls_files(args, role="agent", name=args.cluster)
            if tls is not None:
                tls.channel_credentials()
            config_kwargs["tls"] = tls
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
    agent = Agent(AgentConfig(cluster=args.cluster, region=args.region, target=args.server, labels=labels,
                              **config_kwargs), backend)  # type: ignore[arg-type]
    log.info("agent for %s (%s) on %s, workloads in namespace %s", args.cluster, args.region, api.server,
             args.namespace)
    try:
        asyncio.run(agent.run())
    except KeyboardInterrupt:
        pass
    except KubeError as exc:
        print(f"federator agent: {exc}", file=sys.stderr)
        return 1
    return 0


__all__ = ["run_agent"]
