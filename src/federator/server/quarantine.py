"""A cluster that fails several owners' work soon after taking it gets no new work for a while.

Why: a member is trusted to report its placements' outcomes, and Failed is final. Outside QA's black-hole
provider (docs/reliability.md, "Early failures") claimed room without bound at a price of 0, drew every
tenant's jobs and reported each Failed at once: 6 of 6 jobs of two tenants ended within seconds while an honest
cluster had room, and nothing stopped the next job going there too. Each early failure places its job once more
elsewhere (server/early_failures.py); this keeps the cluster from drawing the next owners' jobs.

The rule: per cluster, the early failures of the last `window` seconds; when they reach `failures`, of at least
MIN_OWNERS different owners (the submitter, security/authz.py `submitter_of`: one tenant's crashing image is
that tenant's problem, not the cluster's), the cluster is quarantined for `seconds`. A quarantined cluster stays
Ready (its lease, its jobs, its reports are as before) and runs what it holds; the scheduling snapshot shows it
as Quarantined, so the filter that keeps work off a cluster that is not Ready keeps new work off it, with that
reason (no scheduler concept of its own). When the time is up the cluster takes work again, and its count starts
from nothing.

Memory only: a restarted federator has forgotten a quarantine, and the cluster must fail work again to be
quarantined again (each such job is still placed once more elsewhere).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from federator.security.authz import Submitter

log = logging.getLogger("federator.server")

DEFAULT_QUARANTINE_FAILURES = 3
DEFAULT_QUARANTINE_WINDOW_SECONDS = 600.0
DEFAULT_QUARANTINE_SECONDS = 1_800.0
MIN_OWNERS = 2
"""Different owners among a cluster's early failures before it is quarantined."""
KEPT_FAILURES = 256
"""Early failures remembered per cluster at most (the newest): a bound on memory whatever a cluster reports."""


@dataclass(frozen=True, slots=True)
class QuarantinePolicy:
    """`failures` early failures of MIN_OWNERS owners within `window` seconds quarantine a cluster for `seconds`;
    `failures` 0: never."""

    failures: int = DEFAULT_QUARANTINE_FAILURES
    window: float = DEFAULT_QUARANTINE_WINDOW_SECONDS
    seconds: float = DEFAULT_QUARANTINE_SECONDS

    def __post_init__(self) -> None:
        if self.failures < 0:
            raise ValueError(f"failures: must be 0 (never quarantine) or more, got {self.failures}")
        for name in ("window", "seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: must be a positive number of seconds, got {value:g}")


@dataclass(frozen=True, slots=True)
class Held:
    """A cluster's quarantine: until when, and why."""

    until: float
    why: str


class Quarantine:
    """The clusters quarantined now, and each cluster's recent early failures; see the module docstring."""

    def __init__(self, policy: QuarantinePolicy | None = None, *,
                 on_start: Callable[[str], None] = lambda cluster: None,
                 on_end: Callable[[str], None] = lambda cluster: None) -> None:
        self.policy = policy or QuarantinePolicy()
        self._on_start = on_start
        self._on_end = on_end
        self._failures: dict[str, deque[tuple[float, Submitter]]] = {}
        self._held: dict[str, Held] = {}

    def failed_early(self, cluster: str, owner: Submitter, now: float) -> Held | None:
        """Count one early failure on `cluster` of `owner`'s job; the quarantine it starts, if it starts one."""
        policy = self.policy
        if policy.failures <= 0 or self.holding(cluster, now):
            return None
        recent = self._failures.setdefault(cluster, deque(maxlen=KEPT_FAILURES))
        recent.append((now, owner))
        while recent and now - recent[0][0] > policy.window:
            recent.popleft()
        owners = {who for _, who in recent}
        if len(recent) < policy.failures or len(owners) < MIN_OWNERS:
            return None
        del self._failures[cluster]
        held = self._held[cluster] = Held(
            now + policy.seconds,
            f"{len(recent)} placements of {len(owners)} owners failed within --early-failure-seconds of their start "
            f"in {policy.window:g}s; no new work for {policy.seconds:g}s (--quarantine-seconds)")
        log.warning("cluster %s quarantined: %s", cluster, held.why)
        self._on_start(cluster)
        return held

    def holding(self, cluster: str, now: float) -> Held | None:
        """The cluster's quarantine if it holds at `now`; one that ran out ends here."""
        held = self._held.get(cluster)
        if held is None or now < held.until:
            return held
        del self._held[cluster]
        log.warning("cluster %s: quarantine over; it takes new work again", cluster)
        self._on_end(cluster)
        return None

    def current(self, now: float) -> frozenset[str]:
        """The clusters quarantined at `now` (each that ran out ends)."""
        return frozenset(c for c in list(self._held) if self.holding(c, now) is not None)

    def forget(self, cluster: str) -> None:
        """The cluster left the registry: nothing of it is kept."""
        self._failures.pop(cluster, None)
        self._held.pop(cluster, None)


__all__ = ["DEFAULT_QUARANTINE_FAILURES", "DEFAULT_QUARANTINE_SECONDS", "DEFAULT_QUARANTINE_WINDOW_SECONDS",
           "KEPT_FAILURES", "MIN_OWNERS", "Held", "Quarantine", "QuarantinePolicy"]
