"""An elastic gang whose placement its member stopped is not placed again below the count it ran at on room the
federator has not heard back about (scheduler/elastic_regain.py, server/requeue.py).

Outside QA, elasticqa63 1b: a gang of 4 with spec.minReplicas 1 placed 3/4 on member-b; one pod evicted ended the
placement, and in the same second the gang was placed 1/4 on member-a, "it runs at 1 until it ends", while member-b
had its room free again moments later.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from federator.model import ClusterCapacity, JobPhase
from federator.scheduler.elastic_regain import REGAIN_SECONDS
from federator.server.federator import Federator
from federator.server.refusals import FIRST_REFUSAL_SECONDS
from federator.store import SqliteJobStore

from builders import job as job_spec
from builders import pool

H100 = "NVIDIA-H100-80GB-HBM3"


def _capacity(nodes: int, *, free: int = 8) -> ClusterCapacity:
    return ClusterCapacity(accelerator_pools=(pool(H100, nodes=nodes, free=free),), cpu_milli_allocatable=10**6,
                           cpu_milli_free=10**6, memory_bytes_allocatable=2**45, memory_bytes_free=2**45,
                           node_cpu_milli_free_max=10**5, node_memory_bytes_free_max=2**42)


def _evicted(tmp_path: Path) -> tuple[Federator, list[float], object, object]:
    """A gang of 4 x 8 H100 with minimum 1 placed 3/4 on b (a fits 1), then b stops it: one pod evicted."""
    clock = [1000.0]
    fed = Federator(store=SqliteJobStore(tmp_path / "db"), clock=lambda: clock[0])
    a, b = fed.connect(cluster="a", region="r", labels={}), fed.connect(cluster="b", region="r", labels={})
    fed.report(a, _capacity(1))
    fed.report(b, _capacity(3))
    job = fed.submit(replace(job_spec("ft", replicas=4, gpus=8, models=(H100,)), min_replicas=1))
    fed.schedule_once()
    [first] = job.placements
    assert (first.cluster, first.replicas) == ("b", 3)
    clock[0] += 60
    fed.report(b, _capacity(3, free=0))  # it runs there: b's nodes held
    fed.job_update(b, first.placement_id, JobPhase.CANCELLED,
                   "pod ft-2 evicted from node b-1 (DisruptionTarget: EvictionByEvictionAPI)")
    assert job.phase is JobPhase.PENDING
    return fed, clock, job, b


def test_a_gang_evicted_at_three_is_placed_at_three_again_where_it_ran(tmp_path: Path) -> None:
    fed, clock, job, b = _evicted(tmp_path)
    fed.schedule_once()  # b's room is not reported free yet, and b is avoided a while: a fits 1
    assert job.phase is JobPhase.PENDING and not job.placements  # not 1 on a, for the rest of its run
    assert "it ran 3 replicas on b until that placement ended, so it waits for 3 or more" in \
        job.pending_reason.message, job.pending_reason
    clock[0] += 5
    fed.report(b, _capacity(3))  # b's room is back, but b is still avoided for this job
    fed.schedule_once()
    assert not job.placements
    clock[0] += FIRST_REFUSAL_SECONDS
    fed.report(b, _capacity(3))
    fed.schedule_once()
    assert [(p.cluster, p.replicas) for p in job.placements] == [("b", 3)]


def test_when_b_does_not_come_back_it_takes_what_fits_after_the_bound(tmp_path: Path) -> None:
    fed, clock, job, _ = _evicted(tmp_path)
    clock[0] += REGAIN_SECONDS - 1
    fed.schedule_once()
    assert not job.placements  # b never reported again: it still waits for 3
    clock[0] += 1
    fed.schedule_once()
    assert [(p.cluster, p.replicas) for p in job.placements] == [("a", 1)]  # at most the bound, never its run
