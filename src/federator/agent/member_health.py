"""Whether the agent reaches its member cluster's API server, judged over probes with hysteresis.

Why: outside QA froze a member's kube-apiserver (SIGSTOP) for 90 s while its agent kept its stream to the
federator (QA F5). The agent logged a watch timeout and nothing else: it went on reporting the capacity of its
stale caches as fresh, so the federator kept the member Ready and placed a new job there, whose launch then hung
30 s on the API before it was refused. Now the agent probes the API each report interval (the backend's
`probe_member`: the Kubernetes backend asks GET /readyz with a short timeout), and while the API does not answer
it says so in its reports (CapacityReport.member_unreachable) instead of a capacity, and refuses launches at once.

The hysteresis keeps one slow answer from taking a member out of the federation: unreachable after `failures`
probes in a row have failed *and* `after` seconds have passed since the last one that did not (with a 5 s probe
timeout and the 2 s report interval, about 12 s for a frozen API; 10 s for one that refuses connections at once);
reachable again at the first probe that succeeds, since then the member is the best witness of itself again.

A backend without `probe_member` (the simulated one) is never unreachable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from federator.timestamps import utc_seconds

log = logging.getLogger("federator.agent")

FAILURES = 2
"""Probes failed in a row, at least, before the member is said unreachable."""
AFTER_SECONDS = 10.0
"""Seconds since the last probe that did not fail, at least, before the member is said unreachable."""
MAX_WHY_CHARS = 900
"""Of a probe's failure, what the report carries (agent.proto keeps 1024 characters)."""

Probe = Callable[[], Awaitable[str | None]]
"""A backend's probe of its member's API: None when it answered, else what went wrong."""


@dataclass
class MemberHealth:
    """The member's API as the agent last judged it; `failed` and `succeeded` say when that judgement turns."""

    cluster: str
    failures: int = FAILURES
    after: float = AFTER_SECONDS
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    _failed: int = 0  # probes failed in a row
    _good_at: float = field(default=-1.0)  # on `clock`: the last probe that did not fail (or the start)
    _failing_since: float = 0.0  # wall clock: the first probe of the current run of failures
    why: str = ""  # "" while the member answers; else what the reports and refusals say

    def __post_init__(self) -> None:
        if self._good_at < 0:
            self._good_at = self.clock()

    @property
    def reachable(self) -> bool:
        return not self.why

    def failed(self, problem: str) -> bool:
        """A probe failed; True when this makes the member unreachable."""
        if self._failed == 0:
            self._failing_since = self.wall()
        self._failed += 1
        if self._failed < self.failures or self.clock() - self._good_at < self.after:
            return False
        turned = not self.why
        self.why = f"{problem[:MAX_WHY_CHARS]} (failing since {utc_seconds(self._failing_since)})"
        if turned:
            log.warning("the API server of %s is unreachable: %s; reporting it to the federator, refusing launches "
                        "until it answers", self.cluster, self.why)
        return turned

    def succeeded(self) -> bool:
        """A probe succeeded; True when this makes the member reachable again."""
        self._failed = 0
        self._good_at = self.clock()
        turned = bool(self.why)
        if turned:
            log.info("the API server of %s answers again (it did not since %s); reporting capacity again",
                     self.cluster, utc_seconds(self._failing_since))
        self.why = ""
        return turned

    def refusal(self) -> str:
        """Why a Launch is refused while the member is unreachable (the Ack's message, the job's reason)."""
        return f"{self.cluster}'s agent cannot reach its API server: {self.why}"


__all__ = ["AFTER_SECONDS", "FAILURES", "MemberHealth", "Probe"]
