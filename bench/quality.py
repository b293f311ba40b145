"""Quality: accelerator allocation ratio in fill mode, federator against baselines over the same fleet.

    python bench/quality.py --fleet ../shared/data/alibaba-spot-gpu-fleet-2026.csv --clusters 8 --pods 12000

Variants, all through the simulator (node-level truth) and the same synthetic
pods (seeded), offered in arrival order until they ask for `--demand` times the
fleet's accelerators (1.0: exactly the fleet; a perfect packer places them all, so the
allocation ratio shows what fragmentation and constraints cost):
  - federator:   the default policy over N clusters, best-fit nodes;
  - random-fit:  a random feasible cluster, a random fitting node;
  - first-fit:   the first feasible cluster, the first fitting node;
  - one-cluster: every node in one giant cluster, best fit (the no-federation reference).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from federator.backends.sim.fleet import ClusterSpec
from federator.scheduler import Scheduler, SchedulerConfig
from federator.simulate import Simulation, load_fleet_file
from federator.simulate.synth import generate_pods
from federator.simulate.traces import _pod

VARIANTS = {
    "federator": (None, "best", False),
    "random-fit": ({"RandomFit": 1}, "random", False),
    "first-fit": ({}, "first", False),
    "one-cluster": (None, "best", True),
}


def models_of(fleet: dict[str, ClusterSpec]) -> list[str]:
    return sorted({n.accelerator_model for c in fleet.values() for n in c.nodes if n.accelerator_model})


def run(fleet_path: Path, clusters: int, demand: float, seed: int) -> dict[str, dict[str, float]]:
    fleet = load_fleet_file(fleet_path, clusters=clusters)
    giant = load_fleet_file(fleet_path, clusters=1)
    capacity = sum(n.accelerators for c in fleet.values() for n in c.nodes) * 1000
    rows = generate_pods(capacity // 100, seed=seed, models=models_of(fleet))
    jobs = []
    asked = 0
    for i, r in enumerate(rows):
        job = _pod(r, f"pod {i}", i)
        if asked + job.spec.resources.accelerator_milli > demand * capacity:
            break
        asked += job.spec.resources.accelerator_milli
        jobs.append(job)
    out = {}
    for name, (weights, fit, one) in VARIANTS.items():
        cfg = SchedulerConfig(score_weights=weights) if weights is not None else SchedulerConfig()
        report = Simulation(giant if one else fleet, jobs, scheduler=Scheduler(cfg), fit=fit, seed=seed).run("fill")
        out[name] = {
            "accelerator_allocation_ratio": report.accelerator_allocation_ratio,
            "jobs_placed": report.jobs_placed,
            "jobs_total": report.jobs_total,
            "wall_seconds": round(report.wall_seconds, 2),
        }
    ref = out["one-cluster"]["accelerator_allocation_ratio"]
    for row in out.values():
        row["vs_one_cluster"] = round(row["accelerator_allocation_ratio"] - ref, 4)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fleet", type=Path, default=Path("../shared/data/alibaba-spot-gpu-fleet-2026.csv"))
    p.add_argument("--clusters", type=int, default=8)
    p.add_argument("--demand", type=float, default=1.0, help="accelerators asked for, as a share of the fleet's")
    p.add_argument("--seeds", default="1,2,3", help="comma-separated seeds: one run each")
    args = p.parse_args()
    runs = {int(s): run(args.fleet, args.clusters, args.demand, int(s)) for s in args.seeds.split(",")}
    mean = {v: round(sum(r[v]["accelerator_allocation_ratio"] for r in runs.values()) / len(runs), 4) for v in VARIANTS}
    print(json.dumps({"fleet": str(args.fleet), "clusters": args.clusters, "demand": args.demand, "runs": runs,
                      "mean_accelerator_allocation_ratio": mean}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
