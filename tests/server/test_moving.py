"""A placement the member's own queue (Kueue) holds past the agent's admission timeout: the agent asks
(JobUpdate.admission_overdue) and the federator moves the job only where it can run now. Before, the agent
deleted it, and a job whose only member held it went back to the end of that member's queue every timeout."""

from __future__ import annotations

import pytest
from server_support import Clock, MemoryStore, capacity, join, make, spec

from federator.api.v1 import agent_pb2, types_pb2
from federator.jobfile import parse_job
from federator.model import JobPhase, JobSpec, ReasonCode
from federator.server.federator import ClusterRecord, Federator
from federator.server.orders import CancelOrder, LaunchOrder, Order
from federator.server.validation import check_update

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
    (job,) = fed.jobs.values()
    assert job.phase is JobPhase.PLACED and [p.placement_id for p in job.placements] == [pid]
    assert job.placements[0].message == f"{HELD}; no other cluster can run it now, so it keeps its place in " \
                                        "east-1's queue"
    assert not any(isinstance(o, CancelOrder) for o in drain(rec))  # nothing deleted: Kueue's queue order stands


def test_a_held_placement_moves_when_another_cluster_can_run_it_now(clock: Clock) -> None:
    fed = make(MemoryStore(), clock)
    join(fed, "east-1")
    pid, east = held_on_east(fed)
    west = join(fed, "west-1")
    fed.job_update(east, pid, JobPhase.PLACED, HELD, admission_overdue=True)
    (job,) = fed.jobs.values()
    assert job.phase is JobPhase.PENDING and job.pending_reason is not None
    assert job.pending_reason.code is ReasonCode.REFUSED_BY_CLUSTER
    assert job.pending_reason.message.startswith(f"east-1 held placement {pid} unadmitted past its admission "
                                                 "timeout (waiting for Kueue admission on east-1: ")
    assert job.pending_reason.message.endswith("; moved: west-1 can run it now")
    cancels = [o for o in drain(east) if isinstance(o, CancelOrder)]
    assert [c.placement_id for c in cancels] == [pid] and cancels[0].reason.startswith("superseded: ")
    fed.schedule_once()
    (p,) = job.placements
    assert p.cluster == "west-1" and p.generation == 2  # east-1 is avoided for a while, as after a refusal
    assert any(isinstance(o, LaunchOrder) for o in drain(west))


def test_a_held_placement_stays_while_the_other_cluster_is_full_and_moves_once_it_has_room(clock: Clock) -> None:
    fed = make(MemoryStore(), clock)
    join(fed, "east-1")
    pid, east = held_on_east(fed)
    west = fed.connect(cluster="west-1", region="r", labels={})
    fed.report(west, capacity(free=0))
    fed.job_update(east, pid, JobPhase.PLACED, HELD, admission_overdue=True)
    (job,) = fed.jobs.values()
    assert job.phase is JobPhase.PLACED and job.placements[0].cluster == "east-1"
    assert "keeps its place in east-1's queue" in job.placements[0].message
    clock.now += 1
    fed.report(west, capacity(free=8))
    fed.job_update(east, pid, JobPhase.PLACED, HELD, admission_overdue=True)  # the agent asks again
    assert job.phase is JobPhase.PENDING
    fed.schedule_once()
    assert [p.cluster for p in job.placements] == ["west-1"]


def job(name: str, *, priority: int = 0, preemptible: bool = False) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
                      "spec": {"kind": "training", "replicas": 4, "priority": priority, "preemptible": preemptible,
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
    assert held.phase is JobPhase.PLACED and filler.phase is JobPhase.PLACED  # no one evicted to make room
    assert "keeps its place in east-1's queue" in held.placements[0].message


def test_only_a_placed_placement_can_be_overdue_for_admission() -> None:
    update = agent_pb2.JobUpdate(placement_id="j.g1.east-1", phase=types_pb2.JOB_PHASE_RUNNING,
                                 admission_overdue=True)
    refusal = check_update(update, JobPhase.RUNNING)
    assert refusal is not None and refusal.message == ("job_update.admission_overdue: only a Placed placement waits "
                                                       "for admission; j.g1.east-1 is reported Running"), refusal
    assert check_update(agent_pb2.JobUpdate(placement_id="j.g1.east-1", phase=types_pb2.JOB_PHASE_PLACED,
                                            admission_overdue=True), JobPhase.PLACED) is None
