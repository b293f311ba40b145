"""A placement the member's own queue (Kueue) holds past the agent's admission timeout: the agent asks
(JobUpdate.admission_overdue) and the federator moves the job only where it can run now. Before, the agent
deleted it, and a job whose only member held it went back to the end of that member's queue every timeout."""

from __future__ import annotations

import asyncio

import pytest
from server_support import H100, Clock, MemoryStore, capacity, join, make, spec

from federator.api.v1 import agent_pb2, types_pb2
from federator.jobfile import parse_job
from federator.model import JobPhase, JobSpec, ReasonCode
from federator.model.cordon import Cordon
from federator.server.federator import ClusterRecord, Federator
from federator.server.orders import CancelOrder, LaunchOrder, Order
from federator.server.validation import check_update

from builders import cluster, pool

HELD = ("waiting for Kueue admission on east-1: couldn't assign flavors to pod set main: insufficient quota for "
        "nvidia.com/gpu in flavor default, 8 more needed; held 600s (--kueue-admission-timeout 600s)")


@pytest.fixture
def clock() -> Clock:
    return Clock()


def drain(rec: ClusterRecord) -> list[Order | None]:
    out: list[Order | None] = []
    while not rec.outbox.empty():
        out.append(rec.outbox.get_nowait())
    return out


def moves(fed: Federator) -> dict[tuple[str, str], float]:
    """federator_placement_moves_total by (cluster, result): the asks answered, as the metrics page has them (the
    series at 0 each connected cluster starts with left out)."""
    return {(s.labels["cluster"], s.labels["result"]): s.value
            for family in fed.metrics.registry.collect() if family.name == "federator_placement_moves"
            for s in family.samples if s.name.endswith("_total") and s.value}


def held_on_east(fed: Federator) -> tuple[str, ClusterRecord]:
    """A job placed on east-1 (the only cluster then), launched, and reported waiting for Kueue."""
    job = fed.submit(spec("held"))
    fed.schedule_once()
    (p,) = job.placements
    rec = fed.clusters["east-1"]
    assert p.cluster == "east-1" and any(isinstance(o, LaunchOrder) for o in drain(rec))
    fed.acked(rec, p.placement_id)
    fed.job_update(rec, p.placement_id, JobPhase.PLACED, "waiting for Kueue admission on east-1: ...")
    return p.placement_id, rec


def test_a_held_placement_on_the_only_cluster_keeps_its_place_in_the_member_queue(clock: Clock) -> None:
    fed = make(MemoryStore(), clock)
    join(fed, "east-1")
    pid, rec = held_on_east(fed)
    fed.job_update(rec, pid, JobPhase.PLACED, HELD, admission_overdue=True)
    fed.schedule_once()  # the next turn answers
    (job,) = fed.jobs.values()
    assert job.phase is JobPhase.PLACED and [p.placement_id for p in job.placements] == [pid]
    assert job.placements[0].message == f"{HELD}; no other cluster can run it now, so it keeps its place in " \
                                        "east-1's queue"
    assert not any(isinstance(o, CancelOrder) for o in drain(rec))  # nothing deleted: Kueue's queue order stands
    assert moves(fed) == {("east-1", "kept"): 1.0}  # what an SRE sees: the member's quota holds work no one else runs


def test_a_held_placement_moves_when_another_cluster_can_run_it_now(clock: Clock) -> None:
    fed = make(MemoryStore(), clock)
    join(fed, "east-1")
    pid, east = held_on_east(fed)
    west = join(fed, "west-1")
    fed.job_update(east, pid, JobPhase.PLACED, HELD, admission_overdue=True)
    (job,) = fed.jobs.values()
    assert job.phase is JobPhase.PLACED  # asked: answered at the next turn
    moved = []
    fed.notify = lambda jobs: moved.extend(  # type: ignore[method-assign]
        (j.phase, j.pending_reason) for j in jobs if j.phase is JobPhase.PENDING)
    fed.schedule_once()
    ((_, reason),) = moved
    assert reason is not None and reason.code is ReasonCode.REFUSED_BY_CLUSTER
    assert reason.message.startswith(f"east-1 held placement {pid} unadmitted past its admission timeout "
                                     "(waiting for Kueue admission on east-1: ")
    assert reason.message.endswith("; moved: west-1 can run it now")
    cancels = [o for o in drain(east) if isinstance(o, CancelOrder)]
    assert [c.placement_id for c in cancels] == [pid] and cancels[0].reason.startswith("superseded: ")
    (p,) = job.placements  # placed by the same turn's cycle
    assert p.cluster == "west-1" and p.generation == 2  # east-1 is avoided for a while, as after a refusal
    assert moves(fed) == {("east-1", "moved"): 1.0}
    assert any(isinstance(o, LaunchOrder) for o in drain(west))


def test_a_held_placement_is_not_moved_onto_a_cluster_whose_maintenance_window_it_would_cross(clock: Clock) -> None:
    """west-1 has room, but its maintenance begins tomorrow and the job has no run bound: the cycle would never
    start it there (scheduler/maintenance_window.py), so the move's what-if must not either. Before, it was not
    told of windows: the job was moved off its place in east-1's queue to west-1, then waited."""
    fed = make(MemoryStore(), clock)
    join(fed, "east-1")
    pid, east = held_on_east(fed)
    join(fed, "west-1")
    window = Cordon("admin", clock.now, "switch", window_from=clock.now + 86_400, window_until=clock.now + 90_000)
    assert asyncio.run(fed.cordons.cordon("west-1", window))
    fed.job_update(east, pid, JobPhase.PLACED, HELD, admission_overdue=True)
    fed.schedule_once()
    (job,) = fed.jobs.values()
    assert job.phase is JobPhase.PLACED and [p.placement_id for p in job.placements] == [pid]
    assert job.placements[0].message.endswith("so it keeps its place in east-1's queue")
    assert moves(fed) == {("east-1", "kept"): 1.0}


def test_a_held_placement_stays_while_the_other_cluster_is_full_and_moves_once_it_has_room(clock: Clock) -> None:
    fed = make(MemoryStore(), clock)
    join(fed, "east-1")
    pid, east = held_on_east(fed)
    west = fed.connect(cluster="west-1", region="r", labels={})
    fed.report(west, capacity(free=0))
    fed.job_update(east, pid, JobPhase.PLACED, HELD, admission_overdue=True)
    fed.schedule_once()
    (job,) = fed.jobs.values()
    assert job.phase is JobPhase.PLACED and job.placements[0].cluster == "east-1"
    assert "keeps its place in east-1's queue" in job.placements[0].message
    clock.now += 1
    fed.report(west, capacity(free=8))
    fed.job_update(east, pid, JobPhase.PLACED, HELD, admission_overdue=True)  # the agent asks again
    fed.schedule_once()
    assert [p.cluster for p in job.placements] == ["west-1"]


def job(name: str, *, priority: int = 0, preemptible: bool = False, replicas: int = 4) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
                      "spec": {"kind": "training", "replicas": replicas, "priority": priority,
                               "preemptible": preemptible,
                               "resources": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 8}}})


def test_a_job_that_fits_elsewhere_only_by_preempting_is_not_moved(clock: Clock) -> None:
    fed = make(MemoryStore(), clock)
    join(fed, "west-1")  # 4 nodes x 8 GPUs: one 4 x 8 gang
    filler = fed.submit(job("filler", priority=-5, preemptible=True))
    fed.schedule_once()
    assert [p.cluster for p in filler.placements] == ["west-1"]
    fed.report(fed.clusters["west-1"], capacity(filler.placements[0].placement_id, free=0))
    east = join(fed, "east-1")
    held = fed.submit(job("held", priority=10))
    fed.schedule_once()
    (p,) = held.placements
    assert p.cluster == "east-1" and filler.phase is JobPhase.PLACED
    fed.acked(east, p.placement_id)
    fed.job_update(east, p.placement_id, JobPhase.PLACED, HELD, admission_overdue=True)
    fed.schedule_once()
    assert held.phase is JobPhase.PLACED and filler.phase is JobPhase.PLACED  # no one evicted to make room
    assert "keeps its place in east-1's queue" in held.placements[0].message


def test_two_held_jobs_and_room_for_one_elsewhere_move_one(clock: Clock) -> None:
    """The asks are answered by one cycle: the held jobs compete for the room elsewhere, so the second is not
    moved to room the first takes (it would come back to the end of its queue)."""
    fed = make(MemoryStore(), clock)
    east = join(fed, "east-1")  # 4 nodes x 8 free: both 2 x 8 gangs
    jobs = [fed.submit(job(f"held-{i}", replicas=2)) for i in range(2)]
    fed.schedule_once()
    assert [p.cluster for j in jobs for p in j.placements] == ["east-1", "east-1"]
    west = fed.connect(cluster="west-1", region="r", labels={})
    fed.report(west, cluster("west-1", "r", pool(H100, nodes=2, free=8, extra={0: 2})).capacity)  # one 2 x 8 gang
    for j in jobs:
        fed.acked(east, j.placements[0].placement_id)
        fed.job_update(east, j.placements[0].placement_id, JobPhase.PLACED, HELD, admission_overdue=True)
    fed.schedule_once()
    assert sorted(p.cluster for j in jobs for p in j.placements) == ["east-1", "west-1"]
    kept = next(j for j in jobs if j.placements[0].cluster == "east-1")
    assert kept.phase is JobPhase.PLACED and kept.generation == 1
    assert "keeps its place in east-1's queue" in kept.placements[0].message


def test_only_a_placed_placement_can_be_overdue_for_admission() -> None:
    update = agent_pb2.JobUpdate(placement_id="j.g1.east-1", phase=types_pb2.JOB_PHASE_RUNNING,
                                 admission_overdue=True)
    refusal = check_update(update, JobPhase.RUNNING)
    assert refusal is not None and refusal.message == ("job_update.admission_overdue: only a Placed placement waits "
                                                       "for admission; j.g1.east-1 is reported Running"), refusal
    assert check_update(agent_pb2.JobUpdate(placement_id="j.g1.east-1", phase=types_pb2.JOB_PHASE_PLACED,
                                            admission_overdue=True), JobPhase.PLACED) is None


def test_the_kept_note_stays_when_the_member_says_more_and_goes_when_it_admits(clock: Clock) -> None:
    """Kueue's reason changes while it holds the job ("4 more needed" after "8 more"): the agent sends it, and the
    user must still read that the federator leaves the job there, and why, until the member admits it."""
    fed = make(MemoryStore(), clock)
    join(fed, "east-1")
    pid, rec = held_on_east(fed)
    fed.job_update(rec, pid, JobPhase.PLACED, HELD, admission_overdue=True)
    fed.schedule_once()
    later = HELD.replace("8 more needed", "4 more needed")
    fed.job_update(rec, pid, JobPhase.PLACED, later)
    (job,) = fed.jobs.values()
    assert job.placements[0].message == f"{later}; no other cluster can run it now, so it keeps its place in " \
                                        "east-1's queue"
    fed.job_update(rec, pid, JobPhase.RUNNING, "1 replica running")
    assert job.placements[0].message == "1 replica running"


def test_moves_are_counted_from_zero_for_each_connected_cluster() -> None:
    """The panel "Held placements agents asked to move" showed No data until a first move: no series before."""
    from server_support import Clock, MemoryStore, join, make

    fed = make(MemoryStore(), Clock())
    join(fed, "west-1")
    for result in ("moved", "kept"):
        assert fed.metrics.registry.get_sample_value(
            "federator_placement_moves_total", {"cluster": "west-1", "result": result}) == 0.0


def test_a_held_job_is_not_moved_into_room_held_for_a_gang(clock: Clock) -> None:
    """West's free node is held for a gang that has waited past the reservations' threshold. Moving the held job
    there would cost it its place in east's queue and then leave it `Reserved` in the same turn's cycle."""
    fed = make(MemoryStore(), clock)
    east = fed.connect(cluster="east-1", region="r", labels={})
    fed.report(east, cluster("east-1", "r", pool(H100, nodes=1, free=8)).capacity)  # one 8-GPU node
    held = fed.submit(job("held", replicas=1))
    fed.schedule_once()
    (p,) = held.placements
    assert p.cluster == "east-1"
    west = fed.connect(cluster="west-1", region="r", labels={})
    fed.report(west, cluster("west-1", "r", pool(H100, nodes=1, free=8, extra={0: 1})).capacity)  # 1 of 2 free
    gang = fed.submit(job("gang", replicas=2))  # 2 x 8: fits nowhere now; west is the nearest
    fed.schedule_once()
    clock.now += 601  # the default policy's reservations.afterSeconds
    fed.schedule_once()
    assert gang.job_id in fed.cycles.reserved and gang.phase is JobPhase.PENDING
    fed.acked(east, p.placement_id)
    fed.job_update(east, p.placement_id, JobPhase.PLACED, HELD, admission_overdue=True)
    fed.schedule_once()
    assert held.phase is JobPhase.PLACED and [q.placement_id for q in held.placements] == [p.placement_id]
    assert "keeps its place in east-1's queue" in held.placements[0].message
    assert moves(fed) == {("east-1", "kept"): 1.0}
