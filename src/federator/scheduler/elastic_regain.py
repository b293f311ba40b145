"""How long an elastic gang re-placed after losing a placement waits to regain the count it ran at.

Why: the place phase puts an elastic gang at the largest count that fits now (elastic.py), and it then stays at that
count until it ends (model/elastic.py). Right after a placement ends, "now" is the worst moment to judge: the room
it held is not yet reported free by its member (the snapshot is the members' last reports), and a member that
stopped it is avoided for a while (server/refusals.py: 30 s, doubling). So one evicted pod of a gang of 4 placed
3/4 turned it, in the same second, into a gang of 1 on another member for the rest of its run (outside QA,
elasticqa63 1b). The rule, what a user expects of a gang re-placed after a loss:

- Below the count it last ran at (`ElasticLeft.replicas`, noted by the requeue when that was above its minimum) it
  is not placed while that may still come back: it waits for that count or more, anywhere, and may take its whole
  size if that fits.
- That holds until the member it left has reported since the loss and is no longer avoided for the job (its room
  is then known, and may be offered: the next cycle judges it as usual, down to spec.minReplicas), or the member
  is no longer there to report (Lost, gone), or `REGAIN_SECONDS` after the loss, whichever comes first: a member
  that keeps refusing it, or lost the node for good, costs the gang at most that wait, never its run.

Pure: the server hands in when the member last reported and which members the job avoids (server/scheduling.py),
the cycle reads it as `PlacementRequest.regain` (elastic.py: `floor`).
"""

from __future__ import annotations

from collections.abc import Collection

from federator.model import JobSpec
from federator.model.elastic_left import ElasticLeft

REGAIN_SECONDS = 120.0
"""The longest an elastic gang re-placed after a loss waits to regain its count: long enough for the first two
steps of a member's avoidance (30 s, then 60 s: server/refusals.py) and several of its reports, short beside the
days a gang kept at its minimum may run."""


def regain(spec: JobSpec, left: ElasticLeft | None, *, now: float, reported_at: float | None,
           avoided: Collection[str], bound: float = REGAIN_SECONDS) -> ElasticLeft | None:
    """`left` while its count holds the gang this cycle (`PlacementRequest.regain`: it is not placed below
    `floor`), None when the usual rule applies: `reported_at` is the member's last report (None when it is Lost or
    gone), `avoided` the members the job avoids now."""
    if left is None or not spec.elastic or left.replicas <= spec.min_replicas or now - left.at >= bound:
        return None
    if reported_at is None or (reported_at > left.at and left.cluster not in avoided):
        return None
    return left


def floor(spec: JobSpec, left: ElasticLeft | None) -> int:
    """The fewest replicas an elastic gang is placed at this cycle: its minimum, or the count `regain` holds it to
    (never above its size: a gang scaled down since)."""
    return spec.min_replicas if left is None else max(spec.min_replicas, min(left.replicas, spec.replicas))


def regain_words(left: ElasticLeft, count: int, minimum: str, bound: float = REGAIN_SECONDS) -> str:
    """What the gang's wait says while `regain` holds it at `count` (`minimum`: JobSpec.minimum_named)."""
    return (f"it ran {count} replicas on {left.cluster} until that placement ended, so it waits for {count} or more "
            f"until {left.cluster} reports its room back (at most {bound:g} s after the end), then takes what fits "
            f"down to {minimum}")


__all__ = ["REGAIN_SECONDS", "floor", "regain", "regain_words"]
