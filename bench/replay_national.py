"""A national replay's cost: `federator sim --mode replay` over the planners' national inputs (outside
planners' QA P13), or a stretch of them.

    python bench/replay_national.py --until 86400          # the first simulated day (docs/benchmarks.md)
    python bench/replay_national.py                        # all 29 days: tens of minutes on 2 shared CPUs

Writes the inputs the planners' QA built (their mknat.py: 1,000 clusters x 10 nodes x 8 accelerators of four
models in 31 provinces; 100,000 pods, one every 25 s, 1-8 GPUs, 600-40,000 s each, seed 5; bench/national_inputs.py,
whose 1/25 scale tests/simulate/test_replay_golden.py pins) into a temporary folder, replays the jobs arriving
before --until at --cycle-interval, and prints wall and CPU seconds, the share the scheduler's cycles took, cycles
and placements as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from national_inputs import write_national  # noqa: E402

from federator.simulate import Simulation, load_fleet_file, load_workload  # noqa: E402
from federator.simulate.time_window import in_window  # noqa: E402


def kept(scheduler: object) -> dict[str, float] | None:
    """The scheduler's kept filter verdicts: how often one served (None before scheduler/verdicts.py)."""
    verdicts = getattr(scheduler, "verdicts", None)
    if verdicts is None:
        return None
    looks = verdicts.hits + verdicts.misses
    share = round(verdicts.hits / looks, 3) if looks else 0.0
    return {"served": verdicts.hits, "judged": verdicts.misses, "share": share}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=100_000)
    ap.add_argument("--until", type=float, help="replay only the pods arriving before this simulated second")
    ap.add_argument("--cycle-interval", type=float, default=300.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        fleet_file, work_file = write_national(Path(d), clusters=args.clusters, pods=args.pods)
        fleet = load_fleet_file(fleet_file)
        jobs = in_window(load_workload(work_file, fleet=fleet), None, args.until)
    sim = Simulation(fleet, jobs, cycle_interval=args.cycle_interval)
    wall, cpu = time.perf_counter(), time.process_time()
    report = sim.run("replay")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({
        "clusters": report.clusters, "jobs": report.jobs_total, "jobs_placed": report.jobs_placed,
        "cycles": report.cycles, "placements": report.placements, "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1), "scheduler_share": round(report.scheduler_seconds / wall, 3) if wall else 0.0,
        "cpu_ms_per_cycle": round(1000 * cpu / report.cycles, 1) if report.cycles else 0.0,
        # first looks of a cycle at a cluster for a shape that a kept filter verdict served (scheduler/verdicts.py)
        "kept_verdicts": kept(sim.scheduler),
    }, indent=2))


if __name__ == "__main__":
    main()
