"""`federator get jobs -o wide` RUN: how long a job has run over its attempts, beside its spec.maxRunSeconds, so a
user sees the federator's clock before it stops the job (server/run_limits.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from federator.cli.output import job_rows, run_time
from federator.jobfile import parse_job
from federator.model import Job, JobId, JobPhase, JobSpec


def spec(name: str) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
                      "spec": {"kind": "training", "resources": {"nvidia.com/gpu": 8}}})


@pytest.mark.parametrize(("limit", "started_at", "ran_seconds", "finished_at", "shown"), [
    (0, 0.0, 0.0, 0.0, "-"),
    (7_200, 0.0, 0.0, 0.0, "-/2h0m0s"),
    (7_200, 1_000.0, 0.0, 0.0, "1h0m5s/2h0m0s"),
    (7_200, 0.0, 400.0, 0.0, "6m40s/2h0m0s"),  # queued again after an attempt: its time is kept
    (0, 1_000.0, 400.0, 0.0, "1h6m45s"),
    (7_200, 1_000.0, 0.0, 1_600.0, "10m0s/2h0m0s"),  # ended: its run stops at its end
], ids=["never-ran", "limit-not-started", "running", "between-attempts", "no-limit", "ended"])
def test_run_time(limit: int, started_at: float, ran_seconds: float, finished_at: float, shown: str) -> None:
    job = Job(job_id=JobId("j"), spec=replace(spec("j"), max_run_seconds=limit), submitted_at=900.0,
              phase=JobPhase.SUCCEEDED if finished_at else JobPhase.RUNNING, started_at=started_at,
              ran_seconds=ran_seconds, finished_at=finished_at)
    assert run_time(job, now=4_605.0) == shown


def test_the_wide_table_has_a_run_column() -> None:
    job = Job(job_id=JobId("j"), spec=replace(spec("j"), max_run_seconds=60), submitted_at=900.0)
    headers, (row,) = job_rows([job], wide=True)
    assert row[headers.index("RUN")] == "-/1m0s"
    assert "RUN" not in job_rows([job], wide=False)[0]
