"""JobUpdate.ended_at is never dated later than the federator's clock could read at the end (agent/ended.py).

The federator bills a job to the end its agent says. The agent's estimate of the federator's clock for an order's
age takes the Welcome's travel at its upper bound (the Hello's round trip less the federator's part: never behind,
so no stale order looks fresh), and dated with it, every end was late by that bound: a job billed past its
workload's end by up to the Hello's round trip, which errs long on a loaded federator (0.2-0.4 s on a loaded
machine in tests/server/test_end_time_workload_grpc.py). An end is dated as the Welcome says it was sent: early by
its travel at most, never late."""

from __future__ import annotations

from federator.agent.ended import Ended, on_federator_clock
from federator.agent.fencing import Contact
from federator.model import JobPhase


def test_an_end_is_dated_as_the_welcome_was_sent_not_at_the_travel_bound() -> None:
    now = [0.0]
    contact = Contact(clock=lambda: now[0], wall=lambda: now[0])
    contact.session_started()  # the Hello leaves at 0
    now[0] = 2.0  # the Welcome, sent at 1000.0 on the federator's clock, arrives at 2.0; it held the stream 0.5 s
    contact.heard(1000.0, welcome=True, hello_received_at=999.5)
    assert contact.welcome_travel == 1.5  # what an order's age is judged with: never behind
    now[0] = 4.0
    said = on_federator_clock(contact, Ended(JobPhase.SUCCEEDED, "done", at=3.0))
    # Sent no later than it arrived: at our 3.0 the federator's clock read 1001.0 at least, 1002.5 at most.
    assert said == 1001.0


def test_a_heartbeat_moves_the_end_estimate_forward_never_back() -> None:
    now = [0.0]
    contact = Contact(clock=lambda: now[0], wall=lambda: now[0])
    contact.session_started()
    now[0] = 1.0
    contact.heard(1000.0, welcome=True, hello_received_at=999.9)
    now[0] = 5.0
    contact.heard(1010.0)  # the federator's clock ran ahead of ours (the Welcome was slow): 1010 at our 5.0
    assert on_federator_clock(contact, Ended(JobPhase.FAILED, "x", at=5.0)) == 1010.0
    now[0] = 6.0
    contact.heard(1005.0)  # an older Heartbeat read late: no step back
    assert on_federator_clock(contact, Ended(JobPhase.FAILED, "x", at=6.0)) == 1011.0
