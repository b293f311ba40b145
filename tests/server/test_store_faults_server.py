"""The federator while its disk is full: nothing it says (to a client, to an agent) runs ahead of the disk.

- Submit: UNAVAILABLE naming the cause, one log line per failed write, nothing accepted before lost.
- Cancel: durable before the job changes or an agent hears of it; refused, the job is as it was.
- A cycle: no Launch for a placement that is not stored; once the disk takes writes the orders go out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

import grpc
import pytest
from full_disk import FullDisk
from server_support import capacity, job_api, spec

from federator.api import convert
from federator.api.v1 import jobs_pb2
from federator.model import Job, JobPhase
from federator.server import unwritten_cycle
from federator.server.federator import ClusterRecord, Federator
from federator.server.orders import CancelOrder, LaunchOrder, Order
from federator.store import SqliteJobStore, StoreUnavailable


def _drain(rec: ClusterRecord) -> list[Order]:
    out = []
    while not rec.outbox.empty():
        out.append(rec.outbox.get_nowait())
    return out


def _fed(db: Path) -> tuple[Federator, FullDisk]:
    store = SqliteJobStore(db)
    return Federator(store=store), FullDisk(store)


def _join(fed: Federator, *placement_ids: str, free: int = 8) -> ClusterRecord:
    rec = fed.connect(cluster="c", region="r", labels={})
    fed.report(rec, capacity(*placement_ids, free=free))
    return rec


def _running(db: Path) -> tuple[Federator, FullDisk, Job, ClusterRecord, str]:
    """A federator on `db` with one job placed on cluster c and Running there, the disk not yet full."""
    fed, disk = _fed(db)
    job = fed.submit(spec("a"))
    rec = _join(fed)
    fed.schedule_once()
    pid = job.placements[0].placement_id
    fed.job_update(rec, pid, JobPhase.RUNNING, "running")
    return fed, disk, job, rec, pid


def _on_disk(fed: Federator, db: Path) -> dict[str, JobPhase]:
    fed.store.close()
    store = SqliteJobStore(db)
    try:
        return {j.spec.name: j.phase for j in store.load()}
    finally:
        store.close()


def test_submit_on_a_full_disk_is_unavailable_naming_the_cause_in_one_log_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "f.db"
    fed, disk = _fed(db)
    fed.submit(spec("before"))

    async def scenario() -> grpc.RpcError:
        async with job_api(fed) as stub:
            disk.full = True
            with pytest.raises(grpc.RpcError) as got:
                await stub.Submit(jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec("during")), request_id="r-1"))
            disk.full = False
            again = await stub.Submit(  # the retry a client makes, accepted
                jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec("during")), request_id="r-1"))
            assert not again.replayed
            return got.value

    with caplog.at_level(logging.WARNING):
        refused = asyncio.run(scenario())
    assert refused.code() is grpc.StatusCode.UNAVAILABLE
    assert refused.details() == "job store: database or disk is full; the job was not accepted"
    failures = [r for r in caplog.records if "store failed" in r.getMessage()]  # not a new store's warning
    assert [r.getMessage() for r in failures] == ["writing 1 jobs to the store failed: job store: database or disk "
                                                  "is full"]
    assert failures[0].exc_info is None  # one line, not a chain of tracebacks
    assert _on_disk(fed, db) == {"before": JobPhase.PENDING, "during": JobPhase.PENDING}


def test_cancel_on_a_full_disk_changes_nothing_and_tells_no_agent(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    fed, disk, job, rec, pid = _running(db)
    _drain(rec)
    disk.full = True
    with pytest.raises(StoreUnavailable, match="^job store: database or disk is full$"):
        fed.cancel(job.job_id)
    assert job.phase is JobPhase.RUNNING and job.placements[0].phase is JobPhase.RUNNING  # `get` says what is true
    assert _drain(rec) == []  # no agent stopped it
    disk.full = False
    assert fed.cancel(job.job_id).phase is JobPhase.CANCELLED  # the client's retry, once the disk has room
    assert [type(o) for o in _drain(rec)] == [CancelOrder]
    assert _on_disk(fed, db) == {"a": JobPhase.CANCELLED}


def test_cancel_on_a_full_disk_is_unavailable_to_the_client(tmp_path: Path) -> None:
    fed, disk = _fed(tmp_path / "f.db")
    job = fed.submit(spec("a"))

    async def scenario() -> grpc.RpcError:
        async with job_api(fed) as stub:
            disk.full = True
            with pytest.raises(grpc.RpcError) as got:
                await stub.Cancel(jobs_pb2.CancelJobRequest(job_id=job.job_id))
            return got.value

    refused = asyncio.run(scenario())
    assert refused.code() is grpc.StatusCode.UNAVAILABLE
    assert refused.details() == "job store: database or disk is full; the job was not cancelled"
    assert job.phase is JobPhase.PENDING
    fed.store.close()


def test_a_cycle_on_a_full_disk_sends_no_launch_until_stored_then_sends_each_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unwritten_cycle, "RETRY_FIRST_SECONDS", 0.0)  # no test waits for the backoff
    db = tmp_path / "f.db"
    fed, disk = _fed(db)
    jobs = [fed.submit(spec(f"j{i}")) for i in range(5)]  # room for four: 4 nodes of 8 accelerators free
    rec = _join(fed)

    async def scenario() -> None:
        disk.full = True
        assert await fed.cycles.run_once_async() is None
        placed = [j for j in jobs if j.phase is JobPhase.PLACED]
        assert len(placed) == 4  # in memory, holding the room: the fifth must not be booked onto it
        assert _drain(rec) == []  # but no agent hears of a placement that is not stored
        assert await fed.cycles.run_once_async() is None  # still full: no new cycle, no order
        assert _drain(rec) == [] and disk.refused == 2
        disk.full = False
        assert await fed.cycles.run_once_async() is not None  # stored: its orders go out, then a cycle runs
        launches = sorted(o.placement.placement_id for o in _drain(rec) if isinstance(o, LaunchOrder))
        assert launches == sorted(j.placements[0].placement_id for j in placed)
        await fed.cycles.run_once_async()
        assert [o for o in _drain(rec) if isinstance(o, LaunchOrder)] == []  # never sent twice
        assert [j.phase for j in jobs].count(JobPhase.PLACED) == 4  # nothing double-booked

    asyncio.run(scenario())
    on_disk = _on_disk(fed, db)
    assert sorted(on_disk.values()) == [JobPhase.PENDING] + [JobPhase.PLACED] * 4


def test_a_crash_while_a_cycle_waits_for_the_disk_loses_no_job_and_launched_nothing(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    fed, disk = _fed(db)
    fed.submit(spec("a"))
    rec = _join(fed)
    disk.full = True
    with pytest.raises(StoreUnavailable):
        fed.schedule_once()
    assert _drain(rec) == []
    assert _on_disk(fed, db) == {"a": JobPhase.PENDING}  # the "crash": the file is all a restart has


def test_a_cluster_lost_while_the_disk_is_full_keeps_the_loop_alive_and_its_jobs_are_placed_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fail-over of a Lost cluster wrote each requeued job and raised on a full disk: out of check_leases,
    out of tick, and out of run, so the federator stopped scheduling for good, and the Lost cluster's other jobs
    were never requeued. Now a requeue the disk refuses stays in memory, tells no agent, and the next write of
    the job (its new placement, once the disk takes it) stores it."""
    monkeypatch.setattr(unwritten_cycle, "RETRY_FIRST_SECONDS", 0.0)
    from server_support import LEASE, LOST_AFTER, Clock

    db = tmp_path / "f.db"
    clock = Clock()
    store = SqliteJobStore(db)
    fed = Federator(store=store, clock=clock, lease_seconds=LEASE, lost_after_seconds=LOST_AFTER)
    disk = FullDisk(store)
    jobs = [fed.submit(spec(f"j{i}")) for i in range(3)]
    west = fed.connect(cluster="west", region="r", labels={})
    fed.report(west, capacity())

    async def scenario() -> None:
        await fed.tick()
        assert {p.cluster for j in jobs for p in j.placements} == {"west"}
        east = fed.connect(cluster="east", region="r", labels={})
        fed.disconnect(west)
        disk.full = True
        clock.now += LOST_AFTER + LEASE + 1
        fed.report(east, capacity())
        await fed.tick()  # west is Lost: before, StoreUnavailable escaped here
        await fed.tick()
        assert all(j.phase is not JobPhase.PLACED or j.placements[0].cluster == "east" for j in jobs)
        assert not [o for o in _drain(east) if isinstance(o, LaunchOrder)]  # nothing unstored is launched
        disk.full = False
        for _ in range(3):
            await fed.tick()
        launched = {o.placement.placement_id for o in _drain(east) if isinstance(o, LaunchOrder)}
        assert launched == {j.placements[0].placement_id for j in jobs}, launched

    asyncio.run(scenario())
    assert _on_disk(fed, db) == {f"j{i}": JobPhase.PLACED for i in range(3)}


def test_an_agents_word_that_a_job_ended_is_stored_once_the_disk_has_room_not_lost(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An agent's JobUpdate changed memory, then its write raised StoreUnavailable into the agent's stream.
    The agent's re-sync repeated the update, which memory already held, so it was never stored: a restart
    read the finished job as still running and, its member no longer holding it, placed it again. Now the
    update is owed and written at the next turn of the loop that the disk takes."""
    db = tmp_path / "f.db"
    fed, disk, job, rec, pid = _running(db)
    disk.full = True
    caplog.clear()  # the new store's warning

    async def scenario() -> None:
        with caplog.at_level(logging.WARNING):
            fed.job_update(rec, pid, JobPhase.SUCCEEDED, "done")  # does not raise into the agent's stream
            fed.journal.drain()  # written off the loop: owed once the writer is done with it
            assert job.phase is JobPhase.SUCCEEDED and fed.journal.owed == 1
            fed.job_update(rec, pid, JobPhase.SUCCEEDED, "done")  # the re-sync's repeat
            for _ in range(3):
                await fed.tick()  # still full: owed, and said once, not once a turn
                fed.journal.drain()
        said = [r.getMessage() for r in caplog.records if r.name == "federator.store"]
        assert said == ["1 jobs not stored (job store: database or disk is full); kept, and written once the store "
                        "takes writes"], said
        assert fed.journal.owed == 1
        disk.full = False
        await fed.tick()
        fed.journal.drain()
        assert fed.journal.owed == 0

    asyncio.run(scenario())
    assert _on_disk(fed, db) == {"a": JobPhase.SUCCEEDED}


def test_a_full_disk_shows_in_the_store_metrics_the_alert_reads(tmp_path: Path) -> None:
    """Outside operator QA: with the disk full a cycle's placements waited in memory, unsent, while
    federator_store_unwritten_jobs and federator_store_write_errors_total said 0 (fed by the Kubernetes store
    only): scheduling stopped and nothing fired for four hours."""
    from prometheus_client import generate_latest

    from federator.metrics import Metrics
    from federator.server import store_health

    db = tmp_path / "f.db"
    store = SqliteJobStore(db)
    metrics = Metrics()
    fed = Federator(store=store, metrics=metrics)
    disk = FullDisk(store)
    fed.journal.on_error = store_health.count_errors(metrics)
    metrics.watch_store(lambda: fed.journal.queued, lambda: fed.journal.lazy, unwritten=store_health.unwritten(fed))
    fed.submit(spec("a"))
    rec = _join(fed)

    def scrape() -> str:
        return generate_latest(metrics.registry).decode()

    assert 'federator_store_unwritten_jobs{reason="unavailable"} 0.0' in scrape()
    disk.full = True
    with pytest.raises(StoreUnavailable):
        fed.schedule_once()
    said = scrape()
    assert 'federator_store_unwritten_jobs{reason="unavailable"} 1.0' in said
    assert 'federator_store_write_errors_total{reason="unavailable"} 1.0' in said
    disk.full = False
    fed.schedule_once()  # the waiting cycle is stored, its orders sent
    assert 'federator_store_unwritten_jobs{reason="unavailable"} 0.0' in scrape()
    assert [type(o).__name__ for o in _drain(rec)] == ["LaunchOrder"]


def test_a_store_refusing_every_write_logs_a_line_every_ten_seconds_with_the_count(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside SRE QA: with the disk full, every client retry was a WARNING line (1,000 a minute) and buried the
    cause. Refusals are counted in federator_store_write_errors_total; the log says it once per 10 s, with how
    many more there were."""
    from federator.store import group_commit
    from federator.store.errors import StoreUnavailable

    now = [100.0]
    monkeypatch.setattr(group_commit.time, "monotonic", lambda: now[0])
    failed = group_commit._FailureLog()
    full = StoreUnavailable("job store: database or disk is full")
    with caplog.at_level(logging.WARNING):
        for _ in range(50):
            failed("writing 1 jobs to the store failed", full)
            now[0] += 0.5  # 25 s of refusals, two a second
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["writing 1 jobs to the store failed: job store: database or disk is full",
                     "writing 1 jobs to the store failed: job store: database or disk is full (and 19 more refused "
                     "writes in the last 10s)",
                     "writing 1 jobs to the store failed: job store: database or disk is full (and 19 more refused "
                     "writes in the last 10s)"]


def test_a_name_reused_on_a_full_disk_still_finds_its_earlier_job(tmp_path: Path) -> None:
    """The refused resubmission of a finished job's name gives the name back to that job, in its namespace only."""
    fed, disk = _fed(tmp_path / "f.db")
    first = fed.submit(spec("a"))
    fed.cancel(first.job_id)
    other = fed.submit(dataclasses.replace(spec("a"), namespace="other"))
    disk.full = True
    with pytest.raises(StoreUnavailable):
        fed.submit(spec("a"))
    disk.full = False
    named = fed.intake.latest_named(first.spec.namespace, "a")
    assert named is not None and named.job_id == first.job_id
    assert fed.intake.latest_named("other", "a") is other


def test_a_job_whose_write_failed_is_a_removal_to_watchers_who_may_have_seen_it(tmp_path: Path) -> None:
    """A new job is in the table while its write is on its way, so a Watch's snapshot may show it; if the write
    fails it was never accepted, and a client keeping a cache (portal M2) must hear that it is gone."""
    fed, disk = _fed(tmp_path / "f.db")
    disk.full = True
    before = fed.history.revision
    with pytest.raises(StoreUnavailable):
        fed.submit(spec("a"))
    (change,) = fed.history.after(before)
    assert change.removal is not None and change.job_id not in fed.jobs
    fed.store.close()
