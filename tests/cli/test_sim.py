"""`federator sim` end to end on both node CSV layouts, YAML fleets, JSON output and the plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from federator.cli import main

OPENB = "sn,cpu_milli,memory_mib,gpu,model\n" + "".join(
    f"n{i},96000,786432,{g},{m}\n" for i, (g, m) in enumerate([(8, "A100-SXM4-80GB"), (8, "H800"), (1, "A10")] * 4))
SPOT = "gpu_model,gpu_capacity_num,cpu_num,node_name\n" + "".join(
    f"{m},{g},128,{i}\n" for i, (g, m) in enumerate([(8, "A100-SXM4-80GB"), (8, "H800"), (1, "A10")] * 4))
KEYS = ("jobs_total", "jobs_placed", "accelerator_capacity", "accelerator_allocated", "accelerator_allocation_ratio",
        "placements_per_second", "decision_latency_p50_seconds", "decision_latency_p99_seconds", "wall_seconds")


@pytest.mark.parametrize("layout", [OPENB, SPOT], ids=["openb-nodes", "spot-nodes"])
@pytest.mark.parametrize("mode", ["fill", "replay"])
def test_sim_json_on_both_csv_layouts(tmp_path: Path, examples: Path, capsys: pytest.CaptureFixture[str],
                                      layout: str, mode: str) -> None:
    fleet = tmp_path / "nodes.csv"
    fleet.write_text(layout)
    rc = main(["sim", "--fleet", str(fleet), "--clusters", "3", "--workload",
               str(examples / "workloads" / "pods-sample.csv"), "--mode", mode, "-o", "json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert all(k in out for k in KEYS)
    assert out["jobs_total"] == 500 and out["clusters"] == 3 and out["accelerator_capacity"] == 68
    assert 0 < out["jobs_placed"] <= 500 and 0 < out["accelerator_allocation_ratio"] <= 1


def test_sim_with_yaml_fleet_jobs_policy_and_plot(tmp_path: Path, examples: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "alloc.png"
    rc = main(["sim", "--fleet", str(examples / "fleet.yaml"), "--workload", str(examples / "jobs" / "giant-gang.yaml"),
               "--policy", str(examples / "policy.yaml"), "--plot", str(png), "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "jobs_pending" in text and "QuotaExceeded" in text  # research may hold 64 H100; the gang wants 128
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_text_report_names_the_scarcity_scale(examples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`0` read as no pressure at all; the text says which scale the rollouts kept (JSON keeps the number)."""
    args = ["sim", "--fleet", str(examples / "fleet.yaml"),
            "--workload", str(examples / "workloads" / "pods-sample.csv"), "--no-progress"]
    assert main(args) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("scarcity_scale ")]
    assert line.split()[1] in ("median", "K=4")
    assert main([*args, "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["scarcity_scale"] in (0.0, 4.0)


def test_progress_bar_when_asked(tmp_path: Path, examples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["sim", "--fleet", str(examples / "fleet.yaml"), "--workload",
               str(examples / "workloads" / "pods-sample.csv"), "--progress", "--batch", "100", "-o", "json"])
    assert rc == 0
    assert "100% 500/500 jobs" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--clusters", "2"], "--clusters: applies to node CSVs only"),
        (["--policy", "missing.yaml"], "missing.yaml"),
        (["--batch", "0"], "federator sim: --batch: must be at least 1, got 0"),
        (["--cycle-interval", "nan"], "--cycle-interval: must be a positive number of seconds, got nan"),
        (["--cycle-interval", "-5"], "--cycle-interval: must be a positive number of seconds, got -5"),
        (["--plot", "/nonexistent-folder/x.png"],
         "--plot: /nonexistent-folder/x.png: the folder /nonexistent-folder does not exist"),
    ],
    ids=["clusters-with-yaml", "missing-policy", "batch-zero", "cycle-interval-nan", "cycle-interval-negative",
         "plot-folder"],
)
def test_sim_errors_are_one_clear_line(examples: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                       words: str) -> None:
    rc = main(["sim", "--fleet", str(examples / "fleet.yaml"), "--workload",
               str(examples / "workloads" / "pods-sample.csv"), *args])
    assert rc == 2
    assert words in capsys.readouterr().err


def test_a_folder_of_job_files_is_a_workload_as_for_submit(examples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["sim", "--fleet", str(examples / "fleet.yaml"), "--workload", str(examples / "jobs"), "-o", "json"])
    assert rc == 0
    files = [p for p in (examples / "jobs").iterdir() if p.suffix == ".yaml"]
    assert json.loads(capsys.readouterr().out)["jobs_total"] == len(files) >= 2


def test_an_empty_folder_is_said_to_hold_no_job_files(tmp_path: Path, examples: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--fleet", str(examples / "fleet.yaml"), "--workload", str(tmp_path)]) == 2
    said = capsys.readouterr().err.strip()
    assert said == f"federator sim: {tmp_path}: folder: holds no job files (.yaml, .yml, .json)"
