"""A tiny run of each benchmark script, so they do not rot (the real runs are in docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support import ROOT

SPOT = "gpu_model,gpu_capacity_num,cpu_num,node_name\n" + "".join(
    f"{m},{g},128,{i}\n" for i, (g, m) in enumerate([(8, "A100-SXM4-80GB"), (8, "H800"), (1, "A10")] * 3))


@pytest.mark.parametrize(
    ("script", "args", "key"),
    [
        ("throughput.py", ["--clusters", "3", "--nodes", "20", "--jobs", "300"], "placements_per_second"),
        ("throughput.py", ["--scaling", "2,4", "--nodes", "10", "--jobs", "100"], "cpu_microseconds_per_job"),
        ("throughput.py", ["--fleet", "five-vendor", "--alternatives", "0.3", "--clusters", "5", "--nodes", "20",
                           "--jobs", "300"], "placed_on_alternative"),
        ("throughput.py", ["--clusters", "3", "--nodes", "30", "--jobs", "300", "--room", "classes"],
         "room_classes_per_pool"),
        ("quality.py", ["--fleet", "{fleet}", "--clusters", "2", "--seeds", "1"], "mean_accelerator_allocation_ratio"),
        ("fairness.py", ["--clusters", "1", "--nodes", "2", "--hours", "1.2"], "max_deviation_from_weighted_drf_share"),
        ("memory.py", ["--clusters", "3", "--jobs", "100"], "peak_rss_mib"),
        ("fgd.py", ["--fleet", "{fleet}", "--clusters", "1,2", "--mixes", "pinned,trace"], "federator-2"),
        ("fgd.py", ["--fleet", "{fleet}", "--clusters", "2", "--mixes", "fractional", "--variants", "",
                    "--cycle", "10"], "federator-2"),
        ("fgd.py", ["--fleet", "{fleet}", "--clusters", "2", "--mixes", "all", "--variants", "",
                    "--cycle", "10", "--warm"], "federator-2"),
        ("fgd.py", ["--fleet", "{fleet}", "--clusters", "2", "--mixes", "all", "--variants", "",
                    "--cycle", "10", "--warm", "--yesterday", "fractional"], "federator-2"),
        ("fgd.py", ["--fleet", "{fleet}", "--clusters", "2", "--mixes", "fractional", "--variants", "first-fit",
                    "--cycle", "10", "--orders", "2"], "federator-2"),
        ("starvation.py", ["--nodes", "1", "--gangs", "1", "--hours", "1", "--backlog", "4"], "gang_placed_minutes"),
        ("usage_cluster.py", ["--records", "2000", "--clusters", "5", "--repeat", "1"], "plans"),
        ("kube_controller_loop.py", ["--jobs", "2", "--latency", "0"], "lag_max_ms"),
        ("replay_national.py", ["--clusters", "4", "--pods", "200", "--until", "2500"], "cpu_ms_per_cycle"),
        ("reason_writes.py", ["--clusters", "2", "--nodes", "4", "--jobs", "200", "--owners", "5", "--arrivals", "2"],
         "job_writes_at_restart"),
        ("parked_ahead.py", ["--parked", "200", "--owners", "2,5"], "cycle_seconds"),
        ("reserve_backlog.py", ["--gangs", "30", "--clusters", "3", "--cycles", "1"], "median_seconds"),
    ],
    ids=["throughput", "scaling", "five-vendor", "room-classes", "quality", "fairness", "memory", "fgd",
         "fgd-small-cycles", "fgd-warm", "fgd-misled", "fgd-orders", "starvation", "usage-cluster",
         "kube-controller-loop", "replay-national", "reason-writes", "parked-ahead", "reserve-backlog"],
)
def test_bench_script_runs(tmp_path: Path, script: str, args: list[str], key: str) -> None:
    fleet = tmp_path / "fleet.csv"
    fleet.write_text(SPOT)
    cmd = [sys.executable, str(ROOT / "bench" / script), *(a.replace("{fleet}", str(fleet)) for a in args)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert key in (out[0] if isinstance(out, list) else out)
    if "--orders" in args:  # each variant's figure is the mean over the orders, whose figures it keeps
        for variant in ("federator-2", "first-fit"):
            got = out[0][variant]
            assert len(got["allocation_by_order"]) == 2
            assert got["accelerator_allocation_ratio"] == pytest.approx(sum(got["allocation_by_order"]) / 2, abs=1e-4)
    if "--room" in args:
        assert out[key] > 1  # part-used nodes, reported by class


def test_leftover_says_where_the_gpus_are_left_for_each_run(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.csv"
    fleet.write_text(SPOT)
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "leftover.py"), "--fleet", str(fleet), "--mix",
                           "fractional", "--seed", "1"], capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "allocated" not in line]
    assert [r.split(" | ")[0].removeprefix("| ") for r in rows] == [
        "federator-8, 1,000-pod cycles", "federator-8, warm 10-pod cycles", "fgd, one cluster",
        "first-fit, one cluster"]
    for row in rows:  # allocated, then four amounts of free GPUs
        cells = row.strip("| ").split(" | ")
        assert 0 < float(cells[1]) <= 1 and all(float(c) >= 0 for c in cells[2:6])


def test_elastic_gangs_places_the_largest_count_that_fits_only_when_elastic(tmp_path: Path) -> None:
    """bench/elastic_gangs.py (a markdown table): 16-replica gangs on clusters with one free node each wait whole,
    and with a minimum of 1 each place at one replica, one a cluster."""
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "elastic_gangs.py"), "--gangs", "2", "--replicas",
                           "16", "--clusters", "3", "--mins", "0", "1", "--cycles", "1"],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [line.strip("| ").split(" | ") for line in done.stdout.splitlines()[2:]]
    assert [(r[0], r[2]) for r in rows] == [("none", "0"), ("1", "2")]
