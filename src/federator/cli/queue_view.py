"""`federator get queues`: each queue's standing, as Slurm's `sshare` (and `sprio`'s "who goes first") shows it.

    federator get queues                 # the queues you may submit to (an admin: every queue)
    federator get queues batch           # one queue
    federator get queues -o wide         # with CPU, the caps and the order within the queue
    federator get queues -o json         # every field of QueueService.List, for a script

The answer is QueueService.List's (proto/federator/v1/queues.proto): per queue its weight, the accelerators it holds
against its weighted fair share now, its jobs pending, placed and running, its oldest wait, its quota, and where you
stand in it (what you hold against its other users, and how many waiting jobs go before yours). The figures are the
ones the federator's metrics export at the same instant. A federator older than 0.14.0 serves no QueueService: the
command says so (UNIMPLEMENTED) rather than print a bare status; `whoami` still lists your queues and their caps.

Why a module of its own: `cli/calls.py` holds the shared calls; a command's rendering lives beside its fetch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import grpc

from federator.cli import calls, job_list
from federator.cli.calls import fail
from federator.cli.certs import client_options
from federator.cli.exit_codes import Exit
from federator.cli.output import dump, table
from federator.security.tls import TlsError

if TYPE_CHECKING:
    from federator.security.tls import ClientOptions

OLDER = ("the federator at {server} serves no queue standing: it is older than 0.14.0 (UNIMPLEMENTED); "
         "`federator whoami` lists your queues and their caps")


def within_get(parser: argparse.ArgumentParser) -> None:
    """Serve `get queues` from this module; every other `get` runs what the parser ran before (cli/client.py)."""
    other: Callable[[argparse.Namespace], int] = parser.get_default("func")

    def run(args: argparse.Namespace) -> int:
        return get_queues(args) if args.what == "queues" else other(args)

    parser.set_defaults(func=run)


def fetch(opts: ClientOptions, *, queue: str = "", page_size: int = 0) -> list[dict[str, Any]]:
    """Every queue the caller may see (or `queue` alone), a page at a time, as plain documents (raises
    grpc.RpcError)."""
    from federator.api.v1 import queues_pb2, queues_pb2_grpc

    out: list[dict[str, Any]] = []
    token = ""
    with opts.channel() as ch:
        stub = queues_pb2_grpc.QueueServiceStub(ch)
        while True:
            resp = stub.List(queues_pb2.ListQueuesRequest(page_size=page_size, page_token=token, queue=queue),
                             timeout=calls.CALL_TIMEOUT)
            out += [document(q, fleet=resp.fleet_accelerators, sampled_at=resp.sampled_at) for q in resp.queues]
            token = resp.next_page_token
            if not token:
                return out


def document(q: Any, *, fleet: float, sampled_at: float) -> dict[str, Any]:
    """One QueueStanding as a document (camelCase, as the CLI's other documents)."""
    quota: dict[str, Any] = {"accelerators": {a.model: a.accelerators for a in q.quota.accelerators}}
    if q.quota.HasField("cpu_cores"):
        quota["cpuCores"] = q.quota.cpu_cores
    if q.quota.HasField("memory_bytes"):
        quota["memoryBytes"] = q.quota.memory_bytes
    o = q.own
    return {"name": q.name, "declared": q.declared, "weight": q.weight,
            "heldAccelerators": q.held_accelerators, "heldCpuCores": q.held_cpu_cores,
            "fairShareAccelerators": q.fair_share_accelerators, "fleetAccelerators": fleet,
            "pendingJobs": q.pending_jobs, "placedJobs": q.placed_jobs, "runningJobs": q.running_jobs,
            "neverRunnableJobs": q.never_runnable_jobs, "oldestPendingSeconds": q.oldest_pending_seconds,
            "quota": quota,
            "pendingLimit": {"limit": q.pending_limit.limit, "used": q.pending_limit.used,
                             "source": q.pending_limit.source},
            "maxPriority": q.max_priority, "maxRunSeconds": q.max_run_seconds, "ownerShare": q.owner_share,
            "allowedRegions": list(q.allowed_regions),
            "own": {"owner": o.owner, "heldAccelerators": o.held_accelerators, "heldCpuCores": o.held_cpu_cores,
                    "pendingJobs": o.pending_jobs, "placedJobs": o.placed_jobs, "runningJobs": o.running_jobs,
                    "othersHeldAccelerators": o.others_held_accelerators, "owners": o.owners,
                    "ownersHoldingLess": o.owners_holding_less, "jobsAhead": o.jobs_ahead},
            "sampledAt": sampled_at}


def _n(v: float) -> str:
    """Accelerators or cores as a person reads them: 24, 0.5, 0.125 (fractions kept, never 1.8e+02)."""
    return f"{v:.3f}".rstrip("0").rstrip(".")


def _age(seconds: float) -> str:
    if seconds <= 0:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    if seconds < 86400:
        return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"
    return f"{seconds // 86400:.0f}d{seconds % 86400 // 3600:.0f}h"


def _quota(doc: dict[str, Any]) -> str:
    quota = doc["quota"]
    parts = [f"{m} {_n(v)}" for m, v in quota["accelerators"].items()]
    if "cpuCores" in quota:
        parts.append(f"cpu {_n(quota['cpuCores'])}")
    return ", ".join(parts) or "-"


def _standing(doc: dict[str, Any]) -> str:
    """The queue against its fair share: under (its waiting jobs go first among queues), at, or over."""
    held, fair = doc["heldAccelerators"], doc["fairShareAccelerators"]
    return "under" if held < fair else "over" if held > fair else "at"


def _you(doc: dict[str, Any]) -> str:
    own = doc["own"]
    if not (own["pendingJobs"] or own["runningJobs"]):
        return "-"
    words = f"hold {_n(own['heldAccelerators'])} of {_n(doc['heldAccelerators'])}"
    if own["pendingJobs"]:
        words += f"; {own['pendingJobs']} waiting, {own['jobsAhead']} ahead"
    return words


def rows(docs: Sequence[dict[str, Any]], *, wide: bool) -> tuple[list[str], list[list[str]]]:
    """The table: one line per queue, what a Slurm user reads of `sshare` at a glance."""
    headers = ["QUEUE", "WEIGHT", "HELD", "FAIR-SHARE", "SHARE", "PENDING", "RUNNING", "OLDEST-WAIT", "QUOTA", "YOU"]
    if wide:
        headers += ["PLACED", "CPU", "PENDING-CAP", "MAX-PRIORITY", "MAX-RUN", "ORDER", "OWNERS", "REGIONS"]
    out = []
    for d in docs:
        pending = str(d["pendingJobs"]) + (f" ({d['neverRunnableJobs']} never)" if d["neverRunnableJobs"] else "")
        row = [d["name"], f"{d['weight']:g}", _n(d["heldAccelerators"]), f"{d['fairShareAccelerators']:.1f}",
               _standing(d), pending, str(d["runningJobs"]), _age(d["oldestPendingSeconds"]), _quota(d), _you(d)]
        if wide:
            cap = d["pendingLimit"]
            row += [str(d["placedJobs"]), _n(d["heldCpuCores"]), f"{cap['used']}/{cap['limit']}", str(d["maxPriority"]),
                    f"{d['maxRunSeconds']}s" if d["maxRunSeconds"] else "-",
                    "owner-share" if d["ownerShare"] else "submission", str(d["own"]["owners"]),
                    ",".join(d["allowedRegions"]) or "any"]
        out.append(row)
    return headers, out


def get_queues(args: argparse.Namespace) -> int:
    """`federator get queues [NAME]`: the table, or every field as JSON or YAML."""
    if job_list.filtered(args):
        print("error: --phase, --owner, --namespace, --name-prefix, --since and --sort go with `get jobs` "
              "without a job name", file=sys.stderr)
        return Exit.USAGE
    name = args.name or args.queue
    if args.name and args.queue and args.name != args.queue:
        print(f"error: get queues: name {args.name!r} and --queue {args.queue!r} differ; give one", file=sys.stderr)
        return Exit.USAGE
    try:
        docs = fetch(client_options(args), queue=name, page_size=args.page_size)
    except (grpc.RpcError, TlsError) as err:
        if isinstance(err, grpc.RpcError) and hasattr(err, "code") and err.code() is grpc.StatusCode.UNIMPLEMENTED:
            print(f"error: {OLDER.format(server=args.server)}", file=sys.stderr)
            return Exit.FAILED
        return fail(err, args)
    if name and not docs:  # a queue nobody has and one the caller may not see answer alike (queues.proto)
        print(f"error: no queue {name!r} you may see", file=sys.stderr)
        return Exit.NOT_FOUND
    if args.output in ("json", "yaml"):
        print(dump(docs[0] if name else docs, args.output))
    else:
        print(table(*rows(docs, wide=args.output == "wide")))
    return 0


__all__ = ["OLDER", "document", "fetch", "get_queues", "rows", "within_get"]
