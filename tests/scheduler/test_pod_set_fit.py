"""A gang of unequal pod sets is fitted set by set, all in one cluster (scheduler/pod_set_fit.py).

Outside QA, ML platform E2: an RL JobSet of a learner 2 x 8, a rollout 4 x 1 and a reward model 1 x 1 (21
accelerators) was one gang of 7 x 8 = 56 and waited GangDoesNotFit for ever on a member of 24.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from scenarios import H100, cycle, n_h100_nodes, placed, spec, with_quota

from federator.model import JobId, JobSpec, NeverRunnable, ReasonCode, Resources
from federator.model.pod_sets import PodSetAsk
from federator.scheduler import Allocation, SchedulerConfig, Snapshot
from federator.scheduler.fairshare import QueueUsage
from federator.scheduler.pod_set_fit import reserve_request
from federator.scheduler.preemption import released

from builders import GiB, cluster, pool, request

LEARNER = PodSetAsk("learner", 2, Resources(8000, 64 * GiB, 8000))
ROLLOUT = PodSetAsk("rollout", 4, Resources(2000, 16 * GiB, 1000))
REWARD = PodSetAsk("reward", 1, Resources(2000, 16 * GiB, 1000))


def rl(name: str = "rl", *, sets: tuple[PodSetAsk, ...] = (LEARNER, ROLLOUT, REWARD)) -> JobSpec:
    """The RL JobSet as the federator holds it: 7 pods at the largest ask (what 0.19.0 counted), and its pod sets."""
    return replace(spec(name, replicas=7, gpus=8, cpu=8, memory_gib=64, models=(H100,)), pod_sets=sets)


def test_the_rl_gang_fits_a_member_that_could_not_hold_seven_times_eight() -> None:
    member = n_h100_nodes(3)  # 24 H100: 21 fit, 56 do not
    result = cycle([member], [rl()])
    assert placed(result) == {"rl": {"c": 7}}
    (after,) = result.snapshot.clusters
    assert after.capacity.pool(H100).free_accelerators == 3  # 21 taken, not 24 (nor a refusal for 56)
    assert after.capacity.cpu_milli_free == member.capacity.cpu_milli_free - 26_000  # 2 x 8 + 5 x 2 CPUs

    equal = cycle([member], [rl(sets=())])  # the same job as 0.19.0 counted it: 7 x 8
    assert not placed(equal)
    assert equal.pending[JobId("rl")].code is ReasonCode.GANG_DOES_NOT_FIT


def test_a_set_that_does_not_fit_beside_the_others_keeps_the_whole_gang_waiting() -> None:
    # two nodes of 8 free and one of 4: the learners take the 8s, the reward one of the 4 (sets of equal pods go by
    # name); no room left for the 4 rollouts
    member = cluster("c", "r", pool(H100, nodes=2, extra={4: 1}))
    result = cycle([member], [rl()])
    assert not placed(result)  # all or nothing: no learner or rollout is bound without the reward
    reason = result.pending[JobId("rl")]
    assert reason.code is ReasonCode.GANG_DOES_NOT_FIT
    assert reason.message.endswith("rollout 4 x 1 does not fit beside the larger sets"), reason.message
    assert result.snapshot.clusters[0].capacity.pool(H100).free_accelerators == 20  # nothing held


def test_all_sets_go_to_one_cluster_never_split_over_two() -> None:
    two = [n_h100_nodes(2, name="a"), n_h100_nodes(2, name="b")]  # 32 free in all, 16 in each: 21 fit neither
    result = cycle(two, [rl()])
    assert not placed(result)
    reason = result.pending[JobId("rl")]
    assert reason.code is ReasonCode.GANG_DOES_NOT_FIT
    assert reason.never is NeverRunnable.FLEET, reason  # no wait cures it: neither could hold 21, even empty
    assert reason.message.startswith("no member cluster could hold the pod sets learner 2 x 8, rollout 4 x 1, "
                                     "reward 1 x 1 accelerators (21 in all)"), reason.message

    three = [n_h100_nodes(2, name="a"), n_h100_nodes(3, name="b")]
    assert placed(cycle(three, [rl()])) == {"rl": {"b": 7}}  # one placement of all 7 pods, on the one that holds it

    busy = cycle([cluster("c", "r", pool(H100, nodes=1, extra={0: 2}))], [rl()])  # 24 H100, 16 in use now
    assert busy.pending[JobId("rl")].never is None  # a wait cures it: not judged never as if 7 x 8


def test_each_pod_needs_its_own_ask_on_one_node() -> None:
    # 24 free, but as 12 nodes of 2: a learner pod of 8 fits no node, whatever the sum says
    member = cluster("c", "r", pool(H100, nodes=0, extra={2: 12}))
    result = cycle([member], [rl()])
    assert not placed(result)
    assert result.pending[JobId("rl")].message.endswith(": learner 2 x 8 does not fit")


@pytest.mark.parametrize(("quota", "fits"), [(21, True), (20, False)], ids=["quota-21-admits", "quota-20-refuses"])
def test_the_queue_quota_is_charged_what_the_sets_ask(quota: int, fits: bool) -> None:
    result = cycle([n_h100_nodes(4)], [rl()], config=with_quota("default", gpus={"H100": quota}))
    assert bool(placed(result)) is fits
    if not fits:
        assert result.pending[JobId("rl")].code is ReasonCode.QUOTA_EXCEEDED


def test_a_placed_gang_of_pod_sets_counts_its_sets_in_queue_usage() -> None:
    s = rl()
    held = Allocation(JobId("rl"), s.queue, s.priority, s.preemptible, "c", H100, 7, s.resources,
                      pod_sets=s.pod_sets)
    usage = QueueUsage(SchedulerConfig(), Snapshot.of([n_h100_nodes(4)]), [held])
    assert usage.used["default"][f"gpu:{H100}"] == 21_000  # not 56_000
    assert usage.used["default"]["cpu"] == 26_000


def test_preemption_frees_a_gang_of_pod_sets_at_what_its_sets_hold() -> None:
    """A preemptible RL gang (21) beside another job's 8 on 4 x 8 H100: stopping the gang frees 21, not 7 x 8
    (which read 27 free, the other job's node among them); and queue usage uncounts what it counted."""
    member = reserve_request(n_h100_nodes(4), request(spec("other", gpus=8, models=(H100,))), H100)
    member = reserve_request(member, request(rl()), H100)
    assert member.capacity.pool(H100).free_accelerators == 3
    s = rl()
    gang = Allocation(JobId("rl"), s.queue, s.priority, True, "c", H100, 7, s.resources, pod_sets=s.pod_sets)
    assert released(member, [JobId("rl")], {JobId("rl"): [gang]}).capacity.pool(H100).free_accelerators == 24
    usage = QueueUsage(SchedulerConfig(), Snapshot.of([member]), [gang])
    usage.add_allocation(gang, sign=-1)  # what preemption's what-ifs do with a victim
    assert usage.used["default"][f"gpu:{H100}"] == 0 and usage.used["default"]["cpu"] == 0
