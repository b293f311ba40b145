"""A parked job's reason follows the reports: a report that changes what it waits on refreshes it within the next
cycle, with no new submission (outside QA, ML user: `a100-q` kept `InsufficientAccelerators: member-b has no node
with 8 free A100` for 40 s after the member's room and quota changed, while an identical job submitted then read
`GangDoesNotFit: member-b fits 1 of 2 replicas`)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace

import pytest
from server_support import Clock, MemoryStore, make

from federator.model import JobId, JobPhase, JobSpec, Reason, ReasonCode
from federator.server import scheduling
from federator.server.federator import ClusterRecord, Federator
from federator.server.reason_refresh import MIN_ASK_SECONDS, ReasonRefresh

from builders import cluster, job, pool, request

A100 = "NVIDIA-A100-SXM4-80GB"


def _report(fed: Federator, rec: ClusterRecord, free: tuple[int, ...], quota_held: int = 0) -> None:
    """member-b's A100 pool: per node, the accelerators free; `quota_held` of them held back by its own queue."""
    p = pool(A100, nodes=0, extra=Counter(free))
    cap = cluster(rec.name, "r", replace(p, quota_held_accelerators=quota_held)).capacity
    fed.report(rec, cap)


def _gang(name: str) -> JobSpec:
    return job(name, replicas=2, gpus=8, models=("A100",))


def _reason(fed: Federator, name: str) -> str:
    got = next(j for j in fed.jobs.values() if j.spec.name == name)
    assert got.phase is JobPhase.PENDING and got.pending_reason is not None
    return str(got.pending_reason)


def test_a_report_that_changes_the_room_refreshes_a_parked_jobs_reason_without_a_new_submission() -> None:
    fed = make(MemoryStore(), Clock())
    rec = fed.connect(cluster="member-b", region="r", labels={})
    _report(fed, rec, (4, 4, 4, 4))
    fed.submit(_gang("a100-q"))
    fed.schedule_once()
    before = _reason(fed, "a100-q")
    assert before.startswith(ReasonCode.INSUFFICIENT_ACCELERATORS), before
    assert len(fed.cycles.parked) == 1  # parked: later cycles leave it out

    _report(fed, rec, (8, 4, 4, 4))  # a node came free: one replica of the two fits now, the gang does not
    assert len(fed.cycles.parked) == 1  # the gang's need is not met: it is not brought back to be placed
    fed.schedule_once()
    after = _reason(fed, "a100-q")
    fed.submit(_gang("twin"))  # what a job submitted now is told
    fed.schedule_once()
    assert after == _reason(fed, "twin")
    assert after.startswith(ReasonCode.GANG_DOES_NOT_FIT), after


def test_a_quota_held_back_by_the_member_shows_in_a_parked_jobs_reason() -> None:
    fed = make(MemoryStore(), Clock())
    rec = fed.connect(cluster="member-b", region="r", labels={})
    _report(fed, rec, (4, 4, 4, 4))
    fed.submit(_gang("a100-q"))
    fed.schedule_once()
    _report(fed, rec, (8, 0, 0, 0), quota_held=8)  # an LWS job ended: two nodes free; the quota admits one
    fed.schedule_once()
    after = _reason(fed, "a100-q")
    fed.submit(_gang("twin"))
    fed.schedule_once()
    assert after == _reason(fed, "twin")
    assert after.startswith(ReasonCode.GANG_DOES_NOT_FIT) and "(8 more free held back" in after, after


def test_many_parked_jobs_of_one_shape_are_refreshed_by_evaluating_one_of_them() -> None:
    """The refresh costs the shapes, not the backlog: one job of each group is looked at again, and its new
    reason is every job's of the group."""
    fed = make(MemoryStore(), Clock())
    rec = fed.connect(cluster="member-b", region="r", labels={})
    _report(fed, rec, (4, 4, 4, 4))
    for i in range(50):
        fed.submit(_gang(f"g{i}"))
    fed.schedule_once()
    assert len(fed.cycles.parked) == 50
    _report(fed, rec, (8, 4, 4, 4))
    assert fed.cycles.pending_count == 50
    plan = fed.cycles.plan()
    assert len(plan.requests) == 1  # one of the fifty is evaluated again
    fed.schedule_once()
    reasons = {_reason(fed, f"g{i}") for i in range(50)}
    assert len(reasons) == 1 and reasons.pop().startswith(ReasonCode.GANG_DOES_NOT_FIT)


def test_a_report_within_the_wait_after_an_asking_is_told_at_the_first_cycle_after_it() -> None:
    """A group is asked at most once per MIN_ASK_SECONDS (a bound on its writes); a report within that wait is
    not lost: the first cycle after the wait tells it."""
    clock = Clock()
    fed = make(MemoryStore(), clock)
    rec = fed.connect(cluster="member-b", region="r", labels={})
    _report(fed, rec, (4, 4, 4, 4))
    fed.submit(_gang("a100-q"))
    fed.schedule_once()
    _report(fed, rec, (8, 4, 4, 4))
    fed.schedule_once()
    assert _reason(fed, "a100-q").startswith(ReasonCode.GANG_DOES_NOT_FIT)
    clock.now += 1
    _report(fed, rec, (4, 4, 4, 4))  # the node is taken again, within the wait
    fed.schedule_once()
    assert _reason(fed, "a100-q").startswith(ReasonCode.GANG_DOES_NOT_FIT)  # not asked yet
    clock.now += MIN_ASK_SECONDS
    fed.schedule_once()  # no report, no submission: the wait is over
    assert _reason(fed, "a100-q").startswith(ReasonCode.INSUFFICIENT_ACCELERATORS)


def test_a_report_that_moves_nothing_a_reason_tells_asks_no_job() -> None:
    fed = make(MemoryStore(), Clock())
    rec = fed.connect(cluster="member-b", region="r", labels={})
    _report(fed, rec, (4, 4, 4, 4))
    fed.submit(_gang("a100-q"))
    fed.schedule_once()
    _report(fed, rec, (4, 4, 4, 4))
    assert fed.cycles.plan().requests == ()


def test_the_jobs_told_a_new_reason_are_bounded_per_second_and_none_is_forgotten() -> None:
    """Each job told is a store write and a Watch event: past the budget, groups wait for it (the smallest
    first), and are asked once it is back."""
    clock = Clock()
    fed = make(MemoryStore(), clock)
    fed.cycles.refresh = ReasonRefresh(told_per_second=1.0, burst=10.0)
    rec = fed.connect(cluster="member-b", region="r", labels={})
    _report(fed, rec, (4, 4, 4, 4))
    for i in range(50):
        fed.submit(_gang(f"g{i}"))
    fed.schedule_once()
    _report(fed, rec, (8, 4, 4, 4))
    fed.schedule_once()  # the group is told whole, 49 jobs past the one asked: 39 in debt
    assert {_reason(fed, f"g{i}")[:14] for i in range(50)} == {"GangDoesNotFit"}
    clock.now += MIN_ASK_SECONDS + 1
    _report(fed, rec, (4, 4, 4, 4))
    fed.schedule_once()
    assert fed.cycles.plan().requests == ()  # still in debt: no job is asked
    assert {_reason(fed, f"g{i}")[:14] for i in range(50)} == {"GangDoesNotFit"}
    clock.now += 40
    fed.schedule_once()  # the budget is back: the report made during the debt is told now
    assert {_reason(fed, f"g{i}")[:24] for i in range(50)} == {"InsufficientAccelerators"}


def test_a_job_brought_back_meanwhile_keeps_the_reason_its_own_cycle_gave_it() -> None:
    refresh = ReasonRefresh()
    fed = make(MemoryStore(), Clock())
    rec = fed.connect(cluster="member-b", region="r", labels={})
    _report(fed, rec, (4, 4, 4, 4))
    for i in range(3):
        fed.submit(_gang(f"g{i}"))
    fed.schedule_once()
    fed.cycles.refresh = refresh
    jobs = {j.spec.name: j for j in fed.jobs.values()}
    request = fed.cycles._requests[jobs["g0"].job_id]
    assert jobs["g0"].pending_reason is not None
    for j in jobs.values():
        refresh.parked(j.job_id, request, jobs["g0"].pending_reason)
    refresh.cluster_changed("member-b")
    (asked,) = refresh.ask(1000.0, fed.cycles.parked)
    fed.cycles.parked.unpark(jobs["g2"].job_id)  # another event brought g2 back: its cycle will say
    refresh.answer(asked, Reason(ReasonCode.GANG_DOES_NOT_FIT, "new words"))
    told, more = refresh.tell(fed.jobs, fed.cycles.parked)
    assert not more and [j.spec.name for j, _ in told] == [n for n in ("g1", "g0") if jobs[n].job_id != asked]
    assert jobs["g2"].pending_reason is not None and jobs["g2"].pending_reason.message != "new words"


def test_a_cluster_partitioned_is_told_in_the_reasons_that_named_its_room() -> None:
    fed = make(MemoryStore(), Clock())
    a = fed.connect(cluster="member-a", region="r", labels={})
    _report(fed, a, (4, 4, 4, 4))
    b = fed.connect(cluster="member-b", region="r", labels={})
    _report(fed, b, (8, 4, 4, 4))
    fed.submit(_gang("a100-q"))
    fed.schedule_once()
    assert "member-b fits 1 of 2" in _reason(fed, "a100-q")
    fed.disconnect(b)  # its agent's stream broke: Partitioned, and the job waits parked
    fed.check_leases()  # the loop's turn: what changed state is told once (job_message.ClusterNotes)
    fed.schedule_once()
    after = _reason(fed, "a100-q")
    fed.submit(_gang("twin"))
    fed.schedule_once()
    assert after == _reason(fed, "twin") and "member-b fits" not in after, after


def test_a_report_marks_the_groups_whose_reason_names_its_cluster_and_those_naming_none() -> None:
    refresh = ReasonRefresh()
    ids = [JobId(f"j{i}") for i in range(3)]
    told = {ids[0]: "0/2 clusters fit: member-a has no node with 8 free A100; member-ab is Partitioned",
            ids[1]: "0/9 clusters fit: member-c fits 1 of 2 replicas; 8 more clusters: InsufficientAccelerators",
            ids[2]: "quota of queue research on A100: 8 of 8 accelerators in use"}
    for i, job_id in enumerate(ids):
        refresh.parked(job_id, request(_gang(f"g{i}")), Reason(ReasonCode.GANG_DOES_NOT_FIT, told[job_id]))
    refresh.cluster_changed("member-b")  # named by none: only the groups that name no cluster (at the plan)
    assert sorted(refresh.ask(0.0, set(ids))) == ids[1:]
    refresh.cluster_changed("member-a")
    assert refresh.ask(10.0, set(ids)) == [ids[0]]


def test_the_live_cycle_tells_a_group_in_slices_and_writes_it_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduling, "COMMIT_SLICE", 7)  # 49 to tell: seven slices
    store = MemoryStore()
    fed = make(store, Clock())
    rec = fed.connect(cluster="member-b", region="r", labels={})
    _report(fed, rec, (4, 4, 4, 4))
    for i in range(50):
        fed.submit(_gang(f"g{i}"))

    async def cycles() -> None:
        await fed.cycles.run_once_async()
        _report(fed, rec, (8, 4, 4, 4))
        await fed.cycles.run_once_async()

    asyncio.run(cycles())
    fed.journal.drain()
    assert {_reason(fed, f"g{i}")[:14] for i in range(50)} == {"GangDoesNotFit"}
    stored = {j.spec.name: j.pending_reason for j in store.load()}
    assert all(r is not None and r.code is ReasonCode.GANG_DOES_NOT_FIT for r in stored.values())


def test_the_jobs_of_two_owners_are_never_one_group() -> None:
    """A waiting job's reason counts the jobs of its queue that go before its owner's (scheduler/owner_share.py): the
    new reason one of a group is given must not be told to another owner's jobs of the same shape and words."""
    from federator.security.authz import recorded_owner

    refresh = ReasonRefresh()
    said = Reason(ReasonCode.INSUFFICIENT_ACCELERATORS, "0/1 clusters fit")
    for name, user in (("a0", "alice"), ("a1", "alice"), ("b0", "bob")):
        refresh.parked(JobId(name), request(recorded_owner(_gang(name), user)), said)
    assert len(refresh) == 2
