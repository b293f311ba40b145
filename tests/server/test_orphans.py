"""Placements agents run of jobs the federator's store has no record of are held for --orphan-grace, not cancelled.

Outside SRE F1: restarted on an empty store (its --db deleted), the federator cancelled every placement its 243
agents reported, about 2,070 running jobs, without a line of its own. Superseded placements of jobs the store
knows are still fenced at once.
"""

from __future__ import annotations

import logging

import pytest
from prometheus_client import generate_latest
from server_support import Clock, MemoryStore, capacity, join, make, spec

from federator.model import Job, JobPhase, Reason, ReasonCode
from federator.server.federator import Federator
from federator.server.orphans import job_of
from federator.server.retention import forget_job

from support import cancels_sent

GRACE = 1800.0



def _gauge(fed: Federator, cluster: str) -> float:
    for line in generate_latest(fed.metrics.registry).decode().splitlines():
        if line.startswith(f'federator_orphan_placements{{cluster="{cluster}"}}'):
            return float(line.split()[-1])
    raise AssertionError(f"no orphan series for {cluster}")


def _running_elsewhere(store: MemoryStore, clock: Clock) -> tuple[str, str]:
    """Two jobs placed on cluster c by a federator whose store is then lost: their placement ids."""
    first = make(store, clock)
    a, b = first.submit(spec("a")), first.submit(spec("b"))
    join(first, "c")
    first.schedule_once()
    return a.placements[0].placement_id, b.placements[0].placement_id


def test_a_federator_on_an_empty_store_holds_what_agents_run_for_the_grace_then_cancels_it(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    a, b = _running_elsewhere(MemoryStore(), clock)
    fed = make(MemoryStore(), clock, orphan_grace=GRACE)  # restarted on an empty --db
    rec = fed.connect(cluster="c", region="r", labels={})
    with caplog.at_level(logging.WARNING, logger="federator.server"):
        fed.job_update(rec, a, JobPhase.RUNNING, "running")  # the re-sync's updates come first
        fed.report(rec, capacity(a, b))
        for _ in range(3):
            clock.now += GRACE / 4
            fed.report(rec, capacity(a, b))
            fed.job_update(rec, a, JobPhase.RUNNING, "running")
    assert cancels_sent(rec) == {}
    assert _gauge(fed, "c") == 2
    assert [r.getMessage() for r in caplog.records if "no record" in r.getMessage()] == [
        f"cluster c runs 2 placement(s) of jobs this federator's store has no record of (it holds 0 jobs), e.g. {a}: "
        "held, and cancelled after --orphan-grace (1800s). Was --db replaced, deleted or restored from an old "
        "backup? Then stop the federator and restore the right store before that (docs/operators.md)"]
    caplog.clear()
    clock.now += GRACE / 4  # the grace since the first report is over
    with caplog.at_level(logging.WARNING, logger="federator.server"):
        fed.report(rec, capacity(a, b))
        fed.report(rec, capacity(a, b))  # not said again
    orphan = "orphan: the federator's store has no record of its job (--orphan-grace 1800s)"
    assert cancels_sent(rec) == {a: orphan, b: orphan}
    assert [r.getMessage() for r in caplog.records] == [
        f"cluster c: cancelling 2 placement(s) of jobs this federator's store has no record of (reported for "
        f"--orphan-grace, 1800s), e.g. {a}"]
    fed.report(rec, capacity())  # the agent stopped them
    assert _gauge(fed, "c") == 0


def test_with_no_grace_they_are_cancelled_at_once_and_said(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    a, b = _running_elsewhere(MemoryStore(), clock)
    fed = make(MemoryStore(), clock, orphan_grace=0.0)
    with caplog.at_level(logging.WARNING, logger="federator.server"):
        rec = join(fed, "c", a, b)
    assert set(cancels_sent(rec)) == {a, b}
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "cluster c: cancelling 2 placement(s) of jobs this federator's store has no record of"]


def test_an_orphan_a_job_update_names_is_cancelled_at_once_with_no_grace() -> None:
    clock = Clock()
    a, _ = _running_elsewhere(MemoryStore(), clock)
    fed = make(MemoryStore(), clock)  # the Federator's default: 0
    rec = fed.connect(cluster="c", region="r", labels={})
    fed.job_update(rec, a, JobPhase.RUNNING, "running")
    assert list(cancels_sent(rec)) == [a]


def test_superseded_placements_of_known_jobs_are_fenced_at_once_whatever_the_grace() -> None:
    clock = Clock()
    store = MemoryStore()
    fed = make(store, clock, orphan_grace=GRACE)
    job = fed.submit(spec("a"))
    rec = join(fed, "c")
    fed.schedule_once()
    old = job.placements[0].placement_id
    fed.job_update(rec, old, JobPhase.RUNNING, "running")
    fed.requeue(job, Reason(ReasonCode.REFUSED_BY_CLUSTER, "c stopped it"))  # generation 1 superseded
    cancels_sent(rec)
    fed.report(rec, capacity(old))
    fed.job_update(rec, old, JobPhase.RUNNING, "still running")
    assert cancels_sent(rec) == {old: "superseded: not a current placement"}
    assert _gauge(fed, "c") == 0


def test_a_newer_generation_than_the_store_holds_is_an_orphan() -> None:
    """A store restored from an old backup knows the job at generation 1; its agent runs generation 2."""
    clock = Clock()
    store = MemoryStore()
    fed = make(store, clock)
    job = fed.submit(spec("a"))
    backup = MemoryStore()
    backup.put([job])  # the backup: Pending, generation 0
    join(fed, "c")
    fed.schedule_once()
    newer = job.placements[0].placement_id
    restored = make(backup, clock, orphan_grace=GRACE)
    rec = join(restored, "c", newer)
    assert cancels_sent(rec) == {}
    assert _gauge(restored, "c") == 1


def _cancelled_while_away(*, running: bool) -> tuple[Federator, Job, str]:
    """A federator whose job, placed on cluster c (and said Running there, if `running`), was cancelled while c's
    agent was away: the federator, the job and its placement's id."""
    fed = make(MemoryStore(), Clock(), orphan_grace=GRACE)
    job = fed.submit(spec("a"))
    rec = join(fed, "c")
    fed.schedule_once()
    pid = job.placements[0].placement_id
    if running:
        fed.job_update(rec, pid, JobPhase.RUNNING, "running")
    fed.disconnect(rec)
    fed.cancel(job.job_id)  # the agent is away and hears nothing
    return fed, job, pid


def test_a_job_this_federator_removed_is_fenced_at_once_not_held() -> None:
    """Retention, or a FederatedJob deleted while its agent was away: the store knew it, and removed it."""
    fed, job, pid = _cancelled_while_away(running=False)
    forget_job(fed, job)
    rec = join(fed, "c", pid)
    assert list(cancels_sent(rec)) == [pid]


@pytest.mark.parametrize(("pid", "cluster", "named"), [
    ("train-1a2b3c.g4.east", "east", ("train-1a2b3c", 4)),
    ("train-1a2b3c.g4.east:2", "east", ("train-1a2b3c", 4)),
    ("a.b.g9-x.g12.eu.west", "eu.west", ("a.b.g9-x", 12)),
    ("train-1a2b3c.g4.east", "west", None),
    ("made-up", "east", None),
    ("x.gq.east", "east", None),
], ids=["plain", "second-on-cluster", "dots-in-names", "another-cluster", "made-up", "no-generation"])
def test_the_job_a_placement_id_names(pid: str, cluster: str, named: tuple[str, int] | None) -> None:
    assert job_of(pid, cluster) == named



def test_a_cancel_kept_for_a_cluster_that_was_away_says_why_it_was_queued_not_that_the_job_was_deleted() -> None:
    """Outside provider QA F11: a job moved off a Lost cluster runs again elsewhere; when the cluster comes back, its
    old copy's cancel said "its job was deleted". It says why it was queued, and after a restart (the reason not
    kept) what the store says: the job moved on."""
    clock = Clock()
    store = MemoryStore()
    fed = make(store, clock, orphan_grace=GRACE)
    job = fed.submit(spec("a"))
    rec = join(fed, "c")
    fed.schedule_once()
    old = job.placements[0].placement_id
    fed.job_update(rec, old, JobPhase.RUNNING, "running")
    fed.disconnect(rec)
    fed.requeue(job, Reason(ReasonCode.CLUSTER_NOT_READY, "c was Lost at 16:30:00"))  # the cancel is kept, unsent
    back = join(fed, "c", old)  # its re-sync lists the old copy, which still runs
    kept = "superseded: c was Lost at 16:30:00 (the cancel was kept until its cluster confirmed it)"
    assert cancels_sent(back) == {old: kept}
    fed.job_update(back, old, JobPhase.RUNNING, "still running")
    assert cancels_sent(back) == {old: kept}
    restarted = make(store, clock, orphan_grace=GRACE)  # the reason is not stored: the store says what it can
    restarted.orphans.cancels.record("c", [old], now=0.0)
    again = join(restarted, "c", old)
    assert cancels_sent(again) == {old: "superseded: not a current placement (the cancel was kept until its "
                                        "cluster confirmed it)"}


def _cancels(rec: object) -> dict[str, bool]:
    """The Cancel orders waiting in a cluster's outbox, by placement id: their job_ended."""
    from federator.server.orders import CancelOrder

    out = {}
    while not rec.outbox.empty():  # type: ignore[attr-defined]
        order = rec.outbox.get_nowait()  # type: ignore[attr-defined]
        if isinstance(order, CancelOrder):
            out[order.placement_id] = order.job_ended
    return out


def test_a_kept_cancel_says_job_ended_only_of_a_job_that_ended() -> None:
    """Cancel.job_ended of a cancel kept while its agent was away (orphans.unsent), sent at the re-sync or re-sent
    after a restart (orphans.resend_kept, Kubernetes mode): true for a job its owner cancelled meanwhile (an agent
    repeats it a day, so a store restored to before that cancel ends the job, not runs it again), false for a job
    moved elsewhere and running there (such a restore ended that running job Cancelled)."""
    clock = Clock()
    store = MemoryStore()
    fed = make(store, clock, orphan_grace=GRACE)
    moved, ended = fed.submit(spec("moved")), fed.submit(spec("ended"))
    rec = join(fed, "c")
    fed.schedule_once()
    old = {job.spec.name: job.placements[0].placement_id for job in (moved, ended)}
    for pid in old.values():
        fed.job_update(rec, pid, JobPhase.RUNNING, "running")
    fed.disconnect(rec)
    fed.requeue(moved, Reason(ReasonCode.CLUSTER_NOT_READY, "c was Lost at 16:30:00"))  # kept, unsent
    fed.cancel(ended.job_id)  # kept, unsent
    back = join(fed, "c", *old.values())  # its re-sync lists both old copies, which still run
    assert _cancels(back) == {old["moved"]: False, old["ended"]: True}
    restarted = make(store, clock, orphan_grace=GRACE)  # Kubernetes mode: the kept cancels read back at a start
    again = restarted.connect(cluster="c", region="r", labels={})
    restarted.orphans.cancels.record("c", list(old.values()), now=0.0)
    restarted.orphans.resend_kept()
    assert _cancels(again) == {old["moved"]: False, old["ended"]: True}


def test_a_job_cancelled_while_its_agent_was_away_is_cancelled_as_ended_at_the_re_sync() -> None:
    """The re-sync's update of a placement the store holds current of a job that ended meanwhile: its Cancel says
    job_ended (the agent repeats that end for a day: a store restored to before the cancel ends the job, not runs
    it again), however the re-sync meets it first (its JobUpdate, then its report)."""
    fed, _, pid = _cancelled_while_away(running=True)
    back = fed.connect(cluster="c", region="r", labels={})
    fed.job_update(back, pid, JobPhase.RUNNING, "still running")  # the re-sync's update comes before its report
    assert _cancels(back) == {pid: True}
    fed.report(back, capacity(pid))
    assert set(_cancels(back).values()) <= {True}
