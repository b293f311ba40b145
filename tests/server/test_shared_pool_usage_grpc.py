"""A fractional job runs and is billed on a simulated shared pool, end to end over a real socket (billing QA F7).

The fleet file declares a time-sliced pool (`sharing: TimeSlicing`); the simulated agent reports it so, the
federator places a 500m job there (and no whole-accelerator job: the pool takes fractions only), and the usage
record bills replicas x 0.5 accelerator x the run's seconds.
"""

from __future__ import annotations

import time
from pathlib import Path

from test_end_time_grpc import metered_member, until
from test_services_edge import run

from federator.accounting.records import summarize
from federator.backends.sim.fleet import parse_fleet
from federator.backends.sim.runtime import SimBackend
from federator.jobfile import parse_job
from federator.model import JobPhase, JobSpec

FLEET = parse_fleet({"clusters": [{"name": "shared-1", "region": "east", "nodes": [
    {"count": 1, "model": "NVIDIA-L40S", "accelerators": 4, "cpu": 32, "memory": "64Gi", "sharing": "TimeSlicing"}]}]})


def training(name: str, gpu: str, seconds: int) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": name, "annotations": {"federator.io/sim-startup": "0s",
                                                                 "federator.io/sim-duration": f"{seconds}s"}},
                      "spec": {"kind": "training", "replicas": 2,
                               "resources": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": gpu}}})


def test_a_500m_job_is_placed_and_billed_on_a_simulated_time_sliced_pool(tmp_path: Path) -> None:
    async def go() -> None:
        async with metered_member(tmp_path, SimBackend(FLEET["shared-1"]), "shared-1") as m:
            fed = m.fed
            await until(lambda: (rec := fed.clusters.get("shared-1")) is not None and rec.capacity is not None)
            (pool,) = fed.clusters["shared-1"].capacity.accelerator_pools
            assert pool.sharing == "TimeSlicing"  # as the fleet file said, over the wire
            whole = fed.submit(training("whole", "1", 2))
            half = fed.submit(training("half", "500m", 2))
            fed.schedule_once()
            await until(lambda: half.phase is JobPhase.SUCCEEDED)
            done = time.time()
            assert whole.phase is JobPhase.PENDING and not whole.placements  # fractions only there
            (placed,) = half.placements
            assert (placed.cluster, placed.accelerator_model) == ("shared-1", "NVIDIA-L40S")
            (record,) = m.usage.query(since=0.0, until=done + 1)
            assert record.accelerators_milli == 2 * 500
            billed = summarize([record], since=0.0, until=done + 1, now=done).total.accelerator_seconds
            ran = record.end - record.start  # type: ignore[operator]
            assert billed == round(ran * 1000) / 1000  # 2 x 0.5 accelerator for the run's seconds
            assert 1.5 <= ran <= 3.0, ran

    run(go)
