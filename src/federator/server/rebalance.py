"""Which serving jobs to move back near their users, and how many replicas: the rebalancer's pure planner.

Why: a spread job placed while its near region was full or lost spilled to farther regions (scheduler/spread.py
places the rest greedily, where room is), and nothing moved it back once room returned: an inference team's chat
replicas sat in central and east at 70-120 ms for good while west, their `regions.preferred`, stood empty again.
Only a scale-down chose which replicas to keep (server/nearness.py). Now, once a scheduling turn has placed what
waits, a job may be moved:

- Nearer (`Why.NEARER`): the job has replicas in a region that ranks worse by its Nearness (preferred, then the
  users' region, then lower latency) than a region with a Ready cluster. It asks for as many replicas as its
  worst-ranked regions hold, on clusters of strictly nearer regions only.
- Wider (`Why.REGIONS`): the job spans fewer regions than its `minRegions` (one was lost, and the rest was placed
  in the regions left), and a region it does not span has a Ready cluster. It asks for one replica per region
  missing, on clusters of those regions only.

A job whose spec names neither preferred regions nor a users' region, and whose minRegions is met, is never a
candidate: every region is as near as another to it. Nor is a training gang (all or nothing on one cluster), a job
not Running, a job with a part still starting, or one whose placements do not hold exactly its count (short, it
owes a rest; over, a move is in flight or ends: server/rebalancing.py takes the surplus).

A move must make the job strictly better (`better`): after its new replicas land and the surplus is taken by the
scale-down's own choice (server/shrink.py `plan_down`: nearest kept, minRegions kept), the job spans more of the
regions its minRegions asks, or else its Nearness.worth is greater. Equally near regions are never traded (no
ping-pong), and a move whose surplus the scale-down would take from the new replicas themselves (minRegions keeps
the far region) is not made.

Pure: jobs, regions and latencies in; requests and verdicts out. The cycle that places the requests and the
state of moves in flight are server/rebalancing.py's.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from federator.model import Job, JobId, JobKind, JobPhase, Placement, PlacementId
from federator.scheduler import Assignment, PlacementRequest, may_spread
from federator.server import nearness
from federator.server.nearness import Nearness
from federator.server.shrink import plan_down


class Why(StrEnum):
    """Why a job is moved; the label of nothing (metrics are by outcome), the words of its message."""

    NEARER = "nearer"  # replicas far from the users while a nearer region has room
    REGIONS = "regions"  # fewer regions than minRegions while another region has room


@dataclass(frozen=True, slots=True)
class Candidate:
    """A job worth moving if a cycle finds room: the request for its new replicas and what they would leave."""

    job_id: JobId
    why: Why
    request: PlacementRequest  # the extra replicas, on `allowed` clusters only
    allowed: frozenset[str]  # the clusters the new replicas may go to (nearer regions, or regions not spanned)
    near: Nearness
    leaving: tuple[str, ...]  # the regions the replicas leave (worst-ranked), for the message


def settled(job: Job) -> bool:
    """Whether a job is a spread serving job at rest: Running, every live part serving all its replicas, holding
    exactly its count. Only such a job is moved (module docstring)."""
    if job.phase is not JobPhase.RUNNING or job.spec.kind is JobKind.TRAINING or not may_spread(job.spec):
        return False
    live = [p for p in job.placements if p.phase.is_active]
    return bool(live) and sum(p.replicas for p in live) == job.spec.replicas and all(serving(p) for p in live)


def serving(p: Placement) -> bool:
    """A part whose replicas all run and are ready (as its agent said; all, once Running, from one that says no
    counts): what make-before-break waits for before it takes any replica away."""
    return p.phase is JobPhase.RUNNING and p.ready >= p.replicas


def wanted(job: Job) -> bool:
    """Whether the job says where its users are, or asks for more regions than it spans (module docstring)."""
    spec = job.spec
    spans = {p.region for p in job.placements if p.phase.is_active}
    return bool(spec.preferred_regions or spec.user_region) or len(spans) < spec.min_regions


def candidate(job: Job, clusters: Mapping[str, str], latency_ms: Callable[[str, str], int | None], *,
              elastic: Collection[str] = (), avoided: Collection[str] = ()) -> Candidate | None:
    """The move worth asking for `job` (`settled`, `wanted`), or None. `clusters` are the Ready clusters that may
    host a replica, by name, with their regions; `elastic` the ids of its parts that may shrink in place;
    `avoided` the clusters that refused it lately."""
    if not settled(job) or not wanted(job):
        return None
    spec = job.spec
    live = [p for p in job.placements if p.phase.is_active]
    spans = {p.region for p in live}
    regions = set(clusters.values())
    near = nearness.of(spec, regions | spans, latency_ms)
    worst = max(near.rank(p.region) for p in live)
    nearer = {r for r in regions if near.rank(r) < worst}
    if nearer and (spec.preferred_regions or spec.user_region):
        leaving = tuple(sorted({p.region for p in live if near.rank(p.region) == worst}))
        n = sum(p.replicas for p in live if p.region in leaving)
        best = min(nearer, key=near.rank)
        if better(live, [(best, n)], spec.replicas, spec.min_regions, near, elastic):
            allowed = frozenset(c for c, r in clusters.items() if r in nearer)
            return _candidate(job, Why.NEARER, n, allowed, near, leaving, clusters, avoided)
    missing = sorted(regions - spans)
    need = spec.min_regions - len(spans)
    if need > 0 and missing:
        # One replica per region missing where a part can shrink in place; else as many as the smallest part
        # holds, which then stops whole (a move never leaves the job short of its count, even for a while).
        k = min(need, len(missing))
        for n in sorted({k, max(k, min(p.replicas for p in live))}):
            added = [(r, n // k + (1 if i < n % k else 0)) for i, r in enumerate(missing[:k])]
            if better(live, added, spec.replicas, spec.min_regions, near, elastic):
                allowed = frozenset(c for c, r in clusters.items() if r in missing)
                leaving = tuple(sorted({p.region for p in live if near.rank(p.region) == worst}))
                return _candidate(job, Why.REGIONS, n, allowed, near, leaving, clusters, avoided)
    return None


def _candidate(job: Job, why: Why, n: int, allowed: frozenset[str], near: Nearness, leaving: tuple[str, ...],
               clusters: Iterable[str], avoided: Collection[str]) -> Candidate | None:
    allowed = allowed - set(avoided)
    if not allowed:
        return None
    spans = tuple(sorted({p.region for p in job.placements if p.phase.is_active}))
    g = max(1, job.spec.group_size)
    n = max(g, n // g * g)  # whole groups (a LeaderWorkerSet group stays in one cluster)
    # Every cluster but the allowed ones is avoided (the NotRecentlyRefused filter keeps a request off them), and
    # `spans` make the request the rest of a running job: placed greedily, what fits (scheduler/spread.py).
    request = PlacementRequest(job.job_id, job.spec, n, job.submitted_at,
                               avoid_clusters=tuple(sorted(set(clusters) - allowed | set(avoided))), kept_regions=spans)
    return Candidate(job.job_id, why, request, allowed, near, leaving)


def score(kept: Iterable[tuple[str, int]], min_regions: int, near: Nearness) -> tuple[int, ...]:
    """How good a job's replicas are where they are, greater is better: the regions toward its minRegions, then
    its Nearness.worth (replicas in preferred regions, in the users' region, less their latencies)."""
    kept = list(kept)
    return min(len({r for r, n in kept if n}), min_regions), *near.worth(kept)


def after(live: Sequence[Placement], added: Sequence[tuple[str, int]], replicas: int, min_regions: int,
          near: Nearness, elastic: Collection[str] = ()) -> list[tuple[str, int]]:
    """Where the replicas are once `added` ((region, replicas) pairs) serve and the surplus over `replicas` is
    taken as a scale-down takes it (`plan_down`: the nearest kept, minRegions kept within what the parts span)."""
    new = [Placement(PlacementId(f"new.{i}"), JobId("new"), f"new.{i}", region, n, "", 1 << 30,
                     phase=JobPhase.RUNNING) for i, (region, n) in enumerate(added)]
    parts = [*live, *new]
    spans = len({p.region for p in parts})
    plan = plan_down(parts, replicas, min(min_regions, spans), {*elastic, *(p.placement_id for p in new)}, near)
    gone = {p.placement_id for p in plan.dropped}
    return [(p.region, plan.shrunk.get(p.placement_id, p.replicas)) for p in parts if p.placement_id not in gone]


def better(live: Sequence[Placement], added: Sequence[tuple[str, int]], replicas: int, min_regions: int,
           near: Nearness, elastic: Collection[str] = ()) -> bool:
    """Whether adding `added` and taking the surplus leaves the job strictly better by `score`, still holding all
    its replicas (a surplus the scale-down could take only by stopping a whole part bigger than it would leave
    the job owing replicas: no such move is made)."""
    now = score(((p.region, p.replicas) for p in live), min_regions, near)
    kept = after(live, added, replicas, min_regions, near, elastic)
    return sum(n for _, n in kept) >= min(replicas, sum(p.replicas for p in live)) and \
        score(kept, min_regions, near) > now


def landed(c: Candidate, assignments: Sequence[Assignment]) -> bool:
    """Whether a cycle's assignments for `c` keep to its allowed clusters (a policy without the NotRecentlyRefused
    filter would not keep them there): else the decision is not taken."""
    return bool(assignments) and all(a.cluster in c.allowed for a in assignments)


def moving_words(n: int, leaving: Sequence[str], to: Sequence[str], why: Why) -> str:
    """ "moving 2 replicas from east to west, nearer your users" """
    return f"moving {_replicas(n)} from {_names(leaving)} to {_names(to)}, {_because(why)}"


def moved_words(n: int, leaving: Sequence[str], to: Sequence[str], why: Why) -> str:
    """ "moved 2 replicas from east to west, nearer your users" """
    return f"moved {_replicas(n)} from {_names(leaving)} to {_names(to)}, {_because(why)}"


def _replicas(n: int) -> str:
    return f"{n} replica{'s' if n != 1 else ''}"


def _names(regions: Sequence[str]) -> str:
    return " and ".join(sorted(set(regions))) if regions else "?"


def _because(why: Why) -> str:
    return "nearer your users" if why is Why.NEARER else "to span the regions its minRegions asks"


__all__ = ["Candidate", "Why", "after", "better", "candidate", "landed", "moved_words", "moving_words",
           "score", "serving", "settled", "wanted"]
