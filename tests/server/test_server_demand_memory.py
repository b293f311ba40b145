"""The live federator remembers what ended jobs asked for, and hands it to every cycle as the demand's memory
(scheduler/demand.py): a federator that sees a handful of pending jobs, or has just restarted, would
otherwise steer by them alone."""

from __future__ import annotations

from dataclasses import replace

from server_support import Clock, MemoryStore, join, make, spec

from federator.model import JobPhase
from federator.scheduler import Arrival


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

