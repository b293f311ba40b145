"""What the agent says while the federator refuses it as a second agent for its cluster (ALREADY_EXISTS).

Why: two agent processes with one cluster name used to supersede each other's streams ten times a second, each
re-sync cancelling the other's work. The federator now refuses the second one while the first is live
(agent.proto, Hello.instance). The refused agent must neither exit (it takes over once the other is gone: a
stale twin left running is a standby) nor spin (it retries with its usual backoff); its operator must hear of it,
at ERROR, first and then every `repeat` seconds while it lasts, with DEBUG at each retry in between.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

REPEAT_SECONDS = 300.0


@dataclass(slots=True)
class DuplicateLog:
    """One refusal run: when it was last said at ERROR, and the refusals since."""

    logger: logging.Logger
    clock: Callable[[], float]
    repeat: float = REPEAT_SECONDS
    said_at: float | None = None
    quiet: int = 0

    def refused(self, *, target: str, cluster: str, instance: str, why: str, delay: float) -> None:
        now = self.clock()
        if self.said_at is not None and now - self.said_at < self.repeat:
            self.quiet += 1
            self.logger.debug("still refused as a second agent for cluster %s (%s); retrying in %.2fs", cluster, why,
                              delay)
            return
        since = f" ({self.quiet} refusals since this was last said)" if self.quiet else ""
        self.said_at, self.quiet = now, 0
        self.logger.error(
            "the federator at %s refuses this agent (instance %s): another agent with cluster name %s is connected "
            "(%s). This agent serves nothing until that one has been gone for a lease. Two agents for one cluster: "
            "stop one of them. Retrying in %.2fs%s", target, instance, cluster, why, delay, since)

    def reset(self) -> None:
        """The federator admitted this agent: a refusal after this is news."""
        self.said_at, self.quiet = None, 0


__all__ = ["REPEAT_SECONDS", "DuplicateLog"]
