"""The last tenth of --max-pending-jobs is kept for the queues and users holding little (server/kept_room.py).

Outside QA, tenants F8 (repro/pending_cap.sh, `--max-pending-jobs 200`, a 30-organisation policy): org-0001 took
100 pending jobs, org-0002 80, org-0003 the last 20 (the last tenth was kept for *owners* holding fewer than 20,
and its one user held none), and org-0004, holding nothing, was refused "the federator's queue is full".
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from server_support import Clock, MemoryStore, make, spec

from federator.model import JobSpec
from federator.scheduler import QueueConfig, SchedulerConfig
from federator.security.authz import Principal, Submitter, stamp_owner
from federator.security.limits import Limits
from federator.server.federator import Federator
from federator.server.intake import QueueFull
from federator.server.kept_room import KeptRoom


def org(n: int, j: int) -> JobSpec:
    """Job `j` of organisation `n`: its queue org-NNNN, its user u-NNNN."""
    return stamp_owner(replace(spec(f"o{n:04d}-{j}", gpus=1), queue=f"org-{n:04d}"), Principal(f"u-{n:04d}"))


def flooded(orgs: int) -> Federator:
    """A federator of `orgs` declared organisations, `--max-pending-jobs 200`, other caps at their defaults."""
    fed = make(MemoryStore(), Clock(), limits=Limits(max_pending_jobs=200, queue_full_retry_seconds=5))
    fed.set_scheduler_config(SchedulerConfig(queues={f"org-{n:04d}": QueueConfig() for n in range(orgs)}))
    return fed


def flood(fed: Federator, n: int) -> tuple[int, str]:
    """Organisation `n` submits until it is refused: (jobs accepted, the refusal)."""
    for j in range(1000):
        try:
            fed.submit(org(n, j))
        except QueueFull as exc:
            return j, str(exc)
    raise AssertionError("never refused")


def test_after_three_floods_an_organisation_holding_nothing_still_gets_in() -> None:
    fed = flooded(30)  # the QA's policy: 30 organisations, so each one's floor in the last 20 is 1
    assert flood(fed, 1)[0] == 100  # its queue's cap, half of the federator's
    got, said = flood(fed, 2)
    assert got == 80  # up to the last tenth
    assert said == ("the federator's queue is nearly full: 180 jobs are pending, its limit is 200 "
                    "(--max-pending-jobs), and the last 20 are kept for queues and users holding fewer than 1 each "
                    "(the last tenth shared among the 30 queues the policy declares and defaultQueue); "
                    "queue 'org-0002' holds 80; retry after 5s")
    assert flood(fed, 3)[0] == 1  # its floor, not the whole last tenth
    got, said = flood(fed, 4)
    assert got == 1, said  # before this rule: 0, "the federator's queue is full: 200 jobs are pending"
    assert "queue 'org-0004' holds 1" in said
    for n in (0, *range(5, 20)):  # and so on for every organisation, up to the room there is (20 of the 30)
        assert flood(fed, n)[0] == 1


def test_every_declared_queue_gets_its_floor_in_the_last_tenth_whoever_floods() -> None:
    fed = flooded(4)  # floor 20 // 5 = 4
    assert [flood(fed, n)[0] for n in (1, 2, 3, 0)] == [100, 80, 4, 4]
    unlisted = stamp_owner(replace(spec("x-0", gpus=1), queue="not-declared"), Principal("u-x"))
    fed.submit(unlisted)  # defaultQueue's share is kept too
    assert fed.cycles.pending_count == 189  # 100 + 80 + 4 + 4 + 1, under 200


def test_one_user_over_many_queues_is_held_to_the_floor_too() -> None:
    fed = flooded(4)
    flood(fed, 1)
    flood(fed, 2)
    for i, queue in enumerate(("org-0000", "org-0003", "own-a", "own-b")):  # one job in each: the user's floor, 4
        fed.submit(stamp_owner(replace(spec(f"m-{i}", gpus=1), queue=queue), Principal("u-0003")))
    with pytest.raises(QueueFull, match="user 'u-0003' holds 4"):
        fed.submit(stamp_owner(replace(spec("m-4", gpus=1), queue="own-c"), Principal("u-0003")))


def test_without_declared_queues_only_the_owners_floor_applies() -> None:
    room = KeptRoom.of(200, 0)
    assert room.floor == 20
    assert room.refusal(pending=190, queue="default", queue_held=190, owner=Submitter(user="a"),
                        owner_held=19) is None
    assert KeptRoom.of(250_000, 1000).floor == 24  # a national network's 1,000 organisations, at the defaults
