"""A capacity report larger than any real cluster, from a cluster no trust bound covers: taken, and said.

Why (goagentqa62 L4): without a trust file (or a provider without `maxAccelerators` in it) a report is checked
only for adding up, so a member may report a million nodes of 8 H100 each and draw every job it fits. Decided:
WARN, not refuse. No fixed number tells a real cluster from a lie without knowing the provider (one cluster of
100,000 accelerators exists; the federation's own CA's clusters have no provider at all), and a refusal would
freeze an honest big cluster's view as the bound once did (server/over_bound.py); the bound on a provider's claim
is its trust entry's `maxAccelerators` (clamped there), and a cluster that draws jobs and fails them is
quarantined by the early-failure rule (server/early_failures.py). What was missing is that an operator hears of
an absurd claim: a WARNING when an unbounded cluster's report first goes past `ABSURD_ACCELERATORS` whole-device
equivalents, naming the remedy, and an INFO when it is back under.
"""

from __future__ import annotations

import logging

from federator.model import MILLI
from federator.model.resources import format_accelerators

log = logging.getLogger("federator.server")

ABSURD_ACCELERATORS = 100_000
"""More accelerators than any one real cluster reports (the largest single training clusters of 2026 are near it),
in whole-device equivalents: a report past it from a cluster no `maxAccelerators` bounds is said, not refused."""


class UnboundedReports:
    """The clusters whose last report, with no trust bound, was past ABSURD_ACCELERATORS (said once per crossing)."""

    def __init__(self) -> None:
        self._over: set[str] = set()

    def taken(self, cluster: str, total_milli: int, *, bounded: bool) -> bool:
        """Note a report taken of `cluster` (`total_milli`: its accelerators over every pool; `bounded`: its
        provider's maxAccelerators applies); whether it is past the mark with no bound. Logs on each crossing."""
        over = not bounded and total_milli > ABSURD_ACCELERATORS * MILLI
        if over and cluster not in self._over:
            self._over.add(cluster)
            log.warning("cluster %s reports %s accelerators (whole-device equivalents), more than any real cluster "
                        "(%s), and no trust bound covers it: taken as reported, since it adds up. If its provider "
                        "does not have that many, bound it: maxAccelerators in the trust file (docs/security.md, "
                        "\"Trust across providers\", Capacity); a cluster that draws jobs and fails them "
                        "is quarantined by the early-failure rule", cluster, format_accelerators(total_milli),
                        f"{ABSURD_ACCELERATORS:,}")
        elif not over and cluster in self._over:
            self._over.discard(cluster)
            log.info("cluster %s: its report is within %s accelerators again, or bounded", cluster,
                     f"{ABSURD_ACCELERATORS:,}")
        return over


__all__ = ["ABSURD_ACCELERATORS", "UnboundedReports"]
