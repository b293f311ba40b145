"""Submit at scale: the live federator's Submit rate and latency with a backlog, and agent reports during a big cycle.

Not a test: run it by hand and copy its table into docs/benchmarks.md ("The
live federator at scale"). It reproduces the table of issue 11 against a real
`federator serve` process over mTLS:

    .venv/bin/python bench/submit_scale.py --backlogs 0,10000,100000

For each backlog (jobs already pending, of mixed shapes that no cluster can
hold, loaded from the job store the way a restarted federator finds them):

- `sequential`: one client, one Submit at a time (Python gRPC client);
- `ghz_c32`, `ghz_c64`: the independent load generator ghz (Go; built by
  scripts/fetch_tools.py ghz) driving JobService.Submit from proto/ with 32
  and 64 concurrent requests, over mTLS with a user certificate;
- `report_during_cycle` (largest backlog only): an agent connects, which
  makes every parked job a candidate again (a cycle over the whole backlog),
  and sends a report every 100 ms naming a placement the federator never gave
  it; the time from report to the federator's Cancel on the stream is how long
  a report waits while that cycle runs.

`--agents N` connects N simulated agents of examples/fleet.yaml first, so that Submits are placed and each
wakes a cycle with work in it, as on a live federator (outside QA, scale F2: without agents the figure was a
third of what a Submit costs a live one).

Prints one JSON object per backlog. `uptime` is recorded with each: the
machine is shared, so the load average says how much to trust a number.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from common import backlog  # noqa: E402
from fetch_tools import ghz as ghz_binary  # noqa: E402

from federator.api import convert  # noqa: E402
from federator.api.v1 import agent_pb2, agent_pb2_grpc, jobs_pb2, jobs_pb2_grpc  # noqa: E402
from federator.jobfile import parse_job  # noqa: E402
from federator.local import LocalFederation  # noqa: E402
from federator.security.pki import Identity, IdentityKind, issue  # noqa: E402
from federator.security.tls import cluster_files, user_files  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def metric(url: str, name: str) -> float:
    body = urllib.request.urlopen(url, timeout=60).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
               if line.startswith(name) and not line.startswith("#") and line[len(name)] in " {")


def labelled(url: str, name: str, label: str) -> float:
    """One series of a metric: the sum of the lines of `name` whose labels include `label` (such as
    'result="refused"')."""
    body = urllib.request.urlopen(url, timeout=60).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
               if line.startswith(name + "{") and label in line.split("}", 1)[0])


def spec_request(name: str) -> jobs_pb2.SubmitRequest:
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
        "spec": {"kind": "training", "replicas": 1,
                 "resources": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 1}}})))


def sequential(fed: LocalFederation, n: int, tag: str) -> dict[str, float]:
    lat = []
    with fed.client.channel() as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        t0 = time.perf_counter()
        for i in range(n):
            s = time.perf_counter()
            stub.Submit(spec_request(f"seq-{tag}-{i}"), timeout=60)
            lat.append(time.perf_counter() - s)
        took = time.perf_counter() - t0
    return {"submits": n, "per_s": round(n / took, 1), "p50_ms": round(1000 * percentile(lat, 0.5), 1),
            "p99_ms": round(1000 * percentile(lat, 0.99), 1)}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ghz(fed: LocalFederation, concurrency: int, n: int) -> dict[str, object]:
    assert fed.server is not None
    cpu0 = cpu_seconds(fed.server.popen.pid)
    tls = user_files(fed.certs, "admin")
    data = {"spec": {"name": "g-{{.UUID}}", "kind": "JOB_KIND_TRAINING", "replicas": 1,
                     "resources": {"cpu_milli": 4000, "memory_bytes": 17179869184, "accelerator_milli": 1000}}}
    cmd = [str(ghz_binary()), "--proto", str(REPO / "proto/federator/v1/jobs.proto"),
           "--import-paths", str(REPO / "proto"), "--call", "federator.v1.JobService.Submit",
           "--cacert", str(tls.ca), "--cert", str(tls.cert), "--key", str(tls.key),
           "-c", str(concurrency), "-n", str(n), "--timeout", "60s",
           "-d", json.dumps(data), "--format", "json", fed.grpc_target]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode not in (0, 1) or not out.stdout.strip():
        raise SystemExit(f"ghz failed ({out.returncode}): {out.stderr[-2000:]}\n{' '.join(cmd)}")
    cpu = cpu_seconds(fed.server.popen.pid) - cpu0
    r = json.loads(out.stdout)
    dist = {d["percentage"]: d["latency"] / 1e6 for d in r.get("latencyDistribution") or []}
    return {"concurrency": concurrency, "submits": r["count"], "per_s": round(r["rps"], 1),
            "p50_ms": round(dist.get(50, float("nan")), 1), "p99_ms": round(dist.get(99, float("nan")), 1),
            "status": r.get("statusCodeDistribution"), "errors": r.get("errorDistribution") or {},
            # the federator's own CPU per Submit: what a dedicated core would do, whatever the machine's load
            "federator_cpu_ms_per_submit": round(1000 * cpu / max(1, r["count"]), 3)}


async def report_during_cycle(fed: LocalFederation) -> dict[str, float]:
    """Connect an agent (every parked job comes back: a cycle over the backlog) and time report -> Cancel."""
    issue(fed.certs, Identity(IdentityKind.CLUSTER, "probe-1"))
    creds = cluster_files(fed.certs, "probe-1").channel_credentials()
    cycles0 = metric(fed.metrics_url, "federator_scheduling_cycle_duration_seconds_count")
    outgoing: asyncio.Queue[agent_pb2.AgentMessage] = asyncio.Queue()

    async def requests():  # type: ignore[no-untyped-def]
        while True:
            yield await outgoing.get()

    def report(*stray: str) -> agent_pb2.AgentMessage:
        return agent_pb2.AgentMessage(capacity=agent_pb2.CapacityReport(
            cpu_milli_allocatable=64_000, cpu_milli_free=64_000, memory_bytes_allocatable=2**38,
            memory_bytes_free=2**38, placement_ids=list(stray)))

    lat: list[float] = []
    async with grpc.aio.secure_channel(fed.grpc_target, creds) as ch:
        call = agent_pb2_grpc.AgentServiceStub(ch).Connect(requests())
        await outgoing.put(agent_pb2.AgentMessage(hello=agent_pb2.Hello(cluster="probe-1", region="r")))
        await call.read()  # Welcome
        t_ready = time.perf_counter()
        await outgoing.put(report())  # Ready: every parked job is a candidate again
        cycle_s = 0.0
        i = 0
        while True:
            i += 1
            pid = f"probe.g{i}.probe-1"
            sent = time.perf_counter()
            await outgoing.put(report(pid))
            while True:
                msg = await asyncio.wait_for(call.read(), 120)
                if msg.WhichOneof("body") == "cancel" and msg.cancel.placement_id == pid:
                    break
            lat.append(time.perf_counter() - sent)
            # /metrics walks every job: ask it once a second, not after every report
            if i % 10 == 0 and metric(fed.metrics_url,
                                      "federator_scheduling_cycle_duration_seconds_count") >= cycles0 + 2:
                cycle_s = time.perf_counter() - t_ready
                break
            await asyncio.sleep(0.1)
        call.cancel()
    return {"reports": len(lat), "cycle_window_s": round(cycle_s, 1),
            "report_to_cancel_ms_p50": round(1000 * percentile(lat, 0.5), 1),
            "report_to_cancel_ms_p99": round(1000 * percentile(lat, 0.99), 1),
            "report_to_cancel_ms_max": round(1000 * max(lat), 1)}


def run(n_backlog: int, args: argparse.Namespace, with_probe: bool) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix=f"federator-scale-{n_backlog}-"))
    fleet = Path(__file__).resolve().parent.parent / "examples" / "fleet.yaml" if args.agents else None
    fed = LocalFederation(workdir=workdir, fleet=fleet, serve_args=[
        "--cycle-interval", "1", "--max-reports-per-second", "50", "--lease-seconds", "10"])
    fed._tls_args()  # the CA, before the server starts
    backlog(workdir / "federator.db", n_backlog)
    t0 = time.perf_counter()
    fed.start_server(timeout=600)
    try:
        for cluster in ("east-1", "central-1", "west-1")[:args.agents]:  # a live federator's own work: their reports
            fed.start_agent(cluster)
        while metric(fed.metrics_url, "federator_scheduling_cycle_duration_seconds_count") < 1:
            time.sleep(0.2)  # the first cycle goes over the whole backlog and parks it
        ready_s = time.perf_counter() - t0
        # The first cycle gives every loaded job a fresh pending reason; those writes are lazy and drain for a
        # while. Measure the steady state after them (a restart's one-time cost is its own figure).
        while metric(fed.metrics_url, "federator_store_queued_jobs") > 0:
            time.sleep(0.2)
        drained_s = time.perf_counter() - t0
        row: dict[str, object] = {"backlog": n_backlog, "uptime": os.getloadavg(),
                                  "start_and_first_cycle_s": round(ready_s, 1),
                                  "reasons_written_s": round(drained_s, 1)}
        row["sequential"] = sequential(fed, args.sequential, str(n_backlog))
        for c in args.concurrency:
            row[f"ghz_c{c}"] = ghz(fed, c, args.ghz_requests)
        if with_probe:
            row["report_during_cycle"] = asyncio.run(report_during_cycle(fed))
        # What the agents refused of the placements (RefusedByCluster), and the re-queues that followed, over the
        # whole run, the first cycle over the backlog included
        row["placements"] = {
            "placed": int(labelled(fed.metrics_url, "federator_placements_total", 'result="placed"')),
            "refused": int(labelled(fed.metrics_url, "federator_placements_total", 'result="refused"')),
            "requeued": int(metric(fed.metrics_url, "federator_placement_retries_total"))}
        row["rss_mib"] = round(int(next(line.split()[1] for line in Path(f"/proc/{fed.server.popen.pid}/status")
                                        .read_text().splitlines() if line.startswith("VmRSS:"))) / 1024, 1)
        row["uptime_after"] = os.getloadavg()
        return row
    finally:
        fed.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backlogs", default="0,10000,100000")
    p.add_argument("--sequential", type=int, default=500)
    p.add_argument("--concurrency", default="16,32,64")
    p.add_argument("--ghz-requests", type=int, default=5000)
    p.add_argument("--agents", type=int, default=0, choices=range(4),
                   help="simulated agents of examples/fleet.yaml connected meanwhile (0-3): the jobs are placed")
    args = p.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    backlogs = [int(b) for b in args.backlogs.split(",")]
    random.seed(0)
    for n in backlogs:
        # The probe's own agent stands for a member that reports placements it was never given: not beside real
        # agents, whose placements it would be sent.
        print(json.dumps(run(n, args, with_probe=n == max(backlogs) and not args.agents)), flush=True)


if __name__ == "__main__":
    main()
