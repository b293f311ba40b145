"""One state sample shared by the `federator get queues` calls of the same second.

Why: QueueService.List (server/queue_service.py) reads its queue figures from a state sample, the computation a
scrape of /metrics makes (server/state_sample.py): about 60 ms on the event loop with a national backlog. A crowd
polling `get queues` together (a dashboard per team, a `watch` in every terminal) paid it once per call, and the
loop with it. The calls of the same second now share one sample: a figure is at most `SHARE_SECONDS` older than
the call, well within what it may lag a member anyway (one report interval: the agents' reports are what moves it),
and each answer's `sampled_at` is the time of the sample it was read from, not of the call. What is the caller's
own (the queues they may see, their standing, their caps) is read at each call: visibility is never shared.

The fleet the fair shares divide (`fleet_of`) is kept with the sample it was read beside, so a page's
`fleet_accelerators` and its fair shares are of one instant. A clock that went back takes a new sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from federator.metrics import StateSample
from federator.scheduler.standing import fleet_of
from federator.server.state_sample import state_sample

if TYPE_CHECKING:
    from federator.server.federator import Federator

SHARE_SECONDS = 1.0  # a sample answers the calls of this long after it was taken (the federator's clock)


@dataclass(frozen=True, slots=True)
class Taken:
    """One sample, the fleet read with it, and when (unix seconds, the federator's clock)."""

    sample: StateSample
    fleet: float
    at: float


class SharedSample:
    """The newest sample, taken again once it is `within` seconds old."""

    def __init__(self, fed: Federator, *, within: float = SHARE_SECONDS) -> None:
        self.fed = fed
        self.within = within
        self.taken: Taken | None = None
        self.samples = 0  # samples taken: what the crowd's calls cost, not one each

    def read(self) -> Taken:
        now = self.fed.clock()
        taken = self.taken
        if taken is None or not 0 <= now - taken.at < self.within:
            taken = self.taken = Taken(state_sample(self.fed), fleet_of(self.fed.snapshot()), now)
            self.samples += 1
        return taken


__all__ = ["SHARE_SECONDS", "SharedSample", "Taken"]
