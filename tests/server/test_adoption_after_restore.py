"""After a restore of the job store, a job that started since the snapshot comes back Pending at the generation it
had then while its member runs the placement it got since: that placement, whose id names the job, is the job's again
(server/adoption.py; outside QA, Kubernetes DR, K8, K3). It was held as an orphan for --orphan-grace, the job waiting
for the room its own gang held, and then cancelled: its run thrown away and started over."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from server_support import Clock, MemoryStore, capacity, make, spec

from federator.model import JobHold, JobId, JobPhase
from federator.server.federator import Federator
from federator.server.job_holds import Actor, release_async
from federator.server.orders import CancelOrder, LaunchOrder

GRACE = 1800.0


def _restored(clock: Clock, *, held: bool = False) -> tuple[Federator, str]:
    """A store restored from a backup taken while gang a (2 x 8 H100) was Pending (held, if `held`); it started
    since, on cluster c, as a.g1.c. The restored federator and that placement's id."""
    live, backup = MemoryStore(), MemoryStore()
    first = make(live, clock)
    a = first.submit(spec("a", replicas=2))
    backup.put([replace(a, hold=JobHold("alice", clock.now)) if held else a])
    first.connect(cluster="c", region="r", labels={})
    first.report(first.clusters["c"], capacity())
    first.schedule_once()
    return make(backup, clock, orphan_grace=GRACE), a.placements[0].placement_id


def _orders(fed: Federator) -> list[object]:
    out = []
    for rec in fed.clusters.values():
        while not rec.outbox.empty():
            out.append(rec.outbox.get_nowait())
    return out


def _resync(fed: Federator, pid: str) -> None:
    """The agent of c re-syncs: the running gang's update, then a report of a cluster it fills (no H100 free)."""
    rec = fed.connect(cluster="c", region="r", labels={})
    fed.job_update(rec, pid, JobPhase.RUNNING, "2 replicas running")
    fed.report(rec, capacity(pid, free=0))


def test_a_gang_started_since_the_snapshot_takes_its_running_placement_back() -> None:
    clock = Clock()
    fed, pid = _restored(clock)
    _resync(fed, pid)
    job = fed.jobs[JobId(pid.split(".g")[0])]
    assert (job.phase, job.generation, job.pending_reason) == (JobPhase.RUNNING, 1, None)
    assert [(p.placement_id, p.phase, p.replicas, p.accelerator_model) for p in job.placements] == [
        (pid, JobPhase.RUNNING, 2, "NVIDIA-H100-80GB-HBM3")]
    assert fed.orphans.count("c") == 0
    fed.schedule_once()
    clock.now += GRACE  # the orphan grace over: nothing to cancel, nothing placed a second time
    fed.report(fed.clusters["c"], capacity(pid, free=0))
    fed.schedule_once()
    assert [o for o in _orders(fed) if isinstance(o, (CancelOrder, LaunchOrder))] == []
    stored = {j.job_id: j for j in fed.store.load()}  # type: ignore[attr-defined]
    assert [p.placement_id for p in stored[job.job_id].placements] == [pid]


def test_a_release_undone_by_the_restore_is_held_until_released_again_and_then_adopts_the_placement() -> None:
    """K3: the restored job is held (its spec says so); a release adopts its running placement, never a second
    copy on another cluster."""
    clock = Clock()
    fed, pid = _restored(clock, held=True)
    fed.connect(cluster="d", region="r", labels={})
    fed.report(fed.clusters["d"], capacity())  # room elsewhere: a placement anew would run a second copy there
    _resync(fed, pid)
    job = fed.jobs[JobId(pid.split(".g")[0])]
    assert (job.phase, job.placements, fed.orphans.count("c")) == (JobPhase.PENDING, [], 1)
    asyncio.run(release_async(fed, job, Actor("alice")))
    fed.schedule_once()
    assert (job.phase, [p.placement_id for p in job.placements]) == (JobPhase.RUNNING, [pid])
    assert fed.orphans.count("c") == 0
    assert [o for o in _orders(fed) if isinstance(o, (CancelOrder, LaunchOrder))] == []
