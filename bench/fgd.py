"""Placement quality in the FGD paper's protocol: federator against node-level baselines.

    python bench/fgd.py --fleet ../shared/data/alibaba-spot-gpu-fleet-2026.csv --mixes trace,pinned --seeds 1,2
    python bench/fgd.py --fleet synthetic --clusters 8 --markdown

The protocol of "Beware of Fragmentation" (Weng et al., ATC'23): pods of a mix
are shuffled and offered one by one until the GPUs they ask for reach 100% of
the fleet's; nothing leaves; every bind is simulated at node level (which GPU
of which node). The figure is allocated / total GPUs.

Variants (all on the same pods, in the same order):
  - federator:  the default policy over `--clusters` clusters (and over 1), nodes bound by FGD
                learned from the requests each cluster has seen; `refused` counts binds the
                nodes turned down after the federator chose the cluster (RefusedByCluster);
                with `--warm` the federator and those binders start with yesterday's work (the
                same mix, another draw) as the demand's memory, as a federator that ran yesterday;
  - fgd:        FGD over all nodes as one cluster, node-level, the target workload being the
                mix's own distribution (what the paper gives it);
  - first-fit, best-fit, random: node-level over all nodes as one cluster.

Mixes (the paper's knobs: share of pinned, fractional and multi-GPU pods; see
`federator.simulate.synth.generate_mix`):
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from federator.backends.sim.fgd import Workload
from federator.backends.sim.fleet import ClusterSpec, NodeSpec
from federator.backends.sim.nodes import NodeSet
from federator.scheduler import Scheduler, SchedulerConfig, load_policy
from federator.scheduler.framework import model_matches
from federator.simulate import Simulation, load_fleet_file
from federator.simulate.synth import generate_mix, generate_pods
from federator.simulate.traces import SimJob, _pod

GIB = 2**30
# name -> knobs of generate_mix, or None for generate_pods' trace-shaped default
MIXES: dict[str, dict[str, float] | None] = {
    "trace": None,  # 10% CPU-only, 35% fractional, 20% 2/4/8 GPUs, 30% open to one or two models
    "pinned": {"pinned": 0.33, "fractional": 0.35, "multi": 0.2},
    "fractional": {"pinned": 0.0, "fractional": 0.6, "multi": 0.1},
    "multi": {"pinned": 0.0, "fractional": 0.2, "multi": 0.4},
    "all": {"pinned": 0.33, "fractional": 0.5, "multi": 0.3},
}
NODE_VARIANTS = ("fgd", "first-fit", "best-fit", "random")
_FIT = {"fgd": "fgd", "first-fit": "first", "best-fit": "best", "random": "random"}
__doc__ += "".join(f"  - {k}: {v or 'the trace-shaped default of generate_pods'}\n" for k, v in MIXES.items())


def synthetic_nodes(seed: int = 0) -> list[NodeSpec]:
    """A mixed 3,000-node, ~11,000-GPU fleet: 8-GPU H100/A100 nodes, 4-GPU L40S, 1-GPU A10 and L4."""
    rng = random.Random(seed)
    groups = (("H100", 8, 224, 2048), ("A100", 8, 128, 1024), ("L40S", 4, 64, 512), ("A10", 1, 32, 256),
              ("L4", 1, 16, 128))
    counts = (300, 450, 400, 1100, 750)
    nodes: list[NodeSpec] = []
    for (model, gpus, cpu, mem), count in zip(groups, counts, strict=True):
        for _ in range(count):
            nodes.append(NodeSpec(f"n{len(nodes)}", model, gpus, cpu * 1000, mem * GIB))
    rng.shuffle(nodes)
    return [
        NodeSpec(f"n{i}", n.accelerator_model, n.accelerators, n.cpu_milli, n.memory_bytes) for i, n in enumerate(nodes)
    ]


def fleet_nodes(fleet: str) -> list[NodeSpec]:
    if fleet == "synthetic":
        return synthetic_nodes()
    return [n for c in load_fleet_file(Path(fleet), clusters=1).values() for n in c.nodes]


def deal(nodes: Sequence[NodeSpec], clusters: int) -> dict[str, ClusterSpec]:
    """Nodes dealt round-robin into `clusters` clusters, one region each."""
    out: dict[str, list[NodeSpec]] = {}
    for i, n in enumerate(nodes):
        out.setdefault(f"cluster-{i % clusters:03d}", []).append(n)
    return {name: ClusterSpec(name, f"region-{name[-3:]}", (), tuple(ns)) for name, ns in out.items()}


def workload(nodes: Sequence[NodeSpec], mix: str, seed: int) -> list[SimJob]:
    """The mix's pods, shuffled, cut where the GPUs asked for reach the fleet's."""
    capacity = sum(n.accelerators for n in nodes) * 1000
    supply: dict[str, int] = {}
    biggest: dict[str, int] = {}
    for n in nodes:
        if n.accelerator_model:
            supply[n.accelerator_model] = supply.get(n.accelerator_model, 0) + n.accelerators
            biggest[n.accelerator_model] = max(biggest.get(n.accelerator_model, 0), n.accelerators)
    models = sorted(supply)
    count = capacity // 400  # more than enough pods: the cut below ends the list
    knobs = MIXES[mix]
    if knobs is None:
        rows = generate_pods(count, seed=seed, models=models)
    else:
        rows = generate_mix(count, seed=seed, models=models, model_weights=[supply[m] for m in models],
                            model_gpus=biggest, **knobs)
    random.Random(seed).shuffle(rows)
    jobs, asked = [], 0
    for i, row in enumerate(rows):
        job = _pod(row, f"pod {i}", i)
        if asked + job.spec.resources.accelerator_milli > capacity:
            break
        asked += job.spec.resources.accelerator_milli
        jobs.append(SimJob(job.spec, float(i), None))
    return jobs


def node_level(nodes: Sequence[NodeSpec], jobs: Sequence[SimJob], fit: str, seed: int) -> dict[str, float]:
    """One cluster of every node, each pod bound by `fit` directly (no federator)."""
    target = None
    if fit == "fgd":
        models = sorted({n.accelerator_model for n in nodes if n.accelerator_model})
        samples = [(j.spec.resources, j.spec.accelerator_models, 1.0) for j in jobs]
        target = Workload.of(samples, models, model_matches)
    started = time.perf_counter()
    ns = NodeSet.of(nodes, fit=fit, seed=seed, workload=target)
    placed = 0
    for j in jobs:
        if ns.bind(j.spec.name, replicas=1, resources=j.spec.resources, accelerator_model="*",
                   wanted=j.spec.accelerator_models) is None:
            placed += 1
    return {
        "accelerator_allocation_ratio": round(ns.accelerator_milli_used() / ns.accelerator_milli_total(), 4),
        "placed": placed,
        "refused": 0,
        "seconds": round(time.perf_counter() - started, 1),
    }


POLICY: SchedulerConfig | None = None  # --policy
CYCLE = 1000  # --cycle: pods offered per scheduling cycle
WARM = False  # --warm: the federator remembers yesterday's work
YESTERDAY = 1_000  # --warm draws yesterday's pods with the seed plus this
YESTERDAY_MIX = ""  # --yesterday: the mix yesterday's pods were drawn from (default: today's)


def federator(nodes: Sequence[NodeSpec], jobs: Sequence[SimJob], clusters: int, seed: int,
              mix: str = "") -> dict[str, float]:
    history = workload(nodes, YESTERDAY_MIX or mix, seed + YESTERDAY) if WARM and mix else []
    sim = Simulation(deal(nodes, clusters), jobs, scheduler=Scheduler(POLICY), fit="fgd", seed=seed, batch=CYCLE,
                     history=history)
    report = sim.run("fill")
    return {"accelerator_allocation_ratio": round(report.accelerator_allocation_ratio, 4), "placed": report.jobs_placed,
            "refused": report.refused, "placements": report.placements,
            "refused_per_placement": round(report.refused / max(report.placements, 1), 4),
            "placements_per_second": round(report.placements_per_second), "seconds": round(report.wall_seconds, 1),
            "scarcity_scale": report.scarcity_scale, "rollouts": report.rollouts,
            "rollout_seconds": round(report.rollout_seconds, 1)}


def node_orders(nodes: Sequence[NodeSpec], orders: int) -> list[list[NodeSpec]]:
    """The fleet's node list in `orders` orders: as given, then shuffled by seeds 1, 2, ... (names kept).

    The order is no part of the input a user would recognise, yet it decides ties: FGD binds to the
    first node of least growth, first-fit to the first node that fits, and `deal` sends every k-th node
    to one cluster. One order is one draw of that noise; the mean over several is the policy's figure
    on the pods and the fleet, and the spread says which differences the order alone makes."""
    out = [list(nodes)]
    for k in range(1, orders):
        shuffled = list(nodes)
        random.Random(k).shuffle(shuffled)
        out.append(shuffled)
    return out


def over_orders(results: Sequence[dict[str, float]]) -> dict[str, object]:
    """One variant's results over node orders: the mean allocation, its range, and the counts summed."""
    if len(results) == 1:
        return dict(results[0])
    ratios = [r["accelerator_allocation_ratio"] for r in results]
    refused = sum(int(r["refused"]) for r in results)
    out: dict[str, object] = {
        "accelerator_allocation_ratio": round(sum(ratios) / len(ratios), 4),
        "allocation_by_order": ratios,
        "placed": sum(int(r["placed"]) for r in results),
        "refused": refused,
        "seconds": round(sum(r["seconds"] for r in results), 1),
    }
    if "placements" in results[0]:
        placements = sum(int(r["placements"]) for r in results)
        out["placements"] = placements
        out["refused_per_placement"] = round(refused / max(placements, 1), 4)
    return out


def run(fleet: str, mix: str, seed: int, clusters: Sequence[int], variants: Sequence[str],
        orders: int = 1) -> dict[str, object]:
    nodes = fleet_nodes(fleet)
    jobs = workload(nodes, mix, seed)  # the same pods in every order: the draw reads only the fleet's totals
    fleets = node_orders(nodes, orders)
    out: dict[str, object] = {"fleet": fleet, "mix": mix, "seed": seed, "pods": len(jobs)}
    if orders > 1:
        out["orders"] = orders
    for k in clusters:
        out[f"federator-{k}"] = over_orders([federator(ns, jobs, k, seed, mix) for ns in fleets])
        print(f"  {mix} seed {seed} federator-{k}: {out[f'federator-{k}']}", file=sys.stderr)
    for v in variants:
        out[v] = over_orders([node_level(ns, jobs, _FIT[v], seed) for ns in fleets])
        print(f"  {mix} seed {seed} {v}: {out[v]}", file=sys.stderr)
    return out


def _cell(result: dict[str, object]) -> str:
    """The allocation; over several node orders, their mean and range."""
    cell = f"{result['accelerator_allocation_ratio']:.4f}"
    spread = result.get("allocation_by_order")
    if isinstance(spread, list):
        cell += f" ({min(spread):.4f}-{max(spread):.4f})"
    return cell


def markdown(rows: Sequence[dict[str, object]], clusters: Sequence[int], variants: Sequence[str]) -> str:
    cols = [f"federator-{k}" for k in clusters] + list(variants)
    head = "| fleet | mix | seed | pods | " + " | ".join(cols) + " | refused / placements (8) |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        cells = [_cell(r[c]) for c in cols]  # type: ignore[arg-type]
        fed = r.get(f"federator-{max(clusters)}", {})
        refused = f"{fed.get('refused', 0)} / {fed.get('placed', 0)}" if isinstance(fed, dict) else ""
        lines.append(f"| {Path(str(r['fleet'])).stem} | {r['mix']} | {r['seed']} | {r['pods']} | "
                     + " | ".join(cells) + f" | {refused} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    global POLICY, CYCLE, WARM, YESTERDAY_MIX
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fleet", default="../shared/data/alibaba-spot-gpu-fleet-2026.csv",
                   help="node CSV, or 'synthetic' for a built-in mixed fleet")
    p.add_argument("--mixes", default=",".join(MIXES), help=f"comma-separated, of {', '.join(MIXES)}")
    p.add_argument("--seeds", default="1", help="comma-separated seeds: pods drawn and shuffled by each")
    p.add_argument("--clusters", default="1,8", help="comma-separated cluster counts for the federator")
    p.add_argument("--variants", default=",".join(NODE_VARIANTS), help="node-level baselines to run")
    p.add_argument("--policy", type=Path, help="policy file for the federator (default: the default policy)")
    p.add_argument("--cycle", type=int, default=CYCLE,
                   help="pods per scheduling cycle (default 1000; a live federator's cycles are much smaller)")
    p.add_argument("--warm", action="store_true",
                   help="the federator starts with yesterday's work in its demand memory: the same mix drawn "
                        f"with seed + {YESTERDAY}, as arrivals that ended (FGD is given the mix itself)")
    p.add_argument("--yesterday", choices=MIXES, default="",
                   help="with --warm: draw yesterday's work from this mix instead of today's (a memory that misleads)")
    p.add_argument("--orders", type=int, default=1,
                   help="run each on the node list in this many orders (the given one, then shuffled) and report "
                        "the mean and range: which node comes first decides ties, so this is the noise of the order")
    p.add_argument("--markdown", action="store_true", help="print a markdown table instead of JSON")
    args = p.parse_args(argv)
    if args.cycle < 1:
        p.error("--cycle: must be at least 1")
    if args.orders < 1:
        p.error("--orders: must be at least 1")
    POLICY = load_policy(args.policy) if args.policy else None
    CYCLE = args.cycle
    WARM = args.warm
    YESTERDAY_MIX = args.yesterday
    mixes = [m for m in args.mixes.split(",") if m]
    bad = [m for m in mixes if m not in MIXES]
    variants = [v for v in args.variants.split(",") if v]
    bad += [v for v in variants if v not in NODE_VARIANTS]
    if bad:
        p.error(f"unknown mix or variant: {', '.join(bad)}")
    clusters = [int(k) for k in args.clusters.split(",") if k]
    rows = [run(args.fleet, m, int(s), clusters, variants, args.orders) for m in mixes for s in args.seeds.split(",")]
    print(markdown(rows, clusters, variants) if args.markdown else json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
