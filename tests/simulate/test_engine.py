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


def test_yesterdays_pinned_work_keeps_its_model_for_todays() -> None:
    """One-pod cycles: a flexible 8-GPU job comes first, then one pinned to the A100s. From a cold start the
    flexible job takes the A100 node (the model that sorts first) and the pinned one waits; with yesterday's
    A100-pinned work in the memory (`history`), the flexible job leaves the A100s alone."""
    fleet = parse_fleet({"clusters": [
        {"name": "a", "region": "east", "nodes": [{"count": 1, "gpuModel": "A100", "gpus": 8, "cpu": 64,
                                                   "memory": "512Gi"}]},
        {"name": "h", "region": "east", "nodes": [{"count": 1, "gpuModel": "H100", "gpus": 8, "cpu": 64,
                                                   "memory": "512Gi"}]},
    ]})
    today = [sim_job("flex", 8), sim_job("pinned", 8, accelerator_models=("A100",))]
    yesterday = [sim_job(f"old{i}", 8, accelerator_models=("A100",)) for i in range(3)]
    cold = Simulation(fleet, today, batch=1).run("fill")
    warm = Simulation(fleet, today, batch=1, history=yesterday).run("fill")
    assert (cold.jobs_placed, warm.jobs_placed) == (1, 2)


def test_jobs_that_end_in_a_replay_join_the_demands_memory() -> None:
    jobs = [sim_job("first", 8, at=0, runs=100, replicas=2), sim_job("second", 1, at=10, runs=5)]
    sim = Simulation(FLEET, jobs, cycle_interval=10)
    sim.run("replay")
    newest_first = [(a.resources.accelerator_milli, a.replicas) for a in sim.memory.arrivals()]
    assert newest_first == [(8000, 2), (1000, 1)]


def test_a_burst_in_one_cycle_is_shared_by_two_regions_and_the_report_says_by_how_much() -> None:
    """Ten whole-node jobs in one cycle over two regions of ten 8-accelerator nodes, north's already a
    fifth used: RegionLoad, counted as the cycle places (scheduler/regionload.py), brings both regions
    to 60%; read once at the cycle's start it filled south and left north at 20%. The report gives
    each region's share, as the nodes hold it."""
    fleet = parse_fleet({"clusters": [
        {"name": "north-1", "region": "north", "nodes": [
            {"count": 2, "gpuModel": "H100", "gpus": 8, "cpu": 96, "memory": "1Ti", "busyGpus": 8},
            {"count": 8, "gpuModel": "H100", "gpus": 8, "cpu": 96, "memory": "1Ti"}]},
        {"name": "south-1", "region": "south",
         "nodes": [{"count": 10, "gpuModel": "H100", "gpus": 8, "cpu": 96, "memory": "1Ti"}]},
    ]})
    sim = Simulation(fleet, [sim_job(f"j{i}", 8) for i in range(10)])
    report = sim.run("fill")
    assert report.cycles == 1 and report.jobs_placed == 10
    held = {c.spec.region: c.nodes.accelerator_milli_used() / c.nodes.accelerator_milli_total()
            for c in sim.clusters.values()}
    assert report.accelerator_allocation_ratio_by_region == pytest.approx(held)
    assert report.accelerator_allocation_ratio_by_region == {"north": 0.6, "south": 0.6}
    assert report.to_json()["accelerator_allocation_ratio_by_region"] == {"north": 0.6, "south": 0.6}
