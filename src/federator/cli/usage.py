"""`federator usage`: accelerator-seconds used, from the federator's usage records.

    federator usage --since 7d --by queue
    federator usage --since 2026-11-01 --until 2026-12-01 --by provider -o csv
    federator usage --since 30d --by region --by vendor      # a row per (region, vendor)

Times are ISO 8601 (a date, or a date and time; in the local zone unless it
names one, as `get jobs --since` reads them: 2026-11-01 is local midnight),
unix seconds, or an age back from now (`90m`, `24h`, `7d`). The header says the
window in the local zone. Rows are
the groups, biggest first, and a TOTAL line; the rows add up to the total
exactly. `--by` again groups by each (`--by provider --by model`: a row per
provider and model, a column each); region is the cluster's when the
accelerators were used, vendor the model's (since 0.14.0). Grouped by job, a
PHASE column (JSON and CSV: `phase`) says each job's phase now (Succeeded,
Failed, Cancelled, or still Pending/Placed/Running), `-` (JSON null) where the
federator no longer keeps the job (since 0.15.0: UsageRow.phase). An admin sees
everyone's usage, anyone else their own and their groups'; a provider, with one of its clusters' certificates,
its own clusters' usage by cluster, model, provider, region or vendor (docs/security.md).

The federator keeps a record for `federator serve --usage-retention` after its placement ended (90 days by
default): a window that starts earlier shows only what ended since or still runs (docs/security.md).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import grpc

from federator.cli import times
from federator.cli.calls import DEFAULT_SERVER, fail
from federator.cli.certs import add_tls_arguments, client_options
from federator.cli.output import table
from federator.listen import server_address
from federator.timestamps import utc_exact

if TYPE_CHECKING:
    from federator.security.tls import ClientOptions

BY = ("queue", "user", "namespace", "cluster", "provider", "model", "job", "region", "vendor", "placement")
MIXED = frozenset({"model", "vendor"})
UNKNOWN_PHASE = "-"
"""A job's PHASE when the federator no longer keeps the job (or is older than 0.15.0): usage records keep none."""


def phase_of(value: int) -> str | None:
    """UsageRow.phase as the user reads it; None when unknown (UNSPECIFIED), a newer server's value raw."""
    from federator.api import convert

    if not value:
        return None
    try:
        return convert.phase_from_pb(value).value
    except convert.WireError:
        return str(value)
"""Grouped by one of these, the TOTAL adds seconds of different devices: the table says so."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    u = sub.add_parser("usage", help="accelerator-seconds used, by queue, user, cluster, provider, model, job, "
                                     "region or vendor")
    zone = times.zone_said()
    u.add_argument("--since", default="", help=f"start: {times.FORMS}; a date or time naming no zone is in the "
                                               f"local zone, here {zone} (2026-11-01 is local midnight), as for "
                                               "get jobs --since (default: the first record; records are kept "
                                               "for the federator's --usage-retention, 90 days by default)")
    u.add_argument("--until", default="", help="end, read as --since is (default: now)")
    u.add_argument("--by", choices=BY, action="append", default=[],
                   help="group by this (default: the total only); again to group by several at once, a row per "
                        "combination (--by provider --by model). region: the cluster's when the accelerators were "
                        "used; vendor: the model's; placement: each time a job was placed, where it ran then (a "
                        "federator before 0.14.0 has none of these three, and one --by only); job: with a PHASE "
                        "column, the job's phase now ('-' once the federator no longer keeps the job, or before "
                        "0.15.0)")
    u.add_argument("--queue", default="", help="only this queue's usage (within the jobs you may see)")
    u.add_argument("--cluster", default="", help="only this member cluster's usage (a provider, with one of its "
                                                 "clusters' certificates: one of its own clusters)")
    u.add_argument("-o", "--output", choices=["table", "csv", "json"], default="table")
    u.add_argument("--server", default=DEFAULT_SERVER, type=server_address,
                   help="federator gRPC address (default %(default)s)")
    add_tls_arguments(u, role="client")
    u.set_defaults(func=_usage)


def parse_time(value: str, *, flag: str, now: float) -> float:
    """A time flag's unix seconds (0: not given), read as `get jobs --since` reads one (cli/times.py: local time
    unless it names a zone); ValueError naming the flag."""
    if not value:
        return 0.0
    try:
        return times.parse_time(value, now=now)
    except ValueError as exc:
        raise ValueError(f"{flag}: {exc}") from None


MICRO = 1_000_000
HOUR_MICROS = 3_600  # micro-accelerator-seconds in a millionth of an accelerator-hour


def shares(amounts: Sequence[int], *, total: int, unit: int) -> tuple[list[int], int]:
    """Each amount and the total in whole `unit`s, rounded so the rows add up to the rounded total (largest
    remainder: each row is its amount rounded down, or up by one where the remainders are largest). Rounding each
    row alone did not add up (outside billing QA F8: 263 rows of 4.296789 h under a TOTAL of 4.296769 h); each
    row is still within one unit of its exact amount."""
    target = (total + unit // 2) // unit
    out = [a // unit for a in amounts]
    short = target - sum(out)
    for i in sorted(range(len(amounts)), key=lambda i: (-(amounts[i] % unit), i))[:max(0, short)]:
        out[i] += 1
    return out, target


def fixed(n: int, places: int, *, commas: bool = False) -> str:
    """An integer of 10^-places units as a decimal, without a float in between."""
    whole, frac = divmod(n, 10 ** places)
    head = f"{whole:,}" if commas else str(whole)
    return f"{head}.{frac:0{places}d}" if places else head


def _column(micros: list[int], total: int, *, unit: int, places: int, commas: bool = False) -> list[str]:
    rows, t = shares(micros, total=total, unit=unit)
    return [fixed(n, places, commas=commas) for n in [*rows, t]]


def render(resp: object, *, output: str, by: str | Sequence[str]) -> str:
    """The report as a table, CSV or JSON. The amount to price is micro_accelerator_seconds (exact integers; the
    rows add up to the total); seconds and hours are rounded for reading, rows apportioned to add up to the
    total (`shares`). A window that has not ended (`incomplete`) says so in every output."""
    from federator.api.v1 import usage_pb2

    assert isinstance(resp, usage_pb2.UsageResponse)
    dims = [by] if isinstance(by, str) and by else [] if isinstance(by, str) else list(by)
    # each row's value in each dimension ("" shown "-"): its keys, or its key from a server before 0.14.0
    values = [list(r.keys) if len(r.keys) == len(dims) else [r.key] for r in resp.rows] if dims else []
    rows = [(r.key, r.micro_accelerator_seconds, r.placements) for r in resp.rows] if dims else []
    phases = [phase_of(r.phase) for r in resp.rows] if "job" in dims else None  # the job's now (UsageRow.phase)
    micros, total_micro = [m for _k, m, _n in rows], resp.total.micro_accelerator_seconds
    counts = [n for _k, _m, n in rows] + [resp.total.placements]
    ncol = max(1, len(dims))
    cells = [[v or "-" for v in vals] for vals in values] + [["TOTAL"] + [""] * (ncol - 1)]
    heads = [*(dims or ["total"])]
    if phases is not None:  # a PHASE column after the dimensions: the job's phase now, "-" unknown
        cells = [[*ks, p or UNKNOWN_PHASE] for ks, p in zip(cells, phases, strict=False)] + [[*cells[-1], ""]]
        heads.append("phase")
    start = utc_exact(resp.since) if resp.since > 0 else None  # None: from the first record
    unfinished = (f"incomplete: counted up to {utc_exact(resp.until)}, and not final: the window asked for ends "
                  "after the time of the call, or a placement in it still runs on a member cluster not heard from "
                  "since; ask again later for the amounts to bill")
    if output == "json":
        row_hours, total_hours = shares(micros, total=total_micro, unit=HOUR_MICROS)

        def amounts(m: int, h: int, n: int) -> dict[str, object]:
            return {"acceleratorSeconds": m / MICRO, "microAcceleratorSeconds": m, "acceleratorHours": h / MICRO,
                    "placements": n}

        doc: dict[str, object] = {"since": start, "until": utc_exact(resp.until), "incomplete": resp.incomplete}
        if resp.incomplete:
            doc["note"] = unfinished
        # "by": "" for the total only, as the API's UsageResponse.by (was null); several: joined by ","
        doc |= {"by": ",".join(dims), "groupBy": dims,
                "rows": [{"key": k, "keys": vals, **({"phase": phases[i]} if phases is not None else {}),
                          **amounts(m, h, n)}
                         for i, (vals, (k, m, n), h) in enumerate(zip(values, rows, row_hours, strict=True))],
                "total": amounts(total_micro, total_hours, resp.total.placements)}
        return json.dumps(doc, indent=2)
    if output == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        if resp.incomplete:
            buf.write(f"# {unfinished}\n")
        w.writerow([*heads, "accelerator_seconds", "accelerator_hours", "placements",
                    "micro_accelerator_seconds"])  # a column per dimension grouped by (and phase, by job)
        hours = _column(micros, total_micro, unit=HOUR_MICROS, places=6)
        for ks, m, h, n in zip(cells, [*micros, total_micro], hours, counts, strict=True):
            w.writerow([*ks, fixed(m, 6), h, n, m])
        return buf.getvalue().rstrip("\n")
    seconds = _column(micros, total_micro, unit=MICRO // 10, places=1, commas=True)
    hours = _column(micros, total_micro, unit=HOUR_MICROS * 1000, places=3, commas=True)
    body = [[*ks, s, h, str(n)] for ks, s, h, n in zip(cells, seconds, hours, counts, strict=True)]
    # in the local zone, as the flags were read (cli/times.py); csv and json stay in UTC
    begun = times.local_text(resp.since) if resp.since > 0 else "the first record"
    header = f"usage from {begun} to {times.local_text(resp.until)}"
    if resp.incomplete:
        header += f" ({unfinished})"
    out = header + "\n" + table([*(d.upper() for d in heads), "ACCELERATOR-SECONDS", "ACCELERATOR-HOURS",
                                  "PLACEMENTS"], body)
    if MIXED & set(dims) and len({tuple(v[i] for i, d in enumerate(dims) if d in MIXED) for v in values}) > 1:
        out += ("\nthe TOTAL adds accelerator-seconds of different models: an hour of one is not an hour of "
                "another; price each row")
    return out


USAGE_TIMEOUT = 30.0
"""Seconds a usage query may take: it sums a range of records, slower than a get."""


def fetch(opts: ClientOptions, *, since: float = 0.0, until: float = 0.0, by: str | Sequence[str] = "",
          queue: str = "", cluster: str = "") -> object:
    """UsageService.Get over a fresh channel (raises grpc.RpcError). One dimension is sent as `by`, as every
    release reads it; several as `group_by` (0.14.0)."""
    from federator.api.v1 import usage_pb2, usage_pb2_grpc

    dims = [by] if isinstance(by, str) and by else [] if isinstance(by, str) else list(by)
    one, several = (dims[0] if len(dims) == 1 else ""), (dims if len(dims) > 1 else [])
    with opts.channel() as ch:
        return usage_pb2_grpc.UsageServiceStub(ch).Get(usage_pb2.UsageRequest(since=since, until=until, by=one,
                                                                                 queue=queue, cluster=cluster,
                                                                                 group_by=several),
                                                       timeout=USAGE_TIMEOUT)


def older_server(resp: object, by: Sequence[str]) -> bool:
    """Whether a reply to a grouping by several dimensions came from a federator before 0.14.0: it ignored
    `group_by` and answered the total only, which must not print as the grouping asked for."""
    return len(by) > 1 and not list(getattr(resp, "group_by", []))


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
    if since and since >= (until or now):  # said in the dates given, not in unix seconds as the federator says it
        end = times.local_text(until or now) + ("" if until else " (now)")
        print(f"federator usage: --until: must be after --since ({end} is not after {times.local_text(since)})",
              file=sys.stderr)
        return 2
    twice = sorted({b for b in args.by if args.by.count(b) > 1})
    if twice:
        print(f"federator usage: --by: {twice[0]} is given twice", file=sys.stderr)
        return 2
    try:
        resp = fetch(opts, since=since, until=until, by=args.by, queue=args.queue, cluster=args.cluster)
    except grpc.RpcError as err:  # worded as every other call's: get, cancel, scale (calls.fail)
        return fail(err, args, seconds=USAGE_TIMEOUT)
    if older_server(resp, args.by):
        print(f"federator usage: the federator at {args.server} groups by one --by at a time (it is older than "
              "0.14.0): give one --by", file=sys.stderr)
        return 1
    print(render(resp, output=args.output, by=args.by))
    return 0


__all__ = ["fetch", "fixed", "older_server", "parse_time", "register", "render", "shares"]
