"""A real `federator serve` restarted with a queue's allowedRegions narrowed while it was down: the job left
running outside is named in a WARNING at start and counted in federator_jobs_outside_allowed_regions
(server/outside_regions.py), and a job of the queue submitted after waits rather than run outside (outside
compliance QA, C1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from federator.local import LocalFederation

from support import eventually, scraped

FLEET = """clusters:
  - name: west-1
    region: west
    nodes:
      - {count: 2, gpuModel: NVIDIA-H100-80GB-HBM3, gpus: 8, cpu: 96, memory: 1Ti}
"""
JOB = """apiVersion: federator.io/v1alpha1
kind: FederatedJob
metadata: {name: NAME}
spec: {kind: training, queue: hosp-a, resources: {nvidia.com/gpu: 8, cpu: "1"}}
"""


def _cli(fed: LocalFederation, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    return subprocess.run([sys.executable, "-m", "federator", *argv, *fed.client_args()],
                          capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.e2e
def test_a_fence_narrowed_across_a_restart_is_said_at_start_and_holds_new_work(tmp_path: Path) -> None:
    policy, fleet = tmp_path / "policy.yaml", tmp_path / "fleet.yaml"
    policy.write_text("queues:\n  hosp-a: {weight: 1}\n")
    fleet.write_text(FLEET)
    for name in ("before", "after"):
        (tmp_path / f"{name}.yaml").write_text(JOB.replace("NAME", name))
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=fleet, tls=False, serve_args=["--policy", str(policy)])
    log = fed.workdir / "federator.log"
    try:
        fed.start_server()
        fed.start_agent("west-1")
        assert _cli(fed, "submit", "-f", str(tmp_path / "before.yaml")).returncode == 0
        eventually(lambda: "Running" in _cli(fed, "get", "job", "before").stdout, what="the job runs in west")
        assert fed.server is not None
        fed.server.stop()
        policy.write_text("queues:\n  hosp-a: {weight: 1, allowedRegions: [east]}\n")
        fed.start_server()
        said = [line for line in log.read_text().splitlines() if "runs outside the regions" in line]
        assert said and "(queue hosp-a)" in said[-1] and "west-1 (west)" in said[-1], said
        eventually(lambda: scraped(fed.metrics_url, "federator_jobs_outside_allowed_regions", queue="hosp-a") == 1,
                   what="the gauge counts the job outside")
        assert _cli(fed, "submit", "-f", str(tmp_path / "after.yaml")).returncode == 0
        eventually(lambda: "allowedRegions" in _cli(fed, "get", "job", "after", "-o", "yaml").stdout,
                   what="the new job waits, its reason naming the queue's fence")
        assert "Pending" in _cli(fed, "get", "job", "after").stdout
    finally:
        fed.stop()
