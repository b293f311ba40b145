"""An elastic gang is placed at the largest count from spec.minReplicas that fits in one cluster (scheduler/elastic.py).

Outside QA, ML platform E5: a gang torchrun could run on 2 to 4 nodes waited `GangDoesNotFit ... fits 2 of 4
replicas` while 2 nodes were free.
"""

from __future__ import annotations

from dataclasses import replace

from scenarios import H100, cycle, placed, running, spec, with_quota

from federator.model import JobId, JobKind, JobSpec, ReasonCode

from builders import cluster, pool


def elastic(name: str = "ft", *, replicas: int = 4, low: int = 2, kind: JobKind = JobKind.TRAINING) -> JobSpec:
    """A gang of `replicas` x 8 H100 that may start with `low`."""
    return replace(spec(name, replicas=replicas, gpus=8, models=(H100,), kind=kind), min_replicas=low)


def test_a_gang_of_four_with_minimum_two_starts_with_the_two_that_fit() -> None:
    member = cluster("c", "r", pool(H100, nodes=2))  # two free nodes of 8: 2 of 4 replicas
    result = cycle([member], [elastic()])
    assert placed(result) == {"ft": {"c": 2}}
    assert result.snapshot.clusters[0].capacity.pool(H100).free_accelerators == 0  # the two held, nothing more

    whole = cycle([member], [elastic(low=0)])  # the same gang not elastic: all or nothing at 4
    assert not placed(whole)
    assert whole.pending[JobId("ft")].code is ReasonCode.GANG_DOES_NOT_FIT


def test_it_takes_the_largest_count_that_fits_not_its_minimum() -> None:
    result = cycle([cluster("c", "r", pool(H100, nodes=3))], [elastic(replicas=4, low=1)])
    assert placed(result) == {"ft": {"c": 3}}


def test_a_minimum_of_three_waits_where_two_fit_and_says_so() -> None:
    result = cycle([cluster("c", "r", pool(H100, nodes=2))], [elastic(low=3)])
    assert not placed(result)
    reason = result.pending[JobId("ft")]
    assert reason.code is ReasonCode.GANG_DOES_NOT_FIT
    assert "not even spec.minReplicas (3 of 4 replicas) fits in one cluster: " in reason.message, reason.message
    assert "fits 2 of 3 replicas" in reason.message, reason.message
    assert result.snapshot.clusters[0].capacity.pool(H100).free_accelerators == 16  # nothing held for it


def test_the_cluster_fitting_more_wins_and_the_gang_is_never_split() -> None:
    two, three = cluster("a", "r", pool(H100, nodes=2)), cluster("b", "r", pool(H100, nodes=3))
    result = cycle([two, three], [elastic(replicas=4, low=2)])
    assert placed(result) == {"ft": {"b": 3}}  # not 2 on a, and not 2 + 2 over both


def test_a_whole_fit_is_taken_whole() -> None:
    assert placed(cycle([cluster("c", "r", pool(H100, nodes=5))], [elastic()])) == {"ft": {"c": 4}}


def test_the_quota_counts_the_count_placed() -> None:
    # a quota of 16 H100: the whole gang (32) is over it, two replicas (16) are within
    result = cycle([cluster("c", "r", pool(H100, nodes=8))], [elastic()], config=with_quota("default",
                                                                                            gpus={H100: 16}))
    assert placed(result) == {"ft": {"c": 2}}


def test_the_room_left_goes_to_the_next_job() -> None:
    # the elastic gang takes 2 of the 3 nodes' worth it can; a one-node job after it gets the third
    member = cluster("c", "r", pool(H100, nodes=3))
    result = cycle([member], [elastic(replicas=4, low=2), spec("one", gpus=8, models=(H100,))])
    assert placed(result) == {"ft": {"c": 3}}  # it takes the largest count: the later job waits, as for any gang
    assert JobId("one") in result.pending


def test_a_gang_larger_than_any_member_but_whose_minimum_fits_one_is_never_called_hopeless() -> None:
    # 5 replicas can never fit a member of 4 nodes even empty; 2 of them can: the gang waits for room, not for ever
    busy = cluster("c", "r", pool(H100, nodes=1, extra={0: 3}))  # 4 nodes, 1 free now
    result = cycle([busy], [elastic(replicas=5, low=2)])
    reason = result.pending[JobId("ft")]
    assert reason.code is ReasonCode.GANG_DOES_NOT_FIT and reason.never is None, reason
    hopeless = cycle([busy], [elastic(replicas=5, low=0)]).pending[JobId("ft")]
    assert hopeless.never is not None  # the same gang not elastic never fits: said so


def test_a_waiting_elastic_gang_preempts_for_its_minimum_not_its_size() -> None:
    # 4 nodes, each running a preemptible one-node job: the 2:4 gang of higher priority stops two, not four
    victims = [spec(f"v{i}", gpus=8, models=(H100,), preemptible=True) for i in range(4)]
    full = cluster("c", "r", pool(H100, nodes=0, extra={0: 4}))
    gang = replace(elastic(), priority=10)
    result = cycle([full], [gang], now=100.0, allocations=[running(v, "c", placed_at=float(i))
                                                           for i, v in enumerate(victims)])
    assert sorted(p.job_id for p in result.preemptions) == ["v2", "v3"]  # the two placed most recently
    assert placed(result) == {"ft": {"c": 2}}


def test_a_count_its_quota_chose_says_so_and_one_room_chose_does_not() -> None:
    """elasticqa63: a gang held to 3 of 4 by its queue's quota read as one held short by room; the decision now
    says the quota chose the count (Decision.short, which the job's message and REASON carry)."""
    roomy = cluster("c", "r", pool(H100, nodes=8))
    result = cycle([roomy], [elastic(replicas=4, low=1)], config=with_quota("default", gpus={H100: 24}))
    assert placed(result) == {"ft": {"c": 3}}
    [decision] = result.decisions
    assert decision.short is not None and decision.short.code is ReasonCode.QUOTA_EXCEEDED, decision
    said = decision.short.message
    assert said.startswith("its queue's quota, not room, held it to 3 (room fits 4; at 4: quota of queue default "
                           f"on {H100}: 24 accelerators, too few left: the job needs 32)"), said
    assert "never" not in said  # 4 is over the whole quota, but the gang runs: no "cancel it" advice

    by_room = cycle([cluster("c", "r", pool(H100, nodes=3))], [elastic(replicas=4, low=1)],
                    config=with_quota("default", gpus={H100: 64}))
    assert placed(by_room) == {"ft": {"c": 3}} and by_room.decisions[0].short is None
