"""How near a serving job's replicas are to its users: which ones a scale-down keeps.

Why: a scale-down chose the parts to keep by count, Running state and number of regions only, so a job that asked
for `regions.preferred: [west]` and spilled one replica each to central and east (west was full) was scaled to 2
by stopping all of west and keeping the two far ones: its users were served from 70 and 120 ms away while west
sat empty (outside QA F10). The scheduler places by Locality (scheduler/plugins.py): full score in a preferred
region, else falling with the policy's latency from the users' region. The parts a scale-down keeps are ranked
the same way: replicas in a preferred region first, then in the users' region, then nearer by the policy's
latencies; a region with no latency known from the users' region counts as farther than any known one.

Pure: built once per scale from the job's spec and the policy's latency matrix (`of`), then read by
server/scaling.py (`parts_to_drop`) and server/shrink.py (`plan_down`). A job that names neither preferred
regions nor a users' region has every region equally near (`ANYWHERE`), and its parts are chosen as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from federator.model import JobSpec

FAR_MS = 1_000_000  # a region whose latency from the users' region the policy does not say: farther than any


@dataclass(frozen=True, slots=True)
class Nearness:
    """How near each region is to a job's users, as Locality scores it."""

    preferred: frozenset[str] = frozenset()  # spec.regions.preferred
    user_region: str = ""  # spec.regions.user; "" = latency does not matter
    latency_ms: Mapping[str, int] = field(default_factory=dict)  # region -> ms from user_region, where known

    def rank(self, region: str) -> tuple[bool, bool, int]:
        """Smaller is nearer: in a preferred region, then in the users' region, then by latency."""
        return region not in self.preferred, bool(self.user_region) and region != self.user_region, self._ms(region)

    def worth(self, kept: Iterable[tuple[str, int]]) -> tuple[int, int, int]:
        """How near the replicas kept are, greater is better: (region, replicas) pairs give the replicas kept in
        preferred regions, those in the users' region, and less the sum of their latencies from it."""
        preferred = users = far = 0
        for region, n in kept:
            preferred += n if region in self.preferred else 0
            users += n if self.user_region and region == self.user_region else 0
            far += n * self._ms(region)
        return preferred, users, -far

    def _ms(self, region: str) -> int:
        if not self.user_region:
            return 0
        return self.latency_ms.get(region, FAR_MS)


ANYWHERE = Nearness()  # no region nearer than another: the parts are chosen by count, state and regions only


def of(spec: JobSpec, regions: Iterable[str], latency_ms: Callable[[str, str], int | None]) -> Nearness:
    """The nearness of `regions` (a job's parts') to the users of `spec`; `latency_ms` is the policy's matrix
    (SchedulerConfig.latency_ms: 0 within a region, None where not configured)."""
    known: dict[str, int] = {}
    if spec.user_region:
        for region in set(regions):
            ms = latency_ms(spec.user_region, region)
            if ms is not None:
                known[region] = ms
    return Nearness(preferred=frozenset(spec.preferred_regions), user_region=spec.user_region, latency_ms=known)


__all__ = ["ANYWHERE", "FAR_MS", "Nearness", "of"]
