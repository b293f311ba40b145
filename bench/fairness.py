"""Fairness: three queues with weights 1:1:2 compete for one fleet; how close are their accelerator shares
to the weighted DRF share over time?

    python bench/fairness.py --clusters 4 --nodes 25 --hours 3

Every queue alone asks for 1.25 times the fleet (8 x H100 nodes; jobs of 1, 2, 4 or 8 accelerators
running 10-60 minutes), so the weighted DRF share of the accelerators is 25% / 25% / 50%. Replays in
simulated time, a cycle every 10 s; samples after the first hour (warm-up) count.
"""

from __future__ import annotations

import argparse
import json
import random

from federator.backends.sim.fleet import parse_fleet
from federator.model import JobKind, JobSpec, Resources
from federator.scheduler import QueueConfig, Scheduler, SchedulerConfig
from federator.scheduler.reservation import ReservationPolicy
from federator.simulate import SimJob, Simulation

WEIGHTS = {"q1": 1.0, "q2": 1.0, "q4": 2.0}


def workload(gpus: int, hours: float, seed: int) -> list[SimJob]:
    rng = random.Random(seed)
    out = []
    for queue in WEIGHTS:
        t, asked = 0.0, 0.0
        i = 0
        while t < hours * 3600:  # each queue alone would keep the whole fleet busy, and more
            g = rng.choice((1, 2, 4, 8))
            run = rng.uniform(600, 3600)
            spec = JobSpec(name=f"{queue}-{i}", kind=JobKind.TRAINING, replicas=1,
                           resources=Resources(2000 * g, 16 * 2**30 * g, 1000 * g), queue=queue)
            out.append(SimJob(spec, t, run))
            asked += g * run
            t = asked / (1.25 * gpus)
            i += 1
    return sorted(out, key=lambda j: j.arrival)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clusters", type=int, default=4)
    p.add_argument("--nodes", type=int, default=25, help="8 x H100 nodes per cluster")
    p.add_argument("--hours", type=float, default=3.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-reservations", type=int, default=ReservationPolicy().max_reservations,
                   help="the policy's reservations.maxReservations (0: off; scheduler/reservation.py)")
    args = p.parse_args()
    fleet = parse_fleet({"clusters": [
        {"name": f"c{i}", "region": f"r{i}",
         "nodes": [{"count": args.nodes, "gpuModel": "H100", "gpus": 8, "cpu": 128, "memory": "2Ti"}]}
        for i in range(args.clusters)]})
    gpus = args.clusters * args.nodes * 8
    jobs = workload(gpus, args.hours, args.seed)
    config = SchedulerConfig(queues={q: QueueConfig(weight=w) for q, w in WEIGHTS.items()}, preemption=False,
                             reservations=ReservationPolicy(max_reservations=args.max_reservations))
    sim = Simulation(fleet, jobs, scheduler=Scheduler(config), cycle_interval=10.0)
    report = sim.run("replay")
    total_w = sum(WEIGHTS.values())
    expected = {q: w / total_w for q, w in WEIGHTS.items()}
    samples = [(t, held) for t, held in sim.queue_series if 3600 <= t <= args.hours * 3600 and sum(held.values())]
    worst = 0.0
    mean: dict[str, float] = {q: 0.0 for q in WEIGHTS}
    hourly = []
    for t, held in samples:
        total = sum(held.values())
        shares = {q: held.get(q, 0) / total for q in WEIGHTS}
        worst = max(worst, *(abs(shares[q] - expected[q]) for q in WEIGHTS))
        for q in WEIGHTS:
            mean[q] += shares[q] / len(samples)
        if not hourly or t - hourly[-1][0] >= 3600:
            hourly.append((t, {q: round(v, 3) for q, v in shares.items()}))
    print(json.dumps({
        "gpus": gpus, "jobs": len(jobs), "samples": len(samples), "expected_share": expected,
        "mean_share": {q: round(v, 4) for q, v in mean.items()},
        "max_deviation_from_weighted_drf_share": round(worst, 4),
        "mean_accelerator_allocation_ratio": report.accelerator_allocation_ratio,
        "hourly_shares": [{"hour": round(t / 3600, 1), **s} for t, s in hourly],
        "wall_seconds": round(report.wall_seconds, 1),
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
