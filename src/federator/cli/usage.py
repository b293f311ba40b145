"""`federator usage`: accelerator-seconds used, from the federator's usage records.

    federator usage --since 7d --by queue
    federator usage --since 2026-11-01 --until 2026-12-01 --by provider -o csv

Times are ISO 8601 (a date, or a date and time; UTC unless an offset is
given), unix seconds, or an age back from now (`90m`, `24h`, `7d`). Rows are
the groups, biggest first, and a TOTAL line; the rows add up to the total
exactly. An admin sees everyone's usage, anyone else their own.

The federator keeps a record for `federator serve --usage-retention` after its placement ended (90 days by
default): a window that starts earlier shows only what ended since or still runs (docs/security.md).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import re
import sys
import time
from typing import TYPE_CHECKING

import grpc

from federator.cli.certs import add_tls_arguments, client_options
from federator.cli.client import DEFAULT_SERVER, _fail
from federator.cli.output import table
from federator.listen import server_address
from federator.timestamps import utc_seconds

if TYPE_CHECKING:
    from federator.security.tls import ClientOptions

BY = ("queue", "user", "namespace", "cluster", "provider", "model")
_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    u = sub.add_parser("usage", help="accelerator-seconds used, by queue, user, cluster, provider or model")
    u.add_argument("--since", default="", help="start: ISO 8601, unix seconds or an age like 24h, 7d "
                                               "(default: the first record; records are kept for the "
                                               "federator's --usage-retention, 90 days by default)")
    u.add_argument("--until", default="", help="end: ISO 8601, unix seconds or an age (default: now)")
    u.add_argument("--by", choices=BY, help="group by this (default: the total only)")
    u.add_argument("--queue", default="", help="only this queue's usage (within the jobs you may see)")
    u.add_argument("-o", "--output", choices=["table", "csv", "json"], default="table")
    u.add_argument("--server", default=DEFAULT_SERVER, type=server_address,
                   help="federator gRPC address (default %(default)s)")
    add_tls_arguments(u, role="client")
    u.set_defaults(func=_usage)


def parse_time(value: str, *, flag: str, now: float) -> float:
    """A time flag's unix seconds; ValueError naming the flag."""
    if not value:
        return 0.0
    m = _AGE.match(value)
    if m:
        return now - float(m.group(1)) * _UNIT[m.group(2)]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{flag}: expected ISO 8601 (2026-11-30 or 2026-11-30T18:00:00Z), unix seconds or an "
                         f"age like 24h or 7d, got {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def render(resp: object, *, output: str, by: str) -> str:
    """The report as a table, CSV or JSON."""
    from federator.api.v1 import usage_pb2

    assert isinstance(resp, usage_pb2.UsageResponse)
    head = (by or "total").upper()
    rows = [(r.key or "-", r.accelerator_seconds, r.micro_accelerator_seconds, r.placements) for r in resp.rows] \
        if by else []
    total = ("TOTAL", resp.total.accelerator_seconds, resp.total.micro_accelerator_seconds, resp.total.placements)
    if output == "json":
        return json.dumps({
            "since": utc_seconds(resp.since) if resp.since > 0 else None,  # null: from the first record
            "until": utc_seconds(resp.until), "by": by or None,
            "rows": [{"key": k if k != "-" else "", "acceleratorSeconds": s, "microAcceleratorSeconds": m,
                      "acceleratorHours": round(s / 3600, 6), "placements": n} for k, s, m, n in rows],
            "total": {"acceleratorSeconds": total[1], "microAcceleratorSeconds": total[2],
                      "acceleratorHours": round(total[1] / 3600, 6), "placements": total[3]}}, indent=2)
    if output == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([by or "total", "accelerator_seconds", "accelerator_hours", "placements"])
        for k, s, _m, n in [*rows, total]:
            w.writerow([k, f"{s:.6f}", f"{s / 3600:.6f}", n])
        return buf.getvalue().rstrip("\n")
    body = [[k, f"{s:,.1f}", f"{s / 3600:,.3f}", str(n)] for k, s, _m, n in [*rows, total]]
    start = utc_seconds(resp.since) if resp.since > 0 else "the first record"
    header = f"usage from {start} to {utc_seconds(resp.until)}"
    return header + "\n" + table([head, "ACCELERATOR-SECONDS", "ACCELERATOR-HOURS", "PLACEMENTS"], body)


USAGE_TIMEOUT = 30.0
"""Seconds a usage query may take: it sums a range of records, slower than a get."""


def fetch(opts: ClientOptions, *, since: float = 0.0, until: float = 0.0, by: str = "", queue: str = "") -> object:
    """UsageService.Get over a fresh channel (raises grpc.RpcError)."""
    from federator.api.v1 import usage_pb2, usage_pb2_grpc

    with opts.channel() as ch:
        return usage_pb2_grpc.UsageServiceStub(ch).Get(usage_pb2.UsageRequest(since=since, until=until, by=by,
                                                                                 queue=queue),
                                                       timeout=USAGE_TIMEOUT)


def _usage(args: argparse.Namespace) -> int:
    from federator.security.tls import TlsError

    now = time.time()
    try:
        since = parse_time(args.since, flag="--since", now=now)
        until = parse_time(args.until, flag="--until", now=now)
        opts = client_options(args)
    except (ValueError, TlsError) as exc:
        print(f"federator usage: {exc}", file=sys.stderr)
        return 2
    try:
        resp = fetch(opts, since=since, until=until, by=args.by or "", queue=args.queue)
    except grpc.RpcError as err:  # worded as every other call's: get, cancel, scale (client._fail)
        return _fail(err, args, seconds=USAGE_TIMEOUT)
    print(render(resp, output=args.output, by=args.by or ""))
    return 0


__all__ = ["fetch", "parse_time", "register", "render"]
