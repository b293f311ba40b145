"""A quarantine is kept in a store (server/quarantine_store.py): each change written, what the store holds taken
at start, an ended one dropped there, a failed write tried again. Pure: a dict stands in for the store."""

from __future__ import annotations

import asyncio
import logging

import pytest

from federator.model.quarantine import Held
from federator.security.authz import Submitter
from federator.server.blame import Blame
from federator.server.quarantine import Quarantine, QuarantinePolicy
from federator.store.errors import StoreUnavailable


class DictStore:
    """A QuarantineStore in memory; `refuse` writes fail until it is cleared."""

    def __init__(self, held: dict[str, Held] | None = None) -> None:
        self.held = dict(held or {})
        self.refuse = 0
        self.writes: list[tuple[str, Held | None]] = []

    def put(self, cluster: str, held: Held | None) -> None:
        if self.refuse:
            self.refuse -= 1
            raise StoreUnavailable("disk full")
        self.writes.append((cluster, held))
        if held is None:
            self.held.pop(cluster, None)
        else:
            self.held[cluster] = held

    def load(self) -> dict[str, Held]:
        return dict(self.held)


def _quarantine(q: Quarantine, cluster: str, now: float) -> Held | None:
    held = None
    for who in ("alice", "bob", "alice"):
        held = q.confirm(Blame(cluster, Submitter(user=who), now), now) or held
    return held


def test_at_start_a_kept_quarantine_in_time_holds_whatever_the_cap_and_an_ended_one_is_dropped_from_the_store() -> None:
    store = DictStore({"liar": Held(2_000.0, "3 placements of 2 owners failed"), "old": Held(999.0, "long ago")})
    ended: list[str] = []
    q = Quarantine(QuarantinePolicy(failures=3), ready=lambda: 0, on_end=ended.append)  # no cluster Ready yet
    q.attach(store, now=1_000.0)
    assert q.holding("liar", 1_000.0) == Held(2_000.0, "3 placements of 2 owners failed")
    assert q.current(1_000.0) == {"liar"}
    assert q.holding("old", 1_000.0) is None and store.held == {"liar": store.held["liar"]}  # deleted there
    assert ended == []  # it ended while no federator ran: nothing to release now
    assert q.current(2_000.0) == frozenset() and ended == ["liar"] and store.held == {}  # over: deleted too


def test_start_end_lift_and_forget_each_update_the_store() -> None:
    store = DictStore()
    q = Quarantine(QuarantinePolicy(failures=3, seconds=100.0), ready=lambda: 4)
    q.attach(store, now=0.0)
    a, b, c = (_quarantine(q, name, 10.0) for name in ("a", "b", "c"))
    assert a is not None and b is not None and c is None  # c: capped at two of four, and not kept
    assert store.held == {"a": a, "b": b}
    q.lift("a")
    q.forget("b")
    assert store.held == {}
    again = _quarantine(q, "a", 20.0)
    assert store.held == {"a": again}
    assert q.current(120.0) == frozenset() and store.held == {}  # its time is up
    assert [w[0] for w in store.writes] == ["a", "b", "a", "b", "a", "a"]


def test_an_uncordon_ends_a_kept_quarantine_this_start_could_not_read() -> None:
    """Kubernetes mode reads the kept ones from the listing made at start; if that listing failed, an operator's
    uncordon still removes what is kept, so the next start does not bring it back."""
    store = DictStore({"x": Held(2_000.0, "kept")})
    q = Quarantine(QuarantinePolicy(failures=3), ready=lambda: 4)
    q.attach(store, now=1_000.0, load=False)
    assert q.lift("x") is None and store.held == {}


def test_a_quarantine_started_since_this_start_is_not_replaced_by_a_kept_one() -> None:
    store = DictStore({"a": Held(1_500.0, "kept")})
    q = Quarantine(QuarantinePolicy(failures=3, seconds=1_000.0), ready=lambda: 4)
    q.attach(store, now=1_000.0, load=False)
    listed = store.load()  # read before the start below was written (a listing the controller made)
    started = _quarantine(q, "a", 1_000.0)
    q.restore(listed, 1_000.0)
    assert started is not None and q.holding("a", 1_000.0) == started


def test_without_a_store_nothing_is_written_and_nothing_fails() -> None:
    q = Quarantine(QuarantinePolicy(failures=3), ready=lambda: 4)
    assert _quarantine(q, "a", 10.0) is not None
    assert q.store is None and q.writes.due == 0


def test_a_failed_write_is_logged_and_tried_again_off_the_event_loop_and_a_newer_change_wins(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        store = DictStore()
        q = Quarantine(QuarantinePolicy(failures=3, seconds=100.0), ready=lambda: 4)
        q.attach(store, now=0.0)
        q.writes.retry_seconds = 0.05
        store.refuse = 1
        held = _quarantine(q, "a", 10.0)
        assert held is not None and store.held == {}  # not written on the event loop: a task writes it
        for _ in range(100):
            await asyncio.sleep(0.01)
            if store.held:
                break
        assert store.held == {"a": held}
        assert "cluster a: its quarantine not kept yet (disk full)" in caplog.text

        store.refuse = 5
        q.lift("a")
        await asyncio.sleep(0.01)
        again = _quarantine(q, "a", 20.0)  # before the lift was written
        store.refuse = 0
        await q.writes.close()
        assert store.held == {"a": again} and store.writes[-1] == ("a", again) and q.writes.due == 0

    with caplog.at_level(logging.WARNING, logger="federator.server"):
        asyncio.run(main())
