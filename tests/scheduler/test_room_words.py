"""A waiting job's words about a member's room are true of the room after the cycle that told them, and a cycle
over the same room tells the same words (scheduler/node_size.py): stop 62's CI saw a 4 told "the most free on one
node is 2" at its turn, room a 2 behind it then took, and the next cycle reworded it."""

from __future__ import annotations

import dataclasses

import pytest
from scenarios import A100, H100, cycle, spec

from federator.model import AcceleratorAlternative, AcceleratorPool, ReasonCode
from federator.scheduler import Scheduler
from federator.scheduler.board import shape_key
from federator.scheduler.snapshot import Snapshot

from builders import cluster, pool, request


def _said(p: AcceleratorPool) -> AcceleratorPool:
    """The pool as an agent reports it: its largest node's size said (8-accelerator servers)."""
    return dataclasses.replace(p, largest_node_accelerators=8)


def test_a_gang_told_at_its_turn_says_the_room_the_cycle_left() -> None:
    """One node of 8 free; a 4, a 2, a 4, a 2 in that order. The second 4 finds 2 free at its turn, the last 2 takes
    them: the 4's words must hold of the room left (0), which a cycle over that room tells it again."""
    member = cluster("member-a", "r", _said(pool(H100, nodes=1)))
    jobs = [spec("four-a", gpus=4), spec("two-a", gpus=2), spec("four-b", gpus=4), spec("two-b", gpus=2)]
    first = cycle([member], jobs)
    assert {d.job_id for d in first.decisions} == {"four-a", "two-a", "two-b"}
    told = first.pending["four-b"]  # type: ignore[index]
    assert told.code is ReasonCode.INSUFFICIENT_ACCELERATORS
    assert told.message == f"0/1 clusters fit: member-a has no node with 4 free {H100} accelerators", told
    left = first.snapshot.clusters[0].capacity.pool(H100)
    assert left is not None and left.free_accelerators == 0  # the room the cycle left: none
    again = Scheduler().schedule(first.snapshot, [request(jobs[2])])  # a cycle over the room left (a restart's)
    assert again.pending["four-b"] == told  # type: ignore[index]


def test_a_replica_over_every_node_says_the_largest_node_whatever_is_free() -> None:
    """The words that tell a replica too large for any node here (outside operator QA, F4) name the node's size,
    which neither a placement nor a report of load moves: the same with 8 free as with 3."""
    words = f"member-a has no node with 9 free {H100} accelerators (its largest node has 8 installed; a replica is " \
            "one pod on one node)"
    for free in (8, 3):
        member = cluster("member-a", "r", _said(pool(H100, nodes=2, free=free)))
        reason = cycle([member], [spec("nine", gpus=9)]).pending["nine"]  # type: ignore[index]
        assert reason.code is ReasonCode.INSUFFICIENT_ACCELERATORS and words in reason.message, reason


@pytest.mark.parametrize(("largest", "note"), [(0, False), (16, False), (8, True)],
                         ids=["not-said", "a-larger-node", "every-node-smaller"])
def test_the_node_size_is_told_only_when_said_and_too_small(largest: int, note: bool) -> None:
    member = cluster("member-a", "r", dataclasses.replace(pool(H100, nodes=2, free=3),
                                                          largest_node_accelerators=largest))
    reason = cycle([member], [spec("nine", gpus=9)]).pending["nine"]  # type: ignore[index]
    assert ("its largest node has" in reason.message) is note, reason
    assert "most free" not in reason.message


def test_the_words_are_the_shapes_first_and_stay_true() -> None:
    """Jobs of one shape are told what the first of them found (cycle.py's `unplaceable`): with no figure of free
    room in it, that is true of every one of them at the end of the cycle."""
    member = cluster("member-a", "r", _said(pool(H100, nodes=1, free=6)))
    jobs = [spec("four-a", gpus=4), spec("four-b", gpus=4), spec("two", gpus=2)]
    result = cycle([member], jobs)
    assert {d.job_id for d in result.decisions} == {"four-a", "two"}
    assert shape_key(request(jobs[0])) == shape_key(request(jobs[1]))
    again = Scheduler().schedule(Snapshot.of(result.snapshot.clusters), [request(jobs[1])])
    assert again.pending["four-b"] == result.pending["four-b"]  # type: ignore[index]


def test_a_gang_told_it_fits_in_part_says_so_only_if_the_room_is_left() -> None:
    """Two nodes of 8; a 4, an 8, a gang of 2 x 4, a 4. At its turn the gang fits 1 of 2 replicas (4 free on a
    node), room the 4 behind it takes: at the end of the cycle no node has 4 free, and the gang says so, with the
    code a cycle over that room gives it (scheduler/room_words.py)."""
    member = cluster("member-a", "r", _said(pool(H100, nodes=2)))
    jobs = [spec("four-a", gpus=4), spec("eight", gpus=8), spec("gang", gpus=4, replicas=2), spec("four-b", gpus=4)]
    first = cycle([member], jobs)
    assert {d.job_id for d in first.decisions} == {"four-a", "eight", "four-b"}
    told = first.pending["gang"]  # type: ignore[index]
    again = Scheduler().schedule(first.snapshot, [request(jobs[2])])
    assert again.pending["gang"] == told  # type: ignore[index]
    assert told.code is ReasonCode.INSUFFICIENT_ACCELERATORS
    assert told.message == f"0/1 clusters fit: member-a has no node with 4 free {H100} accelerators", told


def test_settled_words_keep_the_other_alternatives_story() -> None:
    """A job of two alternatives is told both stories; the one the cycle's later placements moved is told as the
    room stands, the other as it was."""
    member = cluster("member-a", "r", _said(pool(H100, nodes=2)), _said(pool(A100, nodes=1, free=2)))
    gang = dataclasses.replace(spec("gang", replicas=2), accelerators=(
        AcceleratorAlternative(4000, "H100"), AcceleratorAlternative(4000, "A100")))
    jobs = [spec("four-a", gpus=4, models=("H100",)), spec("eight", gpus=8, models=("H100",)), gang,
            spec("four-b", gpus=4, models=("H100",))]
    result = cycle([member], jobs)
    assert {d.job_id for d in result.decisions} == {"four-a", "eight", "four-b"}
    told = result.pending["gang"]  # type: ignore[index]
    assert told.code is ReasonCode.INSUFFICIENT_ACCELERATORS, told
    assert told.message.startswith(f"alternative 1 (4 x H100): 0/1 clusters fit: member-a has no node with 4 free "
                                   f"{H100} accelerators; alternative 2 (4 x A100): "), told
    assert "member-a has no node with 4 free" in told.message.split("alternative 2")[1], told
