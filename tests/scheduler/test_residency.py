"""Data residency in the pure scheduler: spec.regions.allowed and a queue's allowedRegions are hard bounds.

A job's replicas go only to clusters in a region both allow, whatever the other filters, the scores (a cheaper
or emptier cluster elsewhere), a policy's `filters` list that leaves the filter out, preemption, or a
preference (`regions.preferred`) naming another region; rejections are values naming the field."""

from __future__ import annotations

from dataclasses import replace

import pytest
from scenarios import H100, cycle, n_h100_nodes, placed, running, spec

from federator.model import JobId, JobKind, JobSpec, ReasonCode
from federator.scheduler import QueueConfig, SchedulerConfig
from federator.scheduler.framework import CycleContext, PlacementRequest
from federator.scheduler.policy import PolicyError, policy_from_document
from federator.scheduler.residency import AllowedRegions, fenced, permitted, submit_warnings

from builders import cluster, pool

INF = JobKind.INFERENCE
EAST_WEST = [n_h100_nodes(1, "east-1", "east", price=9.0), n_h100_nodes(4, "west-1", "west", price=1.0)]
PRICE = {"Price": 1}


def allowed(name: str, *regions: str, **kw: object) -> JobSpec:
    return replace(spec(name, **kw), allowed_regions=regions)


def test_the_filter_says_which_region_and_which_field() -> None:
    west = n_h100_nodes(1, "west-1", "west")
    request = PlacementRequest(JobId("j"), allowed("j", "east"), 1)
    reason = AllowedRegions().filter(request, west, CycleContext())
    assert reason is not None and reason.code is ReasonCode.REGION_UNAVAILABLE
    assert reason.message == ("west-1: region west is not among the regions this job may run in (east): "
                              "spec.regions.allowed")
    fenced_request = replace(request, spec=spec("j"), queue_fence=("central", "east"))
    reason = AllowedRegions().filter(fenced_request, west, CycleContext())
    assert reason is not None and reason.message == (
        "west-1: region west is not among the regions its queue may run in (central, east): the queue's "
        "allowedRegions")
    assert AllowedRegions().filter(request, n_h100_nodes(1, "east-1", "east"), CycleContext()) is None
    assert AllowedRegions().filter(replace(request, spec=spec("j")), west, CycleContext()) is None


def test_permitted_is_what_both_allow() -> None:
    assert permitted((), ()) is None
    assert permitted(("east",), ()) == {"east"}
    assert permitted((), ("east", "west")) == {"east", "west"}
    assert permitted(("east", "central"), ("east", "west")) == {"east"}


@pytest.mark.parametrize("kind,replicas", [(JobKind.TRAINING, 1), (INF, 3)])
def test_a_job_allowed_east_never_runs_in_the_cheaper_emptier_west(kind: JobKind, replicas: int) -> None:
    result = cycle(EAST_WEST, [allowed("j", "east", kind=kind, replicas=replicas, gpus=8)],
                   config=SchedulerConfig(score_weights=PRICE))
    assert set(placed(result).get("j", {})) <= {"east-1"}
    if kind is JobKind.TRAINING:
        assert placed(result) == {"j": {"east-1": 1}}


def test_a_preferred_region_spills_but_an_allowed_one_waits() -> None:
    full_east = [cluster("east-1", "east", pool(H100, nodes=0, extra={0: 1})), n_h100_nodes(2, "west-1", "west")]
    preferred = replace(spec("pref", gpus=8), preferred_regions=("east",))
    result = cycle(full_east, [preferred, allowed("fenced", "east", gpus=8)])
    assert placed(result) == {"pref": {"west-1": 1}}
    reason = result.pending["fenced"]
    assert reason.code is ReasonCode.INSUFFICIENT_ACCELERATORS  # east is full: room there is what it waits for
    assert "west-1: region west is not among the regions this job may run in (east): spec.regions.allowed" \
        in reason.message


def test_a_queue_fence_holds_every_job_of_the_queue_and_only_it() -> None:
    cfg = SchedulerConfig(score_weights=PRICE, queues={"hosp-a": QueueConfig(allowed_regions=("east",)),
                                                        "other": QueueConfig()})
    jobs = [spec("a1", gpus=8, queue="hosp-a"), spec("o1", gpus=8, queue="other")]
    assert placed(cycle(EAST_WEST, jobs, config=cfg)) == {"a1": {"east-1": 1}, "o1": {"west-1": 1}}


def test_a_job_list_is_narrowed_by_its_queue_fence() -> None:
    three = [*EAST_WEST, n_h100_nodes(4, "central-1", "central", price=0.5)]
    cfg = SchedulerConfig(score_weights=PRICE, queues={"q": QueueConfig(allowed_regions=("east", "west"))})
    result = cycle(three, [allowed("j", "west", "central", kind=INF, replicas=4, gpus=8, queue="q")], config=cfg)
    assert set(placed(result)["j"]) == {"west-1"}  # central is the job's and the cheapest, but not the queue's


def test_the_filter_stays_on_when_the_policy_lists_filters_without_it() -> None:
    cfg = SchedulerConfig(filters=("ClusterReady", "GangFit", "CpuMemoryFit"), score_weights=PRICE)
    assert placed(cycle(EAST_WEST, [allowed("j", "east", gpus=8)], config=cfg)) == {"j": {"east-1": 1}}


def test_preemption_makes_room_only_inside_the_allowed_regions() -> None:
    # a-west sorts first: with victims alike, preemption would stop the job there (it did without the filter)
    held_east = cluster("z-east", "east", pool(H100, nodes=0, extra={0: 1}))
    held_west = cluster("a-west", "west", pool(H100, nodes=0, extra={0: 1}))
    low_e = spec("low-e", gpus=8, preemptible=True, priority=-5)
    low_w = spec("low-w", gpus=8, preemptible=True, priority=-5)
    urgent = allowed("urgent", "east", gpus=8, priority=10)
    result = cycle([held_west, held_east], [urgent],
                   allocations=[running(low_w, "a-west", placed_at=1.0), running(low_e, "z-east", placed_at=1.0)])
    assert [(p.job_id, p.cluster) for p in result.preemptions] == [("low-e", "z-east")]


def test_shapes_in_two_queues_with_two_fences_are_judged_apart() -> None:
    cfg = SchedulerConfig(queues={"a": QueueConfig(allowed_regions=("east",)),
                                  "b": QueueConfig(allowed_regions=("west",))})
    result = cycle(EAST_WEST, [spec("ja", gpus=8, queue="a"), spec("jb", gpus=8, queue="b")], config=cfg)
    assert placed(result) == {"ja": {"east-1": 1}, "jb": {"west-1": 1}}


def test_fenced_leaves_requests_alone_without_fences() -> None:
    requests = [PlacementRequest(JobId("j"), spec("j"), 1)]
    assert fenced(requests, SchedulerConfig()) is requests


def test_the_policy_takes_a_queue_fence_and_names_a_bad_one() -> None:
    got = policy_from_document({"queues": {"hosp-a": {"weight": 1, "allowedRegions": ["east", "east"]}}})
    assert got.queues["hosp-a"].allowed_regions == ("east",)
    with pytest.raises(PolicyError, match=r"queues\.hosp-a\.allowedRegions: must be a list of region names"):
        policy_from_document({"queues": {"hosp-a": {"allowedRegions": ["East"]}}})


def test_submit_check_refuses_a_job_asking_outside_its_queue_fence() -> None:
    cfg = SchedulerConfig(queues={"hosp-a": QueueConfig(allowed_regions=("east",))})
    problem = cfg.region_problem("hosp-a", ("east", "west"))
    assert problem is not None and problem.startswith("spec.regions.allowed: west is outside the regions queue "
                                                      "'hosp-a' may run in (east, its allowedRegions)")
    assert cfg.region_problem("hosp-a", ("east",)) is None
    assert cfg.region_problem("hosp-a", ()) is None
    assert cfg.region_problem("other", ("west",)) is None


def test_submit_warns_of_a_preferred_region_outside_and_an_allowed_region_without_a_cluster() -> None:
    said = submit_warnings(("east", "esat"), ("west", "east"), (), {"east", "west"})
    assert said == ["spec.regions.preferred[0]: 'west' is not among the regions the job may run in (east, esat): it "
                    "is never used",
                    "spec.regions.allowed[1]: no member cluster is in region 'esat'; check the name"]
    assert submit_warnings((), ("west",), ("east",), set()) == [
        "spec.regions.preferred[0]: 'west' is not among the regions the job may run in (east): it is never used"]
    assert submit_warnings((), ("west",), (), {"east"}) == []
