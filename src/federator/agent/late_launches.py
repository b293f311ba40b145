"""Launches that arrived late on a busy stream, held until a later message of the stream confirms them.

Why a module of its own (outside WAN QA W4): a Launch is dated by the federator as it leaves (issued_at) and is
stale once older than its bound (order_max_age, 7.5 s with --lost-after 30). On a slow downlink a burst of
Launches queues in the transport, and the ones at its back arrive older than the bound only because the link was
busy delivering the ones before them: 206 of 300 were refused at 5,000 B/s, each refusal a re-placement round
trip. The bound cannot simply be raised: it is what keeps an agent from starting an order the federator may have
given up on (the cluster declared Lost and its jobs placed elsewhere, docs/reliability.md "Pauses").

What the stream itself says instead (agent.proto, Launch, feature "launch-confirmation"): the federator gives a
placement up only by a Cancel on the same stream, sent after its Launch, or by ending the stream (a Lost cluster).
So a message it dated later on the same stream (a Heartbeat, a Launch) that arrives fresh, within the bound of
its own date, says the federator still stood behind every Launch before it that no Cancel has withdrawn, as of a
moment within the bound: a late Launch held until then is as safe to start as one issued at that moment. A late
Launch whose confirmation never comes (the stream ends, the agent fences, a Cancel comes first) is never started,
and gets no Ack: the federator re-sends at the next re-sync whatever it still stands behind (contract step 3).
"""

from __future__ import annotations

import asyncio
import logging

from federator.api.launch_confirmation import LAUNCH_CONFIRMATION

log = logging.getLogger("federator.agent")

CONFIRMED = ""
"""A held Launch's outcome when a fresh message confirmed it: start it (any other outcome says why not)."""
WITHDRAWN = "cancelled before the federator confirmed it"
"""A held Launch's outcome when a Cancel of it came first (said per order; the other outcomes once for all)."""


class LateLaunches:
    """The Launches of this stream that arrived past their bound, each waiting for its confirmation."""

    def __init__(self) -> None:
        self.confirming = False  # this stream's federator confirms (its Welcome's features)
        self._held: dict[str, asyncio.Future[str]] = {}  # by placement id, in arrival order

    def stream_up(self, features: list[str] | tuple[str, ...]) -> None:
        self.confirming = LAUNCH_CONFIRMATION in features

    def hold(self, placement_id: str) -> asyncio.Future[str] | None:
        """A Launch that arrived late: its outcome to await, or None when this federator does not confirm (it is
        refused as stale at once, as before 0.20.0)."""
        if not self.confirming:
            return None
        before = self._held.pop(placement_id, None)
        if before is not None and not before.done():  # the same Launch again: the newer copy waits instead
            before.set_result("sent again on this stream")
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._held[placement_id] = waiter
        return waiter

    def dated(self, *, age: float | None, bound: float) -> None:
        """A message the federator dated arrived `age` old (None: unknown): fresh, it confirms every Launch held."""
        if not self._held or age is None or bound <= 0 or age > bound:
            return
        log.info("%d launch orders that arrived late on a busy stream were confirmed by a message %.1fs old: "
                 "starting them", len(self._held), age)
        self._end_all(CONFIRMED)

    def cancelled(self, placement_id: str) -> None:
        """A Cancel of a held Launch: the federator withdrew it before confirming it, so it never starts."""
        waiter = self._held.pop(placement_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(WITHDRAWN)

    def fenced(self) -> None:
        """The agent fenced itself: what was held never starts (its stream may go on: --fence-after)."""
        self._end_all("this agent fenced itself before the federator confirmed it")

    def stream_down(self) -> None:
        """The stream ended (or the agent fenced): what was held is not confirmed and never starts."""
        if self._held:
            log.warning("%d launch orders that arrived late were never confirmed before the stream ended: not "
                        "started (the federator re-sends at the re-sync what it still stands behind)", len(self._held))
        self._end_all("the stream ended before the federator confirmed it")
        self.confirming = False

    def held(self) -> int:
        return len(self._held)

    def _end_all(self, outcome: str) -> None:
        held, self._held = self._held, {}
        for waiter in held.values():
            if not waiter.done():
                waiter.set_result(outcome)


__all__ = ["CONFIRMED", "WITHDRAWN", "LateLaunches"]
