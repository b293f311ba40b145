"""spec.clusters.sameAs in the pure scheduler (scheduler/same_as.py): a job goes only to a cluster where every job
it names holds a placement, whatever the room or the scores elsewhere; while a named job holds none, it waits,
naming the job (outside QA qaml60 E3: an RL pipeline's rollout workers beside their learner)."""

from __future__ import annotations

from dataclasses import replace

from scenarios import cycle, n_h100_nodes, placed, running, spec

from federator.model import ClusterAffinity, JobId, JobKind, JobSpec, ReasonCode
from federator.scheduler import Scheduler, SchedulerConfig
from federator.scheduler.framework import CycleContext, PlacementRequest
from federator.scheduler.same_as import SameAs
from federator.scheduler.snapshot import Snapshot

PRICE = {"Price": 1}
SMALL = n_h100_nodes(1, "small-1", "r", price=9.0)  # the dearer cluster: where nothing unbound goes
BIG = n_h100_nodes(4, "big-1", "r", price=1.0)
FLEET = [SMALL, BIG]
LEARNER = spec("learner", gpus=8)


def rollout(*same_as: str, replicas: int = 1) -> JobSpec:
    return replace(spec("rollout", gpus=1, kind=JobKind.INFERENCE, replicas=replicas),
                   clusters=ClusterAffinity(same_as=same_as))


def test_a_job_goes_to_the_cluster_its_named_job_holds_though_another_is_cheaper() -> None:
    unbound = cycle(FLEET, [replace(rollout(), clusters=ClusterAffinity())], config=SchedulerConfig(
        score_weights=PRICE))
    assert placed(unbound) == {"rollout": {"big-1": 1}}  # where it would go unbound
    result = cycle(FLEET, [rollout("learner")], config=SchedulerConfig(score_weights=PRICE),
                   allocations=[running(LEARNER, "small-1")])
    assert placed(result) == {"rollout": {"small-1": 1}}


def test_inference_replicas_all_stay_with_the_named_job() -> None:
    result = cycle(FLEET, [rollout("learner", replicas=4)], config=SchedulerConfig(score_weights=PRICE),
                   allocations=[running(LEARNER, "small-1", replicas=1)])
    assert set(placed(result).get("rollout", {})) == {"small-1"}


def test_while_the_named_job_holds_no_placement_the_job_waits_naming_it() -> None:
    result = cycle(FLEET, [rollout("learner")])
    assert placed(result) == {}
    reason = result.pending["rollout"]
    assert reason.code is ReasonCode.CLUSTER_AFFINITY
    assert "big-1: job learner holds no placement here (spec.clusters.sameAs; it holds none now)" in reason.message


def test_every_named_job_must_hold_a_placement_there() -> None:
    reward = spec("reward", gpus=1)
    apart = cycle(FLEET, [rollout("learner", "reward")],
                  allocations=[running(LEARNER, "small-1"), running(reward, "big-1")])
    assert placed(apart) == {}
    assert "small-1: job reward holds no placement here (spec.clusters.sameAs; it holds one on big-1)" \
        in apart.pending["rollout"].message
    together = cycle(FLEET, [rollout("learner", "reward")],
                     allocations=[running(LEARNER, "big-1"), running(reward, "big-1")])
    assert placed(together) == {"rollout": {"big-1": 1}}


def test_a_policy_filters_list_cannot_drop_the_bound() -> None:
    cfg = SchedulerConfig(filters=("ClusterReady", "GangFit", "CpuMemoryFit"), score_weights=PRICE)
    result = cycle(FLEET, [rollout("learner")], config=cfg, allocations=[running(LEARNER, "small-1")])
    assert placed(result) == {"rollout": {"small-1": 1}}


def test_a_kept_verdict_follows_the_named_job_when_it_moves_between_cycles() -> None:
    """Verdicts are kept across cycles per fit shape (verdicts.py): one kept from when the learner was on small-1
    must not send the rollout there once the learner holds big-1 instead."""
    scheduler = Scheduler(SchedulerConfig(score_weights=PRICE))
    request = PlacementRequest(JobId("rollout"), rollout("learner"), 1)
    first = scheduler.schedule(Snapshot.of(FLEET), [request], running=[running(LEARNER, "small-1")])
    assert {a.cluster for d in first.decisions for a in d.assignments} == {"small-1"}
    second = scheduler.schedule(Snapshot.of(FLEET), [request], running=[running(LEARNER, "big-1")])
    assert {a.cluster for d in second.decisions for a in d.assignments} == {"big-1"}
    gone = scheduler.schedule(Snapshot.of(FLEET), [request], running=[])
    assert not gone.decisions and gone.pending[JobId("rollout")].code is ReasonCode.CLUSTER_AFFINITY


def test_the_filter_reads_the_cycle_context_only() -> None:
    request = PlacementRequest(JobId("r"), rollout("learner"), 1)
    here = CycleContext(placed={JobId("learner"): frozenset({"small-1"})})
    assert SameAs().filter(request, SMALL, here) is None
    reason = SameAs().filter(request, BIG, here)
    assert reason is not None and reason.message == \
        "big-1: job learner holds no placement here (spec.clusters.sameAs; it holds one on small-1)"
    assert SameAs().filter(PlacementRequest(JobId("r"), spec("r"), 1), BIG, CycleContext()) is None
