"""The live federator remembers what ended jobs asked for, and hands it to every cycle as the demand's memory
(scheduler/demand.py): a federator that sees a handful of pending jobs, or has just restarted, would
otherwise steer by them alone."""

from __future__ import annotations

from dataclasses import replace

from server_support import Clock, MemoryStore, join, make, spec

from federator.model import JobPhase
from federator.scheduler import Arrival
from federator.server.federator import Federator


def test_an_ended_job_is_in_every_later_cycles_memory_and_after_a_restart() -> None:
    store, clock = MemoryStore(), Clock()
    fed = make(store, clock)
    join(fed, "east-1")
    pinned = fed.submit(replace(spec("pinned", gpus=2, replicas=3), accelerator_models=("H100",)))
    other = fed.submit(spec("other", gpus=1))
    fed.schedule_once()
    assert fed.cycles.plan().recent == ()  # placed, not ended: the cycle counts it as running
    clock.now += 10
    fed.cancel(pinned.job_id)
    assert fed.jobs[pinned.job_id].phase is JobPhase.CANCELLED
    clock.now += 10
    fed.cancel(other.job_id)
    want = (Arrival(other.spec.resources, (), 1), Arrival(pinned.spec.resources, ("H100",), 3))
    assert fed.cycles.plan().recent == want  # newest first
    restarted = make(store, clock)
    assert restarted.cycles.plan().recent == want


def test_the_memory_is_on_metrics_and_survives_a_restart() -> None:
    store, clock = MemoryStore(), Clock()
    fed = make(store, clock)
    join(fed, "east-1")
    jobs = [fed.submit(spec(f"j{i}", gpus=1)) for i in range(3)]
    fed.schedule_once()
    assert remembered(fed) == 0.0  # running, not ended
    for job in jobs[:2]:
        fed.cancel(job.job_id)
    assert remembered(fed) == 2.0
    assert remembered(make(store, clock)) == 2.0  # rebuilt from the store


def remembered(fed: Federator) -> float | None:
    return fed.metrics.registry.get_sample_value("federator_demand_memory_jobs")
