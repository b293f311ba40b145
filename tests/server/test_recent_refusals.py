"""A job a cluster just refused (e.g. its gang timed out there) goes elsewhere first, if it can."""

from __future__ import annotations

from pathlib import Path

from federator.model import ClusterCapacity, JobId, JobPhase, ReasonCode
from federator.server.federator import Federator
from federator.server.refusals import RecentRefusals
from federator.store import SqliteJobStore

from builders import job as job_spec
from builders import pool

H100 = "NVIDIA-H100-80GB-HBM3"


def test_refusals_are_avoided_for_the_cooldown_and_only_while_another_cluster_is_ready() -> None:
    r = RecentRefusals(cooldown=60)
    r.note(JobId("j"), "a", now=100)
    assert r.avoided(JobId("j"), 110, ready=["a", "b"]) == ("a",)
    assert r.avoided(JobId("j"), 110, ready=["a"]) == ()  # nowhere else to go: try it there again
    assert r.avoided(JobId("other"), 110, ready=["a", "b"]) == ()
    assert r.avoided(JobId("j"), 161, ready=["a", "b"]) == ()  # the cooldown is over
    assert not r.remembers(JobId("j"))


def _capacity(nodes: int) -> ClusterCapacity:
    return ClusterCapacity(
        accelerator_pools=(pool(H100, nodes=nodes),),
        cpu_milli_allocatable=10**6,
        cpu_milli_free=10**6,
        memory_bytes_allocatable=2**45,
        memory_bytes_free=2**45,
        node_cpu_milli_free_max=10**5,
        node_memory_bytes_free_max=2**42,
    )


def test_a_gang_stopped_by_its_cluster_is_placed_on_the_other_one(tmp_path: Path) -> None:
    clock = [1000.0]
    fed = Federator(store=SqliteJobStore(tmp_path / "db"), clock=lambda: clock[0])
    a = fed.connect(cluster="a", region="r", labels={})
    fed.report(a, _capacity(2))
    job = fed.submit(job_spec("gang", replicas=2, gpus=8, models=(H100,)))
    fed.schedule_once()
    first = job.placements[0]
    assert first.cluster == "a"
    b = fed.connect(cluster="b", region="r", labels={})
    fed.report(b, _capacity(1))  # too small for now
    fed.job_update(a, first.placement_id, JobPhase.CANCELLED, "refused: gang timeout on a: 1 of 2 pods bound")
    assert job.phase is JobPhase.PENDING
    fed.report(a, _capacity(2))
    fed.schedule_once()
    assert job.phase is JobPhase.PENDING  # a has room but refused it a moment ago; b is too small
    assert job.pending_reason is not None
    assert job.pending_reason.code in (ReasonCode.RECENTLY_REFUSED, ReasonCode.GANG_DOES_NOT_FIT,
                                       ReasonCode.INSUFFICIENT_ACCELERATORS), job.pending_reason
    fed.report(b, _capacity(2))
    fed.schedule_once()
    assert [p.cluster for p in job.placements] == ["b"]
