"""A drain with a national backlog: what a loop turn of the drain and a scrape cost the event loop.

    python bench/drain_scale.py --jobs 100000 --placed 2000

Builds the real server state (Federator over an in-memory SQLite store, `--clusters` clusters of 1,000 nodes,
`--placed` jobs placed by the real cycle, then `--jobs` pending jobs in the job table, the backlog no room is
left for), drains one cluster, and times what runs on the event loop: the drain's turn (`Drains.turn`, ending
a batch of the drained cluster's jobs; each a store write), the drain's count a scrape reads (`Drains.counts`),
and a whole scrape (`generate_latest`, which walks every job for its own figures). Before 0.8.0 a drain found its
jobs by walking every job, once a turn, a scrape and a cluster List; now it reads the index of jobs that hold
placements (server/drains.py `Drains.on`). Uses only calls both have, so it measures the old code too
(docs/benchmarks.md, "Drains").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import clusters  # noqa: E402
from prometheus_client import generate_latest  # noqa: E402

from federator.jobfile import parse_job  # noqa: E402
from federator.model import Job, JobId, JobSpec  # noqa: E402
from federator.model.cordon import Drain  # noqa: E402
from federator.server.federator import Federator  # noqa: E402
from federator.store import SqliteJobStore  # noqa: E402


def gang(name: str) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
                      "spec": {"kind": "training", "replicas": 1,
                               "resources": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 8}}})


def ms(samples: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(samples) * 1e3, 3), "best_ms": round(min(samples) * 1e3, 3)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clusters", type=int, default=10)
    p.add_argument("--placed", type=int, default=2_000, help="jobs placed before the drain, over every cluster")
    p.add_argument("--jobs", type=int, default=100_000, help="pending jobs in the table: the backlog")
    p.add_argument("--turns", type=int, default=5, help="drain turns timed (each ends a batch of 32 jobs)")
    p.add_argument("--repeat", type=int, default=5, help="scrapes timed")
    args = p.parse_args()
    logging.disable(logging.WARNING)
    fed = Federator(store=SqliteJobStore(Path(":memory:")), report_interval=60.0)
    for info in clusters(args.clusters, nodes=1000):
        rec = fed.connect(cluster=info.name, region=info.region, labels={})
        assert info.capacity is not None
        fed.report(rec, info.capacity)
    for i in range(args.placed):
        fed.submit(gang(f"placed-{i}"))
    fed.schedule_once()
    drained = "cluster-0000"
    on_it = len(fed.drains.left(drained))
    backlog = gang("waits")
    for i in range(args.jobs):  # the backlog, as the store loads it: Pending jobs in the table
        job_id = JobId(f"waits-{i:06x}")
        fed.jobs[job_id] = Job(job_id=job_id, spec=backlog, submitted_at=1_000.0 + i)
    asyncio.run(fed.cordons.drain(drained, Drain("admin", 1_000.0, "bench")))
    turns, counts, scrapes = [], [], []
    for _ in range(args.turns):
        t = time.perf_counter()
        moved = fed.drains.turn()
        turns.append(time.perf_counter() - t)
        assert moved, "the drained cluster ran out of jobs: fewer --turns or more --placed"
    for _ in range(args.repeat):
        t = time.perf_counter()
        fed.drains.counts()
        counts.append(time.perf_counter() - t)
        t = time.perf_counter()
        generate_latest(fed.metrics.registry)
        scrapes.append(time.perf_counter() - t)
    print(json.dumps({
        "clusters": args.clusters, "placed": args.placed, "pending": args.jobs, "on_drained_cluster": on_it,
        "turn": ms(turns), "drain_counts": ms(counts), "scrape": ms(scrapes),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
