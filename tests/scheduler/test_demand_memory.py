"""The demand's memory (scheduler/demand.py): the newest ended arrivals, read only while the cycle's own
pending and running work is a small sample."""

from __future__ import annotations

import pytest
from scenarios import A100, H100, spec

from federator.model import Resources
from federator.scheduler import Arrival
from federator.scheduler.demand import DemandMemory, demand_of

from builders import cluster, pool, request


def test_the_memory_keeps_the_newest_and_tops_the_demand_sample_up_only_while_live_work_is_short() -> None:
    """The memory is a prior that gives way: the newest ended arrivals fill the demand's sample up to
    `sample` replicas, after the pending and running work, and none once that work alone has as many."""
    a100, h100 = pool(A100, nodes=2), pool(H100, nodes=2)
    clusters = [cluster("c", "r", a100, h100)]
    eight = Resources(8_000, 2**30, 8_000)
    memory = DemandMemory(limit=2)
    for model in ("H100", "H100", "A100"):  # the first is forgotten
        memory.add(Arrival(eight, (model,), 1))
    assert len(memory) == 2
    assert [a.accelerator_models for a in memory.arrivals()] == [("A100",), ("H100",)]

    def pinned(requests: list, sample: int) -> dict[str, float]:  # type: ignore[type-arg]
        return demand_of(clusters, requests, [], memory.arrivals(), sample=sample).live.pinned

    assert pinned([], 1) == {A100: 8_000.0, H100: 0.0}  # the newest only
    assert pinned([], 2) == {A100: 8_000.0, H100: 8_000.0}
    live = [request(spec("now", gpus=1, replicas=2))]
    assert pinned(live, 2) == {A100: 0.0, H100: 0.0}  # live work has the sample: the memory gives way
    assert pinned(live, 3) == {A100: 8_000.0, H100: 0.0}
    with pytest.raises(ValueError, match="limit: must be at least 1"):
        DemandMemory(limit=0)
