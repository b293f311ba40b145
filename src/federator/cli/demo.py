"""`federator demo`: a federator and one agent per fleet cluster, a batch of jobs, a table.

Everything runs as separate processes over real gRPC with mTLS on loopback
(the demo makes a CA and a certificate per process in its workdir); the member
clusters are simulated (the embedded default backend).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from federator.backends.sim import FleetError, load_fleet
from federator.cli.get import list_clusters, list_jobs
from federator.cli.job_files import read_specs
from federator.cli.output import cluster_rows, job_rows, table
from federator.cli.submit_calls import submit_specs
from federator.cli.usage import fetch, render
from federator.jobfile import JobFileError
from federator.local import LocalFederation
from federator.model import JobPhase, ReasonCode
from federator.paths import make_dir

# The demo's fleet and jobs ship inside the package (package data), so `federator demo` runs from a pip
# install or the image as from a checkout; the checkout's examples/fleet.yaml and examples/jobs link here.
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = sub.add_parser("demo", help="run a federator, simulated agents and example jobs on this machine")
    d.add_argument("--fleet", type=Path, default=EXAMPLES / "fleet.yaml", help="fleet file (default %(default)s)")
    d.add_argument("--jobs", type=Path, default=EXAMPLES / "jobs", help="job files (default %(default)s)")
    d.add_argument("--workdir", type=Path, help="where the store and logs go (default: a temporary folder)")
    d.add_argument("--serve", action="store_true", help="keep everything running after the jobs finish")
    d.add_argument("--listen", default="127.0.0.1:0", help="federator gRPC address (default: a free port)")
    d.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the jobs")
    d.add_argument("--insecure", action="store_true", help="plaintext gRPC instead of mTLS")
    d.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    try:
        fleet = load_fleet(args.fleet)
        specs = read_specs([args.jobs])
    except (FleetError, JobFileError) as exc:
        print(f"federator demo: {exc}", file=sys.stderr)
        return 2
    if not args.timeout > 0:
        print(f"federator demo: --timeout: must be a positive number of seconds, got {args.timeout:g}", file=sys.stderr)
        return 2
    if args.workdir is not None:
        try:
            make_dir(args.workdir)
        except OSError as exc:
            print(f"federator demo: --workdir: cannot use {args.workdir}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="federator-demo-"))
    fed = LocalFederation(workdir=workdir, fleet=args.fleet, grpc_target=args.listen, tls=not args.insecure)
    try:
        fed.start_server()
        print(f"federator serving gRPC on {fed.grpc_target}; logs and store in {workdir}")
        if fed.tls:
            print(f"mTLS: CA and per-cluster certificates in {fed.certs.root}; each agent's identity comes from "
                  "its certificate")
        for name in fleet:
            fed.start_agent(name)
        _wait(lambda: sum(c["capacity"] is not None for c in list_clusters(fed.client)) == len(fleet),
              30, "agents to report")
        print()
        print(table(*cluster_rows(list_clusters(fed.client), wide=True)))
        print()
        for job in submit_specs(fed.client, specs):
            print(f"submitted {job.job_id} ({job.spec.kind}, queue {job.spec.queue})")
        print()

        def settled() -> bool:
            jobs = list_jobs(fed.client)
            return all(j.phase.is_terminal or (j.phase is JobPhase.PENDING and j.pending_reason is not None
                                               and j.pending_reason.code is not ReasonCode.WAITING)
                       for j in jobs)

        _wait(settled, args.timeout, "jobs to finish")
        jobs = list_jobs(fed.client)
        print(table(*job_rows(jobs, wide=False)))
        print()
        print(render(fetch(fed.client, by="provider"), output="table", by="provider"))  # federator usage
        print()
        print(f"Prometheus metrics: {fed.metrics_url}")
        if args.serve:
            print(f"Serving until Ctrl-C. Try: federator get jobs {' '.join(fed.client_args())}")
            while True:
                time.sleep(3600)
        failed = [j for j in jobs if j.phase is JobPhase.FAILED]
        return 1 if failed else 0
    except KeyboardInterrupt:
        return 0
    except (TimeoutError, RuntimeError) as exc:
        print(f"federator demo: {exc}", file=sys.stderr)
        return 1
    finally:
        fed.stop()


def _wait(cond: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if cond():  # type: ignore[operator]
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.2)
