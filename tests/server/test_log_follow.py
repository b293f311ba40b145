"""A follow's cursor and reads, alone (server/log_follow.py): which lines are new, from when the next read asks,
and what the user is told once; the shared reads' parts (server/log_polls.py). Over gRPC with real agents:
test_log_follow_grpc.py."""

from __future__ import annotations

import asyncio

import pytest

from federator.model import JobId, Placement, PlacementId
from federator.server.log_follow import Cursor, Follow, cut, stamped
from federator.server.log_polls import ClusterBudget, turns, widest
from federator.server.logs import Gathered, ReplicaText, Unread


def _placement(pid: str) -> Placement:
    return Placement(PlacementId(pid), JobId("j"), "east-1", "east", 2, "", 1)


def _text(pid: str, replica: int, text: str, *, truncated: bool = False, error: str = "") -> ReplicaText:
    return ReplicaText("east-1", pid, replica, f"{pid}-{replica}", "main", text, truncated, error)


def test_a_dated_line_parses_to_the_nanosecond_in_any_zone_and_an_undated_one_does_not() -> None:
    assert stamped("2026-12-06T10:00:05.123456789Z loss 0.8") == (1796551205123456789, "loss 0.8")
    assert stamped("2026-12-06T11:00:05.5+01:00 x") == (1796551205500000000, "x")
    assert stamped("2026-12-06T10:00:05Z ") == (1796551205000000000, "")
    assert stamped("loss 0.8") is None and stamped("2026-12-06 10:00:05Z x") is None


def test_cut_passes_only_what_follows_the_cursor_and_says_when_lines_were_lost() -> None:
    text = "2026-12-06T10:00:05Z a\n2026-12-06T10:00:05Z b\n2026-12-06T10:00:06Z c\n"
    assert cut(text, None, truncated=True) == (["a", "b", "c"], Cursor(1796551206000000000, 1), False)
    at5 = Cursor(1796551205000000000, 1)  # "a" passed, not "b": same nanosecond, told apart by count
    assert cut(text, at5, truncated=False) == (["b", "c"], Cursor(1796551206000000000, 1), False)
    assert cut("", at5, truncated=False) == ([], at5, False)  # nothing new: the cursor stays
    assert cut("2026-12-06T10:00:09Z z\n", at5, truncated=True)[2]  # cut by the agent past the cursor: lost
    assert not cut("2026-12-06T10:00:09Z z\n", at5, truncated=False)[2]


def test_the_next_read_asks_from_the_oldest_replicas_second_a_new_placement_from_its_start() -> None:
    first, moved = _placement("j.g1.east-1"), _placement("j.g2.west-1")
    follow = Follow(10, [first])
    assert follow.ask(first) == (10, "")  # the user's tail
    follow.message(Gathered((_text(first.placement_id, 0, "2026-12-06T10:00:07.9Z a\n"),
                             _text(first.placement_id, 1, "2026-12-06T10:00:05.2Z b\n")), ()))
    assert follow.ask(first) == (10_000, "2026-12-06T10:00:05Z")
    follow.message(Gathered((_text(first.placement_id, 0, ""),), ()))  # a replica with no line yet
    follow.replicas[first.placement_id].add(2)
    assert follow.ask(first) == (10_000, "2026-12-06T10:00:04Z")  # a second's slack for its node's clock
    assert follow.ask(moved) == (10_000, "")  # a placement made after the follow began: read from its start


def test_an_error_is_told_once_and_again_only_when_it_changes() -> None:
    pid = "j.g1.east-1"
    follow = Follow(10, [_placement(pid)])
    away = Gathered((), (Unread("east-1", pid, "cluster east-1: its agent is not connected"),))
    assert len(follow.message(away).errors) == 1
    assert len(follow.message(away).errors) == 0
    follow.message(Gathered((_text(pid, 0, "2026-12-06T10:00:05Z back\n"),), ()))
    assert len(follow.message(away).errors) == 1  # after a read, the same words are news again
    broken = Gathered((_text(pid, 0, "", error="container 'gpu': not in this pod"),), ())
    assert [x.error for x in follow.message(broken).logs] == ["container 'gpu': not in this pod"]
    assert list(follow.message(broken).logs) == []


def test_a_first_read_that_came_wider_is_held_to_the_followers_tail() -> None:
    """A shared read may bring more of a placement than a follower's tail (another follower asked from earlier):
    its first lines of that placement are still its last `tail_lines`."""
    pid = "j.g1.east-1"
    follow = Follow(2, [_placement(pid)])
    text = "".join(f"2026-12-06T10:00:0{i}Z line {i}\n" for i in range(1, 6))
    assert follow.message(Gathered((_text(pid, 0, text),), ())).logs[0].text == "line 4\nline 5\n"
    more = text + "2026-12-06T10:00:06Z line 6\n2026-12-06T10:00:07Z line 7\n2026-12-06T10:00:08Z line 8\n"
    assert follow.message(Gathered((_text(pid, 0, more),), ())).logs[0].text == "line 6\nline 7\nline 8\n"


def test_reads_of_many_followers_are_one_read_in_turns_that_fit_the_clusters_budget() -> None:
    asks = [(10, ""), (10_000, "2026-12-06T10:00:05Z"), (10_000, "2026-12-06T10:00:04Z")]
    assert widest(asks) == (10_000, "")  # one has no cursor yet: from its start
    assert widest(asks[1:]) == (10_000, "2026-12-06T10:00:04Z")  # the oldest cursor
    many = [_placement(f"j.g{i}.east-1") for i in range(5)]
    assert [[p.placement_id for p in c] for c in turns(many, 2)] == [
        ["j.g0.east-1", "j.g1.east-1"], ["j.g2.east-1", "j.g3.east-1"], ["j.g4.east-1"]]


def test_the_budget_holds_each_clusters_reads_first_come_first_served() -> None:
    async def go() -> None:
        budget = ClusterBudget(2)
        await budget.take("east-1", 1)
        big = asyncio.create_task(budget.take("east-1", 2))
        await asyncio.sleep(0)
        small = asyncio.create_task(budget.take("east-1", 1))  # would fit, but comes after the big one
        west = asyncio.create_task(budget.take("west-1", 2))
        gone = asyncio.create_task(budget.take("east-1", 1))
        for _ in range(5):
            await asyncio.sleep(0)
        assert (big.done(), small.done(), west.done()) == (False, False, True)  # west-1 is not held back
        gone.cancel()  # a follower that left while waiting: its place given up
        await asyncio.gather(gone, return_exceptions=True)
        budget.give("east-1", 1)
        await asyncio.wait_for(big, 5.0)
        assert not small.done() and budget.held == {"east-1": 2, "west-1": 2}
        budget.give("east-1", 2)
        await asyncio.wait_for(small, 5.0)
        budget.give("east-1", 1)
        budget.give("west-1", 2)
        assert budget.held == {}

    asyncio.run(go())


def test_the_budget_drops_a_cluster_at_zero_once_and_refuses_to_give_back_more_than_it_holds() -> None:
    async def go() -> None:
        budget = ClusterBudget(2)
        await budget.take("east-1", 2)
        budget.give("east-1", 1)
        assert budget.held == {"east-1": 1}
        budget.give("east-1", 1)
        assert budget.held == {}  # at zero the cluster is gone, not kept as a 0
        with pytest.raises(ValueError, match="1 reads given back to cluster 'east-1', which holds 0"):
            budget.give("east-1", 1)  # a read given back twice: a bug, not a count below zero
        assert budget.held == {}
        await budget.take("east-1", 2)  # the cluster's whole budget again, no more
        third = asyncio.create_task(budget.take("east-1", 1))
        for _ in range(3):
            await asyncio.sleep(0)
        assert not third.done() and budget.held == {"east-1": 2}
        budget.give("east-1", 2)
        await asyncio.wait_for(third, 5.0)
        budget.give("east-1", 1)
        assert budget.held == {}

    asyncio.run(go())
