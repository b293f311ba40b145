"""Preemption: who may stop whom, which victims, how many per cycle."""

from __future__ import annotations

from scenarios import A100, H100, cycle, running, spec, with_queues

from federator.model import ReasonCode
from federator.scheduler import SchedulerConfig

from builders import cluster, pool


def full_cluster() -> object:
    return cluster("c", "r", pool(H100, nodes=0, extra={0: 4}))  # 4 nodes, all accelerators held


def test_high_priority_preempts_the_victim_losing_least_work() -> None:
    old = spec("old", gpus=8, preemptible=True, priority=0)
    young = spec("young", gpus=8, preemptible=True, priority=0)
    fixed = spec("fixed", gpus=8, replicas=2, priority=0)
    urgent = spec("urgent", gpus=8, priority=100)
    result = cycle([full_cluster()], [urgent], now=1000.0,
                   allocations=[running(old, "c", placed_at=0.0), running(young, "c", placed_at=900.0),
                                running(fixed, "c", placed_at=950.0)])
    assert [p.job_id for p in result.preemptions] == ["young"]  # 8 x 100s lost, not 8 x 1000s
    assert result.preemptions[0].preemptor == "urgent" and "urgent" not in result.pending
    assert [d.job_id for d in result.decisions] == ["urgent"]


def test_work_not_marked_preemptible_is_never_stopped() -> None:
    fixed = spec("fixed", gpus=8, replicas=4, priority=0)
    result = cycle([full_cluster()], [spec("urgent", gpus=8, priority=100)],
                   allocations=[running(fixed, "c")])
    assert not result.preemptions
    assert result.pending["urgent"].code is ReasonCode.INSUFFICIENT_ACCELERATORS


def test_equal_priority_in_the_same_queue_does_not_preempt() -> None:
    victim = spec("victim", gpus=8, replicas=4, preemptible=True)
    result = cycle([full_cluster()], [spec("peer", gpus=8)], allocations=[running(victim, "c")])
    assert not result.preemptions


def test_a_gang_takes_as_many_victims_as_it_needs_and_no_more() -> None:
    victims = [spec(f"v{i}", gpus=8, preemptible=True) for i in range(4)]
    result = cycle([full_cluster()], [spec("gang", gpus=8, replicas=2, priority=10)], now=100.0,
                   allocations=[running(v, "c", placed_at=float(i)) for i, v in enumerate(victims)])
    assert sorted(p.job_id for p in result.preemptions) == ["v2", "v3"]  # the two placed most recently


def test_victims_per_cycle_are_capped() -> None:
    victims = [spec(f"v{i}", gpus=8, preemptible=True) for i in range(4)]
    urgent = [spec(f"u{i}", gpus=8, priority=10) for i in range(4)]
    cfg = SchedulerConfig(max_preemptions_per_cycle=2)
    result = cycle([full_cluster()], urgent, config=cfg, allocations=[running(v, "c") for v in victims])
    assert len(result.preemptions) == 2
    assert len(result.decisions) == 2
    assert sum(r.code is ReasonCode.INSUFFICIENT_ACCELERATORS for r in result.pending.values()) == 2


def test_preemption_can_be_turned_off() -> None:
    victim = spec("v", gpus=8, replicas=4, preemptible=True)
    cfg = SchedulerConfig(preemption=False)
    result = cycle([full_cluster()], [spec("u", gpus=8, priority=10)], config=cfg, allocations=[running(victim, "c")])
    assert not result.preemptions


def test_an_under_share_queue_may_preempt_an_over_share_queue_at_equal_priority() -> None:
    hog = [spec(f"hog{i}", gpus=8, queue="a", preemptible=True) for i in range(4)]
    result = cycle([full_cluster()], [spec("b-job", gpus=8, queue="b"), spec("a-job", gpus=8, queue="a")],
                   config=with_queues(a=1, b=1), allocations=[running(h, "c") for h in hog])
    assert [p.job_id for p in result.preemptions] == ["hog0"]
    assert [d.job_id for d in result.decisions] == ["b-job"]
    assert result.pending["a-job"].code is ReasonCode.INSUFFICIENT_ACCELERATORS


def test_quota_blocked_jobs_do_not_preempt() -> None:
    from scenarios import with_quota

    victim = spec("v", gpus=8, replicas=4, preemptible=True, queue="other")
    result = cycle([full_cluster()], [spec("u", gpus=8, priority=10, queue="research")],
                   config=with_quota("research", gpus={"H100": 0}), allocations=[running(victim, "c")])
    assert not result.preemptions and result.pending["u"].code is ReasonCode.QUOTA_EXCEEDED


def test_a_job_held_by_capacity_on_one_model_does_not_preempt_past_its_quota_on_another() -> None:
    from scenarios import with_quota

    # H100: full of work nobody may stop. A100: a preemptible job of another queue, and a quota of 8 on A100
    # for research. The 16-GPU job is refused by capacity on H100 (so it may preempt) and by quota on A100.
    h100 = cluster("h", "r", pool(H100, nodes=0, extra={0: 2}))
    a100 = cluster("a", "r", pool(A100, nodes=0, extra={0: 2}))
    fixed = spec("fixed", gpus=8, replicas=2)
    victim = spec("v", gpus=8, replicas=2, preemptible=True, queue="other")
    urgent = spec("u", gpus=8, replicas=2, priority=10, queue="research")
    result = cycle([h100, a100], [urgent], config=with_quota("research", gpus={"A100": 8}),
                   allocations=[running(fixed, "h"), running(victim, "a", model=A100)])
    assert not result.preemptions and not result.decisions
    assert "quota of queue research on A100" in result.pending["u"].message
    # With room in the quota the same job does preempt there: the test above is about the quota.
    result = cycle([h100, a100], [urgent], config=with_quota("research", gpus={"A100": 16}),
                   allocations=[running(fixed, "h"), running(victim, "a", model=A100)])
    assert [p.job_id for p in result.preemptions] == ["v"]
    assert [(a.cluster, a.accelerator_model) for a in result.decisions[0].assignments] == [("a", A100)]


def test_whom_the_rest_of_a_running_job_may_not_preempt_others_alike_still_may() -> None:
    """The preemption phase works out whom a job may preempt once per priority and queue. A job that runs in
    part and waits for the rest may not preempt its own part; the next job of that priority and queue may."""
    from federator.model import JobId
    from federator.scheduler import Allocation, PlacementRequest, Scheduler, Snapshot

    part = spec("part", gpus=8, priority=10, preemptible=True)
    other = spec("other", gpus=8, priority=10)
    held = Allocation(JobId("part"), part.queue, 0, True, "c", H100, 1, part.resources)  # below both
    waiting = [PlacementRequest(JobId("part"), part, 1, 0.0), PlacementRequest(JobId("other"), other, 1, 1.0)]
    result = Scheduler().schedule(Snapshot.of([full_cluster()]), waiting, running=[held])
    assert [(p.job_id, p.preemptor) for p in result.preemptions] == [("part", "other")]
