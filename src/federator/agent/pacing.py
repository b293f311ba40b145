"""The agent keeps to the federator's JobUpdate budget instead of finding it by having updates dropped.

The federator applies at most Welcome.max_job_updates_per_second JobUpdates a second per cluster, and
job_update_burst at once (agent.proto, JobUpdate "Budget"); one over it is dropped, and only the first of a run
is answered. A member where thousands of pods end at once (a node pool reclaimed, a provider's maintenance) sent
them all at wire speed, so past the burst the federator dropped terminal phases and its jobs stayed Running until
the next reconnect. Paced here, each update waits for its token and none is dropped; updates are not reordered
(what follows one waits with it), so a phase never overtakes an earlier one of the same placement.

The bucket outlives a stream, as the federator's does (it is the cluster's, not the stream's): a reconnect does
not give the agent a fresh burst the federator would not. A re-sync is not charged by the federator (its updates
go before the stream's first report), so it is not paced either. Should the federator still drop one (its budget
smaller than its Welcome said, or another agent process of this cluster sharing it), the agent cannot know which
updates of the run were dropped, as only the first is answered: it starts a new stream, whose re-sync carries
every placement's latest phase uncharged (`RESYNC_AFTER`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from federator.api.v1 import agent_pb2
from federator.security.limits import RejectReason, TokenBucket

# What a federator older than the budget fields applied (agent.proto, Welcome: "0 = not said").
DEFAULT_UPDATES_PER_SECOND = 100.0
DEFAULT_UPDATE_BURST = 10_000
RESYNC_AFTER = RejectReason.RATE_LIMITED.value  # an Error with this reason naming a placement: a JobUpdate dropped
# The agent keeps under the budget, not at it: the federator counts an update when it reads it, and a federator
# that paused reads what queued meanwhile at once. Sent at 90% of its rate, and at most half its burst at once,
# the updates never find its bucket empty, whatever the pause (a test at a burst of 4 found one that did).
HEADROOM = 0.9


@dataclass(frozen=True, slots=True)
class Budget:
    """A federator's JobUpdate budget as its Welcome said it (the defaults where it said nothing)."""

    per_second: float
    burst: int

    @classmethod
    def of(cls, welcome: agent_pb2.Welcome) -> Budget:
        rate = welcome.max_job_updates_per_second
        burst = welcome.job_update_burst
        return cls(rate if rate > 0 else DEFAULT_UPDATES_PER_SECOND, burst if burst > 0 else DEFAULT_UPDATE_BURST)


class UpdatePace:
    """One token per JobUpdate sent after a stream's re-sync, within the federator's budget (HEADROOM)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.budget: Budget | None = None
        self._bucket: TokenBucket | None = None

    def agreed(self, welcome: agent_pb2.Welcome) -> None:
        """Take the budget of a new stream's Welcome; the same budget keeps the bucket as it is (see module)."""
        budget = Budget.of(welcome)
        if budget != self.budget:
            self.budget = budget
            self._bucket = TokenBucket(budget.per_second * HEADROOM, max(1, budget.burst // 2), clock=self.clock)

    def wait(self) -> float:
        """Seconds until one more JobUpdate is within the budget (0: now)."""
        return self._bucket.wait() if self._bucket is not None else 0.0

    def spend(self) -> None:
        """Charge one JobUpdate, as it is handed to the stream."""
        if self._bucket is not None:
            self._bucket.charge(1.0)


def dropped_update(error: agent_pb2.Error) -> bool:
    """Whether the federator says it dropped a JobUpdate over its budget (the first of a run names a placement)."""
    return error.reason == RESYNC_AFTER and bool(error.placement_id) and error.message.startswith("job_update")


__all__ = ["DEFAULT_UPDATES_PER_SECOND", "DEFAULT_UPDATE_BURST", "HEADROOM", "Budget", "UpdatePace", "dropped_update"]
