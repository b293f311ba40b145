"""A spread job open to several models against per-model quotas (audit finding F3).

An inference job's replicas may go to any of the models it accepts, so its queue's quota on one model caps how
many of them go to that model, not whether the job may run at all. The cycle admits the job when some split of
its replicas over those models fits every per-model quota (and CPU and memory), and its spread planner never
binds more replicas of a model than that model's quota has room for: in the place phase, when it preempts, and
for the rest of a job that already holds some. A gang (one cluster, one model) is charged in full against the
model it takes, as before.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scenarios import A100, H100, cycle, running, spec

from federator.model import MILLI, JobId, JobKind, ReasonCode
from federator.scheduler import PlacementRequest, QueueConfig, Quota, Scheduler, SchedulerConfig, Snapshot

from builders import cluster, pool

INF = JobKind.INFERENCE
BOTH = ("H100", "A100")


def quotas(queue: str = "default", **per_model: int) -> SchedulerConfig:
    return SchedulerConfig(queues={queue: QueueConfig(quota=Quota(
        accelerator_milli={m: n * MILLI for m, n in per_model.items()}))})


def fleet(h100_nodes: int = 4, a100_nodes: int = 4, clusters: int = 2) -> list:
    return [cluster(f"c{i}", f"r{i}", pool(H100, nodes=h100_nodes), pool(A100, nodes=a100_nodes))
            for i in range(clusters)]


def by_model(result, job: str = "svc") -> Counter[str]:  # type: ignore[no-untyped-def]
    got: Counter[str] = Counter()
    for d in result.decisions:
        if d.job_id == job:
            for a in d.assignments:
                got[a.accelerator_model] += a.replicas
    return got


def test_the_f3_job_is_placed_within_both_quotas() -> None:
    # 20 x 1 open to H100 and A100, quotas 16 and 8: charged 20 against each it waited for ever; 12 + 8 or 16 + 4
    # fits both.
    result = cycle(fleet(), [spec("svc", kind=INF, replicas=20, gpus=1, models=BOTH)], config=quotas(H100=16, A100=8))
    got = by_model(result)
    assert sum(got.values()) == 20, result.pending
    assert got[H100] <= 16 and got[A100] <= 8


def test_a_capped_model_takes_no_more_than_its_quota_when_capacity_pushes_there() -> None:
    # Only 12 H100 free in the fleet: the other 8 must go to A100, exactly its quota, never more.
    c = [cluster("c0", "r0", pool(H100, nodes=0, extra={4: 3}), pool(A100, nodes=4))]
    result = cycle(c, [spec("svc", kind=INF, replicas=20, gpus=1, models=BOTH)], config=quotas(H100=16, A100=8))
    assert by_model(result) == Counter({H100: 12, A100: 8})
    more = cycle(c, [spec("svc", kind=INF, replicas=21, gpus=1, models=BOTH)], config=quotas(H100=16, A100=8))
    assert not more.decisions
    reason = more.pending["svc"]
    assert reason.code is ReasonCode.INSUFFICIENT_ACCELERATORS  # capacity is short; the quota's room is said too
    assert "quota of queue default on A100: 0 of 8 accelerators in use, room for 8 of its 21 replicas" in reason.message


def test_a_job_the_quotas_cannot_hold_waits_and_its_reason_says_how_much_room_is_left() -> None:
    held = [running(spec("h", kind=INF, replicas=8, gpus=1), "c0", model=H100),
            running(spec("a", kind=INF, replicas=4, gpus=1), "c0", model=A100)]
    result = cycle(fleet(), [spec("svc", kind=INF, replicas=20, gpus=1, models=BOTH)],
                   config=quotas(H100=16, A100=8), allocations=held)
    assert not result.decisions
    reason = result.pending["svc"]
    assert reason.code is ReasonCode.QUOTA_EXCEEDED
    assert reason.message == "queue default's quota leaves room for 12 of 20 replicas: H100 8 left, A100 4 left"
    fits = cycle(fleet(), [spec("svc", kind=INF, replicas=12, gpus=1, models=BOTH)],
                 config=quotas(H100=16, A100=8), allocations=held)
    assert by_model(fits) == Counter({H100: 8, A100: 4})


def test_a_model_the_job_does_not_accept_is_not_counted_nor_named() -> None:
    result = cycle(fleet(), [spec("svc", kind=INF, replicas=20, gpus=1, models=("H100",))],
                   config=quotas(H100=16, A100=8))
    assert result.pending["svc"].message == "queue default's quota leaves room for 16 of 20 replicas: H100 16 left"


def test_a_model_without_a_quota_takes_the_rest() -> None:
    result = cycle(fleet(), [spec("svc", kind=INF, replicas=20, gpus=1, models=BOTH)], config=quotas(H100=4))
    got = by_model(result)
    assert sum(got.values()) == 20 and got[H100] <= 4


def test_groups_stay_whole_within_the_quota() -> None:
    # Groups of 4 (a LeaderWorkerSet): H100's quota of 10 holds two groups, not two and a half.
    s = replace(spec("svc", kind=INF, replicas=12, gpus=1, models=BOTH), group_size=4)
    result = cycle(fleet(), [s], config=quotas(H100=10, A100=4))
    got = by_model(result)
    assert got == Counter({H100: 8, A100: 4})
    short = cycle(fleet(), [replace(s, replicas=16)], config=quotas(H100=10, A100=4))
    assert short.pending["svc"].message.startswith("queue default's quota leaves room for 12 of 16 replicas")


def test_min_regions_seeds_only_where_the_quota_leaves_room() -> None:
    # H100's quota holds one replica: east takes it, so west (H100 only) cannot seed the second region; central's
    # A100 does, and takes the rest.
    c = [cluster("east-1", "east", pool(H100, nodes=1)), cluster("west-1", "west", pool(H100, nodes=4)),
         cluster("central-1", "central", pool(A100, nodes=1))]
    s = spec("svc", kind=INF, replicas=4, gpus=1, models=BOTH, min_regions=2)
    result = cycle(c, [s], config=quotas(H100=1, A100=8))
    got = by_model(result)
    assert got == Counter({H100: 1, A100: 3}), result.pending
    three = cycle(c, [replace(s, min_regions=3)], config=quotas(H100=1, A100=8))
    assert three.pending["svc"].code is ReasonCode.REGION_UNAVAILABLE


def test_a_gang_is_still_charged_in_full_against_the_model_it_takes() -> None:
    result = cycle(fleet(), [spec("g", replicas=3, gpus=8, models=BOTH)], config=quotas(H100=16, A100=16))
    assert result.pending["g"].code is ReasonCode.QUOTA_EXCEEDED  # 24 on either model: neither quota holds it


def test_the_rest_of_a_job_counts_what_it_holds() -> None:
    # 22 wanted; 12 run on H100. The rest (10) fits only as 2 to 4 more H100 and the rest on A100 (8 at most):
    # the caps count the 12 it holds, so never 16 + 1 H100.
    s = spec("svc", kind=INF, replicas=22, gpus=1, models=BOTH)
    rest = PlacementRequest(JobId("svc"), s, 10)
    result = Scheduler(quotas(H100=16, A100=8)).schedule(
        Snapshot.of([cluster("h0", "r9", pool(H100, nodes=4))] + fleet(h100_nodes=0, a100_nodes=1, clusters=1)),
        [rest], running=[running(s, "c9", model=H100, replicas=12)])
    got = by_model(result)
    assert sum(got.values()) == 10 and got[H100] <= 4 and got[A100] <= 8, result.pending


def test_preemption_respects_the_caps() -> None:
    # Every accelerator is held by preemptible work of another queue; the spread job stops some of it and places
    # within its own queue's quotas (16 H100, 8 A100), never more of a model than its quota has room for.
    c = [cluster("c0", "r0", pool(H100, nodes=0, extra={0: 3}), pool(A100, nodes=0, extra={0: 3}))]
    victims = [running(replace(spec(f"v{m}{i}", gpus=8, queue="other"), preemptible=True), "c0",
                       model=H100 if m == "h" else A100, placed_at=float(i)) for m in "ha" for i in range(3)]
    urgent = spec("svc", kind=INF, replicas=20, gpus=1, models=BOTH, priority=10)
    result = cycle(c, [urgent], config=quotas(H100=16, A100=8), allocations=victims, now=100.0)
    got = by_model(result)
    assert sum(got.values()) == 20, result.pending
    assert got[H100] <= 16 and got[A100] <= 8
    assert len(result.preemptions) == 3  # two H100 nodes and one A100 node: the least room 20 within the caps needs


def test_preemption_does_not_make_room_past_a_quota() -> None:
    c = [cluster("c0", "r0", pool(H100, nodes=0, extra={0: 3}), pool(A100, nodes=0, extra={0: 3}))]
    victims = [running(replace(spec(f"v{m}{i}", gpus=8, queue="other"), preemptible=True), "c0",
                       model=H100 if m == "h" else A100, placed_at=float(i)) for m in "ha" for i in range(3)]
    urgent = spec("svc", kind=INF, replicas=26, gpus=1, models=BOTH, priority=10)
    result = cycle(c, [urgent], config=quotas(H100=16, A100=8), allocations=victims, now=100.0)
    assert not result.preemptions and not result.decisions
    assert result.pending["svc"].code is ReasonCode.QUOTA_EXCEEDED


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h_quota=st.integers(0, 24), a_quota=st.integers(0, 24), h_held=st.integers(0, 24), a_held=st.integers(0, 24),
       replicas=st.integers(2, 40), gpus=st.sampled_from([1, 2]), h_nodes=st.integers(0, 4),
       a_nodes=st.integers(0, 4))
@example(h_quota=16, a_quota=8, h_held=0, a_held=0, replicas=20, gpus=1, h_nodes=2, a_nodes=2)  # F3 itself
@example(h_quota=16, a_quota=16, h_held=6, a_held=3, replicas=10, gpus=2, h_nodes=1, a_nodes=4)
def test_a_spread_job_never_passes_a_quota_and_is_placed_when_a_split_fits(
        h_quota: int, a_quota: int, h_held: int, a_held: int, replicas: int, gpus: int, h_nodes: int,
        a_nodes: int) -> None:
    h_held, a_held = min(h_held, h_quota) // gpus, min(a_held, a_quota) // gpus  # held replicas, within quota
    held = [running(spec(f"held-{m}", kind=INF, replicas=n, gpus=gpus), "c9", model=model)
            for m, n, model in (("h", h_held, H100), ("a", a_held, A100)) if n]
    c = fleet(h100_nodes=h_nodes, a100_nodes=a_nodes)
    result = cycle(c, [spec("svc", kind=INF, replicas=replicas, gpus=gpus, models=BOTH)],
                   config=quotas(H100=h_quota, A100=a_quota), allocations=held)
    got = by_model(result)
    assert (h_held + got[H100]) * gpus <= h_quota and (a_held + got[A100]) * gpus <= a_quota
    room_h = min((h_quota // gpus) - h_held, 2 * h_nodes * 8 // gpus)  # what quota and free capacity allow
    room_a = min((a_quota // gpus) - a_held, 2 * a_nodes * 8 // gpus)
    assert bool(got) is (room_h + room_a >= replicas), result.pending
    if got:
        assert sum(got.values()) == replicas
    else:
        assert result.pending["svc"].code in (ReasonCode.QUOTA_EXCEEDED, ReasonCode.INSUFFICIENT_ACCELERATORS,
                                              ReasonCode.ACCELERATOR_UNAVAILABLE)


@pytest.mark.parametrize("replicas", [1, 2])
def test_a_job_that_fits_its_quotas_whole_is_unchanged(replicas: int) -> None:
    result = cycle(fleet(), [spec("svc", kind=INF, replicas=replicas, gpus=1, models=BOTH)],
                   config=quotas(H100=16, A100=8))
    assert sum(by_model(result).values()) == replicas
