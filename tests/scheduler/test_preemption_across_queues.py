"""Preemption across queues by priority alone (scheduler/preemption.py, `SchedulerConfig.outranks`; security
finding M1). Where tenants pick their priorities within their own bounds (a multi-tenant policy, or any
maxPriority set), a higher priority does not skip the fair-share rule against another queue's work, unless the
operator granted the preemptor more than that queue may ever ask. A single-tenant policy that bounds nothing
keeps one scale of priority, as before."""

from __future__ import annotations

from scenarios import H100, cycle, running, spec

from federator.model import ClusterInfo, JobId
from federator.scheduler import QueueConfig, SchedulerConfig

from builders import cluster, pool


def fleet() -> list[ClusterInfo]:
    """Two full 8 x H100 clusters: c holds qb's preemptible work, d holds qm's fixed work. Each queue holds 8,
    its fair share: a fair-share preemption of qb's work would leave qm holding more than qb."""
    return [cluster("c", "r", pool(H100, nodes=0, extra={0: 1})), cluster("d", "r", pool(H100, nodes=0, extra={0: 1}))]


def held(victim_priority: int) -> list:  # type: ignore[type-arg]
    return [running(spec("bob", gpus=8, queue="qb", priority=victim_priority, preemptible=True), "c"),
            running(spec("mine", gpus=8, queue="qm"), "d")]


def mallory(priority: int) -> list:  # type: ignore[type-arg]
    return [spec("mal", gpus=8, queue="qm", priority=priority)]


def test_a_single_tenant_policy_keeps_priority_preemption_across_queues() -> None:
    result = cycle(fleet(), mallory(0), config=SchedulerConfig(), allocations=held(-5), now=10.0)
    assert [p.job_id for p in result.preemptions] == ["bob"]


def test_in_a_multi_tenant_policy_a_higher_priority_does_not_skip_the_fair_share_rule() -> None:
    tenants = SchedulerConfig(multi_tenant=True)
    result = cycle(fleet(), mallory(0), config=tenants, allocations=held(-5), now=10.0)
    assert not result.preemptions and not result.decisions
    assert JobId("mal") in result.pending  # it waits: qb is not over its fair share


def test_a_bound_set_on_any_queue_makes_priorities_queue_local_too() -> None:
    bounded = SchedulerConfig(queues={"qm": QueueConfig(max_priority=100), "qb": QueueConfig(max_priority=100)})
    result = cycle(fleet(), mallory(100), config=bounded, allocations=held(0), now=10.0)
    assert not result.preemptions


def test_a_priority_the_operator_granted_above_the_victims_queue_still_preempts() -> None:
    granted = SchedulerConfig(multi_tenant=True, queues={"qm": QueueConfig(max_priority=1000)})
    result = cycle(fleet(), mallory(1000), config=granted, allocations=held(0), now=10.0)
    assert [p.job_id for p in result.preemptions] == ["bob"]
    assert not cycle(fleet(), mallory(0), config=granted, allocations=held(-5), now=10.0).preemptions


def test_within_a_queue_priority_still_preempts_in_a_multi_tenant_policy() -> None:
    tenants = SchedulerConfig(multi_tenant=True)
    own = [running(spec("old", gpus=8, queue="qm", priority=-5, preemptible=True), "c"),
           running(spec("mine", gpus=8, queue="qm"), "d")]
    result = cycle(fleet(), mallory(0), config=tenants, allocations=own, now=10.0)
    assert [p.job_id for p in result.preemptions] == ["old"]


def test_the_victim_of_another_queue_is_not_told_the_preemptors_id_or_queue() -> None:
    """Outside QA, M2: bob's preempted job read `preempted ... for mal-b7621-fb413f`, another organisation's job."""
    result = cycle(fleet(), mallory(0), config=SchedulerConfig(), allocations=held(-5), now=10.0)
    (p,) = result.preemptions
    assert p.message == "preempted on c for a job of another queue (priority 0)" and "mal" not in p.message
    own = [running(spec("old", gpus=8, queue="qm", priority=-5, preemptible=True), "c"),
           running(spec("mine", gpus=8, queue="qm"), "d")]
    (q,) = cycle(fleet(), mallory(0), config=SchedulerConfig(), allocations=own, now=10.0).preemptions
    assert q.message == "preempted on c for mal (queue qm, priority 0)"  # within its own queue, named
