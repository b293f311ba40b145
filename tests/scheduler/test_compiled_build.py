"""The compiled build of the placement core (setup.py, `FEDERATOR_COMPILE=1`) is what the image runs.

`make test` runs the scheduler, model and simulator tests twice: on the interpreted package, and on
build/compiled (scripts/build_compiled.py) with FEDERATOR_EXPECT_COMPILED=1, which the last test
here checks is what that pass really imported, so it cannot quietly test the interpreted code again.
build/compiled is the wheel `pip install .` builds, unpacked, so that pass is also where a file the
package needs but does not ship (package data) shows up.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

import federator.scheduler

from support import ROOT


def _listed() -> list[str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return list(tomllib.load(f)["tool"]["federator"]["compiled"])


def test_the_compiled_modules_are_the_pure_core() -> None:
    listed = _listed()
    assert listed == sorted(set(listed))
    for name in listed:
        assert name.startswith(("federator.scheduler.", "federator.model.")), f"{name}: not the pure core"
        importlib.import_module(name)


def test_the_core_runs_all_compiled_or_all_interpreted() -> None:
    kinds = {name: (importlib.import_module(name).__file__ or "").endswith(tuple(EXTENSION_SUFFIXES))
             for name in _listed()}
    assert set(kinds.values()) == {federator.scheduler.COMPILED}, kinds


def test_the_compiled_pass_imports_the_compiled_build() -> None:
    if os.environ.get("FEDERATOR_EXPECT_COMPILED") != "1":
        pytest.skip("the interpreted pass; `make test` runs these tests again on build/compiled")
    assert federator.scheduler.COMPILED, federator.scheduler.__file__


def test_the_package_ships_the_demos_fleet_and_jobs() -> None:
    """`federator demo`'s defaults are the imported package's own files, not a checkout's: a pip install
    or the image has no examples/ folder (the demo said `examples/fleet.yaml: cannot read` there)."""
    from federator.cli.demo import EXAMPLES

    assert Path(federator.__file__).resolve().parent in EXAMPLES.parents, EXAMPLES
    assert (EXAMPLES / "fleet.yaml").is_file()
    shipped = sorted(p.name for p in (EXAMPLES / "jobs").glob("*.yaml"))
    assert shipped == sorted(p.name for p in (ROOT / "examples" / "jobs").glob("*.yaml")), shipped


def test_the_shipped_package_runs_the_demo(tmp_path: Path) -> None:
    """The demo as the image or a pip install runs it: from the built package, away from any checkout."""
    if os.environ.get("FEDERATOR_EXPECT_COMPILED") != "1":
        pytest.skip("the interpreted pass runs the demo from the checkout (tests/e2e); this is the built package")
    package = Path(federator.__file__).resolve().parents[1]  # this pass's build/compiled, as an absolute path
    done = subprocess.run([sys.executable, "-m", "federator", "demo", "--insecure", "--workdir", str(tmp_path / "w")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "PYTHONPATH": str(package)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "GangDoesNotFit" in done.stdout, done.stdout[-2000:]
    assert "Succeeded" in done.stdout


def test_a_bad_compile_switch_is_named_not_ignored() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "setup.py"), "--name"], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "FEDERATOR_COMPILE": "yes"})
    assert done.returncode != 0
    assert "FEDERATOR_COMPILE: must be 1" in done.stderr and "'yes'" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_metrics_say_which_build_runs() -> None:
    from prometheus_client import generate_latest

    from federator import __version__
    from federator.metrics import Metrics

    build = "compiled" if os.environ.get("FEDERATOR_EXPECT_COMPILED") == "1" else "interpreted"
    text = generate_latest(Metrics().registry).decode()
    assert f'federator_build_info{{scheduler="{build}",version="{__version__}"}} 1.0' in text


def test_the_cycle_sums_per_pool_exactly_the_scores_that_score_a_pool() -> None:
    """The plugins' Protocols are not runtime-checkable (mypyc cannot compile that), so the cycle splits the
    scores by name: a pool score left out of POOL_SCORES would be called without a pool."""
    from federator.scheduler import Scheduler, SchedulerConfig
    from federator.scheduler.plugins import POOL_SCORES, SCORES

    assert POOL_SCORES == {name for name, make in SCORES.items() if hasattr(make(), "pool_score")}
    every = Scheduler(SchedulerConfig(score_weights={name: 1 for name in SCORES}))
    assert {s.name for s, _ in every.pool_scores} == POOL_SCORES
    assert {s.name for s, _ in every.scores} == set(SCORES) - POOL_SCORES
