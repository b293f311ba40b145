"""An elastic gang re-placed after losing a placement waits a while to regain the count it ran at, rather than settle
for less on room the federator has not heard back about (scheduler/elastic_regain.py).

Outside QA, elasticqa63 1b: a gang of 4 with spec.minReplicas 1 placed 3/4 lost one pod to an eviction; in the same
second it was placed again at 1 on another member, for the rest of its run, while its own member had its room free
again moments later.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from scenarios import H100, placed, running, spec
from test_elastic import elastic

from federator.model import JobId, ReasonCode
from federator.model.elastic_left import ElasticLeft
from federator.scheduler import Scheduler, Snapshot
from federator.scheduler.elastic_regain import REGAIN_SECONDS, regain

from builders import cluster, pool, request

LEFT = ElasticLeft("b", 3, 1000.0)  # it ran 3 on b until that placement ended at t=1000


def test_a_gang_that_ran_three_waits_for_three_where_only_one_fits_now() -> None:
    member = cluster("a", "r", pool(H100, nodes=1))  # room for 1 of 4 elsewhere; b has not reported its room back
    gang = request(elastic(replicas=4, low=1))
    result = Scheduler().schedule(Snapshot.of([member]), [replace(gang, regain=LEFT)])
    assert not placed(result)  # not 1 on a for the rest of its run
    reason = result.pending[JobId("ft")]
    assert reason.code is ReasonCode.GANG_DOES_NOT_FIT
    assert "it ran 3 replicas on b until that placement ended, so it waits for 3 or more until b reports its room " \
           f"back (at most {REGAIN_SECONDS:g} s after the end), then takes what fits down to spec.minReplicas 1" \
           in reason.message, reason.message

    free = Scheduler().schedule(Snapshot.of([member]), [gang])  # once the rule lets go: what fits, down to 1
    assert placed(free) == {"ft": {"a": 1}}


def test_it_takes_three_or_more_anywhere_while_it_waits() -> None:
    three, whole = cluster("c", "r", pool(H100, nodes=3)), cluster("d", "r", pool(H100, nodes=4))
    gang = replace(request(elastic(replicas=4, low=1)), regain=LEFT)
    assert placed(Scheduler().schedule(Snapshot.of([three]), [gang])) == {"ft": {"c": 3}}
    assert placed(Scheduler().schedule(Snapshot.of([three, whole]), [gang])) == {"ft": {"d": 4}}


def test_a_gang_that_ran_whole_waits_whole_and_says_why() -> None:
    gang = replace(request(elastic(replicas=4, low=1)), regain=ElasticLeft("b", 4, 1000.0))
    result = Scheduler().schedule(Snapshot.of([cluster("a", "r", pool(H100, nodes=3))]), [gang])
    assert not placed(result)
    assert "so it waits for 4 or more until b reports" in result.pending[JobId("ft")].message


def test_a_gang_regaining_its_count_stops_no_one_meanwhile() -> None:
    """Its room may be coming back within the wait: stopping others for it would cost them for nothing. Once the
    rule lets go it preempts for its minimum as any elastic gang (test_elastic.py)."""
    victims = [spec(f"v{i}", gpus=8, models=(H100,), preemptible=True) for i in range(4)]
    full = cluster("c", "r", pool(H100, nodes=0, extra={0: 4}))
    gang = request(replace(elastic(replicas=4, low=1), priority=10))
    allocations = [running(v, "c", placed_at=float(i)) for i, v in enumerate(victims)]
    held = Scheduler().schedule(Snapshot.of([full]), [replace(gang, regain=LEFT)], running=allocations, now=100.0)
    assert not held.preemptions and not placed(held)
    free = Scheduler().schedule(Snapshot.of([full]), [gang], running=allocations, now=100.0)
    assert [p.job_id for p in free.preemptions] == ["v3"]  # its minimum, 1


@pytest.mark.parametrize(("now", "reported_at", "avoided", "holds"), [
    (1001.0, 990.0, ("b",), True),  # b has not reported since, and is avoided
    (1001.0, 1000.5, ("b",), True),  # reported since, but still avoided for this job: its room is not offered
    (1001.0, 990.0, (), True),  # not avoided, but not reported since: its room is not known free
    (1031.0, 1020.0, (), False),  # reported since and no longer avoided: the usual rule from here
    (1001.0, None, ("b",), False),  # b is Lost or gone: nothing comes back
    (1000.0 + REGAIN_SECONDS, 990.0, ("b",), False),  # the bound: a member that keeps refusing costs a wait only
], ids=["not-reported-avoided", "reported-avoided", "not-reported", "reported", "gone", "bound"])
def test_when_the_count_holds(now: float, reported_at: float | None, avoided: tuple[str, ...], holds: bool) -> None:
    spec = elastic(replicas=4, low=1)
    assert (regain(spec, LEFT, now=now, reported_at=reported_at, avoided=avoided) is LEFT) is holds


def test_nothing_holds_at_or_below_the_minimum_or_for_a_gang_not_elastic() -> None:
    assert regain(elastic(replicas=4, low=3), LEFT, now=1001.0, reported_at=None, avoided=("b",)) is None
    assert regain(elastic(replicas=4, low=3), LEFT, now=1001.0, reported_at=990.0, avoided=("b",)) is None
    assert regain(elastic(replicas=4, low=0), LEFT, now=1001.0, reported_at=990.0, avoided=("b",)) is None
