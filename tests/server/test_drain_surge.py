"""A drain's surge of a serving job (server/drain_surge.py) across a federator restart and at its bound: the
drained cluster's part is the one ended, whatever the scale-down would keep, and never double replicas for good."""

from __future__ import annotations

import asyncio
from pathlib import Path

from server_support import Clock, join
from test_drains import federator
from test_partial_failover import drain as outbox
from test_rebalancing import chat

from federator.model import JobPhase
from federator.model.cordon import Drain
from federator.server.orders import CancelOrder, LaunchOrder

DRAIN = Drain("admin", 1_000.0, "hardware swap")


def test_a_surge_left_by_a_restart_ends_the_drained_part_not_the_nearer_new_one(tmp_path: Path) -> None:
    db, clock = tmp_path / "fed.db", Clock()
    fed, store = federator(db, clock)
    west, east = join(fed, "west-1", region="west"), join(fed, "east-1", region="east")
    job = fed.submit(chat(replicas=2, preferred=("west",)))  # its users are in west, the cluster drained
    fed.schedule_once()
    [old] = job.placements
    assert (old.cluster, old.replicas) == ("west-1", 2)
    fed.acked(west, old.placement_id)
    fed.job_update(west, old.placement_id, JobPhase.RUNNING, "2 of 2 replicas running")
    asyncio.run(fed.cordons.drain("west-1", DRAIN))
    outbox(west)
    assert fed.drains.turn() == 1  # the surge: placed on east-1, nothing ended on west-1
    [new] = [p for p in job.placements if p.cluster == "east-1"]
    assert new.replicas == 2 and [type(o) for o in outbox(east)] == [LaunchOrder] and outbox(west) == []
    store.close()
    fed.store.close()  # the federator dies mid-surge

    fed, store = federator(db, clock)
    job = fed.jobs[job.job_id]
    assert sorted((p.cluster, p.phase) for p in job.placements) == \
        [("east-1", JobPhase.PLACED), ("west-1", JobPhase.RUNNING)]  # both stored: nothing lost
    west, east = join(fed, "west-1", old.placement_id, region="west"), join(fed, "east-1", region="east")
    assert [o.placement.placement_id for o in outbox(east) if isinstance(o, LaunchOrder)] == [new.placement_id]
    fed.schedule_once()  # the cycle and the rebalancer's turn, then the drain's
    fed.drains.turn()
    assert len([p for p in job.placements if p.phase.is_active]) == 2  # the new part starts: nothing ended
    outbox(west)
    fed.acked(east, new.placement_id)
    fed.job_update(east, new.placement_id, JobPhase.RUNNING, "2 of 2 replicas running")
    fed.schedule_once()  # the rebalancer sees the surplus first: it leaves a draining job to the drain
    fed.drains.turn()
    assert [p.placement_id for p in job.placements] == [new.placement_id]  # the drained part ended, not the new
    assert [o.placement_id for o in outbox(west) if isinstance(o, CancelOrder)] == [old.placement_id]
    assert outbox(east) == [] and job.pending_reason is None and job.phase is JobPhase.RUNNING
    assert "moved 2 replicas off cluster west-1" in job.message
    store.close()
    fed.store.close()


def test_at_the_bound_the_drained_part_ends_while_its_replacement_still_starts(tmp_path: Path) -> None:
    db, clock = tmp_path / "fed.db", Clock()
    fed, store = federator(db, clock)
    a = join(fed, "a", region="east")
    join(fed, "b", region="west")
    job = fed.submit(chat(replicas=1, preferred=("east",)))  # one replica: it too is surged, not ended first
    fed.schedule_once()
    [old] = job.placements
    assert old.cluster == "a"
    fed.acked(a, old.placement_id)
    fed.job_update(a, old.placement_id, JobPhase.RUNNING, "1 of 1 replicas running")
    asyncio.run(fed.cordons.drain("a", DRAIN))
    outbox(a)
    fed.drains.turn()
    [new] = [p for p in job.placements if p.cluster == "b"]
    fed.schedule_once()
    clock.now += DRAIN.surge_seconds - 1
    fed.drains.turn()
    assert outbox(a) == [] and len(job.placements) == 2  # within the bound: it waits for the new one
    clock.now += 1
    fed.drains.turn()
    assert [p.placement_id for p in job.placements] == [new.placement_id]
    assert [o.placement_id for o in outbox(a) if isinstance(o, CancelOrder)] == [old.placement_id]
    assert "with their replacements still starting" in job.message and job.replicas_waiting == 0
    store.close()
    fed.store.close()
