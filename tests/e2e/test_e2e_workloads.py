"""The kubectl files users bring their own workloads in are the files `federator submit -f` takes too.

Simulated clusters run any kind's pod sets, so a JobSet and a LeaderWorkerSet
go the whole way (placed as their pod sets say, run, done) over real processes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from federator.cli.get import list_jobs
from federator.local import LocalFederation
from federator.model import Job, JobPhase

from support import EXAMPLES, eventually

pytestmark = pytest.mark.e2e


def cli(fed: LocalFederation, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "federator", *args, *fed.client_args()], capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout


def job_named(fed: LocalFederation, name: str) -> Job:
    return next(j for j in list_jobs(fed.client) if j.spec.name == name)


def test_submit_takes_the_kubectl_files_of_brought_workloads(federation: LocalFederation, tmp_path: Path) -> None:
    cli(federation, "submit", "-f", str(EXAMPLES / "k8s" / "jobset.yaml"))
    lws_file = yaml.safe_load((EXAMPLES / "k8s" / "lws-inference.yaml").read_text())
    for template in lws_file["spec"]["workload"]["spec"]["leaderWorkerTemplate"].values():
        if isinstance(template, dict):  # 2 GPUs a pod: the demo fleet's busy east-1 has room for some groups
            res = template["spec"]["containers"][0]["resources"]
            res["requests"]["nvidia.com/gpu"] = res["limits"]["nvidia.com/gpu"] = 2
    (tmp_path / "lws.yaml").write_text(yaml.safe_dump(lws_file))
    cli(federation, "submit", "-f", str(tmp_path / "lws.yaml"))
    jobset = eventually(lambda: (j := job_named(federation, "pretrain")).phase is not JobPhase.PENDING and j,
                        what="the JobSet placed")
    assert (jobset.spec.kind.value, jobset.spec.replicas, jobset.spec.resources.accelerator_milli) == (
        "training",
        2,
        8000,
    )
    assert len(jobset.placements) == 1  # a training kind is a gang in one cluster
    lws = eventually(lambda: (j := job_named(federation, "llm-serve")).phase is not JobPhase.PENDING and j,
                     what="the LWS placed")
    assert lws.spec.group_size == 2 and sum(p.replicas for p in lws.placements) == 4
    assert all(p.replicas % 2 == 0 for p in lws.placements)  # whole groups (leader + worker) per cluster
    assert len({p.region for p in lws.placements}) >= 2  # regions.minRegions: 2

    jobs = cli(federation, "get", "jobs", "-o", "wide")
    header, *rows = jobs.splitlines()
    assert "WORKLOAD" in header
    assert any("pretrain" in r and "JobSet" in r for r in rows) and any("LeaderWorkerSet" in r for r in rows)
    clusters = cli(federation, "get", "clusters", "-o", "wide")
    assert "WORKLOAD KINDS" in clusters and "JobSet" in clusters, clusters
