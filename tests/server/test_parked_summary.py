"""The lot's summary of the parked jobs in line (server/parked_summary.py): what a cycle counts ahead of an owner's."""

from __future__ import annotations

from federator.model import JobId, Reason, ReasonCode
from federator.security.authz import recorded_owner
from federator.server.parking import ParkingLot

from builders import job

ROOM = Reason(ReasonCode.INSUFFICIENT_ACCELERATORS, "no room")


def test_parked_jobs_in_line_are_summarized_by_queue_priority_and_owner_until_brought_back() -> None:
    lot = ParkingLot()
    alice = recorded_owner(job("a", gpus=8, models=("A100",)), "alice")
    for i in (2, 0, 1):
        lot.park(JobId(f"a{i}"), alice, ROOM, float(i))
    lot.park(JobId("w"), alice, Reason(ReasonCode.WAITING, "limit"), 9.0)  # not parked: not counted
    first = lot.summary.summary()
    assert first["default"].jobs == {0: {"user alice": ((0.0, "a0"), (1.0, "a1"), (2.0, "a2"))}}
    assert lot.summary.summary() is first  # nothing changed: the plan reuses it
    lot.unpark(JobId("a1"))
    assert lot.summary.summary()["default"].jobs == {0: {"user alice": ((0.0, "a0"), (2.0, "a2"))}}
    assert first["default"].jobs[0]["user alice"][1] == (1.0, "a1")  # a cycle's summary stays as it was handed
    lot.clear()
    assert lot.summary.summary() == {} and not len(lot.summary)
