"""A drain finds its jobs in the index of jobs that hold placements (`Cycles.active_jobs`), never by a walk over
every job (server/drains.py `Drains.on`): first that the index holds every job a drain must see, then that the
loop's turn, a scrape and a cluster List read no pending job of the backlog."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from server_support import Clock, MemoryStore, join, make, spec
from test_drains import federator
from test_partial_failover import lose, spread_over_a_and_b
from test_rebalancing import chat

from federator.model import Job, JobPhase
from federator.model.cordon import Drain

DRAIN = Drain("admin", 1_000.0, "hardware swap")


def test_the_index_holds_a_short_spread_job_with_a_live_part_on_the_drained_cluster() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    job, a, b = spread_over_a_and_b(fed)
    lose(fed, clock, b, a)  # b's part is lost: the job serves short on a, owing 2 replicas (server/partial.py)
    assert job.phase is JobPhase.RUNNING and job.replicas_waiting == 2
    assert [p.cluster for p in job.placements if p.phase.is_active] == ["a"]
    assert job in fed.cycles.active_jobs()
    on = fed.drains.on(["a", "b"])
    assert on == {"a": [job], "b": []}  # nothing of it lives on b any more
    join(fed, "c", region="west")
    gang = fed.submit(spec("gang", gpus=8))
    fed.schedule_once()  # the gang is placed, and the short job's rest (b is Lost)
    assert gang.phase is JobPhase.PLACED and gang in fed.cycles.active_jobs()
    on = fed.drains.on(["a", "c"])
    assert job in on["a"] and gang in on[gang.placements[0].cluster]


def test_the_index_holds_a_surging_job_and_a_job_placed_before_a_restart(tmp_path: Path) -> None:
    """A serving job mid-surge (its new part placed by the drain, not by a cycle) and a job the store loaded: both
    hold placements the drain must still end."""
    db, clock = tmp_path / "fed.db", Clock()
    fed, store = federator(db, clock)
    a = join(fed, "a", region="east")
    join(fed, "b", region="west")
    job = fed.submit(chat(replicas=1, preferred=("east",)))
    fed.schedule_once()
    fed.acked(a, job.placements[0].placement_id)
    asyncio.run(fed.cordons.drain("a", DRAIN))
    assert fed.drains.turn() == 1  # the surge: a new part on b, the one on a kept until it serves
    assert sorted(p.cluster for p in job.placements) == ["a", "b"]
    assert fed.drains.on(["a"]) == {"a": [job]}
    store.close()
    fed.store.close()
    fed, store = federator(db, clock)  # restarted: the index is rebuilt from the store
    assert [j.job_id for j in fed.drains.left("a")] == [job.job_id]
    store.close()
    fed.store.close()


def test_a_requeued_job_holds_no_placement_so_the_index_may_leave_it_out() -> None:
    """Why the index is enough: a Pending job has no placement left for a drain to end (Federator.supersede)."""
    clock = Clock()
    fed = make(MemoryStore(), clock)
    a = join(fed, "a")
    job = fed.submit(spec("gang", gpus=8))
    fed.schedule_once()
    fed.acked(a, job.placements[0].placement_id)
    asyncio.run(fed.cordons.drain("a", DRAIN))
    assert fed.drains.turn() == 1
    assert job.phase is JobPhase.PENDING and job.placements == []
    assert job not in fed.cycles.active_jobs() and fed.drains.left("a") == []


def test_a_turn_a_scrape_and_a_list_of_a_drain_read_no_pending_job(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    a = join(fed, "a")
    placed = [fed.submit(spec(f"gang-{i}", gpus=8)) for i in range(2)]
    fed.schedule_once()
    for job in placed:
        fed.acked(a, job.placements[0].placement_id)
    backlog = [fed.submit(spec(f"waits-{i}", gpus=8)) for i in range(50)]  # no room: the national backlog
    asyncio.run(fed.cordons.drain("a", DRAIN))
    read: list[Job] = []
    every = fed.jobs.values

    def counted() -> Iterator[Job]:
        for job in every():
            read.append(job)
            yield job

    monkeypatch.setattr(fed.jobs, "values", counted)  # every walk over the jobs, counted
    assert {j.job_id for j in fed.drains.left("a")} == {j.job_id for j in placed}
    assert fed.drains.counts() == {"a": 2}
    assert fed.drains.surges.starting("a", fed.drains.left("a")) == 0
    fed.drains.batch = 1
    assert fed.drains.turn() == 1
    assert fed.drains.counts() == {"a": 1}
    assert read == []  # not one of the 52 jobs read by a walk over them all
    monkeypatch.undo()
    assert 'federator_cluster_drain_jobs_left{cluster="a",region="r"} 1.0' in \
        generate_latest(fed.metrics.registry).decode()
    assert all(job.phase is JobPhase.PENDING for job in backlog)

