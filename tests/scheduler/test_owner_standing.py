"""How many waiting jobs go before an owner's, between cycles: the order `owner_share.QueueLine` takes them in."""

from __future__ import annotations

import pytest

from federator.scheduler.owner_standing import Waiting, holding_less, jobs_ahead

LINE = [Waiting("user bob", 0, 10.0, "b-1"), Waiting("user bob", 0, 30.0, "b-2"),
        Waiting("user carol", 5, 50.0, "c-1"),  # a higher priority: before everyone of priority 0
        Waiting("user dan", 0, 5.0, "d-1"), Waiting("user dan", 0, 40.0, "d-2"),
        Waiting("user alice", 0, 20.0, "a-1"), Waiting("user alice", -1, 1.0, "a-0")]
HELD = {"user alice": (8_000, 0), "user bob": (0, 0), "user dan": (8_000, 0), "user carol": (64_000, 0)}


@pytest.mark.parametrize(("owner", "by_share", "ahead"), [
    ("user alice", True, 4),   # carol's (priority), bob's two (holds less), dan's d-1 (as much, earlier)
    ("user alice", False, 3),  # ownerShare false: carol's, then the jobs of priority 0 submitted before 20: b-1, d-1
    ("user bob", True, 1),     # carol's only: bob holds least
    ("user dan", True, 3),     # carol's, bob's two; alice holds as much but asked later than d-1
    ("user carol", True, 0),   # the highest priority
    ("user erin", True, 0),    # nothing waiting
], ids=["share", "submission-order", "least-held", "ties-by-time", "top-priority", "none-waiting"])
def test_jobs_ahead(owner: str, by_share: bool, ahead: int) -> None:
    assert jobs_ahead(owner, LINE, HELD, by_share=by_share) == ahead


def test_holding_less_counts_other_owners_only() -> None:
    owners = ["user alice", "user bob", "user dan", "user carol"]
    assert holding_less("user alice", owners, HELD) == 1  # bob; dan holds as much
    assert holding_less("user carol", owners, HELD) == 3
    assert holding_less("user bob", owners, HELD) == 0
