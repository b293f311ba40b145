"""The agent's reconnect back-off: reset by a session that worked, and at most a second while a restart is likely.

A back-off that only grows (as tenacity's attempt counter did across the
whole life of the process) leaves every agent waiting seconds to reconnect
after a few federator restarts, so each restart leaves every cluster
Partitioned for that long. This one starts again from `initial` once a stream
has been welcomed, and for the first `fast_window` seconds of an outage (a
federator restart, a leader hand-over) never waits more than `fast_max`, so an
agent is back within a second of the federator; past that window it slows
down to `maximum` so a long outage is not hammered. Each delay and attempt is
logged, so this can be read from the agent's own log.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    initial: float = 0.1
    factor: float = 1.6
    maximum: float = 5.0
    fast_max: float = 1.0
    fast_window: float = 60.0
    clock: Callable[[], float] = time.monotonic
    attempt: int = 0
    _since: float = 0.0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def next(self) -> float:
        """The delay before the next attempt: initial * factor^n with up to 20% jitter off, capped at fast_max
        for the first fast_window seconds of an outage and at maximum after."""
        if self.attempt == 0:
            self._since = self.clock()
        self.attempt += 1
        cap = self.fast_max if self.clock() - self._since < self.fast_window else self.maximum
        delay = min(cap, self.maximum, self.initial * self.factor ** (self.attempt - 1))
        return delay * self._rng.uniform(0.8, 1.0)

    def busy(self) -> float:
        """The delay after a federator that is up but too busy to welcome this agent (its stream left unwelcomed,
        or CANCELLED unread): drawn from the whole [fast_max, maximum], full jitter, however early in the outage.
        Why: a hundred agents whose streams a loaded federator left waiting give up together; coming back within
        the same second each, every retry a new Hello at the back of its queue, they kept it busy (soak S4)."""
        self.attempt += 1
        return self._rng.uniform(self.fast_max, max(self.fast_max, self.maximum))

    def reset(self) -> None:
        self.attempt = 0


__all__ = ["Backoff"]
