"""Agent load: many agents reporting every second, plus a stream of submissions, against one federator.

Not a test: run it by hand and copy its table into docs/benchmarks.md
("Agent load"). The federator is a real `federator serve` process with mTLS;
the agents are the real `Agent` class with simulated clusters, all in this
process's event loop (a process per agent would not fit on a laptop), each
with its own gRPC channel and client certificate.

    .venv/bin/python bench/load_agents.py --agents 500 --duration 60 --submit-rate 5

Measures the federator process only: CPU (from /proc, user+system over the
steady-state window), resident memory, agent reports handled per second, and
placement latency (job.placed_at - job.submitted_at, both stamped by the
federator: submission accepted -> placement decided and on disk).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from federator.agent.agent import Agent, AgentConfig
from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.backends.sim.fleet import load_fleet
from federator.backends.sim.runtime import SimBackend
from federator.jobfile import parse_job
from federator.local import LocalFederation
from federator.security.pki import Identity, IdentityKind, issue
from federator.security.tls import cluster_files

CLK_TCK = os.sysconf("SC_CLK_TCK")


def fleet_doc(n: int, regions: int) -> dict[str, object]:
    rng = random.Random(0)
    return {"clusters": [
        {"name": f"c-{i:04d}", "region": f"region-{i % regions:02d}",
         "labels": {"federator.io/price-per-accelerator-hour": f"{rng.uniform(1.5, 4.5):.2f}"},
         "nodes": [{"count": 4, "gpuModel": "NVIDIA-H100-80GB-HBM3", "gpus": 8, "cpu": 96, "memory": "1Ti"},
                   {"count": 4, "gpuModel": "NVIDIA-L40S", "gpus": 4, "cpu": 32, "memory": "256Gi"}]}
        for i in range(n)]}


def proc_sample(pid: int) -> tuple[float, int]:
    """(CPU seconds used so far, resident bytes) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    rss = next(int(line.split()[1]) * 1024 for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    return cpu, rss


def job_request(i: int, rng: random.Random) -> jobs_pb2.SubmitRequest:
    gpus, model = rng.choice([(1, "L40S"), (2, "L40S"), (4, "H100"), (8, "H100")])
    doc = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
           "metadata": {"name": f"load-{i:05d}",
                        "annotations": {"federator.io/sim-duration": f"{rng.uniform(5, 20):.1f}s"}},
           "spec": {"kind": "training", "replicas": rng.choice([1, 1, 2]), "gpuModels": [model],
                    "resources": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": gpus}}}
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job(doc)))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="federator-load-"))
    fleet_path = workdir / "fleet.yaml"
    fleet_path.write_text(yaml.safe_dump(fleet_doc(args.agents, args.regions)))
    fleet = load_fleet(fleet_path)
    fed = LocalFederation(workdir=workdir, fleet=fleet_path, tls=not args.insecure, serve_args=[
        "--report-interval", str(args.report_interval), "--lease-seconds", "15", "--lost-after", "600",
        "--cycle-interval", "1", "--max-reports-per-second", "5"])
    fed.start_server()
    assert fed.server is not None
    pid = fed.server.popen.pid
    agents = []
    for name, spec in fleet.items():
        if fed.tls:
            issue(fed.certs, Identity(IdentityKind.CLUSTER, name))
        tls = cluster_files(fed.certs, name) if fed.tls else None
        agents.append(Agent(AgentConfig(cluster=name, region=spec.region, target=fed.grpc_target, tls=tls,
                                        report_interval=args.report_interval, labels=dict(spec.labels)),
                            SimBackend(spec)))
    tasks = [asyncio.create_task(a.run()) for a in agents]
    started = time.monotonic()
    while sum(a.connected.is_set() for a in agents) < len(agents):
        if time.monotonic() - started > 300:
            raise SystemExit(f"only {sum(a.connected.is_set() for a in agents)} agents connected after 300s")
        await asyncio.sleep(0.5)
    connect_seconds = time.monotonic() - started
    print(f"{len(agents)} agents connected in {connect_seconds:.1f}s", file=sys.stderr)
    await asyncio.sleep(args.warmup)

    rng = random.Random(1)
    cpu0, _ = proc_sample(pid)
    t0 = time.monotonic()
    rss_samples: list[int] = []
    submitted = 0
    submit_latency: list[float] = []
    async with fed.client.aio_channel() as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        while (elapsed := time.monotonic() - t0) < args.duration:
            due = int(elapsed * args.submit_rate)
            while submitted < due:
                s = time.perf_counter()
                await stub.Submit(job_request(submitted, rng), timeout=30)
                submit_latency.append(time.perf_counter() - s)
                submitted += 1
            rss_samples.append(proc_sample(pid)[1])
            await asyncio.sleep(0.2)
        cpu1, rss = proc_sample(pid)
        window = time.monotonic() - t0
        await asyncio.sleep(3)  # let the last submissions be placed
        jobs = (await stub.List(jobs_pb2.ListJobsRequest(), timeout=60)).jobs
        clusters = (await jobs_pb2_grpc.ClusterServiceStub(channel).List(jobs_pb2.ListClustersRequest(),
                                                                         timeout=60)).clusters
    metrics = _scrape(fed.metrics_url)
    for t in tasks:
        t.cancel()
    fed.stop()
    placed = [j.placed_at - j.submitted_at for j in jobs if j.placed_at]
    return {
        "agents": args.agents, "report_interval_s": args.report_interval, "duration_s": round(window, 1),
        "connect_all_s": round(connect_seconds, 1),
        "clusters_ready": sum(c.state == "Ready" for c in clusters),
        "reports_per_s": round(metrics.get("federator_agent_reports_total", 0.0)
                               / (window + args.warmup + 3 + connect_seconds), 1),
        "reports_rate_limited": metrics.get('federator_messages_rejected_total{reason="rate_limited"}', 0.0),
        "submitted": submitted, "placed": len(placed),
        "federator_cpu_percent": round(100 * (cpu1 - cpu0) / window, 1),
        "federator_rss_mib_max": round(max(rss_samples + [rss]) / 2**20, 1),
        "placement_latency_ms_p50": round(1000 * percentile(placed, 0.5), 1),
        "placement_latency_ms_p99": round(1000 * percentile(placed, 0.99), 1),
        "placement_latency_ms_max": round(1000 * max(placed, default=float("nan")), 1),
        "submit_rpc_ms_p50": round(1000 * statistics.median(submit_latency), 1) if submit_latency else None,
        "submit_rpc_ms_p99": round(1000 * percentile(submit_latency, 0.99), 1),
        "cycles": metrics.get("federator_scheduling_cycle_duration_seconds_count", 0.0),
        "cycle_ms_mean": round(1000 * metrics.get("federator_scheduling_cycle_duration_seconds_sum", 0.0)
                               / max(1.0, metrics.get("federator_scheduling_cycle_duration_seconds_count", 1.0)), 2),
        "tls": not args.insecure,
    }


def _scrape(url: str) -> dict[str, float]:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    body = urllib.request.urlopen(url, timeout=30).read().decode()
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            key = s.name if s.name != "federator_messages_rejected_total" else \
                f'{s.name}{{reason="{s.labels.get("reason")}"}}'
            out[key] = out.get(key, 0.0) + float(s.value)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, default=500)
    p.add_argument("--regions", type=int, default=10)
    p.add_argument("--report-interval", type=float, default=1.0)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of measured steady state")
    p.add_argument("--warmup", type=float, default=10.0)
    p.add_argument("--submit-rate", type=float, default=5.0, help="job submissions per second")
    p.add_argument("--insecure", action="store_true", help="plaintext instead of mTLS")
    args = p.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
