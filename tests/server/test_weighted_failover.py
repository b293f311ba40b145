"""The rest of a job with spec.regions.weights makes up each region's share (server/partial.py `kept_replicas`,
scheduler/weights.py): a lost cluster's part goes back to its own region, never to another region with room."""

from __future__ import annotations

from dataclasses import replace

from server_support import Clock, MemoryStore, join, make
from test_partial_failover import inference, lose, running_on

from federator.model import ClusterState, JobPhase


def test_a_lost_east_part_is_placed_again_in_east_not_in_west() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    a, b = join(fed, "east-a", region="east"), join(fed, "west-b", region="west")
    job = fed.submit(replace(inference("serve", replicas=4), region_weights=(("east", 3), ("west", 1))))
    fed.schedule_once()
    assert {p.cluster: p.replicas for p in job.placements} == {"east-a": 3, "west-b": 1}
    running_on(fed, job, a, b)

    c = join(fed, "east-c", region="east")  # room for east's 3 again; west-b has room for 3 more too
    lose(fed, clock, a, b, c)
    assert a.state is ClusterState.LOST and job.replicas_waiting == 3
    fed.schedule_once()
    assert {p.cluster: p.replicas for p in job.placements} == {"east-c": 3, "west-b": 1}
    assert job.phase is JobPhase.RUNNING and job.replicas_waiting == 0
