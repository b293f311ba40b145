"""Parking under churn: how many waiting jobs each cycle of a full, busy fleet goes over again.

    python bench/parking.py --clusters 100 --jobs 100000 --reports 2000

A national backlog waits on a fleet that is full: every accelerator is held by
work the federator did not place. Members report every few seconds, and on a
busy fleet each report moves a pool a little (a few one-device pods end here,
others start there) and CPU free up or down. The real server state machine
(Federator, SQLite store, no sockets) is given the backlog, runs one cycle
(which parks every job), then `--reports` such reports, a cycle after every
`--per-cycle` of them (100 clusters reporting every 2 s, a cycle a second: 50).

Printed: the jobs each cycle went over (those a report brought back, plus the
placed ones' retries), the cycles' CPU time, the placements made, and the
waiting jobs whose reason the cycles reworded (`reasons_reworded`: each a store
write, a status PATCH in Kubernetes mode; counted outside the cycles' time). A job
comes back only when a report could let it fit (server/parking.py); before
that, every job that names no model came back with every report that moved
any pool, and every job of a model with every move of that model's pools.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import clusters, jobs  # noqa: E402

from federator.model import Job, JobPhase, Reason, ReasonCode  # noqa: E402
from federator.server.federator import Federator  # noqa: E402
from federator.store import SqliteJobStore  # noqa: E402


def full(capacity, rng: random.Random, *, freed: int):  # type: ignore[no-untyped-def]
    """The cluster with every device held but `freed` devices, one each on as many nodes of random pools, and
    CPU free moved by up to 2% either way."""
    pools = []
    for p in capacity.accelerator_pools:
        hist = [0] * len(p.nodes_by_free)
        hist[0] = p.nodes
        pools.append([p, hist])
    for _ in range(freed):
        p, hist = rng.choice(pools)
        if hist[0]:
            hist[0] -= 1
            hist[1] += 1
    cpu = int(capacity.cpu_milli_allocatable * 0.2 * rng.uniform(0.98, 1.02))
    return dataclasses.replace(
        capacity, accelerator_pools=tuple(dataclasses.replace(p, nodes_by_free=tuple(h)) for p, h in pools),
        cpu_milli_free=cpu)


def _reasons(fed: Federator) -> dict[str, str]:
    """Each waiting job's reason as stored, in words."""
    return {j.job_id: str(j.pending_reason) for j in fed.jobs.values() if j.phase is JobPhase.PENDING}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clusters", type=int, default=100)
    p.add_argument("--nodes", type=int, default=64, help="nodes per cluster")
    p.add_argument("--jobs", type=int, default=100_000)
    p.add_argument("--reports", type=int, default=2000)
    p.add_argument("--per-cycle", type=int, default=50)
    p.add_argument("--preemptible", type=float, default=0.0,
                   help="share of jobs that are preemptible (the others may preempt them, by priority)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    logging.disable(logging.WARNING)  # no agents drain the outboxes here
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        fed = Federator(store=SqliteJobStore(Path(tmp) / "jobs.db"))
        fleet = clusters(args.clusters, nodes=args.nodes, regions=20, seed=args.seed)
        recs = {}
        for info in fleet:
            recs[info.name] = rec = fed.connect(cluster=info.name, region=info.region, labels=dict(info.labels))
            fed.report(rec, full(info.capacity, rng, freed=0))
        batch = []
        for r in jobs(args.jobs, regions=20, seed=args.seed):
            spec = dataclasses.replace(r.spec, preemptible=rng.random() < args.preemptible)
            job = Job(job_id=r.job_id, spec=spec, submitted_at=r.submitted_at, phase=JobPhase.PENDING,
                      pending_reason=Reason(ReasonCode.WAITING, "waiting for the next scheduling cycle"))
            fed.jobs[job.job_id] = job
            fed.cycles.pending(job)
            batch.append(job)
        fed.journal.write(batch)
        fed.schedule_once()
        parked_at_start = len(fed.cycles.parked)
        went_over, cpu, placed, preempted, reworded = [], [], 0, 0, 0
        said = _reasons(fed)
        for i in range(args.reports):
            info = rng.choice(fleet)
            fed.report(recs[info.name], full(info.capacity, rng, freed=rng.choice((0, 0, 1, 2))))
            if (i + 1) % args.per_cycle == 0:
                started = time.process_time()
                result = fed.schedule_once()
                cpu.append(time.process_time() - started)
                went_over.append(len(result.decisions) + len(result.pending))
                placed += len(result.decisions)
                preempted += len(result.preemptions)
                now = _reasons(fed)
                reworded += sum(1 for j, r in now.items() if j in said and said[j] != r)
                said = now
        fed.cycles.close()
    print(json.dumps({
        "clusters": args.clusters, "jobs": args.jobs, "preemptible": args.preemptible,
        "parked_at_start": parked_at_start, "preempted": preempted,
        "reports": args.reports, "cycles": len(cpu), "placed": placed,
        "jobs_per_cycle_mean": round(statistics.mean(went_over)), "jobs_per_cycle_max": max(went_over),
        "cycle_cpu_seconds_mean": round(statistics.mean(cpu), 3), "cycle_cpu_seconds_max": round(max(cpu), 3),
        "cpu_seconds_total": round(sum(cpu), 1), "reasons_reworded": reworded,
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
