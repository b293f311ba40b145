"""The compiled build of the placement core (setup.py, `FEDERATOR_COMPILE=1`) is what the image runs.

`make test` runs the scheduler, model and simulator tests twice: on the interpreted package, and on
build/compiled (scripts/build_compiled.py) with FEDERATOR_EXPECT_COMPILED=1, which the last test
here checks is what that pass really imported, so it cannot quietly test the interpreted code again.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib
from importlib.machinery import EXTENSION_SUFFIXES

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
