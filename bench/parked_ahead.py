"""A cycle's cost of counting the parked jobs ahead of each waiting owner's (scheduler/parked_line.py).

    PYTHONPATH=src .venv/bin/python bench/parked_ahead.py --parked 100000 --owners 10,1000,5000

`--parked` jobs of one queue, spread over `--owners` users, are parked (server/parking.py, as the cycle parks them,
each with its submission time); then one cycle over a full fleet takes one new job per owner, every one waiting,
each told how many jobs go before its owner's. Printed per owner count: the seconds to park them all, to take the
lot's summary (first, unchanged, after one job left), and the cycle's seconds with and without the parked jobs
counted (without: as before ahead62, when only the cycle's jobs were).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from federator.model import JobId, Reason, ReasonCode  # noqa: E402
from federator.scheduler import PlacementRequest, Scheduler, Snapshot  # noqa: E402
from federator.security.authz import recorded_owner  # noqa: E402
from federator.server.parking import ParkingLot  # noqa: E402

from builders import (  # noqa: E402
    cluster,
    job,  # noqa: E402
    pool,
)

H100 = "NVIDIA-H100-80GB-HBM3"
ROOM = Reason(ReasonCode.INSUFFICIENT_ACCELERATORS, "no room")


def run(parked: int, owners: int) -> dict[str, object]:
    lot = ParkingLot()
    specs = [recorded_owner(job(f"s{o}", gpus=8, queue="batch"), f"u{o}") for o in range(owners)]
    started = time.perf_counter()
    for i in range(parked):
        lot.park(JobId(f"p{i}"), specs[i % owners], ROOM, float(i))
    park_s = time.perf_counter() - started
    started = time.perf_counter()
    lot.summary.summary()
    first_ms = (time.perf_counter() - started) * 1e3
    started = time.perf_counter()
    lot.summary.summary()
    unchanged_us = (time.perf_counter() - started) * 1e6
    lot.unpark(JobId("p0"))
    started = time.perf_counter()
    summary = lot.summary.summary()
    changed_ms = (time.perf_counter() - started) * 1e3
    fleet = Snapshot.of([cluster("c", "r", pool(H100, nodes=0, extra={0: 1}))])
    asked = [PlacementRequest(JobId(f"new{o}"), recorded_owner(job(f"new{o}", gpus=8, queue="batch"), f"u{o}"),
                              replicas=1, submitted_at=float(parked + o)) for o in range(owners)]
    cycle: dict[str, float] = {}
    for name, given in (("without_parked", None), ("with_parked", summary)):
        started = time.perf_counter()
        Scheduler().schedule(fleet, asked, parked=given)
        cycle[name] = round(time.perf_counter() - started, 3)
    return {"parked": parked, "owners": owners, "park_seconds": round(park_s, 3),
            "summary_first_ms": round(first_ms, 2), "summary_unchanged_us": round(unchanged_us, 1),
            "summary_one_changed_ms": round(changed_ms, 2), "cycle_seconds": cycle}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parked", type=int, default=100_000)
    ap.add_argument("--owners", default="10,1000,5000", help="comma-separated owner counts")
    args = ap.parse_args()
    print(json.dumps([run(args.parked, int(o)) for o in args.owners.split(",")], indent=1))


if __name__ == "__main__":
    main()
