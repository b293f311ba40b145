"""Throughput: one scheduling cycle over many clusters and many pending jobs.

    python bench/throughput.py --clusters 100 --nodes 1000 --jobs 100000
    python bench/throughput.py --scaling 10,30,100,300,1000 --jobs 20000

Prints placements per second (placements / cycle seconds, wall and CPU: the cycle
runs on one core, and CPU time is what the shared machine cannot steal) and the
per-decision latency (time the cycle spent on each placed job), as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import clusters, jobs  # noqa: E402

from federator.scheduler import Scheduler, Snapshot  # noqa: E402


def run(n_clusters: int, n_nodes: int, n_jobs: int, seed: int = 0) -> dict[str, float]:
    snapshot = Snapshot.of(clusters(n_clusters, nodes=n_nodes, seed=seed))
    requests = jobs(n_jobs, seed=seed)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = Scheduler().schedule(snapshot, requests)
    took = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    lat = sorted(result.decision_seconds)
    placed = len(result.decisions)
    return {
        "clusters": n_clusters, "nodes_per_cluster": n_nodes, "jobs": n_jobs, "placed": placed,
        "pending": len(result.pending), "cycle_seconds": round(took, 3),
        "cpu_seconds": round(cpu, 3),
        "placements_per_second": round(placed / took, 1),
        "placements_per_cpu_second": round(placed / cpu, 1),
        "jobs_decided_per_second": round(n_jobs / took, 1),
        "decision_latency_p50_seconds": lat[len(lat) // 2] if lat else 0.0,
        "decision_latency_p99_seconds": lat[int(len(lat) * 0.99)] if lat else 0.0,
        "phase_seconds": {k: round(v, 3) for k, v in result.phase_seconds.items()},
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clusters", type=int, default=100)
    p.add_argument("--nodes", type=int, default=1000, help="nodes per cluster")
    p.add_argument("--jobs", type=int, default=100_000)
    p.add_argument("--scaling", help="comma-separated cluster counts: cost per placement as clusters grow")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.scaling:
        rows = [run(int(n), args.nodes, args.jobs, args.seed) for n in args.scaling.split(",")]
        for r in rows:
            r["cpu_microseconds_per_job"] = round(1e6 * r["cpu_seconds"] / r["jobs"], 1)
        print(json.dumps(rows, indent=2))
    else:
        print(json.dumps(run(args.clusters, args.nodes, args.jobs, args.seed), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
