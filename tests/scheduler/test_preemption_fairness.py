"""Fair-share preemption cannot cycle, and a job the victim cap holds back says so."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scenarios import H100, running, spec, with_queues

from federator.model import ClusterInfo, JobId, JobSpec, ReasonCode
from federator.scheduler import Allocation, Preemption, Scheduler, SchedulerConfig, Snapshot
from federator.scheduler.snapshot import reserve

from builders import cluster, pool, request


def full(nodes: int) -> ClusterInfo:
    return cluster("c", "r", pool(H100, nodes=0, extra={0: nodes}))  # every accelerator held


def drive(clusters: list[ClusterInfo], held: list[Allocation], waiting: list[JobSpec], *,
          config: SchedulerConfig, cycles: int) -> tuple[list[Preemption], list[Allocation]]:
    """Cycles as the server runs them: victims wait again, placed jobs run, the clusters hold what runs.
    Every preemption, and what runs at the end."""
    specs = {s.name: s for s in waiting}
    runs = {a.job_id: a for a in held}
    pending = [s.name for s in waiting]
    out: list[Preemption] = []
    for n in range(cycles):
        now = 100.0 * (n + 1)
        views = []
        for c in clusters:
            for a in runs.values():
                if a.cluster == c.name:
                    c = reserve(c, resources=a.resources, replicas=a.replicas, accelerator_model=a.accelerator_model)
            views.append(c)
        reqs = [request(specs[name], at=float(i)) for i, name in enumerate(pending)]
        result = Scheduler(config).schedule(Snapshot.of(views), reqs, running=list(runs.values()), now=now)
        for p in result.preemptions:
            gone = runs.pop(p.job_id)
            specs.setdefault(p.job_id, spec(p.job_id, gpus=gone.resources.accelerator_milli // 1000,
                                            replicas=gone.replicas, queue=gone.queue, priority=gone.priority,
                                            preemptible=gone.preemptible))
            pending.append(p.job_id)
        out += result.preemptions
        for d in result.decisions:
            runs[d.job_id] = running(specs[d.job_id], d.assignments[0].cluster, placed_at=now,
                                     replicas=sum(a.replicas for a in d.assignments))
            pending.remove(d.job_id)
    return out, list(runs.values())


def empty(nodes: int) -> ClusterInfo:
    return cluster("c", "r", pool(H100, nodes=nodes))


def flood(n: int, gpus: int) -> list[Allocation]:
    return [running(spec(f"a{i}", gpus=gpus, queue="a", preemptible=True), "c") for i in range(n)]


@pytest.mark.parametrize(("gang", "preemptions", "b_holds"), [
    pytest.param(spec("gang", gpus=8, replicas=3, queue="b", preemptible=True), 0, 0,
                 id="a-preemptible-gang-over-its-share-does-not-start-a-thrash"),
    pytest.param(spec("gang", gpus=8, replicas=3, queue="b"), 0, 0,
                 id="a-fixed-gang-over-its-share-does-not-take-the-other-queue-under"),
    pytest.param(spec("gang", gpus=8, replicas=2, queue="b", preemptible=True), 2, 16,
                 id="a-gang-of-its-fair-share-preempts-once-and-stays"),
])
def test_two_equal_queues_settle_instead_of_preempting_each_other(gang: JobSpec, preemptions: int,
                                                                   b_holds: int) -> None:
    """QA F1: queue a fills 32 H100 with preemptible 1 x 8 jobs, queue b (equal weight) waits with a gang.
    Before, a 3 x 8 gang preempted three of a's jobs, then a's jobs preempted the gang, for ever."""
    done, held = drive([empty(4)], flood(4, 8), [gang], config=with_queues(a=1, b=1), cycles=8)
    assert len(done) == preemptions, [(p.job_id, p.preemptor) for p in done]
    if not preemptions:  # the gang says why it does not preempt, not only that capacity is short
        result = Scheduler(with_queues(a=1, b=1)).schedule(Snapshot.of([full(4)]), [request(gang)], running=held)
        said = result.pending[JobId("gang")].message
        assert "not preempting: stopping the work in its way would leave queue b holding a larger share than " \
               "the queue of that work" in said and "queue a" not in said  # another tenant's queue is not named
    assert sum(a.replicas * a.resources.accelerator_milli // 1000 for a in held if a.queue == "b") == b_holds


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.sampled_from([1, 2, 4, 8]), min_size=1, max_size=8),
       owners=st.lists(st.sampled_from("ab"), min_size=8, max_size=8),
       gpus=st.sampled_from([1, 2, 4, 8]), replicas=st.integers(1, 4), weights=st.tuples(
           st.integers(1, 3), st.integers(1, 3)), preemptible=st.booleans())
@example(sizes=[8] * 4, owners=["a"] * 8, gpus=8, replicas=3, weights=(1, 1), preemptible=True)  # QA F1
@example(sizes=[8], owners=["a"] * 8, gpus=1, replicas=1, weights=(1, 1), preemptible=True)
def test_no_preemption_cycle_after_a_fair_share_preemption_the_reverse_is_not_eligible(
        sizes: list[int], owners: list[str], gpus: int, replicas: int, weights: tuple[int, int],
        preemptible: bool) -> None:
    """After a fair-share preemption, the victims waiting again may not preempt the preemptor's queue back."""
    config = with_queues(a=weights[0], b=weights[1])
    held = [running(spec(f"r{i}", gpus=g, queue=owners[i], preemptible=True), "c") for i, g in enumerate(sizes)]
    nodes = max(1, -(-sum(sizes) // 8))
    used = sum(sizes)
    room = cluster("c", "r", pool(H100, nodes=0, extra={0: nodes}))
    if used % 8:  # what runs fills the cluster but for less than a node: no job fits without preempting
        room = cluster("c", "r", pool(H100, nodes=0, extra={0: nodes - 1, 8 - used % 8: 1}))
    me = spec("me", gpus=gpus, replicas=replicas, queue="b", preemptible=preemptible)
    first = Scheduler(config).schedule(Snapshot.of([room]), [request(me)], running=held, now=10.0)
    fair = [p for p in first.preemptions if p.queue == "a"]
    if not fair:
        return
    victims = {p.job_id for p in first.preemptions}
    after = [a for a in held if a.job_id not in victims] + [
        replace(running(me, "c", placed_at=10.0), replicas=sum(x.replicas for x in first.decisions[0].assignments))]
    back = [request(replace(spec(a.job_id, gpus=a.resources.accelerator_milli // 1000, queue=a.queue,
                                 preemptible=True)), at=float(i)) for i, a in enumerate(held) if a.job_id in victims]
    second = Scheduler(config).schedule(first.snapshot, back, running=after, now=20.0)
    assert not [p for p in second.preemptions if p.queue == "b"], (
        [(p.job_id, p.preemptor) for p in first.preemptions], [(p.job_id, p.preemptor) for p in second.preemptions])


def smalls(n: int) -> list[Allocation]:
    return [running(spec(f"a{i}", gpus=2, queue="a", preemptible=True), "c") for i in range(n)]


FIXED = running(spec("fixed", gpus=8, replicas=4, queue="a"), "d")  # queue a's share beyond cluster c


@pytest.mark.parametrize(("config", "priority", "clusters", "held"), [
    pytest.param(SchedulerConfig(max_preemptions_per_cycle=10), 10, [full(4)], smalls(16), id="priority"),
    pytest.param(replace(with_queues(a=1, b=1), max_preemptions_per_cycle=10), 0,
                 [full(4), cluster("d", "r", pool(H100, nodes=0, extra={0: 4}))], [*smalls(16), FIXED],
                 id="fair-share"),
])
def test_a_gang_needing_more_victims_than_the_cap_says_so(config: SchedulerConfig, priority: int,
                                                          clusters: list[ClusterInfo], held: list[Allocation]) -> None:
    """QA F2: a 4 x 8 gang behind small preemptible jobs needs 16 victims; the cap is 10. (In the fair-share
    case queue a keeps 32 elsewhere, so after the preemption the queues hold 32 each: a fair preemption.)"""
    gang = spec("gang", gpus=8, replicas=4, queue="b", priority=priority)
    result = Scheduler(config).schedule(Snapshot.of(clusters), [request(gang)], running=held, now=10.0)
    assert not result.preemptions
    reason = result.pending[JobId("gang")]
    assert reason.code is ReasonCode.INSUFFICIENT_ACCELERATORS
    assert "not preempting: it would take more than maxVictimsPerCycle (10) preemptible jobs" in reason.message
    # With a cap that allows it, the same gang preempts.
    roomy = replace(config, max_preemptions_per_cycle=16)
    result = Scheduler(roomy).schedule(Snapshot.of(clusters), [request(gang)], running=held, now=10.0)
    assert len(result.preemptions) == 16


def test_a_gang_the_fair_share_rule_refuses_is_not_told_the_cap_stops_it() -> None:
    """Without queue a's work elsewhere, the gang would leave b at the whole fleet and a at none: refused
    whatever the cap, so its reason must not blame the cap."""
    config = replace(with_queues(a=1, b=1), max_preemptions_per_cycle=10)
    gang = spec("gang", gpus=8, replicas=4, queue="b")
    result = Scheduler(config).schedule(Snapshot.of([full(4)]), [request(gang)], running=smalls(16), now=10.0)
    assert not result.preemptions
    assert "maxVictimsPerCycle" not in result.pending[JobId("gang")].message
