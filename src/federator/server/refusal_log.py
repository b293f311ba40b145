"""The federator's log of refused agent streams: a WARNING per (identity, reason) per window, DEBUG in between.

Why: a refused agent keeps trying. A revoked one reconnected about once a second for a minute and then every
few seconds for ever, and each try wrote `refused an agent stream claiming cluster ...: ... revoked` at WARNING:
76 lines in 70 s, which hide everything else in the federator's log and say nothing new after the first.
Now the first refusal of a claimed identity for a reason is a WARNING, the same refusal again within `every`
seconds is DEBUG, and the next WARNING says how many were logged at DEBUG since. Every refusal is still
counted in `federator_messages_rejected_total{reason}`: the count is the rate, the log the reason.

Memory is bounded: the claims are the peer's words (a hostile client can vary them), so past `MAX_KEYS` the
entries older than a window are forgotten, and if that is not enough, the oldest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

MAX_KEYS = 1_000
WINDOW_SECONDS = 300.0


class RefusalLog:
    """Logs refusals to `logger`, one WARNING per (identity, reason) per `every` seconds."""

    def __init__(self, logger: logging.Logger, *, every: float = WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.every = every
        self.clock = clock
        self._seen: dict[tuple[str, str], list[float]] = {}  # key -> [when last at WARNING, refusals at DEBUG since]

    def refused(self, identity: str, reason: str, message: str) -> None:
        """A stream claiming `identity` was refused for `reason` (a RejectReason's value, or the message); log
        `message`, at WARNING unless this was said within the window."""
        key = (identity, reason)
        now = self.clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.every:
            seen[1] += 1
            self.logger.debug("%s", message)
            return
        quiet = int(seen[1]) if seen is not None else 0
        self._seen.pop(key, None)
        self._seen[key] = [now, 0]
        self._prune(now)
        self.logger.warning("%s%s", message, f" ({quiet} more like it since the last such line, logged at DEBUG)"
                            if quiet else "")

    def _prune(self, now: float) -> None:
        if len(self._seen) <= MAX_KEYS:
            return
        for key in [k for k, (at, _) in self._seen.items() if now - at >= self.every]:
            del self._seen[key]
        while len(self._seen) > MAX_KEYS:
            del self._seen[next(iter(self._seen))]


__all__ = ["RefusalLog"]
