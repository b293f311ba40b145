"""A spread job that loses one cluster's part keeps its others and is owed only that part (server/partial.py).

An inference job of 4 replicas runs 2 on A and 2 on B. When A is Lost, refuses or stops its part, or does not
start it in time, B's placement is untouched (same id and generation, no order to B), only A is told to cancel,
and the 2 missing replicas are placed elsewhere with a new generation, or wait while the job keeps Running on B
and says so. A training gang is still re-queued whole.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from server_support import LOST_AFTER, Clock, MemoryStore, capacity, job_api, join, make, spec

from federator.api.convert import job_from_pb
from federator.api.v1 import jobs_pb2, types_pb2
from federator.cli.output import job_rows
from federator.jobfile import parse_job
from federator.model import ClusterState, Job, JobPhase, JobSpec, ReasonCode
from federator.server.federator import ClusterRecord, Federator
from federator.server.orders import CancelOrder, LaunchOrder, Order
from federator.store.sqlite import SqliteJobStore


def inference(name: str, *, replicas: int = 4, min_regions: int = 1) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
                      "spec": {"kind": "inference", "replicas": replicas, "regions": {"minRegions": min_regions},
                               "resources": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 8}}})


def drain(rec: ClusterRecord) -> list[Order]:
    out: list[Order] = []
    while not rec.outbox.empty():
        order = rec.outbox.get_nowait()
        assert order is not None
        out.append(order)
    return out


def running_on(fed: Federator, job: Job, *clusters: ClusterRecord) -> None:
    """Every placement of `job` acknowledged and Running; the agents' outboxes emptied."""
    for rec in clusters:
        drain(rec)
    for p in job.placements:
        rec = fed.clusters[p.cluster]
        fed.acked(rec, p.placement_id)
        fed.job_update(rec, p.placement_id, JobPhase.RUNNING, f"{p.replicas} of {p.replicas} replicas running")
    assert job.phase is JobPhase.RUNNING


@pytest.fixture
def clock() -> Clock:
    return Clock()


def spread_over_a_and_b(fed: Federator, *, min_regions: int = 1) -> tuple[Job, ClusterRecord, ClusterRecord]:
    a, b = join(fed, "a", region="east"), join(fed, "b", region="west")
    job = fed.submit(inference("serve", min_regions=min_regions))
    fed.schedule_once()
    assert {p.cluster: p.replicas for p in job.placements} == {"a": 2, "b": 2}
    running_on(fed, job, a, b)
    return job, a, b


def lose(fed: Federator, clock: Clock, rec: ClusterRecord, *others: ClusterRecord) -> None:
    fed.disconnect(rec)
    clock.now += LOST_AFTER + 1
    for other in others:
        fed.heard(other)
    fed.check_leases()
    assert rec.state is ClusterState.LOST


def test_losing_one_cluster_keeps_the_other_part_and_places_only_the_missing_replicas(clock: Clock) -> None:
    store = MemoryStore()
    fed = make(store, clock)
    job, a, b = spread_over_a_and_b(fed)
    kept = next(p for p in job.placements if p.cluster == "b")
    kept_id, kept_gen = kept.placement_id, kept.generation
    fed.report(b, capacity(kept_id, free=0))  # B is full: the rest goes elsewhere

    lose(fed, clock, a, b)
    assert [p.placement_id for p in job.placements] == [kept_id]  # B's part untouched
    assert job.phase is JobPhase.RUNNING and job.replicas_waiting == 2
    assert job.pending_reason is not None and job.pending_reason.code is ReasonCode.CLUSTER_NOT_READY
    assert job.message.startswith("2 of 4 replicas placed; 2 waiting: ClusterNotReady: a was Lost")
    assert drain(b) == []  # no cancel (nor anything else) for B
    assert store.docs[job.job_id].placements[0].placement_id == kept_id  # stored short
    assert fed.metrics.registry.get_sample_value("federator_placement_retries_total",
                                                 {"reason": "ClusterNotReady"}) == 1.0

    c = join(fed, "c", region="north")
    fed.schedule_once()
    by_cluster = {p.cluster: p for p in job.placements}
    assert set(by_cluster) == {"b", "c"} and by_cluster["c"].replicas == 2
    assert by_cluster["b"].placement_id == kept_id and by_cluster["b"].generation == kept_gen
    assert by_cluster["c"].generation == kept_gen + 1 == job.generation
    assert job.replicas_waiting == 0 and job.pending_reason is None
    assert drain(b) == []
    assert [o.placement.placement_id for o in drain(c) if isinstance(o, LaunchOrder)] == \
        [by_cluster["c"].placement_id]

    # A comes back: only its superseded placement is cancelled; an old report of it is fenced, not taken
    # for the new one.
    back = fed.connect(cluster="a", region="east", labels={})
    old_a = f"{job.job_id}.g{kept_gen}.a"
    fed.job_update(back, old_a, JobPhase.RUNNING, "resync")
    fed.report(back, capacity(old_a))
    orders = drain(back)
    assert orders and all(isinstance(o, CancelOrder) and o.placement_id == old_a for o in orders)
    assert {p.cluster for p in job.placements} == {"b", "c"}


def test_with_no_room_the_job_keeps_running_short_and_gets_its_replicas_when_room_comes(clock: Clock) -> None:
    fed = make(MemoryStore(), clock)
    job, a, b = spread_over_a_and_b(fed)
    fed.report(b, capacity(*(p.placement_id for p in job.placements if p.cluster == "b"), free=0))  # B is full
    lose(fed, clock, a, b)
    fed.schedule_once()
    assert job.phase is JobPhase.RUNNING and job.replicas_waiting == 2
    assert job.pending_reason is not None and job.pending_reason.code is not ReasonCode.CLUSTER_NOT_READY
    assert job.message.startswith("2 of 4 replicas placed; 2 waiting: ")
    assert "2 of 2 replicas running" in job.message  # what B says, after the shortfall
    # An SRE sees the serving capacity owed, per queue, on a scrape
    assert fed.metrics.registry.get_sample_value("federator_replicas_waiting", {"queue": job.spec.queue}) == 2.0

    c = join(fed, "c", region="north")  # room appears
    fed.schedule_once()
    assert sorted((p.cluster, p.replicas) for p in job.placements) == [("b", 2), ("c", 2)]
    assert job.replicas_waiting == 0 and not job.message.startswith("2 of 4")
    fed.job_update(c, job.placements[-1].placement_id, JobPhase.RUNNING, "2 of 2 replicas running")
    assert job.phase is JobPhase.RUNNING


def test_with_no_second_region_left_the_lost_replicas_go_to_the_region_left_and_the_job_says_so(
        clock: Clock) -> None:
    """Outside QA (inference F1): with minRegions 2 and one of two regions Lost, the lost replicas were never placed
    again (1 of 4 served while the model sat free in the surviving region). For the rest of a running job
    minRegions is a goal: the rest goes to the region left, and the job says it spans fewer regions, and why."""
    fed = make(MemoryStore(), clock)
    job, a, b = spread_over_a_and_b(fed, min_regions=2)
    join(fed, "b2", region="west")  # room in west only: the region the job holds already
    lose(fed, clock, a, b, fed.clusters["b2"])
    fed.schedule_once()
    assert job.replicas_waiting == 0 and {p.region for p in job.placements} == {"west"}
    assert sum(p.replicas for p in job.placements) == 4 and job.phase is JobPhase.RUNNING
    why = job.pending_reason
    assert why is not None and why.code is ReasonCode.REGION_UNAVAILABLE
    assert why.message.startswith("spans 1 of the 2 regions its minRegions asks, placed in the regions left")
    assert "1 held by its running placements (west)" in why.message and "east: a is Lost" in why.message
    assert job.message.startswith(f"{ReasonCode.REGION_UNAVAILABLE}: spans 1 of the 2 regions")
    running_on(fed, job, b, fed.clusters["b2"])  # the members' words follow it; it keeps saying so
    assert job.message.startswith(f"{ReasonCode.REGION_UNAVAILABLE}: spans 1 of the 2 regions")
    headers, (row,) = job_rows([job], wide=False)  # and `get jobs` shows it (REASON)
    assert row[headers.index("REASON")].startswith("RegionUnavailable: spans 1 of the 2 regions")
    placements = [p.placement_id for p in job.placements]
    c = join(fed, "c", region="north")  # a second region returns: replicas move into it, make before break
    fed.schedule_once()
    assert [p.placement_id for p in job.placements][:len(placements)] == placements
    assert [(p.cluster, p.replicas) for p in job.placements][len(placements):] == [("c", 1)]  # the smallest part
    assert job.message.startswith("moving 1 replica from west to north, to span the regions its minRegions asks")
    assert not [o for o in drain(b) + drain(fed.clusters["b2"]) if isinstance(o, CancelOrder)]
    running_on(fed, job, c)
    fed.schedule_once()
    assert {p.region for p in job.placements} == {"north", "west"} and job.replicas_waiting == 0
    assert job.pending_reason is None and job.message.startswith("moved 1 replica from west to north")
    assert sum(p.replicas for p in job.placements) == 4


@pytest.mark.parametrize("how", ["refused", "stopped", "start-timeout"])
def test_a_part_its_cluster_refuses_stops_or_never_starts_is_placed_again_alone(clock: Clock, how: str) -> None:
    fed = make(MemoryStore(), clock, start_timeout=600.0)
    a, b = join(fed, "a", region="east"), join(fed, "b", region="west")
    job = fed.submit(inference("serve"))
    fed.schedule_once()
    drain(a), drain(b)
    pa = next(p for p in job.placements if p.cluster == "a")
    pb = next(p for p in job.placements if p.cluster == "b")
    fed.acked(b, pb.placement_id)
    fed.job_update(b, pb.placement_id, JobPhase.RUNNING, "2 of 2 replicas running")
    fed.report(b, capacity(pb.placement_id, free=0))  # B is full: the rest goes elsewhere
    if how == "refused":
        fed.refused(a, pa.placement_id, "namespace not marked for the queue")
    elif how == "stopped":
        fed.acked(a, pa.placement_id)
        fed.job_update(a, pa.placement_id, JobPhase.CANCELLED, "evicted")
    else:
        fed.acked(a, pa.placement_id)
        clock.now += 601
        fed.heard(a), fed.heard(b)
        fed.check_leases()
        fed.starts.check()
    assert job.placements == [pb] and job.replicas_waiting == 2
    assert job.pending_reason is not None and job.pending_reason.code is ReasonCode.REFUSED_BY_CLUSTER
    assert drain(b) == []
    cancelled = [o.placement_id for o in drain(a) if isinstance(o, CancelOrder)]
    assert cancelled == ([] if how == "stopped" else [pa.placement_id])  # stopped: its agent said it ended
    assert pa.placement_id not in a.acked
    c = join(fed, "c", region="north")
    fed.schedule_once()  # A is avoided a while, as after any refusal: the rest goes to C
    assert sorted(p.cluster for p in job.placements) == ["b", "c"] and pb in job.placements
    assert any(isinstance(o, LaunchOrder) for o in drain(c))


def test_a_gang_is_still_re_queued_whole(clock: Clock) -> None:
    fed = make(MemoryStore(), clock)
    a, b = join(fed, "a"), join(fed, "b")
    job = fed.submit(spec("train", replicas=4))
    fed.schedule_once()
    (p,) = job.placements
    home = fed.clusters[p.cluster]
    other = b if home is a else a
    lose(fed, clock, home, other)
    assert job.phase is JobPhase.PENDING and job.placements == [] and job.replicas_waiting == 0


def test_losing_the_last_live_part_re_queues_the_job_whole(clock: Clock) -> None:
    fed = make(MemoryStore(), clock)
    job, a, b = spread_over_a_and_b(fed)
    lose(fed, clock, a, b)
    assert job.phase is JobPhase.RUNNING and len(job.placements) == 1
    fed.disconnect(b)
    clock.now += LOST_AFTER + 1
    fed.check_leases()
    assert job.phase is JobPhase.PENDING and job.placements == []
    assert job.pending_reason is not None and "b was Lost" in job.pending_reason.message


def test_cancel_of_a_short_job_cancels_its_live_placements(clock: Clock) -> None:
    fed = make(MemoryStore(), clock)
    job, a, b = spread_over_a_and_b(fed)
    lose(fed, clock, a, b)
    (kept,) = job.placements
    fed.cancel(job.job_id)
    assert job.phase is JobPhase.CANCELLED
    assert [o.placement_id for o in drain(b) if isinstance(o, CancelOrder)] == [kept.placement_id]
    join(fed, "c", region="north")
    fed.schedule_once()
    assert [p.placement_id for p in job.placements] == [kept.placement_id]  # nothing placed for a cancelled job


def test_a_restart_mid_way_keeps_the_job_short_and_places_the_rest_once(tmp_path: Path, clock: Clock) -> None:
    db = tmp_path / "jobs.db"
    store = SqliteJobStore(db)
    fed = make(store, clock)  # type: ignore[arg-type]
    job, a, b = spread_over_a_and_b(fed)
    kept = next(p for p in job.placements if p.cluster == "b")
    fed.report(b, capacity(kept.placement_id, free=0))
    lose(fed, clock, a, b)
    fed.cycles.close()
    store.close()

    store = SqliteJobStore(db)
    again = make(store, clock)  # type: ignore[arg-type]
    job = again.get(job.job_id)
    assert job.phase is JobPhase.RUNNING and job.replicas_waiting == 2
    assert [p.placement_id for p in job.placements] == [kept.placement_id]
    assert job.message.startswith("2 of 4 replicas placed; 2 waiting: ClusterNotReady")
    b2 = again.connect(cluster="b", region="west", labels={})
    again.job_update(b2, kept.placement_id, JobPhase.RUNNING, "2 of 2 replicas running")
    again.report(b2, capacity(kept.placement_id, free=0))
    c = join(again, "c", region="north")
    again.schedule_once()
    again.schedule_once()  # a second cycle places nothing more
    assert sorted((p.cluster, p.replicas) for p in job.placements) == [("b", 2), ("c", 2)]
    assert not any(isinstance(o, CancelOrder) for o in drain(b2))
    assert len([o for o in drain(c) if isinstance(o, LaunchOrder)]) == 1
    again.cycles.close()
    store.close()


def test_the_api_and_get_jobs_say_how_many_replicas_wait_and_why(clock: Clock) -> None:
    fed = make(MemoryStore(), clock)
    job, a, b = spread_over_a_and_b(fed)
    fed.report(b, capacity(*(p.placement_id for p in job.placements if p.cluster == "b"), free=0))
    lose(fed, clock, a, b)
    fed.schedule_once()  # no room: the rest waits

    async def get() -> types_pb2.Job:
        async with job_api(fed) as api:
            return await api.Get(jobs_pb2.GetJobRequest(job_id=job.job_id))

    pb = asyncio.run(get())
    assert pb.phase == types_pb2.JOB_PHASE_RUNNING and pb.replicas_waiting == 2
    assert pb.pending_reason.code and pb.message.startswith("2 of 4 replicas placed; 2 waiting: ")
    headers, rows = job_rows([job_from_pb(pb)], wide=False)
    reason = rows[0][headers.index("REASON")]
    assert reason.startswith(f"2 of 4 replicas placed; 2 waiting: {pb.pending_reason.code}")


@pytest.mark.parametrize("after", [3.0, 3_600.0], ids=["early", "after-an-hour"])
def test_a_part_that_fails_is_placed_again_alone_and_the_other_parts_serve_on(clock: Clock, after: float) -> None:
    """Outside QA: one member's copy of a spread inference job was deleted there (or stuck past its progress
    deadline) and reported Failed: the whole job failed and its healthy copies in every other region were deleted,
    with nothing placed again. Now that part alone is placed again, its cluster avoided a while; an early failure
    spends the job's one retry (server/early_failures.py), a late one does not."""
    fed = make(MemoryStore(), clock)
    job, a, b = spread_over_a_and_b(fed)
    pa = next(p for p in job.placements if p.cluster == "a")
    pb = next(p for p in job.placements if p.cluster == "b")
    fed.report(b, capacity(pb.placement_id, free=0))  # B is full: the part goes elsewhere
    clock.now += after
    fed.heard(a), fed.heard(b)
    fed.job_update(a, pa.placement_id, JobPhase.FAILED, "Deployment w/serve-a was deleted in the member cluster")
    assert job.phase is JobPhase.RUNNING and job.placements == [pb] and job.replicas_waiting == 2
    assert drain(b) == []  # the copy on B serves on: no cancel
    assert bool(job.early_failure) is (after < 300)
    c = join(fed, "c", region="north")
    fed.schedule_once()
    assert sorted(p.cluster for p in job.placements) == ["b", "c"] and pb in job.placements
    assert any(isinstance(o, LaunchOrder) for o in drain(c))


def test_a_job_that_fails_says_so_on_the_parts_it_cancelled(clock: Clock) -> None:
    """A job kept where it is (failover: keep) fails with its part; the part cancelled with it said "2 of 2
    replicas running" under phase Cancelled (outside QA). It says why it was cancelled."""
    from dataclasses import replace

    from federator.server.clusters import FAILOVER_ANNOTATION

    fed = make(MemoryStore(), clock)
    a, b = join(fed, "a", region="east"), join(fed, "b", region="west")
    keep = inference("serve")
    job = fed.submit(replace(keep, annotations=(*keep.annotations, (FAILOVER_ANNOTATION, "keep"))))
    fed.schedule_once()
    running_on(fed, job, a, b)
    pa = next(p for p in job.placements if p.cluster == "a")
    pb = next(p for p in job.placements if p.cluster == "b")
    fed.job_update(a, pa.placement_id, JobPhase.FAILED, "Deployment w/serve-a was deleted in the member cluster")
    assert job.phase is JobPhase.FAILED
    assert pb.phase is JobPhase.CANCELLED and pb.message == "cancelled: another part of the job failed"
