"""The place phase with waiting elastic gangs (scheduler/elastic.py; outside QA, ML platform E5).

An elastic gang that does not fit whole looks for the largest count from its minimum that fits. Counting down from
its size, each count a shape of its own evaluated over every cluster, 20 waiting gangs of 512 with a minimum of 1
over 100 clusters took 3.7 s a cycle; bisection of dry looks takes log2 of the range. This builds one such cycle:
`--clusters` clusters of 32 nodes of 8 H100 with one node free each, and `--gangs` gangs of `--replicas` x 8 H100
with each minimum of `--mins`, and prints the median cycle of `--cycles` per minimum (0: not elastic), and how many
gangs were placed.

    PYTHONPATH=src .venv/bin/python bench/elastic_gangs.py --gangs 20 --replicas 512 --clusters 100
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import H100, h100_member

from federator.model import JobId, JobKind, JobSpec, Resources
from federator.scheduler import PlacementRequest, Scheduler, Snapshot

GIB = 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gangs", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=512)
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--mins", type=int, nargs="+", default=[0, 256, 2, 1])
    parser.add_argument("--cycles", type=int, default=3)
    args = parser.parse_args()
    snapshot = Snapshot.of(h100_member(f"c{i:03d}", f"r{hash(f'c{i:03d}') % 5}", free_by_node=[0] * 31 + [8])
                           for i in range(args.clusters))  # 32 nodes: one with 8 free
    print("| minimum | cycle | placed |\n|---|---|---|")
    for low in args.mins:
        requests = [PlacementRequest(JobId(f"g{j}"), JobSpec(
            f"g{j}", JobKind.TRAINING, args.replicas, Resources(1000, GIB, 8000), (H100,), min_replicas=low),
            args.replicas, float(j)) for j in range(args.gangs)]
        times, placed = [], 0
        for _ in range(args.cycles):
            started = time.perf_counter()
            result = Scheduler().schedule(snapshot, requests)
            times.append(time.perf_counter() - started)
            placed = len(result.decisions)
        print(f"| {low or 'none'} | {statistics.median(times) * 1000:.0f} ms | {placed} |")


if __name__ == "__main__":
    main()
