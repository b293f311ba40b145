"""The rebalancer's moves, a drain's surges, a job failed past its run-time limit are written off the event loop,
and still stored before any agent hears of them (server/stored_first.py).

Before, each start and end of a move or a surge wrote its copy of the job with `GroupCommit.write`, holding the
event loop for the fsync. Here a store whose write the test holds stands for a slow disk (gated_store.py); what is
checked is *order*, never time: the turn returns while the move's write is held, no agent hears of the new parts
until it is let go, a job that changes meanwhile is not moved on the state that is gone, and a full disk leaves the
job as it was.
"""

from __future__ import annotations

import asyncio

from gated_store import A_WHILE, GatedStore
from server_support import Clock, capacity, join, make
from test_partial_failover import drain
from test_rebalancing import moves, spilled_to_east
from test_run_limits import LIMIT, limited, running

from federator.model import Job, JobPhase
from federator.server.federator import ClusterRecord, Federator
from federator.server.orders import CancelOrder, LaunchOrder
from federator.server.rebalancing import RETRY_SECONDS
from federator.server.run_limits import CHECK_SECONDS


def _two_parts(job: Job) -> bool:
    return len(job.placements) == 2  # the move's copy: the far part and the new near one


def _west_frees_up(fed: Federator, clock: Clock) -> tuple[Job, ClusterRecord, ClusterRecord]:
    job, west, east = spilled_to_east(fed)
    clock.now += RETRY_SECONDS
    fed.report(west, capacity(free=8))  # the next turn moves the job to west
    drain(west), drain(east)
    return job, west, east


def test_a_turn_returns_while_a_moves_write_is_held_and_the_new_part_is_launched_once_stored() -> None:
    async def scenario() -> None:
        clock, store = Clock(), GatedStore()
        fed = make(store, clock)
        job, west, east = _west_frees_up(fed, clock)
        store.holding, store.hold = _two_parts, True
        turn = asyncio.ensure_future(fed.cycles.run_once_async())
        assert await asyncio.to_thread(store.entered.wait, A_WHILE)  # the move's write holds the disk
        await asyncio.wait_for(turn, A_WHILE)
        store.events.append("turn returned")
        while_held = ([p.cluster for p in job.placements], drain(west))
        store.release.set()
        await asyncio.wait_for(fed.stored_first.settled(), A_WHILE)
        assert store.events == ["write held", "turn returned", "write let go"], store.events
        assert while_held == (["east-1"], [])  # untouched, no agent told, until stored
        assert sorted(p.cluster for p in job.placements) == ["east-1", "west-1"]
        assert [type(o) for o in drain(west)] == [LaunchOrder] and drain(east) == []
        assert sorted(p.cluster for p in store.docs[job.job_id].placements) == ["east-1", "west-1"]
        assert moves(fed) == {"started": 1.0}

    asyncio.run(scenario())


def test_a_job_that_changes_while_its_moves_write_is_held_is_not_moved_and_the_store_holds_it_as_it_is() -> None:
    async def scenario() -> None:
        clock, store = Clock(), GatedStore()
        fed = make(store, clock)
        job, west, east = _west_frees_up(fed, clock)
        store.holding, store.hold = _two_parts, True
        await asyncio.wait_for(fed.cycles.run_once_async(), A_WHILE)
        assert await asyncio.to_thread(store.entered.wait, A_WHILE)
        (far,) = job.placements
        fed.job_update(east, far.placement_id, JobPhase.RUNNING, "3 of 4 replicas ready")  # it changes meanwhile
        store.release.set()
        await asyncio.wait_for(fed.stored_first.settled(), A_WHILE)
        await asyncio.to_thread(fed.journal.drain)
        assert [p.cluster for p in job.placements] == ["east-1"] and drain(west) == []
        assert [p.cluster for p in store.docs[job.job_id].placements] == ["east-1"]  # no part no agent knows
        assert store.docs[job.job_id].placements[0].message == "3 of 4 replicas ready"
        assert moves(fed) == {}

    asyncio.run(scenario())


def test_a_moves_write_the_full_disk_refuses_leaves_the_job_as_it_was_and_tells_no_agent() -> None:
    async def scenario() -> None:
        clock, store = Clock(), GatedStore()
        fed = make(store, clock)
        job, west, east = _west_frees_up(fed, clock)
        store.holding, store.full = _two_parts, True
        await asyncio.wait_for(fed.cycles.run_once_async(), A_WHILE)
        await asyncio.wait_for(fed.stored_first.settled(), A_WHILE)
        assert [p.cluster for p in job.placements] == ["east-1"] and drain(west) == []
        assert [p.cluster for p in store.docs[job.job_id].placements] == ["east-1"]
        assert moves(fed) == {}
        assert job.job_id in fed.cycles.rebalancer.tried  # asked again after RETRY_SECONDS

    asyncio.run(scenario())


def test_a_job_past_its_run_limit_is_failed_off_the_loop_and_its_member_told_once_stored() -> None:
    """The same for server/run_limits.py: a turn's check returns while the failure's write is held, and the
    member hears the CancelOrder only once the job is stored Failed."""
    async def scenario() -> None:
        clock, store = Clock(), GatedStore()
        fed = make(store, clock)
        rec = join(fed, "liar")
        job_id, pid = running(fed, rec, limited("forever"))
        job = fed.jobs[job_id]
        drain(rec)
        clock.now += LIMIT + CHECK_SECONDS
        store.hold = True
        assert fed.run_limits.check() == [job]  # decided: the write is on its way, the loop goes on
        assert await asyncio.to_thread(store.entered.wait, A_WHILE)
        store.events.append("check returned")
        while_held = (job.phase, drain(rec))
        store.release.set()
        await asyncio.wait_for(fed.stored_first.settled(), A_WHILE)
        assert store.events == ["write held", "check returned", "write let go"], store.events
        assert while_held == (JobPhase.RUNNING, [])
        assert job.phase is JobPhase.FAILED and store.docs[job_id].phase is JobPhase.FAILED
        assert [(type(o), o.placement_id) for o in drain(rec)] == [(CancelOrder, pid)]  # type: ignore[union-attr]

    asyncio.run(scenario())
