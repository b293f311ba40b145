"""A placement its cluster does not start within --start-timeout is placed again (server/start_deadline.py).

Outside QA's "black hole" agent reported room, acknowledged every Launch and started none: it held 11 of 12 jobs
in Placed, with an empty message, while a cluster with room sat idle, for as long as its stream stayed up.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import generate_latest
from server_support import LEASE, Clock, MemoryStore, capacity, join, make, spec
from test_drains import federator
from test_rebalancing import chat

from federator.jobfile import parse_job
from federator.model import ClusterState, Job, JobPhase, JobSpec, ReasonCode
from federator.model.cordon import Drain
from federator.server.federator import ClusterRecord, Federator
from federator.server.moving import Ask
from federator.server.start_deadline import CHECK_SECONDS

TIMEOUT = 600.0


def _placed(fed: Federator, name: str) -> tuple[str, str]:
    job = fed.submit(spec(name, replicas=4))  # a whole cluster (4 nodes of 8)
    fed.schedule_once()
    (p,) = job.placements
    return job.job_id, p.placement_id


def test_a_placement_acked_and_never_started_moves_to_a_cluster_with_room() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock, start_timeout=TIMEOUT)
    hole = join(fed, "hole")
    job_id, pid = _placed(fed, "stuck")
    fed.acked(hole, pid)  # it took the Launch...
    job = fed.jobs[job_id]
    assert job.message.startswith("placed on hole at ") and job.message.endswith("not started yet")
    join(fed, "good")

    clock.now += TIMEOUT - CHECK_SECONDS
    fed.report(hole, capacity(pid))  # ...and keeps reporting, holding it
    assert fed.starts.check() == [] and job.phase is JobPhase.PLACED

    clock.now += 2 * CHECK_SECONDS
    fed.report(hole, capacity(pid))
    assert fed.starts.check() == [job]
    assert job.phase is JobPhase.PENDING and job.pending_reason is not None
    assert job.pending_reason.code is ReasonCode.REFUSED_BY_CLUSTER
    assert f"hole did not start placement {pid} within 600s (--start-timeout)" in job.pending_reason.message
    fed.schedule_once()
    assert [p.cluster for p in job.placements] == ["good"]  # the hole is avoided for it
    scrape = generate_latest(fed.metrics.registry).decode()
    assert 'federator_placement_start_timeouts_total{cluster="hole"} 1.0' in scrape
    assert 'federator_placement_start_timeouts_total{cluster="good"} 0.0' in scrape


def test_a_started_placement_is_never_moved() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock, start_timeout=TIMEOUT)
    rec = join(fed, "fine")
    job_id, pid = _placed(fed, "runs")
    fed.job_update(rec, pid, JobPhase.RUNNING, "")
    clock.now += 10 * TIMEOUT
    fed.report(rec, capacity(pid))
    assert fed.starts.check() == [] and fed.jobs[job_id].phase is JobPhase.RUNNING


def test_a_placement_a_members_queue_holds_and_no_one_else_can_run_is_left_there() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock, start_timeout=TIMEOUT)
    rec = join(fed, "kueue")
    job_id, pid = _placed(fed, "queued")
    job = fed.jobs[job_id]
    fed.answer_move(job, Ask("kueue", pid, "Kueue: waiting for quota"), "")  # kept: no other cluster has room
    clock.now += 10 * TIMEOUT
    fed.report(rec, capacity(pid))
    assert fed.starts.check() == [] and job.phase is JobPhase.PLACED


def test_time_a_cluster_was_away_does_not_count() -> None:
    """A Partitioned cluster could not start anything: its placements' clock starts again when it is Ready."""
    clock = Clock()
    fed = make(MemoryStore(), clock, start_timeout=TIMEOUT)
    rec = join(fed, "away")
    job_id, pid = _placed(fed, "patient")
    fed.disconnect(rec)
    clock.now += LEASE + 1
    fed.check_leases()
    clock.now += TIMEOUT  # away all this time: the Lost path is the one for that, not this
    assert fed.starts.check() == []
    back = fed.connect(cluster="away", region="r", labels={})
    fed.report(back, capacity(pid))
    assert fed.clusters["away"].state is ClusterState.READY
    clock.now += TIMEOUT - 1
    assert fed.starts.check() == [] and fed.jobs[job_id].phase is JobPhase.PLACED
    clock.now += CHECK_SECONDS + 1
    fed.report(back, capacity(pid))
    assert fed.starts.check() == [fed.jobs[job_id]]


def test_zero_turns_it_off() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock, start_timeout=0.0)
    join(fed, "hole")
    job_id, _ = _placed(fed, "stuck")
    clock.now += 1e6
    assert fed.starts.check() == [] and fed.jobs[job_id].phase is JobPhase.PLACED


def _serving(name: str) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
                      "spec": {"kind": "inference", "replicas": 4,
                               "resources": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 8}}})


def _tick(fed: Federator, clock: Clock, seconds: float, *recs: ClusterRecord) -> list[Job]:
    """`seconds` of the loop: a look every CHECK_SECONDS, the agents heard from; the jobs moved."""
    moved: list[Job] = []
    end = clock.now + seconds
    while clock.now < end:
        clock.now = min(end, clock.now + CHECK_SECONDS)
        for rec in recs:
            fed.heard(rec)
        moved += fed.starts.check()
    return moved


def test_a_stuck_part_keeps_its_deadline_when_another_part_is_placed_again() -> None:
    """A spread job's part is timed from its own placement: the other part's new placement (which moves
    job.placed_at) gave the stuck one a fresh deadline (review60 R1; early_failures.py's `_since` is the same
    rule for failures)."""
    clock = Clock()
    fed = make(MemoryStore(), clock, start_timeout=TIMEOUT)
    a, b = join(fed, "a", region="east"), join(fed, "b", region="west")
    job = fed.submit(_serving("serve"))
    fed.schedule_once()
    pa = next(p for p in job.placements if p.cluster == "a")
    pb = next(p for p in job.placements if p.cluster == "b")
    fed.acked(a, pa.placement_id)  # A took its part and never starts it
    fed.acked(b, pb.placement_id)
    fed.job_update(b, pb.placement_id, JobPhase.RUNNING, "2 of 2 replicas running")
    assert _tick(fed, clock, TIMEOUT / 2, a, b) == []
    fed.job_update(b, pb.placement_id, JobPhase.CANCELLED, "evicted")  # B's part ends: placed again, alone
    fed.report(b, capacity(free=0))
    c = join(fed, "c", region="north")
    fed.schedule_once()
    pc = next(p for p in job.placements if p.cluster == "c")
    assert job.placed_at == clock.now and pa in job.placements
    fed.acked(c, pc.placement_id)
    fed.job_update(c, pc.placement_id, JobPhase.RUNNING, "2 of 2 replicas running")

    assert _tick(fed, clock, TIMEOUT / 2 + 2 * CHECK_SECONDS, a, b, c) == [job]  # A's part: TIMEOUT + 10s stuck
    assert pa not in job.placements and pc in job.placements
    assert job.pending_reason is not None and f"a did not start placement {pa.placement_id}" in \
        job.pending_reason.message


def test_a_drains_new_part_of_a_job_placed_long_ago_gets_its_whole_deadline(tmp_path: Path) -> None:
    """A drain's surge adds a part without moving job.placed_at: timed from the job's placement, hours ago, the
    new part was overdue at the first look, its Launch barely sent (review60 R1)."""
    clock = Clock()
    fed, cordons = federator(tmp_path / "fed.db", clock)
    west, east = join(fed, "west-1", region="west"), join(fed, "east-1", region="east")
    job = fed.submit(chat(replicas=2, preferred=("west",)))
    fed.schedule_once()
    [old] = job.placements
    fed.acked(west, old.placement_id)
    fed.job_update(west, old.placement_id, JobPhase.RUNNING, "2 of 2 replicas running")
    assert _tick(fed, clock, 2 * fed.starts.timeout, west, east) == []  # it serves for an hour
    asyncio.run(fed.cordons.drain("west-1", Drain("admin", clock.now, "hardware swap")))
    assert fed.drains.turn() == 1  # the surge: a new part on east-1
    [new] = [p for p in job.placements if p.cluster == "east-1"]
    fed.acked(east, new.placement_id)
    assert _tick(fed, clock, fed.starts.timeout - CHECK_SECONDS, west, east) == []
    assert new in job.placements and new.phase is JobPhase.PLACED
    cordons.close()
    fed.store.close()
