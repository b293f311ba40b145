"""End to end over real processes: a member whose agent runs `--pod-security restricted` is never sent a job
that only passes baseline; the job waits with the reason, and runs once a member that admits it reports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from federator.cli.get import list_clusters, list_jobs
from federator.cli.submit_calls import submit_specs
from federator.jobfile import parse_job
from federator.local import LocalFederation
from federator.model import Job, JobPhase, ReasonCode

from support import EXAMPLES, eventually

pytestmark = pytest.mark.e2e

BASELINE_ONLY = parse_job({
    "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
    "metadata": {"name": "plain", "annotations": {"federator.io/sim-duration": "1s"}},
    "spec": {"kind": "training", "replicas": 1, "resources": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 2},
             "acceleratorModels": ["H100"],
             "template": {"spec": {"containers": [{"name": "main", "image": "llm:1"}]}}}})


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[LocalFederation]:
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=EXAMPLES / "fleet.yaml",
                          serve_args=["--report-interval", "0.5", "--cycle-interval", "0.2"])
    fed.start_server()
    try:
        yield fed
    finally:
        fed.stop()


def _job(fed: LocalFederation) -> Job:
    (job,) = list_jobs(fed.client)
    return job


def test_a_restricted_member_is_never_sent_a_baseline_only_job(federation: LocalFederation) -> None:
    federation.start_agent("east-1", "--pod-security", "restricted")
    east = eventually(lambda: next(c for c in list_clusters(federation.client)
                                   if c["name"] == "east-1" and c["capacity"] is not None),
                      what="east-1 to report")
    assert dict(east["labels"])["federator.io/pod-security"] == "restricted"
    submit_specs(federation.client, [BASELINE_ONLY])
    job = eventually(lambda: (j := _job(federation)).pending_reason and
                     j.pending_reason.code is not ReasonCode.WAITING and j, what="a pending reason")
    assert job.phase is JobPhase.PENDING and not job.placements  # never offered to east-1, so never refused there
    assert job.pending_reason is not None and job.pending_reason.code is ReasonCode.POD_SECURITY
    assert "0/1 clusters fit: east-1 enforces restricted; the job needs baseline (" in job.pending_reason.message

    federation.start_agent("west-1")  # the default level, baseline: the job runs there
    done = eventually(lambda: (j := _job(federation)).phase is JobPhase.SUCCEEDED and j, timeout=60,
                      what="the job to run on west-1")
    assert [p.cluster for p in done.placements] == ["west-1"]
