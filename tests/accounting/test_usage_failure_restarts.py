"""A job restarted after a failure (spec.failurePolicy, server/failure_restarts.py) is billed per run, as any
re-queued job: each placement to its own end, and its run-time clock summed over the runs."""

from __future__ import annotations

from pathlib import Path

from test_usage_requeued import Clock, join, records, start

from federator.jobfile import parse_job
from federator.model import JobPhase, ReasonCode
from federator.security.authz import Principal, stamp_owner


def test_each_run_of_a_restarted_job_is_billed_to_its_own_end(tmp_path: Path) -> None:
    clock = Clock()
    fed, usage = start(tmp_path / "db", clock)
    join(fed, "east")
    join(fed, "west")
    job = fed.submit(stamp_owner(parse_job({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "j"},
        "spec": {"kind": "training", "resources": {"cpu": "1", "nvidia.com/gpu": 8},
                 "failurePolicy": {"maxRestarts": 1}}}), Principal("alice")))
    runs = []
    for start_at, end_at in ((10.0, 5000.0), (6000.0, 8000.0)):
        fed.schedule_once()
        (p,) = job.placements
        clock.now = start_at
        fed.job_update(fed.clusters[p.cluster], p.placement_id, JobPhase.RUNNING, "")
        clock.now = end_at + 100  # heard a little late: billed to the end the agent said
        fed.job_update(fed.clusters[p.cluster], p.placement_id, JobPhase.FAILED, "NCCL timeout", ended_at=end_at)
        runs.append(p.placement_id)
        if start_at == 10.0:
            assert job.pending_reason is not None and job.pending_reason.code is ReasonCode.FAILED_RESTARTING
            assert job.ran_seconds == 4990.0
    assert job.phase is JobPhase.FAILED
    billed = records(usage)
    assert [(billed[pid].start, billed[pid].end) for pid in runs] == [(10.0, 5000.0), (6000.0, 8000.0)]
