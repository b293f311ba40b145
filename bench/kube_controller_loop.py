"""The FederatedJob controller's writes and the event loop: how long the loop is held while objects are edited.

Not a test: run it by hand and copy its output into docs/benchmarks.md ("The Kubernetes controller's writes and the
event loop"). A federator on a Kubernetes job store (backends/kube/store.py) over an in-memory API server whose every
write takes `--latency` seconds (tests/kube_fakes.py `FlakyApi`, slowed: a round trip to a kube-apiserver), with its
FederatedJob controller's workers running, holds `--jobs` Pending inference FederatedJobs. Each object is then
edited as a user would: `kubectl scale` (a new spec.replicas, a new generation) and `kubectl annotate` of an
annotation the job does not follow (a status note, MetadataIgnored). A probe coroutine on the event loop sleeps 1 ms
at a time and records how late each wake is (what every agent stream, Watch and Submit waits). Printed as JSON, one
object per run: the wall time until every job is scaled and its status written, and the probe's lag p50 / p99 / max
in milliseconds.

    PYTHONPATH=src .venv/bin/python bench/kube_controller_loop.py --jobs 16 --latency 0.02 --runs 2

The same command with PYTHONPATH pointing at an older tree (0.13.0 on) measures before.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from kube_fakes import FlakyApi, controller, federated_job  # noqa: E402

KEY_NAMESPACE = "research"


class SlowApi(FlakyApi):
    """The in-memory API server, each write taking `latency` seconds (on the calling thread, as an HTTP call)."""

    def __init__(self, latency: float) -> None:
        super().__init__()
        self.latency = latency

    def patch(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        time.sleep(self.latency)
        return super().patch(*args, **kwargs)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def run(n_jobs: int, latency: float) -> dict[str, object]:
    api = SlowApi(latency)
    async with controller(api, workers=True) as (fed, ctl):
        for i in range(n_jobs):
            await ctl.reconcile("ADDED", federated_job(api, f"j{i}", {"kind": "inference", "replicas": 2,
                                                                        "resources": {"cpu": "1"}}))
        await asyncio.to_thread(fed.journal.drain)
        lags: list[float] = []
        done = asyncio.Event()

        async def probe() -> None:
            while not done.is_set():
                t = time.perf_counter()
                await asyncio.sleep(0.001)
                lags.append((time.perf_counter() - t - 0.001) * 1000)

        def settled() -> bool:
            return all(j.spec.replicas == 3 for j in fed.jobs.values()) and all(
                any(c.get("reason") == "MetadataIgnored" for c in (o.get("status") or {}).get("conditions") or [])
                for o in api.objects.values())

        probing = asyncio.ensure_future(probe())
        start = time.perf_counter()
        for i in range(n_jobs):
            obj = api.objects[(KEY_NAMESPACE, f"j{i}")]
            obj["metadata"].setdefault("annotations", {})["federator.io/master-port"] = "abc"
            obj["spec"]["replicas"] = 3
            obj["metadata"]["generation"] += 1
            ctl._enqueue("MODIFIED", copy.deepcopy(obj))
        while not settled():
            await asyncio.sleep(0.005)
        wall = time.perf_counter() - start
        done.set()
        await probing
    return {"jobs": n_jobs, "latency_ms": latency * 1000, "wall_s": round(wall, 3),
            "lag_p50_ms": round(_percentile(lags, 0.50), 2), "lag_p99_ms": round(_percentile(lags, 0.99), 2),
            "lag_max_ms": round(max(lags, default=0.0), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds each API server write takes")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # each note is a warning line: not what is measured
    for _ in range(args.runs):
        print(json.dumps(asyncio.run(run(args.jobs, args.latency))), flush=True)


if __name__ == "__main__":
    main()
