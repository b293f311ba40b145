"""`federator serve`: run the federator process."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the federator")
    p.add_argument("--listen", default="127.0.0.1:7070", help="gRPC address (default %(default)s)")
    p.add_argument("--metrics-listen", default="127.0.0.1:9090", help="/metrics address (default %(default)s)")
    p.add_argument("--db", type=Path, default=Path("federator.db"), help="SQLite job store (default %(default)s)")
    p.add_argument("--report-interval", type=float, default=2.0, help="seconds between agent capacity reports")
    p.add_argument("--lease-seconds", type=float, default=10.0,
                   help="a connected cluster with no report for this long is Partitioned")
    p.add_argument("--lost-after", type=float, default=120.0,
                   help="seconds a Partitioned cluster may stay away before it is Lost")
    p.add_argument("--cycle-interval", type=float, default=1.0, help="seconds between scheduling cycles at most")
    p.add_argument("--ready-file", type=Path, help="write the bound addresses here as JSON once serving")
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from federator.server.app import ServeOptions, serve

    opts = ServeOptions(listen=args.listen, metrics_listen=args.metrics_listen, db=args.db,
                        report_interval=args.report_interval, lease_seconds=args.lease_seconds,
                        lost_after_seconds=args.lost_after, cycle_interval=args.cycle_interval,
                        ready_file=args.ready_file)
    asyncio.run(serve(opts))
    return 0
