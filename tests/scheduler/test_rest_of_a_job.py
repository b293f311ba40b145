"""The rest of a spread job: a request for the replicas a lost part held, beside the parts that still run.

The server asks for it after one cluster of an inference job is Lost, refuses or stops its part
(server/partial.py): `replicas` is what is missing, `kept_regions` where its live placements are. The spread
rules hold for the job as a whole: its kept regions count toward minRegions, and its queue's quota and share
count what it holds (its running allocations) plus the rest, never the whole job twice.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from scenarios import H100, cycle, n_h100_nodes, placed, running, spec, with_quota

from federator.model import JobId, JobKind, JobSpec, ReasonCode
from federator.scheduler import PlacementRequest, Scheduler, Snapshot, may_spread

from builders import cluster, pool

INF = JobKind.INFERENCE
REGIONS = {"east-1": "east", "east-2": "east", "west-1": "west", "north-1": "north"}


def rest(s: JobSpec, replicas: int, *kept: str) -> PlacementRequest:
    return PlacementRequest(JobId(s.name), s, replicas, kept_regions=tuple(sorted({REGIONS[c] for c in kept})))


def fleet(*names: str, nodes: int = 4) -> list:
    return [n_h100_nodes(nodes, n, REGIONS[n]) for n in names]


def test_the_rest_goes_to_a_region_other_than_the_kept_one() -> None:
    # 4 replicas over 2 regions; west's part was lost and east-1 still runs 2: the rest needs one more region.
    s = spec("svc", kind=INF, replicas=4, gpus=1, min_regions=2)
    result = Scheduler().schedule(Snapshot.of(fleet("east-2", "north-1")), [rest(s, 2, "east-1")],
                                  running=[running(s, "east-1", replicas=2)])
    got = placed(result)["svc"]
    assert sum(got.values()) == 2 and "north-1" in got  # a second region, whatever the rank of east-2


def test_kept_regions_that_already_span_min_regions_need_no_new_one() -> None:
    s = spec("svc", kind=INF, replicas=6, gpus=1, min_regions=2)
    result = Scheduler().schedule(Snapshot.of(fleet("east-2")), [rest(s, 2, "east-1", "west-1")],
                                  running=[running(s, "east-1", replicas=2), running(s, "west-1", replicas=2)])
    assert placed(result) == {"svc": {"east-2": 2}}


def test_a_rest_with_no_new_region_goes_where_it_fits_and_says_what_its_kept_placements_hold() -> None:
    # minRegions is a goal for the rest of a running job (spread.py, outside QA inference F1)
    s = spec("svc", kind=INF, replicas=4, gpus=1, min_regions=2)
    result = Scheduler().schedule(Snapshot.of(fleet("east-2")), [rest(s, 2, "east-1")],
                                  running=[running(s, "east-1", replicas=2)])
    assert placed(result) == {"svc": {"east-2": 2}}
    reason = result.decisions[0].short
    assert reason is not None and reason.code is ReasonCode.REGION_UNAVAILABLE
    assert reason.message.endswith("1 held by its running placements (east); no other region can host one now")


def test_the_rest_asks_the_quota_for_what_is_missing_only() -> None:
    # The queue may hold 4 GPUs; the job holds 2 on east-1 and asks for its other 2: it fits, counted once.
    s = spec("svc", kind=INF, replicas=4, gpus=1)
    cfg = with_quota("default", gpus={"NVIDIA-H100-80GB-HBM3": 4})
    result = Scheduler(cfg).schedule(Snapshot.of(fleet("west-1")), [rest(s, 2, "east-1")],
                                     running=[running(s, "east-1", replicas=2)])
    assert placed(result) == {"svc": {"west-1": 2}}
    over = Scheduler(cfg).schedule(Snapshot.of(fleet("west-1")), [rest(s, 3, "east-1")],
                                   running=[running(s, "east-1", replicas=2)])
    assert over.pending["svc"].code is ReasonCode.QUOTA_EXCEEDED  # 2 held + 3 asked > 4


def test_a_job_whose_rest_is_placed_is_no_victim_in_the_same_cycle() -> None:
    # A preemptible job short of 2 gets them; a higher-priority job that waits may not preempt it in the
    # same cycle (its new placement would be reserved and its old ones released: room counted twice).
    s = replace(spec("svc", kind=INF, replicas=4, gpus=8), preemptible=True)
    big = spec("big", kind=JobKind.TRAINING, replicas=4, gpus=8, priority=10)
    east = cluster("east-1", "east", pool(H100, nodes=2, free=8, extra={0: 2}))  # svc's 2 replicas fill 2 nodes
    snap = Snapshot.of([east, *fleet("west-1", nodes=2)])
    svc = replace(rest(s, 2, "east-1"), avoid_clusters=("east-1",))  # east-1 just refused that part
    result = Scheduler().schedule(snap, [svc, PlacementRequest(JobId("big"), big, 4, 1.0)],
                                  running=[running(s, "east-1", replicas=2)])
    assert placed(result)["svc"] == {"west-1": 2}
    assert not result.preemptions and "big" in result.pending


@pytest.mark.parametrize(("kind", "replicas", "min_regions", "expected"), [
    (JobKind.TRAINING, 4, 1, False),
    (JobKind.INFERENCE, 1, 1, False),
    (JobKind.INFERENCE, 4, 1, True),
    (JobKind.INFERENCE, 1, 2, True),
], ids=["gang", "one-replica", "replicas", "min-regions"])
def test_which_jobs_may_spread(kind: JobKind, replicas: int, min_regions: int, expected: bool) -> None:
    s = replace(spec("j", kind=kind, replicas=replicas, gpus=1), min_regions=min_regions)
    assert may_spread(s) is expected


def test_a_whole_job_spreads_as_before() -> None:  # no kept regions: the request of a job that runs nowhere
    result = cycle(fleet("east-1", "west-1"), [spec("svc", kind=INF, replicas=4, gpus=1, min_regions=2)])
    assert {REGIONS[c] for c in placed(result)["svc"]} == {"east", "west"}
