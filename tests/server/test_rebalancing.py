"""Serving replicas move back near their users when room returns (server/rebalancing.py), make before break.

Outside QA (inference team, chat serving): after west, their `regions.preferred`, was full for a while, their
replicas sat in east at 70-120 ms for good while west stood empty again; nothing moved them back but a later
scale-down. Now the new replicas are placed in west first, and only once they serve are as many taken from east.
"""

from __future__ import annotations

import pytest
from server_support import Clock, MemoryStore, capacity, join, make
from test_partial_failover import drain, running_on

from federator.jobfile import parse_job
from federator.model import Job, JobPhase, JobSpec
from federator.server.federator import ClusterRecord, Federator
from federator.server.orders import CancelOrder, LaunchOrder
from federator.server.rebalancing import RETRY_SECONDS


def chat(*, replicas: int = 4, preferred: tuple[str, ...] = ("west",)) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "chat"},
                      "spec": {"kind": "inference", "replicas": replicas, "regions": {"preferred": list(preferred)},
                               "resources": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 1}}})


def moves(fed: Federator) -> dict[str, float]:
    """federator_rebalance_moves_total by outcome, the ones counted."""
    return {s.labels["outcome"]: s.value for m in fed.metrics.registry.collect()
            if m.name == "federator_rebalance_moves" for s in m.samples if s.name.endswith("_total") and s.value}


@pytest.fixture
def clock() -> Clock:
    return Clock()


def spilled_to_east(fed: Federator) -> tuple[Job, ClusterRecord, ClusterRecord]:
    """`chat` (preferred west) placed whole in east while west was full, running there."""
    west, east = join(fed, "west-1", region="west"), join(fed, "east-1", region="east")
    fed.report(west, capacity(free=0))
    job = fed.submit(chat())
    fed.schedule_once()
    assert [(p.cluster, p.replicas) for p in job.placements] == [("east-1", 4)]
    running_on(fed, job, west, east)
    return job, west, east


def test_a_job_spilled_to_east_moves_back_to_west_when_west_frees_up(clock: Clock) -> None:
    fed = make(MemoryStore(), clock)
    job, west, east = spilled_to_east(fed)
    (far,) = job.placements
    fed.schedule_once()
    assert drain(west) == [] and drain(east) == [] and moves(fed) == {}  # west is still full: nothing moves

    clock.now += RETRY_SECONDS  # a job no room was found for is asked again after this
    fed.report(west, capacity(free=8))  # west has room again
    fed.schedule_once()
    # make: the new replicas are placed in west first, the far ones keep serving
    assert sorted((p.cluster, p.replicas, p.phase) for p in job.placements) == [
        ("east-1", 4, JobPhase.RUNNING), ("west-1", 4, JobPhase.PLACED)]
    assert job.phase is JobPhase.RUNNING
    assert job.message.startswith("moving 4 replicas from east to west, nearer your users")
    assert [type(o) for o in drain(west)] == [LaunchOrder] and drain(east) == []
    assert moves(fed) == {"started": 1.0}

    clock.now += 5
    fed.schedule_once()  # west's part has not started yet: nothing is taken
    assert drain(east) == [] and sum(p.replicas for p in job.placements) == 8

    (near,) = [p for p in job.placements if p.cluster == "west-1"]
    fed.acked(west, near.placement_id)
    fed.job_update(west, near.placement_id, JobPhase.RUNNING, "4 of 4 replicas running")
    clock.now += 5
    fed.schedule_once()
    # break: only now are the far ones stopped, and the job is back at its count, all in west
    assert [o.placement_id for o in drain(east) if isinstance(o, CancelOrder)] == [far.placement_id]
    assert [(p.cluster, p.replicas) for p in job.placements] == [("west-1", 4)]
    assert job.phase is JobPhase.RUNNING and job.replicas_waiting == 0 and job.pending_reason is None
    assert job.message.startswith("moved 4 replicas from east to west, nearer your users")
    assert moves(fed) == {"started": 1.0, "completed": 1.0}
    assert fed.store.docs[job.job_id].placements[0].cluster == "west-1"  # stored

    clock.now += 5
    fed.schedule_once()
    assert drain(west) == [] and drain(east) == []  # settled: nothing more


def test_new_replicas_that_are_refused_take_nothing_away(clock: Clock) -> None:
    fed = make(MemoryStore(), clock)
    job, west, east = spilled_to_east(fed)
    (far,) = job.placements
    fed.report(west, capacity(free=8))
    fed.schedule_once()
    (near,) = [p for p in job.placements if p.cluster == "west-1"]
    drain(west)
    fed.refused(west, near.placement_id, "no room after all")
    clock.now += 5
    fed.schedule_once()
    assert [(p.placement_id, p.phase) for p in job.placements] == [(far.placement_id, JobPhase.RUNNING)]
    assert drain(east) == [] and job.phase is JobPhase.RUNNING and job.replicas_waiting == 0
    assert job.message.startswith("could not move 4 replicas to west: they keep serving in east")
    assert moves(fed) == {"started": 1.0, "failed": 1.0}


def test_a_restart_mid_move_takes_the_far_surplus_once_the_near_replicas_serve(clock: Clock) -> None:
    store = MemoryStore()
    fed = make(store, clock)
    job, west, east = spilled_to_east(fed)
    (far,) = job.placements
    fed.report(west, capacity(free=8))
    fed.schedule_once()
    (near,) = [p for p in job.placements if p.cluster == "west-1"]

    clock.now += 5
    fed = make(store, clock)  # restarted mid-move: the surge placement is stored, the move in flight is not
    west = fed.connect(cluster="west-1", region="west", labels={})
    east = fed.connect(cluster="east-1", region="east", labels={})
    fed.report(west, capacity(near.placement_id, free=7))
    fed.report(east, capacity(far.placement_id, free=4))
    job = fed.jobs[job.job_id]
    assert sum(p.replicas for p in job.placements) == 8
    fed.job_update(east, far.placement_id, JobPhase.RUNNING, "4 of 4 replicas running")
    fed.job_update(west, near.placement_id, JobPhase.PLACED, "starting")
    fed.schedule_once()
    assert not [o for o in drain(west) + drain(east) if isinstance(o, CancelOrder)]  # the near one still starts

    fed.job_update(west, near.placement_id, JobPhase.RUNNING, "4 of 4 replicas running")
    fed.schedule_once()
    assert [o.placement_id for o in drain(east) if isinstance(o, CancelOrder)] == [far.placement_id]
    assert [p.placement_id for p in job.placements] == [near.placement_id]  # the new near one kept
