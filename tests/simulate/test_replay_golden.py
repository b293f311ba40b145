"""A replay's whole report, pinned: a change made to speed replays up (outside planners' QA P13) must leave
every placement and every figure as it was.

The goldens were written by the code before any such change (`python tests/simulate/test_replay_golden.py`
rewrites them: only ever on purpose, when a change of answers is meant). Each is the report `federator sim
--mode replay -o json` prints, its timings left out, and every job's record (`--jobs-out`: where it ran,
when, for how long, and why a job never ran) by its digest. Two inputs: the shipped example (3 clusters, 500 pods, a
backlog that never fits) and a small national-shaped one (40 clusters in 31 provinces, 1,500 pods arriving
every 25 s: bench/national_inputs.py, the generator of bench/replay_national.py, at 1/25 scale).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import pytest

from federator.simulate import Simulation, load_fleet_file, load_workload

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from national_inputs import write_national  # noqa: E402  (bench/ is not a package)

GOLDEN = Path(__file__).with_name("golden")
TIMINGS = ("placements_per_second", "decision_latency_p50_seconds", "decision_latency_p99_seconds",
           "scheduler_seconds", "wall_seconds", "rollout_seconds")


def replayed(fleet: Path, workload: Path, interval: float) -> dict[str, object]:
    """The report as `-o json` has it, timings out, through JSON (so floats compare as printed), and the job records
    as their count and the SHA-256 of their canonical JSON: the records are 95% of a report (0.7 MB for these two
    inputs), so the golden keeps their digest, and every figure whole so a failure names the one that moved."""
    spec = load_fleet_file(fleet)
    report = Simulation(spec, load_workload(workload, fleet=spec), cycle_interval=interval).run("replay")
    out = {k: v for k, v in report.to_json().items() if k not in TIMINGS}
    records = json.dumps([dataclasses.asdict(r) for r in report.jobs], sort_keys=True, separators=(",", ":"))
    out["jobs"] = {"count": len(report.jobs), "sha256": hashlib.sha256(records.encode()).hexdigest()}
    return json.loads(json.dumps(out))


def cases(folder: Path) -> dict[str, tuple[Path, Path, float]]:
    return {
        "example": (ROOT / "examples" / "fleet.yaml", ROOT / "examples" / "workloads" / "pods-sample.csv", 60.0),
        "mnat": (*write_national(folder, clusters=40, pods=1500, prefix="mnat"), 300.0),
    }


@pytest.mark.parametrize("name", ["example", "mnat"])
def test_a_replay_places_and_reports_as_before(tmp_path: Path, name: str) -> None:
    got = replayed(*cases(tmp_path)[name])
    want = json.loads((GOLDEN / f"replay_{name}.json").read_text())
    assert set(got) == set(want)
    for key in want:  # one key at a time: a failure names the figure that moved
        assert got[key] == want[key], key


if __name__ == "__main__":  # rewrite the goldens (on purpose only: see the docstring)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        for name, args in cases(Path(d)).items():
            (GOLDEN / f"replay_{name}.json").write_text(json.dumps(replayed(*args), indent=1) + "\n")
            print(name, file=sys.stderr)
