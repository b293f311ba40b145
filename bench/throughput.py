"""Throughput: one scheduling cycle over many clusters and many pending jobs.

    python bench/throughput.py --clusters 100 --nodes 1000 --jobs 100000
    python bench/throughput.py --scaling 10,30,100,300,1000 --jobs 20000
    python bench/throughput.py --fleet five-vendor --alternatives 0.3
    python bench/throughput.py --clusters 10 --jobs 3000 --room classes
    python bench/throughput.py --clusters 10 --jobs 10000 --room classes --rollout

`--fleet five-vendor` (bench/vendors.py): clusters of NVIDIA (with MIG and time-sliced pools), AMD,
Huawei Ascend, Cambricon and Hygon devices, and jobs in each vendor's own form; `--alternatives`
is the share of jobs that list alternatives across vendors instead. `--room` (nvidia fleet) makes a
third of the nodes part-used and reports node fit: one node's room per bucket, or room classes
(common.with_room); the default is idle clusters with no node fit.

Prints placements per second (placements / cycle seconds, wall and CPU: the cycle
runs on one core, and CPU time is what the shared machine cannot steal) and the
per-decision latency (time the cycle spent on each placed job), as JSON.

`--rollout` also times the rollouts that choose `Scarcity`'s scale (scheduler/tuning.py) on the same
fleet and jobs, which the server runs on the cycle worker before the first cycle with demand and then
after `BUDGET` times the replicas they offered are placed, and reports the placements per CPU second
with that share of rollouts counted in (`..._with_rollouts`).

`--owners N` has the jobs submitted by N users in turn (job i by user i mod N): within a queue and a priority
the cycle then takes the jobs of the user holding least first (scheduler/owner_share.py), a heap of N owners.

`"compiled"` says which build of the placement core ran. The image runs it compiled (setup.py);
to measure that build from a checkout, `make compiled` and then

    PYTHONPATH=build/compiled python bench/throughput.py ...
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import vendors  # noqa: E402

from federator.scheduler import COMPILED, Scheduler, Snapshot  # noqa: E402
from federator.scheduler.tuning import BUDGET, RETUNE_AFTER, trials  # noqa: E402


def run(n_clusters: int, n_nodes: int, n_jobs: int, seed: int = 0, fleet: str = "nvidia",
        alternatives: float = 0.0, room: str = "none", rollout: bool = False, owners: int = 0) -> dict[str, object]:
    if fleet == "five-vendor":
        snapshot = Snapshot.of(vendors.clusters(n_clusters, nodes=n_nodes, seed=seed))
        requests = vendors.jobs(n_jobs, seed=seed, alternatives=alternatives)
    else:
        snapshot = Snapshot.of(common.with_room(common.clusters(n_clusters, nodes=n_nodes, seed=seed), room,
                                                seed=seed))
        requests = common.jobs(n_jobs, seed=seed)
    if owners:
        requests = common.owned(requests, owners)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = Scheduler().schedule(snapshot, requests)
    took = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    lat = sorted(result.decision_seconds)
    placed = len(result.decisions)
    tuning: dict[str, object] = {}
    if rollout:
        cpu_started = time.process_time()
        got = trials(Scheduler().config, snapshot, requests)
        rollout_cpu = time.process_time() - cpu_started
        offered = sum(t.offered for t in got)
        # Steady state: a rollout per max(RETUNE_AFTER, BUDGET * offered) replicas placed.
        per_placement = rollout_cpu / max(RETUNE_AFTER, BUDGET * offered) if got else 0.0
        tuning = {"rollout_cpu_seconds": round(rollout_cpu, 3), "rollout_replicas_offered": offered,
                  "rollout_placed_milli": {str(t.scale): t.placed_milli for t in got},
                  "placements_per_cpu_second_with_rollouts": round(placed / (cpu + per_placement * placed), 1)}
    by_vendor: dict[str, int] = {}
    alternative_taken: dict[int, int] = {}
    with_alternatives = {r.job_id for r in requests if len(r.spec.accelerators) > 1}
    for d in result.decisions:
        for a in d.assignments:
            by_vendor[a.accelerator_vendor or "cpu"] = by_vendor.get(a.accelerator_vendor or "cpu", 0) + 1
        if d.job_id in with_alternatives:
            i = d.assignments[0].alternative
            alternative_taken[i] = alternative_taken.get(i, 0) + 1
    return {
        "fleet": fleet, "alternatives": alternatives, "room": room, "compiled": COMPILED,
        "room_classes_per_pool": round(sum(len(p.room_classes) for c in snapshot.clusters
                                           for p in c.capacity.accelerator_pools)
                                       / max(1, sum(len(c.capacity.accelerator_pools) for c in snapshot.clusters)), 1),
        "clusters": n_clusters, "nodes_per_cluster": n_nodes, "jobs": n_jobs, "placed": placed,
        "pending": len(result.pending), "cycle_seconds": round(took, 3),
        "cpu_seconds": round(cpu, 3),
        "placements_per_second": round(placed / took, 1),
        "placements_per_cpu_second": round(placed / cpu, 1),
        "jobs_decided_per_second": round(n_jobs / took, 1),
        "decision_latency_p50_seconds": lat[len(lat) // 2] if lat else 0.0,
        "decision_latency_p99_seconds": lat[int(len(lat) * 0.99)] if lat else 0.0,
        "phase_seconds": {k: round(v, 3) for k, v in result.phase_seconds.items()},
        "assignments_by_vendor": dict(sorted(by_vendor.items())),
        "jobs_with_alternatives": len(with_alternatives),
        "placed_on_alternative": {str(k): v for k, v in sorted(alternative_taken.items())},
        **tuning,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clusters", type=int, default=100)
    p.add_argument("--nodes", type=int, default=1000, help="nodes per cluster")
    p.add_argument("--jobs", type=int, default=100_000)
    p.add_argument("--scaling", help="comma-separated cluster counts: cost per placement as clusters grow")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fleet", choices=("nvidia", "five-vendor"), default="nvidia",
                   help="nvidia: bench/common.py (one vendor); five-vendor: bench/vendors.py")
    p.add_argument("--alternatives", type=float, default=0.0,
                   help="five-vendor fleet: share of jobs listing alternatives across vendors (0..1)")
    p.add_argument("--room", choices=common.ROOMS, default="none",
                   help="nvidia fleet: node fit the pools report, on a third of the nodes part-used (see above)")
    p.add_argument("--rollout", action="store_true", help="also time the rollouts of Scarcity's scale (see above)")
    p.add_argument("--owners", type=int, default=0,
                   help="jobs submitted by this many users, in turn (0: none recorded, one owner per queue)")
    args = p.parse_args()
    if args.room != "none" and args.fleet != "nvidia":
        p.error("--room: only with --fleet nvidia")
    if args.scaling:
        rows = [run(int(n), args.nodes, args.jobs, args.seed, args.fleet, args.alternatives, args.room, args.rollout,
                    args.owners) for n in args.scaling.split(",")]
        for r in rows:
            r["cpu_microseconds_per_job"] = round(1e6 * float(r["cpu_seconds"]) / float(r["jobs"]), 1)  # type: ignore[arg-type]
        print(json.dumps(rows, indent=2))
    else:
        print(json.dumps(run(args.clusters, args.nodes, args.jobs, args.seed, args.fleet, args.alternatives,
                             args.room, args.rollout, args.owners), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
