"""A placement its agent lost (lost_placements.py) is never placed again, whatever rule would have done it: the
early-failure rule for any job, the spread rule for a part of an inference job that failed after running. Its pods
may still run on the member, so placing it again would run it twice (backends/kube/stranded.py)."""

from __future__ import annotations

import pytest
from server_support import Clock, MemoryStore, join, make
from test_partial_failover import drain, spread_over_a_and_b

from federator.lost_placements import lost_message
from federator.model import JobPhase
from federator.server.orders import LaunchOrder


@pytest.mark.parametrize("after", [3.0, 3_600.0], ids=["early", "after-an-hour"])
def test_a_lost_part_of_a_spread_job_fails_the_job_and_is_not_placed_again(after: float) -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    job, a, b = spread_over_a_and_b(fed)
    pa = next(p for p in job.placements if p.cluster == "a")
    clock.now += after
    fed.heard(a), fed.heard(b)
    said = lost_message("a", "the placement runs in namespace w-research, which it no longer watches")
    fed.job_update(a, pa.placement_id, JobPhase.FAILED, said)
    assert job.phase is JobPhase.FAILED and not job.early_failure
    assert job.message == f"{said} (not placed again: its pods may still run on a, and the job would run twice)"
    c = join(fed, "c", region="north")
    fed.schedule_once()
    assert not any(isinstance(o, LaunchOrder) for o in drain(c))
    assert {p.cluster for p in job.placements} == {"a", "b"}
