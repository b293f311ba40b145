"""The live federator's reservations (server/reservations.py): a parked gang comes back when it is due, holds
room from cycle to cycle, the jobs kept off say why, the gauges count it, and its end brings those jobs back."""

from __future__ import annotations

from pathlib import Path

from federator.model import ClusterCapacity, JobPhase, ReasonCode
from federator.scheduler import Scheduler, parse_policy
from federator.server.federator import Federator
from federator.store import SqliteJobStore

from builders import job, pool

H100 = "NVIDIA-H100-80GB-HBM3"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def capacity(hist: dict[int, int]) -> ClusterCapacity:
    p = pool(H100, nodes=0, extra=hist)
    return ClusterCapacity(accelerator_pools=(p,), cpu_milli_allocatable=10**6, cpu_milli_free=10**6,
                           memory_bytes_allocatable=2**45, memory_bytes_free=2**45,
                           node_cpu_milli_free_max=10**5, node_memory_bytes_free_max=2**42)


def federator(tmp_path: Path, policy: str = "reservations: {afterSeconds: 600, maxReservations: 2}"
              ) -> tuple[Federator, Clock]:
    clock = Clock()
    fed = Federator(store=SqliteJobStore(tmp_path / "db"), scheduler=Scheduler(parse_policy(policy)), clock=clock)
    return fed, clock


def gauge(fed: Federator, name: str) -> float | None:
    return fed.metrics.registry.get_sample_value(name)


def test_a_parked_gang_comes_back_when_due_and_holds_room_against_the_flood(tmp_path: Path) -> None:
    fed, clock = federator(tmp_path)
    rec = fed.connect(cluster="east-1", region="east", labels={})
    fed.report(rec, capacity({5: 1, 0: 1}))  # one node with 5 free, one full
    gang = fed.submit(job("gang", gpus=8, queue="train"))
    fed.schedule_once()
    assert gang.phase is JobPhase.PENDING and gang.job_id in fed.cycles.parked
    clock.now += 601
    small = fed.submit(job("small", gpus=1, queue="flood"))
    fed.schedule_once()
    assert gang.job_id not in fed.cycles.parked  # due: it came back, and holds room now
    assert small.phase is JobPhase.PENDING
    assert small.pending_reason is not None and small.pending_reason.code is ReasonCode.RESERVED
    assert small.pending_reason.message.endswith("held for a waiting gang of another queue")  # not its id
    assert gang.pending_reason is not None
    assert gang.pending_reason.message.startswith(f"waiting for 3 of 8 {H100} to free on east-1, held for it since ")
    assert gauge(fed, "federator_reservations") == 1.0
    assert gauge(fed, "federator_reservation_held_accelerators") == 5.0
    fed.schedule_once()  # a later cycle: still held, the gang still a candidate
    assert gang.job_id in fed.cycles.reserved and gang.job_id not in fed.cycles.parked
    urgent = fed.submit(job("urgent", gpus=1, queue="flood", priority=10))
    fed.schedule_once()
    assert urgent.phase is JobPhase.PLACED  # higher priority passes


def test_a_cancelled_gang_frees_its_room_for_the_jobs_it_kept_off(tmp_path: Path) -> None:
    fed, clock = federator(tmp_path)
    rec = fed.connect(cluster="east-1", region="east", labels={})
    fed.report(rec, capacity({5: 1, 0: 1}))
    gang = fed.submit(job("gang", gpus=8, queue="train"))
    clock.now += 601
    small = fed.submit(job("small", gpus=1, queue="flood"))
    fed.schedule_once()
    assert small.phase is JobPhase.PENDING and small.job_id in fed.cycles.parked
    fed.cancel(gang.job_id)
    fed.schedule_once()  # the reservation ends with this cycle, and brings back what it kept off
    fed.schedule_once()
    assert small.phase is JobPhase.PLACED
    assert gauge(fed, "federator_reservations") == 0.0


def test_reservations_off_the_flood_takes_the_room(tmp_path: Path) -> None:
    fed, clock = federator(tmp_path, "reservations: {enabled: false}")
    rec = fed.connect(cluster="east-1", region="east", labels={})
    fed.report(rec, capacity({5: 1, 0: 1}))
    fed.submit(job("gang", gpus=8, queue="train"))
    clock.now += 601
    small = fed.submit(job("small", gpus=1, queue="flood"))
    fed.schedule_once()
    assert small.phase is JobPhase.PLACED
    assert gauge(fed, "federator_reservations") == 0.0
