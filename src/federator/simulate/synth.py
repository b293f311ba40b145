"""Synthetic pod traces in the Alibaba GPU trace layout, seeded and reproducible.

The public trace's job file is not shipped with the project, so the simulator,
the tests and the benchmarks use pods drawn from a mix shaped like it: some
CPU-only pods, many fractional-GPU inference pods, one-GPU pods, and a tail of
2-, 4- and 8-GPU pods; a share constrained to one or two GPU models.

    python -m federator.simulate.synth --pods 2000 --seed 7 --models A10,A100-SXM4-80GB -o pods.csv
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from federator.simulate.traces import POD_COLUMNS

DEFAULT_MODELS = ("A10", "A100-SXM4-80GB", "H800", "GPU-series-1")
# (share, num_gpu, gpu_milli); gpu_milli None = a random fraction
_MIX = ((0.10, 0, 0), (0.35, 1, None), (0.35, 1, 1000), (0.10, 2, 1000), (0.05, 4, 1000), (0.05, 8, 1000))


def generate_pods(n: int, *, seed: int = 0, models: Sequence[str] = DEFAULT_MODELS, mean_gap: float = 5.0,
                  mean_duration: float = 3600.0, constrained: float = 0.3) -> list[dict[str, str]]:
    """`n` pods as CSV rows (strings), arrivals Poisson with `mean_gap` seconds, run times log-normal."""
    rng = random.Random(seed)
    rows = []
    t = 0.0
    for i in range(n):
        r = rng.random()
        acc = 0.0
        num_gpu, milli = 1, 1000
        for share, g, m in _MIX:
            acc += share
            if r < acc:
                num_gpu, milli = g, (m if m is not None else rng.choice(range(100, 951, 50)))
                break
        gpus = max(num_gpu, 1)
        cpu = rng.choice((2000, 4000, 8000, 12000, 16000)) * gpus
        memory = rng.choice((8192, 16384, 32768, 65536)) * gpus
        spec = ""
        if num_gpu and rng.random() < constrained and models:
            spec = "|".join(sorted(rng.sample(list(models), k=min(len(models), rng.choice((1, 2))))))
        t += rng.expovariate(1.0 / mean_gap)
        duration = rng.lognormvariate(0, 1) * mean_duration / 1.65
        qos = rng.choices(("LS", "BE", "Burstable"), weights=(5, 3, 2))[0]
        rows.append({
            "name": f"pod-{i:06d}", "cpu_milli": str(cpu), "memory_mib": str(memory), "num_gpu": str(num_gpu),
            "gpu_milli": str(milli if num_gpu else 0), "gpu_spec": spec, "qos": qos, "pod_phase": "Succeeded",
            "creation_time": f"{t:.0f}", "scheduled_time": f"{t:.0f}", "deletion_time": f"{t + duration:.0f}",
        })
    return rows


def write_pods(rows: Sequence[dict[str, str]], out: TextIO) -> None:
    writer = csv.DictWriter(out, fieldnames=list(POD_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m federator.simulate.synth", description=__doc__.splitlines()[0])
    p.add_argument("--pods", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", default=",".join(DEFAULT_MODELS), help="GPU models for gpu_spec constraints")
    p.add_argument("--mean-gap", type=float, default=5.0, help="mean seconds between arrivals")
    p.add_argument("--mean-duration", type=float, default=3600.0, help="mean run time in seconds")
    p.add_argument("-o", "--output", type=Path, help="CSV file (default stdout)")
    args = p.parse_args(argv)
    rows = generate_pods(args.pods, seed=args.seed, models=[m for m in args.models.split(",") if m],
                         mean_gap=args.mean_gap, mean_duration=args.mean_duration)
    if args.output:
        with args.output.open("w", newline="") as f:
            write_pods(rows, f)
    else:
        write_pods(rows, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
