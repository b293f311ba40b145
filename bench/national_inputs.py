"""The planners' national replay inputs (outside planners' QA P13, their mknat.py), written from one seed: the one
generator bench/replay_national.py times at full scale and tests/simulate/test_replay_golden.py pins at 1/25, so
the golden guards the shape the benchmark measures.

Fleet: `clusters` x 10 nodes of 8 accelerators of four models (drawn per node), 128 CPUs each, in 31 provinces.
Pods: `pods`, one every 25 s, 1-8 accelerators (mostly 1), 4 CPUs and 16 GiB each, asking for one of three models
or any, running 600-40,000 s. Both files are in the Alibaba trace layout `federator sim` reads.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

MODELS = ("H800", "A100-SXM4-80GB", "A10", "Ascend910B")
SEED = 5


def write_national(folder: Path, *, clusters: int, pods: int, prefix: str = "nat") -> tuple[Path, Path]:
    """The fleet and pods files, `folder`/`prefix`_fleet.csv and `prefix`_pods.csv: (fleet, pods). One generator
    draws both, the fleet first: the same arguments write the same bytes."""
    rnd = random.Random(SEED)
    fleet, work = folder / f"{prefix}_fleet.csv", folder / f"{prefix}_pods.csv"
    with fleet.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["gpu_model", "gpu_capacity_num", "cpu_num", "node_name", "cluster", "region"])
        for c in range(clusters):
            for k in range(10):
                w.writerow([rnd.choice(MODELS), 8, 128, f"n{c * 10 + k}", f"c{c:04d}", f"prov{c % 31:02d}"])
    with work.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow("name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,"
                   "deletion_time,scheduled_time".split(","))
        for i in range(pods):
            g, t = rnd.choice([1, 1, 1, 2, 4, 8]), i * 25
            w.writerow([f"p{i}", 4000, 16384, g, 1000, rnd.choice(["H800", "A100-SXM4-80GB", "A10", ""]), "LS",
                        "Succeeded", t, t + rnd.randint(600, 40000), t])
    return fleet, work
