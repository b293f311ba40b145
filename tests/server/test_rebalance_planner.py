"""The rebalancer's pure planner (server/rebalance.py): which serving jobs are worth moving back near their users,
how many replicas, and to where; and the fleet-wide rate and the queue's quota bounding the moves."""

from __future__ import annotations

import pytest
from server_support import Clock, MemoryStore, capacity, join, make, spec
from test_partial_failover import running_on

from federator.jobfile import JobFileError, parse_job
from federator.model import Job, JobId, JobPhase, JobSpec, Placement, PlacementId
from federator.scheduler import QueueConfig, Quota, SchedulerConfig
from federator.scheduler.config import RebalancePolicy
from federator.server import rebalance
from federator.server.federator import Federator
from federator.server.rebalance import Why
from federator.server.rebalancing import RETRY_SECONDS, WAITING_BOUND

LATENCY = {("east", "west"): 120, ("east", "central"): 40, ("central", "west"): 70}
CLUSTERS = {"west-1": "west", "central-1": "central", "east-1": "east"}


def latency_ms(a: str, b: str) -> int | None:
    return 0 if a == b else LATENCY.get((a, b), LATENCY.get((b, a)))


def serving(*, replicas: int = 4, preferred: tuple[str, ...] = (), user: str = "", min_regions: int = 1,
            kind: str = "inference", queue: str = "default") -> JobSpec:
    regions: dict[str, object] = {"minRegions": min_regions} if kind == "inference" else {}
    if preferred:
        regions["preferred"] = list(preferred)
    if user:
        regions["user"] = user
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "chat"},
                      "spec": {"kind": kind, "replicas": replicas, "queue": queue,
                               "regions": regions,
                               "resources": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 1}}})


def running(spec: JobSpec, *parts: tuple[str, str, int], phase: JobPhase = JobPhase.RUNNING) -> Job:
    return Job(JobId("chat"), spec, 0.0, phase=phase, placements=[
        Placement(PlacementId(f"chat.g1.{c}"), JobId("chat"), c, r, n, "H100", 1, phase=phase) for c, r, n in parts])


PLANS: list[tuple[str, Job, dict[str, str], tuple[Why, int, frozenset[str]] | None]] = [
    ("far-replicas-and-room-near-preferred", running(serving(preferred=("west",)), ("east-1", "east", 4)),
     CLUSTERS, (Why.NEARER, 4, frozenset({"west-1"}))),
    ("only-the-farthest-region-moves", running(serving(user="west"), ("central-1", "central", 2),
                                               ("east-1", "east", 2)),
     CLUSTERS, (Why.NEARER, 2, frozenset({"west-1", "central-1"}))),
    ("no-nearer-cluster-ready", running(serving(preferred=("west",)), ("east-1", "east", 4)),
     {"east-1": "east", "central-1": "central"}, None),
    ("equally-near-regions-are-not-traded", running(serving(preferred=("west", "central")),
                                                    ("central-1", "central", 4)), CLUSTERS, None),
    ("already-nearest", running(serving(preferred=("west",)), ("west-1", "west", 4)), CLUSTERS, None),
    ("no-locality-no-move", running(serving(), ("east-1", "east", 4)), CLUSTERS, None),
    ("training-gang-never", running(serving(kind="training", preferred=("west",)), ("east-1", "east", 4)),
     CLUSTERS, None),
    ("a-part-still-starting", running(serving(preferred=("west",)), ("east-1", "east", 4), phase=JobPhase.PLACED),
     CLUSTERS, None),
    ("short-of-its-count", running(serving(preferred=("west",), replicas=5), ("east-1", "east", 4)),
     CLUSTERS, None),
    ("min-regions-unmet-another-region-ready", running(serving(min_regions=2), ("east-1", "east", 4)),
     CLUSTERS, (Why.REGIONS, 1, frozenset({"west-1", "central-1"}))),
    ("min-regions-keeps-the-far-region", running(serving(preferred=("west",), min_regions=2),
                                                 ("west-1", "west", 3), ("east-1", "east", 1)),
     {"west-1": "west", "east-1": "east"}, None),
]


@pytest.mark.parametrize(("job", "clusters", "want"), [p[1:] for p in PLANS], ids=[p[0] for p in PLANS])
def test_the_moves_planned(job: Job, clusters: dict[str, str], want: tuple[Why, int, frozenset[str]] | None) -> None:
    got = rebalance.candidate(job, clusters, latency_ms, elastic={p.placement_id for p in job.placements})
    if want is None:
        assert got is None
        return
    assert got is not None
    assert (got.why, got.request.replicas, got.allowed) == want
    assert set(got.request.avoid_clusters) == set(clusters) - want[2]  # the request keeps off every other cluster
    assert got.request.kept_regions  # the rest of a running job: placed greedily, what fits


def test_a_region_is_not_added_by_stopping_a_whole_part_that_cannot_shrink() -> None:
    """minRegions 2, all 4 replicas in one part on an agent that cannot resize: taking one replica would stop all
    four (and owe three): not a move worth making."""
    job = running(serving(min_regions=2), ("east-1", "east", 4))
    assert rebalance.candidate(job, CLUSTERS, latency_ms) is None


def test_a_cluster_that_refused_the_job_lately_is_not_a_target() -> None:
    job = running(serving(preferred=("west",)), ("east-1", "east", 4))
    assert rebalance.candidate(job, CLUSTERS, latency_ms, avoided=("west-1",)) is None


def test_a_move_must_improve_strictly() -> None:
    near = rebalance.candidate(running(serving(user="west"), ("east-1", "east", 4)), CLUSTERS, latency_ms)
    assert near is not None
    live = running(serving(user="west"), ("east-1", "east", 4)).placements
    assert rebalance.better(live, [("central", 4)], 4, 1, near.near)  # 120 ms -> 40 ms
    assert not rebalance.better(live, [("east", 4)], 4, 1, near.near)  # as near as it was


def weighted(replicas: int, **regions: object) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "chat"},
                      "spec": {"kind": "inference", "replicas": replicas,
                               "regions": {"weights": {"east": 3, "west": 1}, **regions},
                               "resources": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 1}}})


@pytest.mark.parametrize(("replicas", "parts"), [
    (8, (("east-1", "east", 6), ("west-1", "west", 2))),
    (2, (("east-1", "east", 2),)),  # 3:1 scaled to 2: one region, and west has room
    (4, (("east-1", "east", 1), ("west-1", "west", 3))),  # even off its ratio: a scale-down or scale-up restores it
], ids=["at-its-ratio", "one-region-after-a-scale-down", "off-its-ratio"])
def test_a_weighted_job_is_never_moved(replicas: int, parts: tuple[tuple[str, str, int], ...]) -> None:
    """A job with spec.regions.weights is never a candidate: the rebalancer moves toward regions.preferred,
    regions.user and regions.minRegions, which the weights leave out (a move would break the split the user asked
    for, or trade a region for one without a weight). What `wanted` reads is refused beside the weights, so the
    exclusion holds for every weighted job that can exist."""
    job = running(weighted(replicas), *parts)
    assert not rebalance.wanted(job)
    assert rebalance.candidate(job, CLUSTERS, latency_ms, elastic={p.placement_id for p in job.placements}) is None
    for given in ({"preferred": ["west"]}, {"user": "west"}, {"minRegions": 2}):
        with pytest.raises(JobFileError, match="leave out spec.regions"):
            weighted(replicas, **given)


# -- the server's bounds: the rate and the queue's quota ---------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()



def spilled(clock: Clock, config: SchedulerConfig, jobs: int = 1) -> tuple[Federator, list[Job]]:
    """`jobs` serving jobs (preferred west) placed in east while west was full, running; then west frees up.
    Returns the federator and the jobs."""
    fed = make(MemoryStore(), clock)
    fed.set_scheduler_config(config)
    west, east = join(fed, "west-1", region="west"), join(fed, "east-1", region="east")
    fed.report(west, capacity(free=0))
    out = [fed.submit(parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                 "metadata": {"name": f"chat-{i}"},
                                 "spec": {"kind": "inference", "replicas": 2, "queue": "serving",
                                          "regions": {"preferred": ["west"]},
                                          "resources": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 1}}}))
           for i in range(jobs)]
    fed.schedule_once()
    for job in out:
        assert {p.cluster for p in job.placements} == {"east-1"}
        running_on(fed, job, west, east)
    clock.now += RETRY_SECONDS  # the first turn found no room in west: asked again after this
    fed.report(west, capacity(free=8))
    return fed, out


def moving(jobs: list[Job]) -> int:
    return sum(any(p.cluster == "west-1" for p in job.placements) for job in jobs)


def test_the_fleet_wide_rate_bounds_the_moves_started(clock: Clock) -> None:
    fed, jobs = spilled(clock, SchedulerConfig(rebalance=RebalancePolicy(max_moves_per_minute=2)), jobs=5)
    fed.schedule_once()
    assert moving(jobs) == 2
    clock.now += 30
    fed.schedule_once()
    assert moving(jobs) == 2  # the minute is not over
    clock.now += 31
    fed.schedule_once()
    assert moving(jobs) == 4


def test_zero_moves_a_minute_is_off(clock: Clock) -> None:
    fed, jobs = spilled(clock, SchedulerConfig(rebalance=RebalancePolicy(max_moves_per_minute=0)))
    fed.schedule_once()
    assert moving(jobs) == 0


def test_a_surge_over_the_queues_quota_is_not_moved(clock: Clock) -> None:
    """The job holds 2 of its queue's 3 accelerators: 2 more for the move would exceed the quota."""
    quota = QueueConfig(quota=Quota(accelerator_milli={"H100": 3000}))
    fed, jobs = spilled(clock, SchedulerConfig(queues={"serving": quota}))
    fed.schedule_once()
    assert moving(jobs) == 0
    roomy = QueueConfig(quota=Quota(accelerator_milli={"H100": 4000}))
    fed, jobs = spilled(clock, SchedulerConfig(queues={"serving": roomy}))
    fed.schedule_once()
    assert moving(jobs) == 1


def test_a_waiting_job_that_fits_wins_the_room(clock: Clock) -> None:
    """A job waiting that could be placed now is placed first: the moves wait; they use the room it leaves."""
    fed, jobs = spilled(clock, SchedulerConfig())
    gang = fed.submit(spec("gang", gpus=8, replicas=4))  # all of west's 32 free (east has a node in use)
    fed.cycles.rebalance()  # a turn's rebalancing while the gang still waits, not yet placed by a cycle
    assert moving(jobs) == 0 and gang.phase is JobPhase.PENDING
    fed.schedule_once()
    assert {p.cluster for p in gang.placements} == {"west-1"} and moving(jobs) == 0  # no room left in west

    west = fed.clusters["west-1"]
    for p in gang.placements:
        fed.job_update(west, p.placement_id, JobPhase.SUCCEEDED, "done")
    clock.now += RETRY_SECONDS
    fed.report(west, capacity(free=7))
    fed.schedule_once()
    assert moving(jobs) == 1  # the room the gang left is used


def test_no_move_starts_while_more_jobs_wait_than_the_bound(clock: Clock) -> None:
    """A national backlog: with more than WAITING_BOUND jobs still waiting after the turn's cycle, the moves wait.
    Checking that none of those jobs could take the room is a scheduler call over all of them, on the event loop:
    a second cycle per turn that a backlog of 100,000 jobs must not pay for the sake of a move."""
    fed, jobs = spilled(clock, SchedulerConfig())
    waiting = [JobId(f"elsewhere-{i}") for i in range(WAITING_BOUND + 1)]  # none of them could use west's room
    fed.cycles.rebalancer.turn(fed.cycles.active_jobs(), waiting, fed.cycles.reserved)
    assert moving(jobs) == 0
    fed.cycles.rebalancer.turn(fed.cycles.active_jobs(), waiting[:WAITING_BOUND], fed.cycles.reserved)
    assert moving(jobs) == 1
