"""`federator usage` bills MIG partitions at their worth: real serve, agent and CLI processes on a simulated member.

Eight 1g.10gb partitions of an 80 GB GPU (125m each), asked by name, hold one GPU: 0.11.0 billed them as eight.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_usage_processes import usage

from federator.cli.get import list_clusters, list_jobs
from federator.cli.job_files import read_specs
from federator.cli.submit_calls import submit_specs
from federator.local import LocalFederation
from federator.model import JobPhase, format_job_accelerators

from support import eventually

pytestmark = pytest.mark.e2e

MIG_1G = "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb"
FLEET = f"""clusters:
  - name: mig-1
    region: west
    labels: {{federator.io/provider: oregon-dc}}
    nodes:
      - {{count: 1, model: {MIG_1G}, accelerators: 16, cpu: 64, memory: 512Gi, sharing: MIG, unitMilli: 125}}
"""
JOB = f"""apiVersion: federator.io/v1alpha1
kind: FederatedJob
metadata:
  name: eight-slices
  annotations: {{federator.io/sim-duration: "4s"}}
spec:
  kind: training
  replicas: 8
  resources: {{cpu: "1", memory: 1Gi}}
  accelerators: [{{model: {MIG_1G}, count: 1}}]
"""


def test_eight_1g_10gb_partitions_asked_by_name_are_billed_as_one_gpu(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(FLEET)
    (tmp_path / "job.yaml").write_text(JOB)
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=tmp_path / "fleet.yaml",
                          serve_args=["--report-interval", "0.3", "--cycle-interval", "0.2"])
    try:
        fed.start_server()
        fed.start_agent("mig-1")
        eventually(lambda: [c["state"] for c in list_clusters(fed.client)] == ["Ready"], timeout=60,
                   what="the member to report its partitions")
        submit_specs(fed.client, read_specs([tmp_path / "job.yaml"]))
        eventually(lambda: [j.phase for j in list_jobs(fed.client)] in ([JobPhase.RUNNING], [JobPhase.SUCCEEDED]),
                   timeout=60, what="the job to run")
        [job] = list_jobs(fed.client)
        assert format_job_accelerators(job) == "1"  # `federator get jobs` ACCELERATORS: what it holds, not 8
        eventually(lambda: [j.phase for j in list_jobs(fed.client)] == [JobPhase.SUCCEEDED], timeout=60,
                   what="the job to succeed")
        got = usage(fed, "--by", "model")
        total = got["total"]["acceleratorSeconds"]  # type: ignore[index]
        assert 3.5 < total < 8  # one GPU's worth for the 4 s the simulated job runs (and a report's lag); 0.11.0: 32
        assert [r["key"] for r in got["rows"]] == [MIG_1G]  # type: ignore[attr-defined]
    finally:
        fed.stop()
