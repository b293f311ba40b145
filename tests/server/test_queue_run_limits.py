"""A queue's maxRunSeconds (policy file, Queue object): the run-time limit of its jobs that give none, and the cap
of those that give one (Submit refuses a longer one, naming spec.maxRunSeconds and the bound), as a network that
bills accelerator hours bounds each tenant's runs (server/run_limits.py, `SchedulerConfig.run_limit`)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from server_support import Clock, MemoryStore, join, make, spec

from federator.backends.kube.queues import queue_from_object
from federator.jobfile import MAX_RUN_SECONDS
from federator.model import JobPhase, ReasonCode
from federator.scheduler import PolicyError, QueueConfig, Scheduler, parse_policy
from federator.scheduler.config import RUN_SECONDS_LIMIT
from federator.server.intake import SubmitError

POLICY = """
queues:
  research: {maxRunSeconds: 3600}
  serving: {}
defaultQueue: {maxRunSeconds: 86400}
"""


def test_the_policy_reads_a_queues_bound_and_names_a_bad_one() -> None:
    config = parse_policy(POLICY)
    assert config.queues["research"] == QueueConfig(max_run_seconds=3600)
    assert config.max_run_seconds("research") == (3600, "queue 'research' maxRunSeconds")
    assert config.max_run_seconds("serving") == (86400, "defaultQueue.maxRunSeconds")  # listed, but no own bound
    assert parse_policy("").max_run_seconds("any") == (0, "")
    assert RUN_SECONDS_LIMIT == MAX_RUN_SECONDS  # one range for the job's field and the queue's bound
    for bad in (0, -1, RUN_SECONDS_LIMIT + 1, "1h", True):
        with pytest.raises(PolicyError, match=r"queues\.research\.maxRunSeconds: must be an integer from 1 to "
                                              r"7776000"):
            parse_policy(f"queues: {{research: {{maxRunSeconds: {bad!r}}}}}".replace("'", '"'))


def test_a_queue_object_takes_the_same_field() -> None:
    obj = {"apiVersion": "federator.io/v1alpha1", "kind": "Queue", "metadata": {"name": "research"},
           "spec": {"maxRunSeconds": 600}}
    assert queue_from_object(obj) == QueueConfig(max_run_seconds=600)


@pytest.mark.parametrize(("asked", "limit", "source"), [
    (0, 3600, "queue 'research' maxRunSeconds"),
    (600, 600, "spec.maxRunSeconds"),
    (3600, 3600, "spec.maxRunSeconds"),
], ids=["none-takes-the-queues", "shorter-is-its-own", "equal"])
def test_a_jobs_limit_is_the_shorter_of_its_own_and_its_queues(asked: int, limit: int, source: str) -> None:
    assert parse_policy(POLICY).run_limit("research", asked) == (limit, source)


def test_submit_refuses_a_limit_longer_than_the_queue_allows_naming_both() -> None:
    fed = make(MemoryStore(), Clock(), scheduler=Scheduler(parse_policy(POLICY)))
    with pytest.raises(SubmitError) as err:
        fed.submit(replace(spec("long"), queue="research", max_run_seconds=7200))
    assert str(err.value) == ("spec.maxRunSeconds: 7200 is above the longest queue 'research' allows, 3600 (queue "
                              "'research' maxRunSeconds); ask 3600 or less, or leave it out to run up to it")
    assert not fed.jobs
    fed.submit(replace(spec("short"), queue="research", max_run_seconds=3600))


def test_a_job_that_gives_no_limit_is_stopped_at_its_queues_and_a_shrunk_bound_applies_at_once() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock, scheduler=Scheduler(parse_policy(POLICY)))
    rec = join(fed, "member")
    job = fed.submit(replace(spec("open-ended"), queue="research"))
    fed.schedule_once()
    (p,) = job.placements
    fed.job_update(rec, p.placement_id, JobPhase.RUNNING, "")
    clock.now += 1800
    assert fed.run_limits.check() == []
    fed.set_scheduler_config(parse_policy(POLICY.replace("3600", "1200")))  # the operator shortened it
    clock.now += 1
    assert fed.run_limits.check() == [job]
    assert job.phase is JobPhase.FAILED and job.pending_reason is not None
    assert job.pending_reason.code is ReasonCode.DEADLINE_EXCEEDED
    assert job.message == ("ran 30m1s, past the limit of 1200s (20m0s, queue 'research' maxRunSeconds; the job "
                           "gave none shorter); the federator cancelled every placement")
