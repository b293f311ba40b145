"""Scaling up a spread job open to two models under per-model quotas (audit F3): the rest is capped by what the
queue holds, the job's own running parts included, so no model's quota is ever passed.

A job of 4 x 8 accelerators open to H100 and A100, in a queue with quotas of 24 H100 and 16 A100, runs on both
models (charged in full against each, it waited for ever). Scaled to 5 its rest of one replica fits what the
quotas have left; scaled to 6 it does not, and waits with the quota named while its placed replicas serve on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
from server_support import Clock, MemoryStore, make
from test_partial_failover import running_on

from federator.jobfile import parse_job
from federator.model import Job, JobPhase, JobSpec, ReasonCode
from federator.scheduler import Scheduler
from federator.scheduler.policy import policy_from_document
from federator.server.federator import ClusterRecord, Federator

from builders import cluster, pool

H100 = "NVIDIA-H100-80GB-HBM3"
A100 = "NVIDIA-A100-SXM4-80GB"
QUOTA = {H100: 24, A100: 16}


@pytest.fixture
def clock() -> Clock:
    return Clock()


def serve(replicas: int = 4) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "serve"},
                      "spec": {"kind": "inference", "replicas": replicas, "acceleratorModels": ["H100", "A100"],
                               "resources": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 8}}})


def join_both(fed: Federator, name: str, region: str) -> ClusterRecord:
    rec = fed.connect(cluster=name, region=region, labels={})
    fed.report(rec, replace(cluster(name, region, pool(H100, nodes=4), pool(A100, nodes=4)).capacity,
                            placement_ids=frozenset()))
    return rec


def accelerators(job: Job) -> Counter[str]:
    got: Counter[str] = Counter()
    for p in job.placements:
        got[p.accelerator_model] += p.replicas * 8
    return got


def within_quota(job: Job) -> bool:
    return all(n <= QUOTA[m] for m, n in accelerators(job).items())


def test_a_scaled_up_spread_job_stays_within_every_per_model_quota(clock: Clock) -> None:
    policy = policy_from_document({"queues": {"default": {"quota": {"accelerators": {"H100": 24, "A100": 16}}}}})
    fed = make(MemoryStore(), clock, scheduler=Scheduler(policy))
    a, b = join_both(fed, "a", "east"), join_both(fed, "b", "west")
    job = fed.submit(serve())
    fed.schedule_once()
    assert sum(p.replicas for p in job.placements) == 4, job.pending_reason
    assert within_quota(job)
    running_on(fed, job, a, b)

    fed.scale(job.job_id, 5)  # one more: the quotas hold 40 accelerators, the job then 40
    fed.schedule_once()
    assert sum(p.replicas for p in job.placements) == 5 and job.replicas_waiting == 0, job.pending_reason
    assert accelerators(job) == Counter({H100: 24, A100: 16})
    running_on(fed, job, a, b)

    fed.scale(job.job_id, 6)  # both quotas are full: the rest waits, the five serve on
    fed.schedule_once()
    assert job.replicas_waiting == 1 and job.phase is JobPhase.RUNNING and within_quota(job)
    assert job.pending_reason is not None and job.pending_reason.code is ReasonCode.QUOTA_EXCEEDED
    message = job.pending_reason.message
    assert "on H100: 24 accelerators, too few left: the job needs 8" in message, message
    assert "on A100: 16 accelerators, too few left: the job needs 8" in message, message
