"""After a restore of the job store from an older snapshot, a job cancelled (or its FederatedJob deleted) since is
back Running; its agent's re-sync says the placement Cancelled by a Cancel that ended the job (JobUpdate.job_ended):
the job ends Cancelled, it is not placed again (server/restored_ends.py; outside QA, Kubernetes DR, K1). A placement
the cluster stopped on its own (no job_ended) still has its job queued again."""

from __future__ import annotations

import pytest
from server_support import Clock, MemoryStore, capacity, make, spec

from federator.model import Job, JobPhase
from federator.server.federator import Federator
from federator.server.orders import LaunchOrder


def _restored(clock: Clock) -> tuple[Federator, Job, str]:
    """A store restored from a backup taken while job a ran on cluster c (placement a.g1.c)."""
    live = MemoryStore()
    first = make(live, clock)
    a = first.submit(spec("a"))
    first.connect(cluster="c", region="r", labels={})
    first.report(first.clusters["c"], capacity())
    first.schedule_once()
    pid = a.placements[0].placement_id
    first.job_update(first.clusters["c"], pid, JobPhase.RUNNING, "")
    backup = MemoryStore()
    backup.put(live.load())  # the snapshot; then the job was cancelled and its placement stopped
    fed = make(backup, clock)
    return fed, fed.jobs[a.job_id], pid


def _launches(fed: Federator) -> list[str]:
    out = []
    for rec in fed.clusters.values():
        while not rec.outbox.empty():
            order = rec.outbox.get_nowait()
            if isinstance(order, LaunchOrder):
                out.append(order.placement.placement_id)
    return out


@pytest.mark.parametrize("job_ended", [True, False])
def test_a_job_a_federator_ended_since_the_snapshot_is_not_run_again(job_ended: bool) -> None:
    clock = Clock()
    fed, job, pid = _restored(clock)
    assert job.phase is JobPhase.RUNNING
    clock.now += 3600.0  # the restore comes an hour later
    rec = fed.connect(cluster="c", region="r", labels={})
    fed.job_update(rec, pid, JobPhase.CANCELLED, "job cancelled", ended_at=clock.now - 3000.0, job_ended=job_ended)
    fed.report(rec, capacity())
    fed.schedule_once()
    if not job_ended:  # a stop the cluster made on its own (an eviction): queued again, as before (kept off c a while)
        assert job.phase is JobPhase.PENDING and job.pending_reason is not None
        return
    assert job.phase is JobPhase.CANCELLED
    assert job.message.startswith(f"cancelled: c says placement {pid} was stopped by a federator's cancel of the "
                                  "job (job cancelled), after the state this store holds")
    assert job.finished_at == clock.now - 3000.0  # billed to the end its agent said, not to the re-sync
    assert _launches(fed) == []
    assert {j.job_id: j.phase for j in fed.store.load()}[job.job_id] is JobPhase.CANCELLED  # type: ignore[attr-defined]
