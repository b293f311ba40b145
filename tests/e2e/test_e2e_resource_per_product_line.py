"""`huawei.com/Ascend310P: 1` runs on Ascend 310P devices only, through the whole path a user takes: `federator
submit -f` (the CLI's job file reader), the wire, Submit's re-read, the store, the scheduler and a real
(simulated) agent's Launch, whose placement names the resource its pods ask (outside QA, vendors round 2, R2:
one replica of a 310P job ran on a 910B3 chip, its pod asking huawei.com/Ascend910, and a 910 job took 310P3s).
One member with both Huawei product lines, as the QA's member-b: 4 x 310P3 (2 used) and 8 x 910B3."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from federator.cli.get import list_clusters, list_jobs
from federator.local import LocalFederation
from federator.model import Job, JobPhase

from support import eventually

A910, A310P = "huawei.com/Ascend910", "huawei.com/Ascend310P"
FLEET = {"clusters": [{"name": "member-b", "region": "west", "nodes": [
    {"count": 1, "vendor": "huawei", "model": "Ascend310P3", "accelerators": 4, "busy": 2, "cpu": 32,
     "memory": "128Gi"},
    {"count": 1, "vendor": "huawei", "model": "Ascend910B3", "accelerators": 8, "cpu": 96, "memory": "512Gi"},
]}]}


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[LocalFederation]:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(yaml.safe_dump(FLEET))
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=fleet,
                          serve_args=["--report-interval", "0.5", "--cycle-interval", "0.2"])
    fed.start_server()
    fed.start_agent("member-b")
    try:
        eventually(lambda: all(c["capacity"] is not None for c in list_clusters(fed.client)),
                   what="the agent to report")
        yield fed
    finally:
        fed.stop()


def _submit(fed: LocalFederation, tmp_path: Path, name: str, resource: str, replicas: int) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
        "spec": {"kind": "inference", "replicas": replicas,
                 "resources": {"cpu": "1", "memory": "4Gi", resource: 1}}}))
    done = subprocess.run([sys.executable, "-m", "federator", "submit", "-f", str(path), *fed.client_args()],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done


def _job(fed: LocalFederation, name: str) -> Job:
    (job,) = [j for j in list_jobs(fed.client) if j.spec.name == name]
    return job


def _where(job: Job) -> list[tuple[str, str, int]]:
    return sorted((p.accelerator_model, p.accelerator_resource, p.replicas) for p in job.placements)


def test_each_product_line_is_served_by_its_own_resource(federation: LocalFederation, tmp_path: Path) -> None:
    _submit(federation, tmp_path, "a910x7", A910, 7)
    placed = eventually(lambda: _job(federation, "a910x7").phase is JobPhase.RUNNING and _job(federation, "a910x7"),
                        what="a910x7 to run")
    assert _where(placed) == [("Ascend910B3", A910, 7)]  # the 310P3s were free too: none taken
    assert [a.resource_name for a in placed.spec.accelerators] == [A910]

    # One 910B3 device is left and two 310P3s: three 310P replicas wait rather than take the 910B3.
    _submit(federation, tmp_path, "p310x3", A310P, 3)
    waiting = eventually(lambda: (j := _job(federation, "p310x3")).pending_reason is not None and j,
                         what="p310x3 to be judged")
    assert waiting.placements == [] and waiting.phase is JobPhase.PENDING

    _submit(federation, tmp_path, "p310x2", A310P, 2)
    placed = eventually(lambda: _job(federation, "p310x2").phase is JobPhase.RUNNING and _job(federation, "p310x2"),
                        what="p310x2 to run")
    assert _where(placed) == [("Ascend310P3", A310P, 2)]
    assert _job(federation, "p310x3").placements == []
