"""Where the free GPUs are when a fill of bench/fgd.py ends: the federator's (8 clusters, 1,000-pod cycles
and warm 10-pod cycles) against FGD's and first-fit's over all nodes as one cluster.

Free capacity is split per accelerator model into whole free GPUs and slivers (the free part of a GPU
some pod shares), and each into those whose node still has the CPU of the smallest GPU pod and those
whose node has not ("host full": GPU left that no pod of the mix can use, for want of CPU). The
allocation figures say how much each loses; this says where, so a change can be aimed at it.

    .venv/bin/python bench/leftover.py --mix fractional --seed 3
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fgd as protocol  # noqa: E402  (bench/fgd.py: the fleet, the mixes and the protocol)

from federator.backends.sim.fgd import Workload  # noqa: E402
from federator.backends.sim.nodes import NodeSet  # noqa: E402
from federator.scheduler import Scheduler  # noqa: E402
from federator.scheduler.framework import model_matches  # noqa: E402
from federator.simulate import Simulation  # noqa: E402


def leftover(nodesets: Iterable[NodeSet], min_cpu: int) -> Counter[tuple[str, str]]:
    """Free milli-GPUs by (model, kind): kind is whole or sliver, with ", host full" when the node has less CPU
    free than the smallest GPU pod asks."""
    out: Counter[tuple[str, str]] = Counter()
    for ns in nodesets:
        for n in ns.nodes:
            if not n.spec.accelerators:
                continue
            full = ", host full" if n.free_cpu_milli < min_cpu else ""
            out[(n.model, "sliver" + full)] += sum(1000 - u for u in n.used if 0 < u < 1000)
            out[(n.model, "whole" + full)] += sum(1000 for u in n.used if u == 0)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fleet", default="synthetic", help="node CSV, or 'synthetic' (as bench/fgd.py)")
    p.add_argument("--mix", default="fractional", choices=sorted(protocol.MIXES))
    p.add_argument("--seed", type=int, default=3)
    args = p.parse_args()
    nodes = protocol.fleet_nodes(args.fleet)
    jobs = protocol.workload(nodes, args.mix, args.seed)
    min_cpu = min(j.spec.resources.cpu_milli for j in jobs if j.spec.resources.accelerator_milli)
    runs: dict[str, tuple[float, list[NodeSet]]] = {}
    for name, batch, warm in (("federator-8, 1,000-pod cycles", 1000, False), ("federator-8, warm 10-pod cycles",
                                                                                 10, True)):
        history = protocol.workload(nodes, args.mix, args.seed + protocol.YESTERDAY) if warm else []
        sim = Simulation(protocol.deal(nodes, 8), jobs, scheduler=Scheduler(None), fit="fgd", seed=args.seed,
                         batch=batch, history=history)
        report = sim.run("fill")
        runs[name] = (report.accelerator_allocation_ratio, [c.nodes for c in sim.clusters.values()])
    models = sorted({n.accelerator_model for n in nodes if n.accelerator_model})
    target = Workload.of([(j.spec.resources, j.spec.accelerator_models, 1.0) for j in jobs], models, model_matches)
    fgd = NodeSet.of(nodes, fit="fgd", seed=args.seed, workload=target)
    for j in jobs:
        fgd.bind(j.spec.name, replicas=1, resources=j.spec.resources, accelerator_model="*",
                 wanted=j.spec.accelerator_models)
    runs["fgd, one cluster"] = (fgd.accelerator_milli_used() / fgd.accelerator_milli_total(), [fgd])
    first = NodeSet.of(nodes, fit="first", seed=args.seed)
    for j in jobs:
        first.bind(j.spec.name, replicas=1, resources=j.spec.resources, accelerator_model="*",
                   wanted=j.spec.accelerator_models)
    runs["first-fit, one cluster"] = (first.accelerator_milli_used() / first.accelerator_milli_total(), [first])
    kinds = ("whole", "whole, host full", "sliver", "sliver, host full")
    print(f"{args.fleet} {args.mix} seed {args.seed}: free GPUs when the fill ends")
    print("| run | allocated | " + " | ".join(kinds) + " | host full, by model |")
    print("|---|---|" + "---|" * len(kinds) + "---|")
    for name, (ratio, nodesets) in runs.items():
        got = leftover(nodesets, min_cpu)
        by_kind = [sum(v for (_, k), v in got.items() if k == kind) / 1000 for kind in kinds]
        host = ", ".join(f"{m} {v / 1000:.1f}" for (m, k), v in sorted(got.items()) if k.endswith("host full") and v)
        print(f"| {name} | {ratio:.4f} | " + " | ".join(f"{x:.1f}" for x in by_kind) + f" | {host or '-'} |")


if __name__ == "__main__":
    main()
