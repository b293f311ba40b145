"""A job the scheduler judged can never run is left out of the oldest-pending age and counted on its own.

Outside QA (ops, F9): `gang-queued`, 64 x 8 H100 in a queue whose quota is 48 H100, sat Pending with "more than
the whole quota: it can never run in this queue", and `federator_oldest_pending_job_age_seconds` counted it, so
FederatorJobsPendingTooLong fired for its queue after 4 hours and for good, hiding the starvation of the queue's
other jobs. It is `federator_never_runnable_jobs` now (alert FederatorJobsNeverRunnable, for the tenant).
"""

from __future__ import annotations

from server_support import Clock, MemoryStore, join, make

from federator.metrics import Metrics
from federator.model import NeverRunnable
from federator.scheduler import Scheduler
from federator.scheduler.policy import parse_policy
from federator.server.state_sample import state_sample

from builders import job

POLICY = "queues: {research: {quota: {accelerators: {H100: 16}}}}\n"


def _gauge(metrics: Metrics, name: str) -> dict[str, float]:
    return {s.labels["queue"]: s.value for f in metrics.registry.collect() if f.name == name for s in f.samples}


def _never(metrics: Metrics) -> dict[tuple[str, str], float]:
    """federator_never_runnable_jobs by (queue, reason)."""
    return {(s.labels["queue"], s.labels["reason"]): s.value for f in metrics.registry.collect()
            if f.name == "federator_never_runnable_jobs" for s in f.samples}


def test_a_never_runnable_job_is_counted_apart_from_the_oldest_pending_age() -> None:
    clock, metrics = Clock(), Metrics()
    fed = make(MemoryStore(), clock, metrics=metrics, scheduler=Scheduler(parse_policy(POLICY)))
    metrics.watch_state(lambda: state_sample(fed))
    join(fed, "c-1")  # 4 nodes x 8 H100
    big = fed.submit(job("gang-queued", gpus=8, replicas=4, models=("H100",), queue="research"))  # 32 > all 16
    clock.now += 600
    held = fed.submit(job("held", gpus=8, replicas=2, models=("H100",), queue="research"))  # the whole quota
    waits = fed.submit(job("waits", gpus=8, models=("H100",), queue="research"))  # waits for `held`: may yet run
    fed.schedule_once()
    assert fed.jobs[held.job_id].placements
    assert fed.jobs[big.job_id].pending_reason.never  # type: ignore[union-attr]
    assert not fed.jobs[waits.job_id].pending_reason.never  # type: ignore[union-attr]
    clock.now += 100
    assert _gauge(metrics, "federator_oldest_pending_job_age_seconds") == {"research": 100.0}  # `waits`, not 700 s
    assert _never(metrics) == {("research", "quota"): 1.0}


def test_without_such_jobs_the_count_has_no_series() -> None:
    clock, metrics = Clock(), Metrics()
    fed = make(MemoryStore(), clock, metrics=metrics)
    metrics.watch_state(lambda: state_sample(fed))
    fed.submit(job("waits", gpus=8, models=("H100",)))  # no cluster: it waits, and may yet run
    fed.schedule_once()
    clock.now += 50
    assert _gauge(metrics, "federator_oldest_pending_job_age_seconds") == {"default": 50.0}
    assert _never(metrics) == {}


def test_a_gang_larger_than_every_cluster_is_counted_as_the_fleets_and_left_out_of_the_age() -> None:
    """Outside SRE QA, F11: a gang no member could hold even empty kept FederatorJobsPendingTooLong firing."""
    clock, metrics = Clock(), Metrics()
    fed = make(MemoryStore(), clock, metrics=metrics)
    metrics.watch_state(lambda: state_sample(fed))
    join(fed, "c-1")  # 4 nodes x 8 H100: 32 in all
    join(fed, "c-2")
    big = fed.submit(job("gang-too-big", gpus=8, replicas=5, models=("H100",), queue="qa-tenant"))  # 40 > 32
    clock.now += 600
    full = [fed.submit(job(f"fills-{i}", gpus=8, replicas=4, models=("H100",), queue="qa-tenant")) for i in (1, 2)]
    fed.schedule_once()
    assert all(fed.jobs[j.job_id].placements for j in full)
    waits = fed.submit(job("waits", gpus=8, replicas=4, models=("H100",), queue="qa-tenant"))  # fits, once empty
    fed.schedule_once()
    reason = fed.jobs[big.job_id].pending_reason
    assert reason is not None and reason.never is NeverRunnable.FLEET, reason
    assert "the largest, c-1, has 32" in reason.message and "never run as the fleet stands" in reason.message
    assert fed.jobs[waits.job_id].pending_reason.never is None  # type: ignore[union-attr]
    clock.now += 100
    assert _gauge(metrics, "federator_oldest_pending_job_age_seconds") == {"qa-tenant": 100.0}  # `waits`, not 700 s
    assert _never(metrics) == {("qa-tenant", "fleet"): 1.0}
