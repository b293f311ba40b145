"""A policy reload that narrows a queue's allowedRegions while its jobs run (server/outside_regions.py): the work
outside is said (a WARNING naming the job, its cluster and region), counted (federator_jobs_outside_allowed_regions)
and left running, and nothing of the queue is placed outside again. The wiring is the federator's own
(`Reloads`, `use_policy`), as tests/server/test_policy_reload.py's."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
from server_support import Clock, MemoryStore, join, make, spec

from federator.metrics import Metrics
from federator.model import JobPhase
from federator.security.audit import AuditLog
from federator.security.authz import Authorizer
from federator.server.policy_file import PolicyFile
from federator.server.policy_use import use_policy
from federator.server.reloads import Reloads
from federator.server.state_sample import state_sample

OPEN = "queues:\n  hosp-a: {weight: 1}\n  hosp-b: {weight: 1}\n"
FENCED = "queues:\n  hosp-a: {weight: 1, allowedRegions: [east]}\n  hosp-b: {weight: 1}\n"


def _outside(metrics: Metrics) -> dict[str, float]:
    return {s.labels["queue"]: s.value for f in metrics.registry.collect()
            if f.name == "federator_jobs_outside_allowed_regions" for s in f.samples}


def test_a_narrowed_fence_reports_the_work_outside_and_places_nothing_there_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(OPEN)
    policy = PolicyFile(path)
    fed = make(MemoryStore(), Clock())
    fed.set_scheduler_config(policy.current.config)
    authz = Authorizer(policy.current.tenancy)
    reloads = Reloads(fed.metrics, trust=None, serving=None, policy=policy, audit=AuditLog(tmp_path / "audit.log"))
    policy.subscribe(lambda old, new: use_policy(old, new, fed=fed, authz=authz))
    fed.metrics.watch_state(lambda: state_sample(fed))

    join(fed, "west-1", region="west")
    ran = fed.submit(replace(spec("ran-west"), queue="hosp-a"))
    other = fed.submit(replace(spec("other"), queue="hosp-b"))
    fed.schedule_once()
    assert [p.cluster for p in fed.jobs[ran.job_id].placements] == ["west-1"]
    assert _outside(fed.metrics) == {}

    path.write_text(FENCED)
    with caplog.at_level(logging.WARNING, logger="federator.server"):
        reloads.look()
    (said,) = [r.getMessage() for r in caplog.records if "runs outside the regions" in r.getMessage()]
    assert f"job {ran.job_id} (queue hosp-a)" in said and "(east, its queue's allowedRegions): west-1 (west)" in said
    assert _outside(fed.metrics) == {"hosp-a": 1}  # hosp-b's job in west is no one's concern
    assert fed.jobs[ran.job_id].phase is not JobPhase.PENDING  # left running: reported, not stopped

    late = fed.submit(replace(spec("late"), queue="hosp-a"))
    fed.schedule_once()
    assert fed.jobs[late.job_id].phase is JobPhase.PENDING  # west-1 has room, but not for hosp-a now
    join(fed, "east-1", region="east")
    fed.schedule_once()
    assert [p.cluster for p in fed.jobs[late.job_id].placements] == ["east-1"]
    assert fed.jobs[other.job_id].placements[0].cluster == "west-1"
