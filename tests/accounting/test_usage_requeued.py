"""A placement that is re-queued is billed to its own end, not to the re-queue, on the standalone (SQLite) server.

The re-queue (Federator.supersede, server/partial.py `supersede_part`) drops the placements before the journal
writes the job, so the meter saw each one gone at the re-queue's moment and closed its record then: an eviction
reported with its JobUpdate.ended_at, an early failure placed once more, a spread job's failed part, a Lost
member's placements and one an agent re-synced without were all billed to the re-queue (a Lost member's: its
--lost-after grace too). Each is billed to its end here: the agent's word where it said one (server/end_times.py),
else the last time the federator knew it running (server/silent_ends.py).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from federator.accounting import SqliteUsageStore, UsageMeter, UsageRecord, attach
from federator.jobfile import parse_job
from federator.metrics import Metrics
from federator.model import ClusterState, JobPhase, JobSpec, ReasonCode
from federator.security.authz import Principal, stamp_owner
from federator.server.federator import Federator
from federator.store import SqliteJobStore
from federator.store.members import SqliteMemberStore

from builders import cluster, pool

H100 = "NVIDIA-H100-80GB-HBM3"
LEASE, LOST_AFTER = 10.0, 120.0


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def start(db: Path, clock: Clock) -> tuple[Federator, SqliteUsageStore]:
    usage = SqliteUsageStore(db)
    metrics = Metrics()
    fed = Federator(store=SqliteJobStore(db), metrics=metrics, clock=clock, lease_seconds=LEASE,
                    lost_after_seconds=LOST_AFTER, members=SqliteMemberStore(db))
    attach(fed, UsageMeter(usage, metrics=metrics, clock=clock))
    return fed, usage


def join(fed: Federator, name: str, *placement_ids: str) -> None:
    """`name`'s agent connects (again) and sends its first capacity report, naming the placements it holds."""
    rec = fed.connect(cluster=name, region=name, labels={})
    report(fed, name, *placement_ids)
    assert rec.state is ClusterState.READY


def report(fed: Federator, name: str, *placement_ids: str) -> None:
    fed.report(fed.clusters[name], replace(cluster(name, name, pool(H100, nodes=1)).capacity,
                                           placement_ids=frozenset(placement_ids)))


def spec(name: str, *, kind: str = "training", replicas: int = 1) -> JobSpec:
    return stamp_owner(parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                  "metadata": {"name": name},
                                  "spec": {"kind": kind, "replicas": replicas,
                                           "resources": {"cpu": "1", "nvidia.com/gpu": 8}}}), Principal("alice"))


def records(usage: SqliteUsageStore) -> dict[str, UsageRecord]:
    return {r.placement_id: r for r in usage.query(since=0.0, until=1e12)}


def running_job(db: Path, clock: Clock, *, clusters: tuple[str, ...] = ("east",), kind: str = "training",
                replicas: int = 1) -> tuple[Federator, SqliteUsageStore, str]:
    """A federator whose job is placed at 0 and Running from 10 on each cluster it holds (clock at 10)."""
    fed, usage = start(db, clock)
    for name in clusters:
        join(fed, name)
    job = fed.submit(spec("j", kind=kind, replicas=replicas))
    fed.schedule_once()
    assert len(job.placements) == replicas
    clock.now = 10.0
    for p in job.placements:
        fed.job_update(fed.clusters[p.cluster], p.placement_id, JobPhase.RUNNING, "")
    return fed, usage, job.job_id


@pytest.mark.parametrize(("phase", "code", "after"), [
    (JobPhase.CANCELLED, ReasonCode.REFUSED_BY_CLUSTER, 900.0),  # evicted, or fenced itself while cut off
    (JobPhase.FAILED, ReasonCode.FAILED_EARLY, 200.0),  # within --early-failure-seconds: placed once more
], ids=["cancelled", "failed-early"])
def test_a_placement_reported_ended_then_requeued_is_billed_to_its_said_end(
        tmp_path: Path, phase: JobPhase, code: ReasonCode, after: float) -> None:
    clock = Clock()
    fed, usage, job_id = running_job(tmp_path / "db", clock)
    (p,) = fed.jobs[job_id].placements  # type: ignore[index]
    clock.now = after  # heard of late (a re-sync after an outage): it ended at 40
    fed.job_update(fed.clusters["east"], p.placement_id, phase, "evicted" if phase is JobPhase.CANCELLED
                   else "exit 139", ended_at=40.0)
    job = fed.jobs[job_id]  # type: ignore[index]
    assert (job.phase, job.pending_reason and job.pending_reason.code) == (JobPhase.PENDING, code)
    assert (records(usage)[p.placement_id].start, records(usage)[p.placement_id].end) == (10.0, 40.0)
    assert job.ran_seconds == 30.0  # its attempt's run time (spec.maxRunSeconds) ends there too


def test_a_spread_jobs_part_that_failed_after_running_is_billed_to_its_end_and_the_other_runs_on(
        tmp_path: Path) -> None:
    clock = Clock()
    fed, usage, job_id = running_job(tmp_path / "db", clock, clusters=("east", "west"), kind="inference",
                                     replicas=2)
    failed, other = fed.jobs[job_id].placements  # type: ignore[index]
    clock.now = 1_000.0  # past --early-failure-seconds: only that part is placed again
    fed.job_update(fed.clusters[failed.cluster], failed.placement_id, JobPhase.FAILED, "deleted", ended_at=700.0)
    assert fed.jobs[job_id].placements == [other]  # type: ignore[index]
    got = records(usage)
    assert (got[failed.placement_id].start, got[failed.placement_id].end) == (10.0, 700.0)
    assert got[other.placement_id].end is None


def test_a_lost_members_placement_is_billed_to_its_last_report_not_to_the_failover(tmp_path: Path) -> None:
    clock = Clock()
    fed, usage, job_id = running_job(tmp_path / "db", clock)
    (p,) = fed.jobs[job_id].placements  # type: ignore[index]
    clock.now = 50.0
    report(fed, "east", p.placement_id)  # the last the federator hears: it holds the placement at 50
    clock.now = 50.0 + LEASE + 1
    fed.check_leases()
    assert fed.clusters["east"].state is ClusterState.PARTITIONED
    clock.now += LOST_AFTER + 1
    fed.check_leases()
    assert fed.clusters["east"].state is ClusterState.LOST
    assert fed.jobs[job_id].phase is JobPhase.PENDING  # type: ignore[index]
    assert (records(usage)[p.placement_id].start, records(usage)[p.placement_id].end) == (10.0, 50.0)
    assert fed.jobs[job_id].ran_seconds == 40.0  # type: ignore[index]


def test_a_placement_its_agent_resynced_without_is_billed_to_the_report_before(tmp_path: Path) -> None:
    clock = Clock()
    fed, usage, job_id = running_job(tmp_path / "db", clock)
    (p,) = fed.jobs[job_id].placements  # type: ignore[index]
    clock.now = 60.0
    report(fed, "east", p.placement_id)
    clock.now = 61.0
    fed.disconnect(fed.clusters["east"])  # its agent restarts, and comes back without the placement
    clock.now = 75.0
    join(fed, "east")
    assert fed.jobs[job_id].phase is JobPhase.PENDING  # type: ignore[index]
    assert (records(usage)[p.placement_id].start, records(usage)[p.placement_id].end) == (10.0, 60.0)
    assert fed.clusters["east"].last_report_at == 75.0  # the report is taken as any, after the re-sync


def test_a_member_lost_after_a_standalone_restart_is_billed_to_its_last_report_kept(tmp_path: Path) -> None:
    """The members store keeps each member's last report time coarsely (written when it has moved on by
    REPORT_KEPT_EVERY, with the loop's members write), so a member that never comes back after a restart is billed
    to the report time kept, as a Lost member is without a restart: not to the restart (billed there before), nor
    through --lost-after. A placement that started after the time kept is billed from its start, never before."""
    clock = Clock()
    fed, usage, job_id = running_job(tmp_path / "db", clock)
    (p,) = fed.jobs[job_id].placements  # type: ignore[index]
    clock.now = 50.0
    report(fed, "east", p.placement_id)  # moved on by 50 s since the time kept (its join, at 0): kept
    later = fed.submit(spec("k"))
    fed.schedule_once()
    (q,) = later.placements
    clock.now = 60.0
    fed.job_update(fed.clusters["east"], q.placement_id, JobPhase.RUNNING, "")
    clock.now = 70.0
    report(fed, "east", p.placement_id, q.placement_id)  # 20 s on: not written, the time kept stays 50
    fed.membership.flush()  # the loop's turn
    fed.store.close()
    fed.membership.store.close()  # type: ignore[union-attr]
    usage.close()
    clock.now = 300.0
    fed, usage = start(tmp_path / "db", clock)
    assert fed.clusters["east"].state is ClusterState.PARTITIONED
    assert fed.clusters["east"].last_report_at == 50.0
    clock.now += LOST_AFTER + 1
    fed.check_leases()
    assert fed.clusters["east"].state is ClusterState.LOST
    assert (records(usage)[p.placement_id].start, records(usage)[p.placement_id].end) == (10.0, 50.0)
    assert (records(usage)[q.placement_id].start, records(usage)[q.placement_id].end) == (60.0, 60.0)


def test_a_preempted_placement_is_still_billed_to_its_preemption(tmp_path: Path) -> None:
    """Nothing said it ended before: a cancel the federator sends now ends it now, as before."""
    clock = Clock()
    fed, usage, job_id = running_job(tmp_path / "db", clock)
    (p,) = fed.jobs[job_id].placements  # type: ignore[index]
    clock.now = 90.0
    fed.refused(fed.clusters["east"], p.placement_id, "no room after all")
    assert (records(usage)[p.placement_id].start, records(usage)[p.placement_id].end) == (10.0, 90.0)
