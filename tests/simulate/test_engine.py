"""The simulator: the real scheduler over node-level simulated clusters, fill and replay."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from federator.backends.sim.fleet import parse_fleet
from federator.model import JobKind, JobSpec, Resources
from federator.scheduler import Scheduler, SchedulerConfig
from federator.simulate import SimJob, Simulation, load_fleet_file, load_workload

FLEET = parse_fleet({"clusters": [
    {"name": "a", "region": "east",
     "nodes": [{"count": 2, "gpuModel": "H100", "gpus": 8, "cpu": 64, "memory": "512Gi"}]},
    {"name": "b", "region": "west", "nodes": [{"count": 4, "gpuModel": "A10", "gpus": 1, "cpu": 16, "memory": "64Gi"}]},
]})


def sim_job(name: str, gpus: float, *, at: float = 0.0, runs: float | None = None, **kw: object) -> SimJob:
    spec = JobSpec(name=name, kind=JobKind.TRAINING, replicas=1, resources=Resources(1000, 2**30, int(gpus * 1000)))
    return SimJob(replace(spec, **kw), at, runs)  # type: ignore[arg-type]


def test_fill_packs_and_reports_ground_truth() -> None:
    jobs = [sim_job(f"j{i}", 1) for i in range(20)] + [sim_job("gang", 8, replicas=2)]
    report = Simulation(FLEET, jobs, batch=5).run("fill")
    assert report.accelerator_capacity == 20
    assert report.jobs_placed == 20 and report.jobs_pending == 1
    assert report.accelerator_allocated == 20 and report.accelerator_allocation_ratio == 1.0
    assert report.pending_reasons == {"InsufficientAccelerators": 1}
    assert report.cycles == 5 and report.placements == 20
    assert 0 < report.decision_latency_p50_seconds <= report.decision_latency_p99_seconds
    assert [x for x, _ in report.series] == [0, 5, 10, 15, 20, 21]


def test_fractions_share_gpus_on_the_nodes() -> None:
    jobs = [sim_job(f"f{i}", 0.25, accelerator_models=("A10",), kind=JobKind.INFERENCE) for i in range(16)]
    report = Simulation(FLEET, jobs).run("fill")
    assert report.jobs_placed == 16 and report.accelerator_allocated == 4  # four A10s, four quarter-replicas each


def test_replay_frees_gpus_when_jobs_finish() -> None:
    jobs = [sim_job("first", 8, at=0, runs=100, replicas=2), sim_job("second", 8, at=10, runs=100, replicas=2)]
    report = Simulation(FLEET, jobs, cycle_interval=10).run("replay")
    assert report.jobs_placed == 2 and report.jobs_pending == 0
    assert report.accelerator_allocation_ratio_peak == pytest.approx(16 / 20)
    assert [r for t, r in report.series if t == 10] == [0.8]  # second waits for first


def test_replay_preempts_and_requeues() -> None:
    jobs = [sim_job("batch", 8, at=0, runs=1000, replicas=2, preemptible=True),
            sim_job("urgent", 8, at=5, runs=10, replicas=2, priority=100)]
    report = Simulation(FLEET, jobs, cycle_interval=5).run("replay")
    assert report.preemptions == 1 and report.jobs_placed == 2 and report.jobs_pending == 0


@pytest.mark.parametrize("fit", ["best", "first", "random"])
def test_node_fit_baselines_run(fit: str, examples: Path) -> None:
    fleet = load_fleet_file(Path(examples / "fleet.yaml"))
    jobs = load_workload(examples / "workloads" / "pods-sample.csv")
    report = Simulation(fleet, jobs, fit=fit, scheduler=Scheduler(SchedulerConfig(score_weights={}))).run("fill")
    assert report.jobs_placed > 0 and 0 < report.accelerator_allocation_ratio <= 1
