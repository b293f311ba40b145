"""Refused agent messages other than capacity reports: counted per cluster, logged within a budget per stream.

Why: outside fuzz QA F2 sent 100,000 empty AgentMessages in 10 s on one cluster certificate, never reading, and
the federator logged each refusal at WARNING: 18 MB of "refused a message (empty_message)" in 10 s, ~2 MB/s of the
operator's disk and log pipeline at the will of any one agent, burying every other line (what
server/refused_reports.py fixed for capacity reports only). The same held for every other refusal: a malformed or
unexpected JobUpdate, Ack or LogsReply, a second Hello, an undecodable frame.

Decided: the first `LOGGED_PER_WINDOW` refusals of one stream in a `WINDOW_SECONDS` window are logged at WARNING as
before (a third-party agent's author reads the first ones, with the words the Error carried); the rest at DEBUG,
counted by reason; when the window ends one WARNING sums them up ("cluster q8: 99,990 more messages refused in the
last 60s, not logged: empty_message 99,990"), and a new window begins at the next refusal. A stream's end sums up
its last window too. Every refusal is counted in `federator_agent_messages_refused_total{cluster,reason}` whatever is
logged, so an operator finds the flooding cluster without the log (`federator_messages_rejected_total{reason}` has no
cluster label). The cluster label is bounded by the members the federator admits: a refused Hello never gets here.
Nothing else changes: each refusal is still answered with an Error (which the outbox drops past its limit).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from federator.server.validation import Refusal

if TYPE_CHECKING:
    from federator.server.clusters import ClusterRecord

log = logging.getLogger("federator.server")

LOGGED_PER_WINDOW = 10
"""How many refused messages of one stream are logged at WARNING per window; the rest at DEBUG, summed up."""
WINDOW_SECONDS = 60.0
"""How long a window lasts: at its end, one WARNING says how many more were refused and not logged."""


@dataclass(slots=True)
class _Window:
    rec: ClusterRecord  # the stream it counts for: a new stream of the cluster starts afresh
    began: float
    logged: int = 0
    unlogged: Counter[str] = field(default_factory=Counter)  # by reason
    timer: asyncio.TimerHandle | None = None


class RefusedMessages:
    """The refused-message log of every live agent stream, one window per cluster."""

    __slots__ = ("_windows", "clock", "counter")

    def __init__(self, counter: Any, clock: Callable[[], float]) -> None:
        self.counter = counter  # federator_agent_messages_refused_total{cluster,reason}
        self.clock = clock
        self._windows: dict[str, _Window] = {}

    def refused(self, rec: ClusterRecord, refusal: Refusal) -> None:
        """A message of `rec`'s stream was refused (the agent is told by an Error): counted, and logged at
        WARNING within the window's budget, else at DEBUG and summed up when the window ends."""
        reason = refusal.reason.value
        self.counter.labels(rec.name, reason).inc()
        now = self.clock()
        window = self._windows.get(rec.name)
        if window is None or window.rec is not rec or now - window.began >= WINDOW_SECONDS:
            if window is not None:
                self._sum_up(rec.name, window)
            window = self._windows[rec.name] = _Window(rec, now)
        if window.logged < LOGGED_PER_WINDOW:
            window.logged += 1
            last = window.logged == LOGGED_PER_WINDOW
            log.warning("cluster %s: refused a message (%s): %s%s", rec.name, reason, refusal.message,
                        f" (the last logged for {WINDOW_SECONDS:g}s: more are counted in "
                        "federator_agent_messages_refused_total and summed up)" if last else "")
            return
        log.debug("cluster %s: refused a message (%s): %s", rec.name, reason, refusal.message)
        window.unlogged[reason] += 1
        if window.timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a unit test): summed up at the next window or the stream's end
                return
            window.timer = loop.call_later(max(0.0, window.began + WINDOW_SECONDS - now),
                                           self._window_over, rec.name, window)

    def ended(self, rec: ClusterRecord) -> None:
        """`rec`'s stream ended: its last window summed up, and forgotten."""
        window = self._windows.get(rec.name)
        if window is not None and window.rec is rec:
            del self._windows[rec.name]
            self._sum_up(rec.name, window)

    def _window_over(self, name: str, window: _Window) -> None:
        window.timer = None
        if self._windows.get(name) is window:
            del self._windows[name]
        self._sum_up(name, window)

    def _sum_up(self, name: str, window: _Window) -> None:
        if window.timer is not None:
            window.timer.cancel()
            window.timer = None
        if not window.unlogged:
            return
        total = sum(window.unlogged.values())
        by = ", ".join(f"{reason} {n:,}" for reason, n in window.unlogged.most_common())
        log.warning("cluster %s: %s more messages refused in the last %gs, not logged: %s (each answered with an "
                    "Error, counted in federator_agent_messages_refused_total)", name, f"{total:,}",
                    WINDOW_SECONDS, by)
        window.unlogged.clear()


__all__ = ["LOGGED_PER_WINDOW", "WINDOW_SECONDS", "RefusedMessages"]
