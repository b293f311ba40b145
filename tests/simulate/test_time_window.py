"""`federator sim --from/--until` (outside planners' QA P13): one stretch of a workload replays as a workload of
just that stretch would, and a window that cannot be one is refused in a line naming the flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from federator.cli import main

TIMINGS = ("placements_per_second", "decision_latency_p50_seconds", "decision_latency_p99_seconds",
           "scheduler_seconds", "wall_seconds", "rollout_seconds")


def _report(capsys: pytest.CaptureFixture[str], fleet: Path, workload: Path, *args: str) -> dict[str, object]:
    assert main(["sim", "--fleet", str(fleet), "--workload", str(workload), "--mode", "replay",
                 "--cycle-interval", "60", "-o", "json", "--no-progress", *args]) == 0
    out = json.loads(capsys.readouterr().out)
    return {k: v for k, v in out.items() if k not in TIMINGS}


def test_a_window_replays_as_the_workload_cut_to_it(tmp_path: Path, examples: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    pods = examples / "workloads" / "pods-sample.csv"
    header, *rows = pods.read_text().splitlines()
    inside = [r for r in rows if 2000 <= float(r.split(",")[8]) < 5000]  # creation_time: the arrival
    assert 0 < len(inside) < len(rows)
    cut = tmp_path / "cut.csv"
    cut.write_text("\n".join([header, *inside]) + "\n")
    fleet = examples / "fleet.yaml"
    windowed = _report(capsys, fleet, pods, "--from", "2000", "--until", "5000")
    assert windowed["jobs_total"] == len(inside)
    assert windowed == _report(capsys, fleet, cut)
    # one bound alone: the rest of the workload on that side
    assert _report(capsys, fleet, pods, "--until", "2000")["jobs_total"] == \
        sum(float(r.split(",")[8]) < 2000 for r in rows)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--from", "5000", "--until", "2000"], "federator sim: --until: must be after --from (5000), got 2000"),
        (["--from", "-1"], "federator sim: --from: must be a non-negative number of simulated seconds, got -1"),
        (["--until", "inf"], "federator sim: --until: must be a non-negative number of simulated seconds, got inf"),
        (["--from", "20000"], "federator sim: --from/--until: no job arrives in [20000, -) simulated seconds; "
                              "the workload's arrivals run from 17 to 10152"),
    ],
    ids=["until-before-from", "negative", "infinite", "empty-window"],
)
def test_a_window_that_cannot_be_one_is_refused_naming_the_flag(examples: Path, capsys: pytest.CaptureFixture[str],
                                                                args: list[str], words: str) -> None:
    rc = main(["sim", "--fleet", str(examples / "fleet.yaml"), "--workload",
               str(examples / "workloads" / "pods-sample.csv"), "--mode", "replay", *args])
    assert rc == 2
    assert capsys.readouterr().err.strip() == words
