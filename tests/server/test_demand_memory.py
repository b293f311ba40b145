"""The live federator remembers what ended jobs asked for, and hands it to every cycle as the demand's memory
(scheduler/demand.py): a federator that sees a handful of pending jobs, or has just restarted, would
otherwise steer by them alone."""

from __future__ import annotations

from dataclasses import replace

import pytest
from server_support import Clock, MemoryStore, join, make, spec

from federator.model import JobPhase, Resources
from federator.scheduler import Arrival
from federator.scheduler.demand import DemandMemory


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
    want = (Arrival(pinned.spec.resources, ("H100",), 3), Arrival(other.spec.resources, (), 1))
    assert fed.cycles.memory.arrivals() == want  # oldest first
    assert fed.cycles.plan().recent == want  # one of each kind
    restarted = make(store, clock)
    assert restarted.cycles.memory.arrivals() == want


def test_the_memory_sums_alike_work_and_forgets_the_oldest_past_its_limit() -> None:
    """The cycle reads one Arrival per kind of work, its replicas summed, over the last `limit` ended jobs."""
    one, two = Resources(1_000, 2**30, 1_000), Resources(1_000, 2**30, 2_000)
    memory = DemandMemory(limit=3)
    for arrival in (Arrival(one, (), 1), Arrival(two, ("A100",), 4), Arrival(one, (), 2)):
        memory.add(arrival)
    assert memory.kinds() == (Arrival(one, (), 3), Arrival(two, ("A100",), 4))
    memory.add(Arrival(two, ("A100",), 1))  # the first is forgotten
    assert memory.kinds() == (Arrival(one, (), 2), Arrival(two, ("A100",), 5))
    memory.add(Arrival(two, (), 1))
    memory.add(Arrival(two, (), 1))  # the second and the third are forgotten: no work of `one` is left
    assert memory.kinds() == (Arrival(two, ("A100",), 1), Arrival(two, (), 2))
    assert len(memory) == 3
    with pytest.raises(ValueError, match="limit: must be at least 1"):
        DemandMemory(limit=0)
