"""The reserve phase with a national backlog's due gangs (scheduler/reservation.py; soak finding S2).

Ten minutes after a backlog forms (`ReservationPolicy.after_seconds`), its gangs are due for reservations; in the
soak of 7 Dec the cycle's `reserve` phase went from 26 ms to 6.7 s, trying every due gang on every cluster while
fewer than `max_reservations` were found. This builds one such cycle: `--clusters` clusters, each one node of 8
H100 with all 8 taken, and `--gangs` due gangs in three shapes that can reserve room nowhere (2 x 8 H100: no
cluster has two nodes; 16 H100 in one replica: no node is that big; 8 A100: no cluster has any), oldest first,
then two 8-H100 gangs that can. It runs `--cycles` whole scheduling cycles (`Scheduler.schedule`, the default
policy, reservations on) and prints the median of each phase, and the reservations chosen.

    PYTHONPATH=src .venv/bin/python bench/reserve_backlog.py --gangs 5000 --clusters 100
"""

from __future__ import annotations

import argparse
import json
import statistics

from common import H100, h100_member

from federator.model import JobId, JobKind, JobSpec, Resources
from federator.scheduler import PlacementRequest, Scheduler, SchedulerConfig, Snapshot
from federator.scheduler.reservation import ReservationPolicy

A100 = "NVIDIA-A100-SXM4-80GB"
GIB = 2**30
NOW = 100_000.0


def gang(name: str, queue: str, *, gpus: int, replicas: int, model: str, at: float) -> PlacementRequest:
    spec = JobSpec(name=name, kind=JobKind.TRAINING, replicas=replicas,
                   resources=Resources(gpus * 1000, gpus * 8 * GIB, gpus * 1000), accelerator_models=(model,),
                   queue=queue)
    return PlacementRequest(JobId(name), spec, replicas, at)


def backlog(n: int) -> list[PlacementRequest]:
    shapes = [(8, 2, H100), (16, 1, H100), (8, 1, A100)]
    out = [gang(f"b{i}", f"org{i % 1000}", gpus=g, replicas=r, model=m, at=float(i))
           for i in range(n) for g, r, m in [shapes[i % 3]]]
    return out + [gang(f"fits{i}", "train", gpus=8, replicas=1, model=H100, at=NOW - 700) for i in range(2)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gangs", type=int, default=5000)
    ap.add_argument("--clusters", type=int, default=100)
    ap.add_argument("--cycles", type=int, default=3)
    args = ap.parse_args()
    snapshot = Snapshot.of([h100_member(f"c{i:03d}", f"region-{i % 10}", free_by_node=[0], cpu_used=0.5)
                            for i in range(args.clusters)])  # one node, its 8 H100 taken
    requests = backlog(args.gangs)
    scheduler = Scheduler(SchedulerConfig(reservations=ReservationPolicy(after_seconds=600, max_reservations=3)))
    phases: dict[str, list[float]] = {}
    chosen: list[tuple[str, str, int]] = []
    for _ in range(args.cycles):
        result = scheduler.schedule(snapshot, requests, now=NOW)
        for k, v in result.phase_seconds.items():
            phases.setdefault(k, []).append(v)
        chosen = [(r.job_id, r.cluster, r.short) for r in result.reservations]
    print(json.dumps({"gangs": args.gangs, "clusters": args.clusters, "cycles": args.cycles,
                      "median_seconds": {k: round(statistics.median(v), 4) for k, v in phases.items()},
                      "reservations": chosen}))


if __name__ == "__main__":
    main()
