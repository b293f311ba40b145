"""A flood of small jobs against big gangs: how long the gangs wait without and with reservations, and what
the reservations cost in idle accelerators (scheduler/reservation.py; audit finding F2).

The fleet is `--clusters` clusters of `--nodes` 8 x H100 nodes, full at the start with one-GPU jobs of the
`flood` queue, each running 10 to 30 minutes (drawn with `--seed`), of which the queue always has
`--backlog` more waiting: every accelerator that frees is wanted at once. At time 0 `--gangs` gangs of
the `train` queue arrive, each one replica of 8 x H100 (a whole node), each running `--gang-minutes`.
A scheduling cycle runs every `--interval` seconds for `--hours`, with the default policy, once with
reservations off and once on (`--after` seconds, `--max` at once); nodes bind best fit, as the agent does
(`--fit fgd`: by FGD, which may put a small job on the node a gang gathers, since the federator's view
of a pool counts free accelerators per node, not which node).

Printed per run: when each gang was placed (minutes; null: never), the mean accelerator allocation, the
one-GPU jobs placed, and the idle cost: accelerator-seconds of free accelerators that reservations held
(summed over cycles, as each cycle began), and the allocation lost against the run without.

    .venv/bin/python bench/starvation.py --markdown
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Mapping

from federator.backends.sim.fleet import NodeSpec
from federator.backends.sim.nodes import NodeSet
from federator.model import ClusterInfo, ClusterState, JobId, JobKind, JobSpec, Resources
from federator.scheduler import PlacementRequest, Scheduler, SchedulerConfig, Snapshot
from federator.scheduler.reservation import Reservation, ReservationPolicy

H100 = "NVIDIA-H100-80GB-HBM3"
GIB = 2**30


def spec(name: str, queue: str, gpus: int) -> JobSpec:
    return JobSpec(name=name, kind=JobKind.TRAINING, replicas=1, resources=Resources(gpus * 4000, gpus * 32 * GIB,
                                                                                       gpus * 1000),
                   accelerator_models=(H100,), queue=queue)


def run(*, reservations: bool, clusters: int, nodes: int, gangs: int, gang_minutes: float, backlog: int,
        hours: float, interval: float, after: float, cap: int, fit: str, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    policy = ReservationPolicy(after_seconds=after, max_reservations=cap if reservations else 0)
    scheduler = Scheduler(SchedulerConfig(reservations=policy))
    fleet = {f"c{i}": NodeSet.of([NodeSpec(f"c{i}n{k}", H100, 8, 64_000, 1024 * GIB) for k in range(nodes)],
                                 fit=fit, seed=seed + i) for i in range(clusters)}
    ends: dict[str, tuple[str, float]] = {}  # bind key -> (cluster, end time)
    specs: dict[str, JobSpec] = {}
    flood = 0

    def small() -> PlacementRequest:
        nonlocal flood
        flood += 1
        s = specs[f"f{flood}"] = spec(f"f{flood}", "flood", 1)
        return PlacementRequest(JobId(s.name), s, 1, 0.0)

    for name, ns in fleet.items():  # full at the start, the ends spread over the next half hour
        for _ in range(nodes * 8):
            r = small()
            assert ns.bind(r.job_id, replicas=1, resources=r.spec.resources, accelerator_model=H100) is None
            ends[r.job_id] = (name, rng.uniform(0, 1800))
    waiting: dict[str, PlacementRequest] = {}
    for g in range(gangs):
        s = specs[f"g{g}"] = spec(f"g{g}", "train", 8)
        waiting[s.name] = PlacementRequest(JobId(s.name), s, 1, 0.0)
    placed_at: dict[str, float | None] = {f"g{g}": None for g in range(gangs)}
    held: tuple[Reservation, ...] = ()
    resting: Mapping[JobId, float] = {}
    total = clusters * nodes * 8
    used_seconds = held_seconds = 0.0
    small_placed = cycles = 0
    now = 0.0
    while now < hours * 3600:
        now += interval
        for key, (cluster, end) in list(ends.items()):
            if end <= now:
                fleet[cluster].unbind(key)
                del ends[key]
        while sum(1 for k in waiting if k.startswith("f")) < backlog:
            r = small()
            waiting[r.job_id] = PlacementRequest(r.job_id, r.spec, 1, now)
        snapshot = Snapshot.of(ClusterInfo(n, "r", ClusterState.READY, (), ns.capacity()) for n, ns in fleet.items())
        result = scheduler.schedule(snapshot, list(waiting.values()), now=now, reservations=held, resting=resting)
        cycles += 1
        held_seconds += sum(r.held for r in held) * interval  # what the reservations kept free this interval
        held, resting = result.reservations, result.resting
        for d in result.decisions:
            a = d.assignments[0]
            s = specs[d.job_id]
            if fleet[a.cluster].bind(d.job_id, replicas=1, resources=s.resources, accelerator_model=H100) is not None:
                continue  # the nodes refused it (the model is coarser than they are): it waits on
            del waiting[d.job_id]
            if s.queue == "train":
                placed_at[d.job_id] = round(now / 60, 1)
                ends[d.job_id] = (a.cluster, now + gang_minutes * 60)
            else:
                small_placed += 1
                ends[d.job_id] = (a.cluster, now + rng.uniform(600, 1800))
        used_seconds += sum(ns.accelerator_milli_used() for ns in fleet.values()) / 1000 * interval
    return {
        "reservations": f"after {after:g}s, at most {cap}" if reservations else "off",
        "gang_placed_minutes": placed_at,
        "gangs_placed": sum(v is not None for v in placed_at.values()),
        "mean_accelerator_allocation": round(used_seconds / (total * interval * cycles), 4),
        "one_gpu_jobs_placed": small_placed,
        "idle_accelerator_seconds_held": round(held_seconds),
        "cycles": cycles,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clusters", type=int, default=2)
    p.add_argument("--nodes", type=int, default=4, help="8 x H100 nodes per cluster")
    p.add_argument("--gangs", type=int, default=2)
    p.add_argument("--gang-minutes", type=float, default=60.0)
    p.add_argument("--backlog", type=int, default=20, help="one-GPU jobs always waiting")
    p.add_argument("--hours", type=float, default=6.0)
    p.add_argument("--interval", type=float, default=30.0, help="seconds between cycles")
    p.add_argument("--after", type=float, default=600.0, help="reservations.afterSeconds")
    p.add_argument("--max", type=int, default=3, help="reservations.maxReservations")
    p.add_argument("--fit", choices=("best", "fgd", "first"), default="best", help="how nodes bind")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--markdown", action="store_true")
    a = p.parse_args()
    kw = dict(clusters=a.clusters, nodes=a.nodes, gangs=a.gangs, gang_minutes=a.gang_minutes, backlog=a.backlog,
              hours=a.hours, interval=a.interval, after=a.after, cap=a.max, fit=a.fit, seed=a.seed)
    out = [run(reservations=False, **kw), run(reservations=True, **kw)]  # type: ignore[arg-type]
    lost = round(float(out[0]["mean_accelerator_allocation"]) - float(out[1]["mean_accelerator_allocation"]), 4)
    out[1]["allocation_lost_against_off"] = lost
    if a.markdown:
        print("| reservations | gangs placed (minutes) | mean allocation | one-GPU jobs placed | "
              "idle accelerator-seconds held |")
        print("|---|---|---|---|---|")
        for r in out:
            print(f"| {r['reservations']} | {r['gang_placed_minutes']} | {r['mean_accelerator_allocation']} | "
                  f"{r['one_gpu_jobs_placed']} | {r['idle_accelerator_seconds_held']} |")
    else:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
