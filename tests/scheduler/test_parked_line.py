"""A waiting job's count of the jobs ahead of its owner's includes the queue's parked jobs, which the server hands the
cycle as a summary (scheduler/parked_line.py): a cycle over a few jobs a report brought back told "2 to 4" behind
12 (ahead62)."""

from __future__ import annotations

from scenarios import H100, owned, request, running

from federator.model import Reason, ReasonCode
from federator.model.job import NeverRunnable
from federator.scheduler import QueueConfig, Scheduler, SchedulerConfig, Snapshot
from federator.scheduler.parked_line import FEW_OWNERS, ParkedQueue, in_line

from builders import cluster, pool

FIFO = SchedulerConfig(queues={"batch": QueueConfig(owner_share=False)})


def _said(parked: ParkedQueue, *, config: SchedulerConfig | None = None, held: int = 0) -> str:
    """Bob's one job (submitted at 5.0) on a full fleet, with `parked` in queue batch; bob holds `held` nodes."""
    fleet = [cluster("c", "r", pool(H100, nodes=0, extra={0: 1 + held}))]
    allocations = [running(owned("bob", f"run-{i}", gpus=8, queue="batch"), "c") for i in range(held)]
    bob = owned("bob", "bob-0", gpus=8, queue="batch")
    result = Scheduler(config).schedule(Snapshot.of(fleet), [request(bob, at=5)], running=allocations,
                                        parked={"batch": parked})
    return result.pending["bob-0"].message


def test_parked_jobs_of_an_owner_holding_as_much_count_if_submitted_earlier() -> None:
    parked = ParkedQueue({0: {"user alice": tuple((float(i), f"a{i}") for i in range(12))}})
    assert _said(parked).endswith("; 5 to 9 waiting jobs of queue batch go before its owner's: 5 to 9 of users "
                                  "holding as much, submitted earlier")  # a0 to a4, submitted before 5.0


def test_every_parked_job_of_a_higher_priority_or_an_owner_holding_less_counts() -> None:
    parked = ParkedQueue({1: {"user carol": ((9.0, "c0"),)},
                          0: {"user dave": tuple((9.0 + i, f"d{i}") for i in range(3))}})
    assert _said(parked).endswith("; 1 waiting job of queue batch goes before its owner's: 1 of higher priority")
    said = _said(parked, held=1)  # bob holds a node, dave nothing: dave's jobs go first, submitted later or not
    assert said.endswith("; 2 to 4 waiting jobs of queue batch go before its owner's: 1 of higher priority, 2 to 4 "
                         "of users holding less"), said


def test_parked_jobs_submitted_later_by_an_owner_holding_as_much_do_not_count() -> None:
    said = _said(ParkedQueue({0: {"user alice": ((9.0, "a0"),), "user dave": ((9.0, "d0"), (9.5, "d1"))}}))
    assert "go before" not in said, said


def test_without_owner_share_parked_jobs_of_others_submitted_earlier_count() -> None:
    parked = ParkedQueue({0: {"user alice": ((1.0, "a0"), (2.0, "a1"), (9.0, "a2")), "user bob": ((0.0, "b9"),)}})
    said = _said(parked, config=FIFO)
    assert said.endswith("; 2 to 4 waiting jobs of queue batch go before its owner's: 2 to 4 of other users, "
                         "submitted earlier"), said  # a0, a1; bob's own parked job is not ahead of his


def test_a_job_that_waits_for_ever_or_for_no_room_is_not_in_line() -> None:
    assert in_line(Reason(ReasonCode.INSUFFICIENT_ACCELERATORS, "x"))
    assert in_line(Reason(ReasonCode.QUOTA_EXCEEDED, "x"))
    assert not in_line(Reason(ReasonCode.QUOTA_EXCEEDED, "x", never=NeverRunnable.QUOTA))
    assert not in_line(Reason(ReasonCode.WAITING, "x"))


def test_a_parked_owner_placed_in_the_cycle_is_counted_at_what_they_hold_then() -> None:
    """Carol's gang waits first (its note groups the parked owners by holding), then dave's job takes the free node:
    dave holds more than bob now, so his parked jobs no longer go before bob's (the groups are rebuilt)."""
    fleet = [cluster("c", "r", pool(H100, nodes=1, extra={0: 1}))]
    carol = owned("carol", "carol-0", gpus=8, replicas=2, queue="batch")
    dave, bob = owned("dave", "dave-0", gpus=8, queue="batch"), owned("bob", "bob-0", gpus=8, queue="batch")
    parked = ParkedQueue({0: {"user dave": ((1.0, "dp0"), (2.0, "dp1"))}})
    result = Scheduler().schedule(Snapshot.of(fleet), [request(carol, at=0), request(dave, at=3),
                                                       request(bob, at=5)], parked={"batch": parked})
    assert [d.job_id for d in result.decisions] == ["dave-0"]
    assert "go before" not in result.pending["carol-0"].message  # dave's parked jobs came after carol's
    said = result.pending["bob-0"].message
    assert said.endswith("; 1 waiting job of queue batch goes before its owner's: 1 of users holding as much, "
                         "submitted earlier"), said  # carol's; not dave's two, who holds a node now


def test_many_owners_holding_as_much_are_counted_in_one_merged_line() -> None:
    """Past FEW_OWNERS the owners holding as much are merged into one sorted line: the count is the same."""
    many = ParkedQueue({0: {f"user u{i}": ((float(i) - 0.5, f"u{i}"),) for i in range(FEW_OWNERS + 8)}})
    assert _said(many).endswith("; 5 to 9 waiting jobs of queue batch go before its owner's: 5 to 9 of users "
                                "holding as much, submitted earlier")  # u0 to u5, submitted before 5.0
