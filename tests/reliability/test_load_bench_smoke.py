"""bench/load_agents.py, run tiny so it does not rot (the real numbers are in docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from support import ROOT

pytestmark = pytest.mark.e2e


def test_the_agent_load_benchmark_runs_and_places_what_it_submits() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "load_agents.py"), "--agents", "5", "--duration", "3",
                          "--warmup", "0.5", "--submit-rate", "2"], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["clusters_ready"] == 5 and result["tls"] is True
    assert result["submitted"] >= 4 and result["placed"] == result["submitted"]
