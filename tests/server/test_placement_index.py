"""The placement index (server/placement_index.py): an entry lives while its job lives, earlier placements too,
and forgetting a job costs its own placements, not a walk of the index.

Soak S5's first fix found a removed job's earlier placements by walking the whole index once per retention batch
of 2,000 (and in Kubernetes mode once the forgotten jobs were 1/64 of it): with a national backlog, O(index) on
the event loop each time. The spy (`support.Walked`) counts the entries any walk reads; it is no clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

from server_support import LEASE, LOST_AFTER, Clock, join, spec

from federator.model import JobId, JobPhase
from federator.server.federator import Federator
from federator.server.placement_index import PlacementIndex
from federator.server.retention import Retention, RetentionPolicy
from federator.store import SqliteJobStore

from support import Walked


def test_an_index_keeps_each_jobs_placements_and_forgets_them_with_the_job() -> None:
    index = PlacementIndex()
    a, b = JobId("a"), JobId("b")
    for pid in ("a.g1.east", "a.g2.west", "a.g3.east"):  # refused, lost, current: all kept while `a` lives
        index.add(pid, a)
    index.add("b.g1.east", b)
    index.add("a.g3.east", a)  # again (a re-sent launch's id): one entry
    assert len(index) == 4 and index["a.g2.west"] == a and "b.g1.east" in index
    assert index.get("nope") is None and index.get("nope", JobId("")) == ""
    assert index.placements_of(a) == {"a.g1.east", "a.g2.west", "a.g3.east"}
    assert index.forget_job(a) == 3
    assert index == {"b.g1.east": b} and index.placements_of(a) == frozenset()
    assert index.forget_job(a) == 0  # twice (retention, then a deleted object): nothing more
    index.add("b.g1.east", a)  # an id taken by another job (ids name their job, so never): the later one has it
    assert index.placements_of(b) == frozenset() and index.forget_job(a) == 1 and len(index) == 0


def test_retention_forgets_ended_jobs_without_walking_the_index(tmp_path: Path) -> None:
    clock = Clock()
    fed = Federator(store=SqliteJobStore(tmp_path / "f.db"), clock=clock, lease_seconds=LEASE,
                    lost_after_seconds=LOST_AFTER)
    recs = {name: join(fed, name) for name in ("east-1", "west-1")}
    ended = [fed.submit(spec(f"ended{i}")) for i in range(2)]
    attempts: list[str] = []
    for round_ in range(3):  # refused twice, then run to its end: three placements each, two superseded
        fed.schedule_once()
        for job in ended:
            (p,) = job.placements
            attempts.append(p.placement_id)
            rec = recs[p.cluster]
            if round_ < 2:
                fed.refused(rec, p.placement_id, "no room after all")
            else:
                fed.acked(rec, p.placement_id)
                fed.job_update(rec, p.placement_id, JobPhase.SUCCEEDED, "done")
        clock.now += 120  # past the refusal's avoidance
    assert all(j.phase is JobPhase.SUCCEEDED for j in ended)
    for i in range(8):  # live jobs, each with a placement: the index the forgetting must not walk
        join(fed, f"busy-{i}")
    live = [fed.submit(spec(f"live{i}", gpus=1)) for i in range(200)]
    fed.schedule_once()
    assert all(j.placements for j in live)
    live_ids = {p.placement_id for j in live for p in j.placements}
    assert set(fed.placement_index) == live_ids | set(attempts)  # earlier placements kept while their job lives

    fed.placement_index._job = spy = Walked(fed.placement_index._job)
    clock.now += 10
    removed = asyncio.run(Retention(fed, RetentionPolicy(ttl_seconds=5, max_per_owner=0)).sweep())
    assert sorted(removed) == sorted(j.job_id for j in ended)
    assert spy.walked == 0  # a walk of the index per batch read each of the 200 live jobs' entries
    assert set(fed.placement_index) == live_ids
    fed.store.close()
