"""`federator agent`: run the agent of one member cluster."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

DEFAULT_SERVER = os.environ.get("FEDERATOR_SERVER", "127.0.0.1:7070")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    a = sub.add_parser("agent", help="run an agent for one member cluster")
    a.add_argument("--cluster", required=True, help="member cluster name")
    a.add_argument("--region", help="region (default: from the fleet file)")
    a.add_argument("--server", default=DEFAULT_SERVER, help="federator gRPC address (default %(default)s)")
    a.add_argument("--sim", type=Path, metavar="FLEET_FILE", help="run a simulated cluster from this fleet file")
    a.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="cluster label (repeatable)")
    a.add_argument("--time-scale", type=float, default=1.0, help="simulated durations are multiplied by this")
    a.set_defaults(func=_agent)


def _agent(args: argparse.Namespace) -> int:
    from federator.agent.agent import Agent, AgentConfig
    from federator.backends.sim import FleetError, load_fleet
    from federator.backends.sim.runtime import SimBackend

    labels: dict[str, str] = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"federator agent: --label: expected KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        labels[key] = value
    if args.sim is None:
        print("federator agent: --sim FLEET_FILE is required (the Kubernetes backend takes --kubeconfig)",
              file=sys.stderr)
        return 2
    try:
        fleet = load_fleet(args.sim)
    except FleetError as exc:
        print(f"federator agent: {exc}", file=sys.stderr)
        return 2
    spec = fleet.get(args.cluster)
    if spec is None:
        print(f"federator agent: --cluster: {args.cluster!r} is not in {args.sim} "
              f"(clusters: {', '.join(sorted(fleet))})", file=sys.stderr)
        return 2
    region = args.region or spec.region
    backend = SimBackend(spec, time_scale=args.time_scale)
    agent = Agent(AgentConfig(cluster=args.cluster, region=region, target=args.server,
                              labels={**dict(spec.labels), **labels}), backend)
    try:
        asyncio.run(agent.run())
    except KeyboardInterrupt:
        pass
    return 0
