"""Synthetic pod traces in the Alibaba GPU trace layout, seeded and reproducible.

The public trace's job file is not shipped with the project, so the simulator,
the tests and the benchmarks use pods drawn from a mix shaped like it: some
CPU-only pods, many fractional-GPU inference pods, one-GPU pods, and a tail of
2-, 4- and 8-GPU pods; a share constrained to one or two GPU models.

    python -m federator.simulate.synth --pods 2000 --seed 7 --models A10,A100-SXM4-80GB -o pods.csv
    python -m federator.simulate.synth --pods 8000 --pinned 0.33 --fractional 0.35 --multi 0.2 -o mix.csv

`generate_mix` has the knobs of the FGD paper's workloads (share of pinned,
fractional and multi-GPU pods) for the fill protocol of `bench/fgd.py`.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections.abc import Mapping, Sequence
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


def generate_mix(n: int, *, seed: int = 0, models: Sequence[str] = DEFAULT_MODELS,
                 model_weights: Sequence[float] | None = None, model_gpus: Mapping[str, int] | None = None,
                 pinned: float = 0.0, fractional: float = 0.35, multi: float = 0.2,
                 cpu_only: float = 0.1) -> list[dict[str, str]]:
    """`n` pods with the FGD paper's knobs, as CSV rows (strings), all arriving at time 0.

    `cpu_only` of the pods ask for no GPU. Of the GPU pods, `fractional` ask for
    part of one GPU (100m..950m), `multi` for 2, 4 or 8 whole GPUs, the rest for
    one whole GPU; `pinned` of the GPU pods accept exactly one model, drawn in
    proportion to `model_weights` (the fleet's supply, so pinned demand looks
    like the fleet) among the models whose largest node (`model_gpus`) holds
    the pod, the others accept any model.
    """
    for name, share in (("pinned", pinned), ("fractional", fractional), ("multi", multi), ("cpu_only", cpu_only)):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name}: must be a share between 0 and 1, got {share}")
    if fractional + multi > 1.0:
        raise ValueError(f"fractional + multi: must be at most 1, got {fractional + multi}")
    rng = random.Random(seed)
    weights = list(model_weights) if model_weights is not None else [1.0] * len(models)
    rows = []
    for i in range(n):
        if rng.random() < cpu_only:
            num_gpu, milli = 0, 0
        else:
            r = rng.random()
            if r < fractional:
                num_gpu, milli = 1, rng.choice(range(100, 951, 50))
            elif r < fractional + multi:
                num_gpu, milli = rng.choice((2, 2, 4, 8)), 1000
            else:
                num_gpu, milli = 1, 1000
        gpus = max(num_gpu, 1)
        cpu = rng.choice((2000, 4000, 8000, 12000, 16000)) * gpus
        memory = rng.choice((8192, 16384, 32768, 65536)) * gpus
        spec = ""
        if num_gpu and models and rng.random() < pinned:
            fits = [(m, w) for m, w in zip(models, weights, strict=True)
                    if model_gpus is None or model_gpus.get(m, 0) >= num_gpu]
            if fits:
                spec = rng.choices([m for m, _ in fits], weights=[w for _, w in fits])[0]
        rows.append({
            "name": f"pod-{i:06d}", "cpu_milli": str(cpu), "memory_mib": str(memory), "num_gpu": str(num_gpu),
            "gpu_milli": str(milli), "gpu_spec": spec, "qos": "LS", "pod_phase": "Succeeded",
            "creation_time": "0", "scheduled_time": "0", "deletion_time": "",
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
    p.add_argument("--pinned", type=float, help="share of GPU pods pinned to one model (the FGD paper's knobs; "
                   "with any of --pinned/--fractional/--multi, pods all arrive at 0 and never leave)")
    p.add_argument("--fractional", type=float, help="share of GPU pods asking for part of one GPU")
    p.add_argument("--multi", type=float, help="share of GPU pods asking for 2, 4 or 8 GPUs")
    p.add_argument("-o", "--output", type=Path, help="CSV file (default stdout)")
    args = p.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    if args.pinned is None and args.fractional is None and args.multi is None:
        rows = generate_pods(args.pods, seed=args.seed, models=models, mean_gap=args.mean_gap,
                             mean_duration=args.mean_duration)
    else:
        try:
            rows = generate_mix(args.pods, seed=args.seed, models=models, pinned=args.pinned or 0.0,
                                fractional=0.35 if args.fractional is None else args.fractional,
                                multi=0.2 if args.multi is None else args.multi)
        except ValueError as exc:
            p.error(str(exc))
    if args.output:
        with args.output.open("w", newline="") as f:
            write_pods(rows, f)
    else:
        write_pods(rows, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
