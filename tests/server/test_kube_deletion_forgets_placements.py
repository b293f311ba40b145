"""A deleted FederatedJob's job leaves no index entry of its earlier placements (outside QA, soak S5's Kubernetes
twin): `Deletions.forget` dropped the job and the placements it still held, and the refused, lost and superseded
ones stayed in the placement index for ever, as they did after retention before S5's fix."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

from server_support import LEASE, LOST_AFTER, Clock, join, spec

from federator.backends.kube.deletions import Deletions
from federator.model import JobPhase
from federator.server.federator import Federator
from federator.store import SqliteJobStore

if TYPE_CHECKING:
    from federator.backends.kube.member_clusters import MemberClusters
    from federator.backends.kube.store import KubeJobStore


class _KeptOfJobs:
    """What the Kubernetes store keeps of each job (its owners, conditions...): the ids `forget` dropped."""

    def __init__(self) -> None:
        self.forgotten: list[str] = []

    def forget(self, job_id: str) -> None:
        self.forgotten.append(job_id)


def test_a_deleted_federated_jobs_earlier_placements_leave_the_index(tmp_path: Path) -> None:
    clock = Clock()
    fed = Federator(store=SqliteJobStore(tmp_path / "f.db"), clock=clock, lease_seconds=LEASE,
                    lost_after_seconds=LOST_AFTER)
    join(fed, "east-1")
    join(fed, "west-1")
    jobs = [fed.submit(spec(f"gang{i}")) for i in range(2)]
    attempts: list[str] = []
    for round_ in range(3):  # refused twice, placed a third time: three placements each, two superseded
        fed.schedule_once()
        for job in jobs:
            (p,) = job.placements
            attempts.append(p.placement_id)
            rec = fed.clusters[p.cluster]
            if round_ < 2:
                fed.refused(rec, p.placement_id, "no room after all")
            else:
                fed.acked(rec, p.placement_id)
                fed.job_update(rec, p.placement_id, JobPhase.RUNNING, "running")
                fed.job_update(rec, p.placement_id, JobPhase.SUCCEEDED, "done")
        clock.now += 120  # past the refusal's avoidance
    assert all(j.phase is JobPhase.SUCCEEDED for j in jobs) and len(set(attempts)) == 6
    assert sorted(fed.placement_index) == sorted(attempts)  # kept while the jobs live (server/orphans.py)
    kept = _KeptOfJobs()
    deletions = Deletions(fed, cast("KubeJobStore", kept), cast("MemberClusters", None), clock=clock)
    deletions.forget(jobs[0].job_id)  # its FederatedJob is gone
    assert fed.jobs.get(jobs[0].job_id) is None
    assert sorted(fed.placement_index.values()) == [jobs[1].job_id] * 3  # on main: gang0's 2 earlier ones stayed
    deletions.forget(jobs[1].job_id)
    assert fed.placement_index == {}
    assert kept.forgotten == [jobs[0].job_id, jobs[1].job_id]  # and the store's own of them (kubescaleqa62 M1)
    fed.store.close()

