"""What the sim report tells a capacity planner (outside planners' QA, P1, P2, P8, P11, P13): waits, per-region and
per-model use as time averages, the timelines in JSON, each job's outcome, and every key documented."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import fields, replace
from pathlib import Path

import pytest

from federator.backends.sim.fleet import parse_fleet
from federator.cli import main
from federator.cli.sim import ProgressBar, eta
from federator.model import JobKind, JobSpec, Resources
from federator.simulate import SimJob, Simulation, load_fleet_file, load_workload
from federator.simulate.outcomes import JobRecord

ROOT = Path(__file__).resolve().parents[2]
FLEET = parse_fleet({"clusters": [
    {"name": "a", "region": "east",
     "nodes": [{"count": 2, "gpuModel": "H100", "gpus": 8, "cpu": 64, "memory": "512Gi"}]},
    {"name": "b", "region": "west", "nodes": [{"count": 4, "gpuModel": "A10", "gpus": 1, "cpu": 16, "memory": "64Gi"}]},
]})


def sim_job(name: str, gpus: float, *, at: float = 0.0, runs: float | None = None, **kw: object) -> SimJob:
    spec = JobSpec(name=name, kind=JobKind.TRAINING, replicas=1, resources=Resources(1000, 2**30, int(gpus * 1000)))
    return SimJob(replace(spec, **kw), at, runs)  # type: ignore[arg-type]


def departing() -> list[SimJob]:
    """East: two 16-H100 gangs back to back over 0..200 s (the second waits 90 s); west: one A10 for 50 s of the
    200; both regions are empty when the replay ends."""
    return [sim_job("first", 8, at=0, runs=100, replicas=2, queue="train"),
            sim_job("second", 8, at=10, runs=100, replicas=2, queue="train", accelerator_models=("H100",)),
            sim_job("small", 1, at=0, runs=50, queue="serve", accelerator_models=("A10",))]


def test_a_replays_region_ratios_are_time_averages_like_the_total() -> None:
    """P2: they were the empty end state (all 0.0) beside a time-averaged total."""
    report = Simulation(FLEET, departing(), cycle_interval=10).run("replay")
    assert report.series[-1][1] == 0  # every job departed
    assert report.accelerator_allocation_ratio_by_region == {"east": 1.0, "west": pytest.approx(0.0625)}
    by_region = report.accelerators_by_region
    assert by_region["east"] == {"capacity": 16.0, "allocated": 16.0, "idle": 0.0, "allocation_ratio": 1.0}
    assert by_region["west"]["allocated"] == pytest.approx(0.25) and by_region["west"]["idle"] == pytest.approx(3.75)
    # the same kind of figure: the regions' time-averaged accelerators add up to the total's
    assert sum(r["allocated"] for r in by_region.values()) == pytest.approx(report.accelerator_allocated)
    assert report.accelerators_by_model == {
        "A10": {"capacity": 4.0, "allocated": 0.25, "idle": 3.75, "allocation_ratio": 0.0625},
        "H100": {"capacity": 16.0, "allocated": 16.0, "idle": 0.0, "allocation_ratio": 1.0}}


def test_a_replay_reports_waits_by_queue_and_model_and_each_jobs_outcome() -> None:
    jobs = [*departing(), sim_job("giant", 8, at=0, replicas=3, queue="train")]  # 24 H100: never, as the fleet is
    report = Simulation(FLEET, jobs, cycle_interval=10).run("replay")
    waits = report.wait_seconds
    assert waits["all"] == {"jobs_started": 3, "jobs_not_started": 1, "p50": 0.0, "p95": 90.0, "max": 90.0,
                            "mean": 30.0}
    assert waits["by_queue"]["train"]["max"] == 90 and waits["by_queue"]["serve"]["max"] == 0  # type: ignore[index]
    assert set(waits["by_model"]) == {"nvidia", "H100", "A10"}  # type: ignore[arg-type]  # "nvidia": any of its models
    rows = {r.job: r for r in report.jobs}
    second = rows["second"]
    assert (second.cluster, second.region, second.model, second.accelerators) == ("a", "east", "H100", 16.0)
    assert (second.arrival, second.start, second.end, second.wait_seconds) == (10, 100, 200, 90)
    assert second.accelerator_hours == pytest.approx(16 * 100 / 3600) and second.cost == 0  # no price label
    assert report.workload_accelerator_hours == pytest.approx((16 * 100 * 2 + 50) / 3600, abs=1e-5)
    giant = rows["giant"]
    assert giant.start is None and giant.reason_code == "GangDoesNotFit" and giant.never == "fleet"
    assert "no member cluster could hold 3 x 8 A10|H100 even empty" in giant.reason  # the live federator's words
    assert report.jobs_never_runnable == {"fleet": 1}
    assert report.pending_examples["GangDoesNotFit"].startswith("giant: no member cluster could hold")
    assert report.queue_series[0] == (0.0, {"serve": 1.0, "train": 16.0})


def test_the_json_report_has_the_timelines_and_every_key_is_documented(tmp_path: Path) -> None:
    """P1: `series` (behind --plot) and `queue_series` were dropped from -o json; P11: no doc listed the keys."""
    out = Simulation(FLEET, departing(), cycle_interval=10).run("replay").to_json()
    json.dumps(out)
    assert out["series"][:2] == [[0.0, 17 / 20], [10.0, 17 / 20]]
    assert out["queue_series"][0] == [0.0, {"serve": 1.0, "train": 16.0}]
    assert "jobs" not in out
    doc = (ROOT / "docs" / "operators.md").read_text()
    section = doc.split("#### Reading the sim report", 1)[1].split("\n### ", 1)[0]
    documented = {k for cell in re.findall(r"^\| (`[^|]+) \|", section, re.M) for k in re.findall(r"`(\w+)`", cell)}
    assert set(out) <= documented, sorted(set(out) - documented)
    job_keys = set(re.findall(r"`([a-z_]+)`", section.split("--jobs-out", 1)[1]))
    assert {f.name for f in fields(JobRecord)} <= job_keys


def test_fill_samples_the_retry_cycles_so_the_peak_is_never_below_the_end(examples: Path) -> None:
    """P8: the retries of placements the nodes refused ran after the last sample: peak 0.525951 < ratio 0.533696."""
    report = Simulation(load_fleet_file(examples / "fleet.yaml"),
                        load_workload(examples / "workloads" / "pods-sample.csv")).run("fill")
    assert report.refused > 0  # the case: some binds were retried
    assert report.series[-1][1] == pytest.approx(report.accelerator_allocation_ratio, abs=1e-6)
    assert report.accelerator_allocation_ratio_peak >= report.accelerator_allocation_ratio


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_jobs_out_writes_one_line_per_job(tmp_path: Path, examples: Path, suffix: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / f"jobs{suffix}"
    rc = main(["sim", "--fleet", str(examples / "fleet.yaml"), "--workload", str(examples / "jobs"),
               "--mode", "replay", "--jobs-out", str(path), "--no-progress", "-o", "json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    text = path.read_text()
    rows = list(csv.DictReader(text.splitlines())) if suffix == ".csv" else [json.loads(x) for x in text.splitlines()]
    assert len(rows) == report["jobs_total"] - report["jobs_refused_at_submit"]
    pending = [r for r in rows if r["reason_code"]]
    assert len(pending) == report["jobs_pending"] and all(r["reason"] for r in pending)
    # examples/fleet.yaml's clusters carry federator.io/price-per-accelerator-hour: the costs add up
    assert report["workload_cost"] > 0
    assert sum(float(r["cost"]) for r in rows) == pytest.approx(report["workload_cost"], abs=1e-4)


def test_jobs_out_refuses_a_suffix_it_cannot_write(tmp_path: Path, examples: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["sim", "--fleet", str(examples / "fleet.yaml"), "--workload", str(examples / "jobs" / "giant-gang.yaml"),
               "--jobs-out", str(tmp_path / "jobs.txt"), "--no-progress"])
    assert rc == 2
    assert f"federator sim: --jobs-out: {tmp_path / 'jobs.txt'}: must end in .csv" in capsys.readouterr().err


def test_a_replays_progress_says_jobs_started_and_the_time_left(examples: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """P13: only simulated seconds were shown, with no ETA."""
    rc = main(["sim", "--fleet", str(examples / "fleet.yaml"), "--workload", str(examples / "jobs"),
               "--mode", "replay", "--progress", "-o", "json"])
    assert rc == 0
    err = capsys.readouterr().err
    assert re.search(r"100% [\d,]+/[\d,]+ s, \d+/\d+ jobs started, \d+s elapsed", err), err


def test_the_eta_is_the_time_left_at_the_rate_so_far() -> None:
    assert eta(60.0, 25, 100) == "ETA 3m 00s"
    assert eta(600.0, 10, 100) == "ETA 1h 30m"
    assert eta(5.0, 0, 100) == "ETA ?"
    assert eta(12.0, 100, 100) == "12s elapsed"
    ticks = iter([0.0, 30.0, 31.0])

    class Out:
        text = ""

        def write(self, s: str) -> None:
            self.text += s

        def flush(self) -> None:
            pass

        def isatty(self) -> bool:
            return False

    out = Out()
    bar = ProgressBar(out, "s", clock=lambda: next(ticks))  # type: ignore[arg-type]
    bar.update(300, 1000, note="12/40 jobs started")
    assert out.text.endswith("30% 300/1,000 s, 12/40 jobs started, ETA 1m 10s")


def test_the_text_report_prints_a_table_a_row_a_line(tmp_path: Path, examples: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["sim", "--fleet", str(examples / "fleet.yaml"), "--workload", str(examples / "jobs"), "--mode", "replay",
               "--no-progress"])
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(re.match(r"accelerators_by_model +Ascend910B: capacity 160 allocated [\d.]+ idle [\d.]+ "
                        r"allocation_ratio [\d.]+$", x) for x in lines), lines
    assert any(re.match(r"wait_seconds +by_queue \S+: jobs_started \d+ jobs_not_started \d+ p50 ", x) for x in lines)
    assert not any(x.startswith(("series ", "queue_series ")) for x in lines)  # the timelines are JSON's
