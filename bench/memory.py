"""Memory: the federator's resident set with 1,000 member clusters and 100,000 pending jobs.

    python bench/memory.py --clusters 1000 --jobs 100000

Builds the real server state machine (Federator with its SQLite store), connects
and reports every cluster (1,000 nodes each, as a resource model), loads the jobs
and runs one scheduling cycle; prints peak RSS (ru_maxrss) at each step.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import clusters, jobs  # noqa: E402

from federator.model import Job, JobPhase, Reason, ReasonCode  # noqa: E402
from federator.server.federator import Federator  # noqa: E402
from federator.store import SqliteJobStore  # noqa: E402


def rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--jobs", type=int, default=100_000)
    args = p.parse_args()
    logging.disable(logging.WARNING)  # no agents drain the outboxes here; their resets are expected
    steps = {"start": rss_mib()}
    with tempfile.TemporaryDirectory() as tmp:
        fed = Federator(store=SqliteJobStore(Path(tmp) / "jobs.db"))
        for info in clusters(args.clusters, regions=20):
            rec = fed.connect(cluster=info.name, region=info.region, labels=dict(info.labels))
            fed.report(rec, info.capacity)
        steps["clusters_reported"] = rss_mib()
        batch = []
        for r in jobs(args.jobs, regions=20):
            job = Job(job_id=r.job_id, spec=r.spec, submitted_at=r.submitted_at, phase=JobPhase.PENDING,
                      pending_reason=Reason(ReasonCode.WAITING, "waiting for the next scheduling cycle"))
            fed.jobs[job.job_id] = job
            fed.cycles.pending(job)
            batch.append(job)
        fed.journal.write(batch)
        steps["jobs_loaded"] = rss_mib()
        started = time.perf_counter()
        result = fed.schedule_once()
        took = time.perf_counter() - started
        steps["after_one_cycle"] = rss_mib()
    print(json.dumps({"clusters": args.clusters, "jobs": args.jobs, "placed": len(result.decisions),
                      "cycle_seconds": round(took, 1), "peak_rss_mib": steps}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
