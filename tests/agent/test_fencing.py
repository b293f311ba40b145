"""The reference agent's sense of time (agent/fencing.py) against what agent.proto tells a third party to do.

A Go agent built from the proto's old recipe ("Welcome.federator_time, or the latest Heartbeat's") started a
Launch that had waited 8 s in its socket while it was frozen: the Heartbeats that waited with it moved its
estimate of the federator's clock back to when the pause began. These pin the reference agent to the recipe
as written now: the estimate comes from the Welcome (a Heartbeat moves it forward only), and out of contact is
the gap at each arrival.
"""

from __future__ import annotations

from federator.agent.fencing import Contact


class _Clock:
    """A monotonic clock that counts through pauses, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_heartbeat_read_after_a_pause_does_not_make_a_stale_launch_look_fresh() -> None:
    clock = _Clock()
    contact = Contact(clock)
    contact.heard(1000.0, welcome=True)  # the Welcome: the federator's clock read 1000 as it arrived
    clock.now = 1.0
    contact.heard(1001.0)  # a heartbeat read at once
    # Frozen for 8 s: a heartbeat (sent at 1001.5) and a Launch (issued at 1001.6) wait in the socket.
    clock.now = 9.0
    contact.heard(1001.5)
    age = contact.order_age(1001.6)
    assert age is not None and age > 5.0, age  # 7.4 s old, over an order_max_age of 5 s: refused as stale


def test_the_first_message_after_a_pause_carries_the_pause_as_its_gap_and_the_rest_hide_it() -> None:
    """Why the proto says to take the gap at every arrival: the silence read after the buffered messages
    arrived says nothing happened."""
    clock = _Clock()
    contact = Contact(clock)
    assert contact.heard(1000.0, welcome=True) == 0.0  # a stream's first message has no gap
    clock.now = 1.0
    assert contact.heard(1001.0) == 1.0
    clock.now = 26.0  # frozen 25 s; three heartbeats waited in the socket
    gaps = [contact.heard(t) for t in (1002.0, 1003.0, 1004.0)]
    assert gaps[0] == 25.0 and gaps[1:] == [0.0, 0.0]
    assert contact.age() == 0.0  # the silence alone hides the pause


def test_a_pause_before_the_welcome_arrived_is_made_up_by_the_next_heartbeat() -> None:
    """Paused between its Hello and reading the Welcome, the agent dated the Welcome's time at the resume: its
    estimate ran behind by the pause for the whole stream, and a Launch looked younger than it was."""
    clock = _Clock()
    contact = Contact(clock)
    clock.now = 9.0  # frozen 9 s; the Welcome, sent at 1000, waited in the socket
    contact.heard(1000.0, welcome=True)
    assert contact.federator_now() == 1000.0  # 9 s behind
    contact.heard(1009.0)  # the heartbeat the federator sent just now
    age = contact.order_age(1003.0)  # a Launch issued during the pause
    assert age is not None and abs(age - 6.0) < 1e-9, age


def test_a_welcome_delayed_in_the_network_makes_a_stale_launch_look_stale_with_hello_received_at() -> None:
    """WAN QA: a Welcome delayed 8 s on the way dated its stream's orders 8 s young. The federator read the Hello
    at 1000.0 and sent the Welcome at 1000.1; it arrived 8 s later, the Launch issued just after it behind it."""
    def stream(hello_received_at: float) -> float | None:
        clock = _Clock()
        contact = Contact(clock)
        contact.session_started()  # at 0; the stream and its Hello take 0.05 s to arrive
        clock.now = 8.15
        contact.heard(1000.1, welcome=True, hello_received_at=hello_received_at)
        clock.now = 8.2  # the Launch, issued at 1000.2, 8 s on the way as well
        return contact.order_age(1000.2)

    age = stream(1000.0)
    assert age is not None and age > 5.0, age  # 8 s old (at most a round trip more), over a bound of 5 s: stale
    old = stream(0.0)  # a federator before 0.21.0: dated as sent, as before
    assert old is not None and old < 1.0, old


def test_a_slow_federator_loop_answering_the_hello_does_not_make_fresh_orders_look_stale() -> None:
    """The federator's busy loop took 30 s between reading the Hello and sending the Welcome: not travel."""
    clock = _Clock()
    contact = Contact(clock)
    contact.session_started()
    clock.now = 30.1  # 0.05 s each way, 30 s at the federator
    contact.heard(1030.0, welcome=True, hello_received_at=1000.0)
    assert abs(contact.welcome_travel - 0.1) < 1e-9
    clock.now = 30.15
    age = contact.order_age(1030.05)  # a Launch sent just after the Welcome
    assert age is not None and age < 1.0, age
    clock.now = 35.15
    contact.heard(1035.1)  # a Heartbeat as fresh: it confirms, and leaves the estimate where it was
    heartbeat_age = contact.order_age(1035.1)
    assert heartbeat_age is not None and heartbeat_age < 1.0, heartbeat_age


def test_the_travel_bound_errs_long_on_a_nonsense_federator_time_and_is_none_without_a_hello() -> None:
    clock = _Clock()
    contact = Contact(clock)
    clock.now = 2.0
    assert contact.travel_bound(2.0, 1000.0, 990.0) == 0.0  # no stream opened: nothing to bound by
    contact.session_started()
    clock.now = 3.0
    assert contact.travel_bound(3.0, 1000.0, 1001.0) == 1.0  # taken up after it was answered: all of it travel
    assert contact.travel_bound(3.0, 1000.0, 900.0) == 0.0  # more time at the federator than the round trip
    clock.now = 4.0
    contact.session_started()  # a new stream: its round trip starts anew
    assert contact.travel_bound(4.5, 1000.0, 1000.0) == 0.5
