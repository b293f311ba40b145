"""Within a queue and a priority, the owner holding the fewest of the queue's accelerators goes first
(scheduler/owner_share.py): one user's backlog no longer starves a colleague (outside QA, HPC H1)."""

from __future__ import annotations

import pytest
from scenarios import H100, cycle, owned, running

from federator.model import ReasonCode
from federator.scheduler import QueueConfig, SchedulerConfig
from federator.scheduler.reservation import ReservationPolicy

from builders import cluster, pool

FIFO = SchedulerConfig(queues={"batch": QueueConfig(owner_share=False)})


def fleet(free: int, full: int = 0):  # type: ignore[no-untyped-def]
    """One cluster "c" of 8 x H100 nodes: `free` idle, `full` with every accelerator held (by the running work)."""
    return [cluster("c", "r", pool(H100, nodes=free, extra={0: full} if full else None))]


def bobs(n: int, *, start: int = 0, **kw: object) -> list:  # type: ignore[type-arg]
    return [owned("bob", f"bk-{i}", gpus=8, queue="batch", **kw) for i in range(start, start + n)]


def test_a_user_holding_nothing_goes_before_a_backlog_submitted_earlier() -> None:
    """Bob holds two nodes and has ten jobs waiting; alice, who holds nothing, submits one after them all."""
    held = [running(s, "c") for s in bobs(2, start=100)]
    specs = [*bobs(10), owned("alice", "alice-batch", gpus=8, queue="batch")]
    result = cycle(fleet(2, 2), specs, allocations=held)
    assert [d.job_id for d in result.decisions] == ["alice-batch", "bk-0"]


def test_without_running_work_two_users_alternate() -> None:
    carol = [owned("carol", f"c{i}", gpus=8, queue="batch") for i in range(4)]
    dave = [owned("dave", f"d{i}", gpus=8, queue="batch") for i in range(4)]
    result = cycle(fleet(4), [*carol, *dave])  # every carol job submitted before every dave job
    assert [d.job_id for d in result.decisions] == ["c0", "d0", "c1", "d1"]


def test_what_a_job_takes_counts_at_what_it_holds() -> None:
    """A 1-GPU job of carol's counts 1, not one job: dave, holding 8, waits while carol holds less."""
    held = [running(owned("dave", "d-held", gpus=8, queue="batch"), "c")]
    specs = [owned("dave", "d0", gpus=1, queue="batch"), *[owned("carol", f"c{i}", gpus=1, queue="batch")
                                                             for i in range(9)]]
    result = cycle(fleet(1, 1), specs, allocations=held)  # 8 free: carol reaches 8 before dave's turn
    assert [d.job_id for d in result.decisions] == [f"c{i}" for i in range(8)]
    assert result.pending["d0"].code is ReasonCode.INSUFFICIENT_ACCELERATORS


def test_priority_still_wins_over_share() -> None:
    held = [running(s, "c") for s in bobs(2, start=100)]
    specs = [owned("alice", "alice-batch", gpus=8, queue="batch"), *bobs(1, priority=5)]
    result = cycle(fleet(1, 2), specs, allocations=held)  # one node free
    assert [d.job_id for d in result.decisions] == ["bk-0"]


def test_a_queue_of_one_user_is_first_come_first_served_as_before() -> None:
    specs = [*bobs(3), *bobs(2, start=3, priority=1)]
    result = cycle(fleet(3), specs)
    assert [d.job_id for d in result.decisions] == ["bk-3", "bk-4", "bk-0"]


def test_a_queue_with_owner_share_off_is_first_come_first_served_across_users() -> None:
    held = [running(s, "c") for s in bobs(2, start=100)]
    specs = [*bobs(10), owned("alice", "alice-batch", gpus=8, queue="batch")]
    result = cycle(fleet(2, 2), specs, allocations=held, config=FIFO)
    assert [d.job_id for d in result.decisions] == ["bk-0", "bk-1"]
    assert result.pending["alice-batch"].message.endswith(
        "; 5 to 9 waiting jobs of queue batch go before its owner's: 5 to 9 of other users, submitted earlier")


def test_a_gang_is_placed_whole_or_not_at_all_in_its_owners_turn() -> None:
    """Alice (holding nothing) goes first with a 2-node gang: with one node free it waits whole, and bob's one-node
    job behind it takes the node (no reservation yet); with two free it is placed whole, before bob."""
    gang = owned("alice", "alice-gang", gpus=8, replicas=2, queue="batch")
    held = [running(s, "c") for s in bobs(2, start=100)]
    one_free = cycle(fleet(1, 2), [*bobs(1), gang], allocations=held)
    assert [d.job_id for d in one_free.decisions] == ["bk-0"]
    # it fit 1 of 2 at its turn; bob's job then took that node: the words are the room the cycle left
    assert one_free.pending["alice-gang"].code is ReasonCode.INSUFFICIENT_ACCELERATORS
    two_free = cycle(fleet(2, 2), [*bobs(1), gang], allocations=held)
    assert [(d.job_id, sum(a.replicas for a in d.assignments)) for d in two_free.decisions] == [("alice-gang", 2)]


def test_a_starving_gang_keeps_its_reservation_against_a_user_holding_less() -> None:
    """Alice's 8-GPU gang waited past the threshold; bob holds nothing, so his one-GPU jobs are taken first, and
    they still leave the room gathered for her gang alone."""
    config = SchedulerConfig(reservations=ReservationPolicy(after_seconds=600, max_reservations=3))
    gathering = cluster("c", "r", pool(H100, nodes=1, free=7, extra={0: 1}))
    alice_held = running(owned("alice", "a-held", gpus=1, queue="batch", models=(H100,)), "c")
    gang = owned("alice", "g", gpus=8, queue="batch", models=(H100,))
    smalls = [owned("bob", f"s{i}", gpus=1, queue="batch", models=(H100,)) for i in range(4)]
    from federator.scheduler import Scheduler, Snapshot

    from builders import request
    requests = [request(gang, at=0.0), *[request(s, at=100.0 + i) for i, s in enumerate(smalls)]]
    result = Scheduler(config).schedule(Snapshot.of([gathering]), requests, running=[alice_held], now=10_000.0)
    assert not result.decisions
    assert [r.job_id for r in result.reservations] == ["g"]
    assert result.pending["s0"].code is ReasonCode.RESERVED


def test_a_waiting_job_is_told_which_jobs_of_its_queue_go_before_its_owners() -> None:
    """The fleet is full. Carol's job has a higher priority; alice holds nothing; erin holds as much as bob and
    asked before him; bob's own earlier jobs are not counted against him."""
    held = [running(s, "c") for s in bobs(1, start=100)] + [running(owned("erin", "e-held", gpus=8, queue="batch"),
                                                                   "c")]
    specs = [owned("erin", "e0", gpus=8, queue="batch"), *bobs(3), owned("alice", "a0", gpus=8, queue="batch"),
             owned("carol", "c0", gpus=8, queue="batch", priority=1)]
    result = cycle(fleet(0, 2), specs, allocations=held)
    assert not result.decisions
    assert "go before" not in result.pending["c0"].message
    said = "; 2 to 4 waiting jobs of queue batch go before its owner's: 1 of higher priority, 1 of users holding " \
           "less, 1 of users holding as much, submitted earlier"
    assert [result.pending[f"bk-{i}"].message.endswith(said) for i in range(3)] == [True] * 3
    assert result.pending["bk-0"].code is ReasonCode.INSUFFICIENT_ACCELERATORS
    assert result.pending["a0"].message.endswith("; 1 waiting job of queue batch goes before its owner's: "
                                                 "1 of higher priority")


def test_a_waiting_jobs_words_stay_the_same_when_another_job_arrives_ahead_of_it() -> None:
    """The count is told as a range (kubescaleqa62 H1, M2): alice's 13th job, submitted ahead of bob's in line,
    leaves his reason's words, and so his stored status, as they were; the 20th changes them."""
    held = [running(s, "c") for s in bobs(1, start=100)]

    def said(alices: int) -> str:
        specs = [*[owned("alice", f"a{i}", gpus=8, queue="batch") for i in range(alices)], *bobs(3)]
        return cycle(fleet(0, 1), specs, allocations=held).pending["bk-0"].message

    assert said(12).endswith("; 10 to 19 waiting jobs of queue batch go before its owner's: 10 to 19 of users "
                             "holding less")
    assert said(13) == said(12) == said(19)
    assert said(20).endswith("; 20 to 49 waiting jobs of queue batch go before its owner's: 20 to 49 of users "
                             "holding less")


@pytest.mark.parametrize(("n", "words"), [(0, "0"), (1, "1"), (2, "2 to 4"), (4, "2 to 4"), (5, "5 to 9"),
                                          (10, "10 to 19"), (49, "20 to 49"), (99, "50 to 99"), (100, "100 to 199"),
                                          (1_999, "1,000 to 1,999"), (123_456, "100,000 to 199,999")])
def test_a_count_is_told_as_its_range(n: int, words: str) -> None:
    from federator.scheduler.told_counts import about

    assert about(n) == words


@pytest.mark.parametrize(("x", "words"), [(0.0, "0"), (0.5, "less than 1"), (1.0, "1"), (12.8, "10 to 19")])
def test_an_amount_of_accelerators_is_told_as_its_range(x: float, words: str) -> None:
    from federator.scheduler.told_counts import amount

    assert amount(x) == words


@pytest.mark.parametrize("seed", range(5))
def test_queues_of_one_user_each_decide_exactly_as_first_come_first_served(seed: int) -> None:
    """Random gangs and priorities in two queues of one user each: the same decisions and reasons, in the same
    order, with the share order on and off (a queue with one user behaves exactly as before 0.13.0)."""
    import random

    rng = random.Random(seed)
    specs = [owned("bob" if q == "batch" else "carol", f"j{i}", gpus=rng.choice((1, 2, 4, 8)),
                   replicas=rng.choice((1, 1, 2)), priority=rng.choice((0, 0, 5)), queue=q)
             for i, q in enumerate(rng.choice(("batch", "other")) for _ in range(60))]
    held = [running(owned("bob", "b-held", gpus=8, queue="batch"), "c")]
    on = cycle(fleet(6, 1), specs, allocations=held)
    off = cycle(fleet(6, 1), specs, allocations=held, config=SchedulerConfig(
        queues={q: QueueConfig(owner_share=False) for q in ("batch", "other")}))
    assert on.decisions == off.decisions
    assert on.pending == off.pending
