"""Pending reasons rewritten at a restart: how many waiting jobs a new leader writes again after jobs arrived ahead.

    PYTHONPATH=src .venv/bin/python bench/reason_writes.py --clusters 20 --jobs 20000 --owners 200 --arrivals 20

A backlog of the benchmarks' mixed shapes that ask accelerators (bench/common.py, submitted by `--owners` users in
turn; a quarter of priority 10, the rest 0) waits on a full fleet; one cycle parks every job with its reason. Then
`--arrivals` jobs of priority 10 arrive, one cycle each: they go before the waiting jobs of priority 0 in their
queue, whose reasons count them ("N of higher priority"). A restart (a new Federator on the same SQLite file, its
members reporting the same full room) runs its first cycle, which tells every waiting job its reason again,
counting the newcomers. Printed: the jobs the store wrote at the arrivals and at the restart. In Kubernetes mode
each such write is a status PATCH of a FederatedJob (kubescaleqa62 H1, M2); a waiting job's reason tells the jobs
ahead of its owner's as a range (scheduler/told_counts.py), so a few more ahead rewrite only the owners
whose count crossed into another range.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import random
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import clusters, jobs, owned  # noqa: E402
from parking import full  # noqa: E402

from federator.model import Job, JobPhase, Reason, ReasonCode  # noqa: E402
from federator.server.federator import Federator  # noqa: E402
from federator.store import SqliteJobStore  # noqa: E402


class CountingStore(SqliteJobStore):
    """The SQLite store, counting the jobs it is given to write."""

    writes = 0

    def put(self, jobs: Iterable[Job]) -> None:
        batch = list(jobs)
        self.writes += len(batch)
        super().put(batch)


def start(db: Path, fleet, seed: int) -> tuple[Federator, CountingStore]:  # type: ignore[no-untyped-def]
    """A federator on `db` whose members report every device held."""
    store = CountingStore(db)
    fed = Federator(store=store)
    rng = random.Random(seed)
    for info in fleet:
        rec = fed.connect(cluster=info.name, region=info.region, labels=dict(info.labels))
        fed.report(rec, full(info.capacity, rng, freed=0))
    return fed, store


def pending(fed: Federator, batch: list[Job]) -> None:
    for job in batch:
        fed.jobs[job.job_id] = job
        fed.cycles.pending(job)
    fed.journal.write(batch)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clusters", type=int, default=10)
    p.add_argument("--nodes", type=int, default=64, help="nodes per cluster")
    p.add_argument("--jobs", type=int, default=20_000)
    p.add_argument("--owners", type=int, default=200)
    p.add_argument("--arrivals", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    logging.disable(logging.WARNING)  # no agents drain the outboxes here
    waiting = Reason(ReasonCode.WAITING, "waiting for the next scheduling cycle")
    mix = [r for r in jobs(2 * (args.jobs + args.arrivals), regions=20, seed=args.seed)
           if r.spec.resources.accelerator_milli]  # a full fleet: no job may start (a CPU-only one might)
    requests = owned(mix[:args.jobs + args.arrivals], args.owners)
    backlog = [r.spec for r in requests[:args.jobs]]  # priority 0, a quarter 10
    late = [dataclasses.replace(r.spec, priority=10) for r in requests[args.jobs:]]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "jobs.db"
        fleet = clusters(args.clusters, nodes=args.nodes, regions=20, seed=args.seed)
        fed, store = start(db, fleet, args.seed)
        pending(fed, [Job(job_id=r.job_id, spec=s, submitted_at=float(i), phase=JobPhase.PENDING,
                          pending_reason=waiting) for i, (r, s) in enumerate(zip(requests, backlog, strict=False))])
        fed.schedule_once()
        fed.journal.drain()
        store.writes = 0
        for i, (r, s) in enumerate(zip(requests[args.jobs:], late, strict=True)):
            pending(fed, [Job(job_id=r.job_id, spec=s, submitted_at=float(args.jobs + i), phase=JobPhase.PENDING,
                              pending_reason=waiting)])
            fed.schedule_once()
        fed.journal.drain()
        at_arrivals = store.writes
        fed.cycles.close()
        store.close()
        fed, store = start(db, fleet, args.seed)
        result = fed.schedule_once()
        fed.journal.drain()
        fed.cycles.close()
        store.close()
    print(json.dumps({
        "clusters": args.clusters, "jobs": args.jobs, "owners": args.owners, "arrivals": args.arrivals,
        "waiting_at_restart": len(result.pending), "job_writes_at_arrivals": at_arrivals,
        "job_writes_at_restart": store.writes,
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
