"""A placement its cluster does not start within --start-timeout is placed again (server/start_deadline.py).

Outside QA's "black hole" agent reported room, acknowledged every Launch and started none: it held 11 of 12 jobs
in Placed, with an empty message, while a cluster with room sat idle, for as long as its stream stayed up.
"""

from __future__ import annotations

from prometheus_client import generate_latest
from server_support import LEASE, Clock, MemoryStore, capacity, join, make, spec

from federator.model import ClusterState, JobPhase, ReasonCode
from federator.server.federator import Federator
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
