"""Queues: weighted DRF fair share orders them; quotas cap them; why-pending names the quota."""

from __future__ import annotations

from collections import Counter

import pytest
from scenarios import A100, H100, cycle, n_h100_nodes, running, spec, with_queues, with_quota

from federator.model import ReasonCode
from federator.scheduler import QueueConfig, SchedulerConfig

from builders import cluster, pool


def shares(result, specs) -> Counter[str]:  # type: ignore[no-untyped-def]
    by_name = {s.name: s for s in specs}
    got: Counter[str] = Counter()
    for d in result.decisions:
        s = by_name[d.job_id]
        got[s.queue] += s.resources.accelerator_milli * s.replicas // 1000
    return got


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ({"a": 1, "b": 1, "c": 2}, {"a": 32, "b": 32, "c": 64}),
        ({"a": 1, "b": 1, "c": 1}, {"a": 48, "b": 40, "c": 40}),  # 128 / 3 in 8-accelerator steps; ties by name
        ({"a": 3, "b": 1, "c": 0.0001 + 0}, None),
    ],
    ids=["weights-1-1-2", "equal-weights", "tiny-weight"],
)
def test_weighted_drf_splits_a_contended_fleet(weights: dict[str, float], expected: dict[str, int] | None) -> None:
    clusters = [n_h100_nodes(16)]  # 128 H100
    specs = [spec(f"{q}-{i}", gpus=8, queue=q) for i in range(40) for q in ("a", "b", "c")]
    result = cycle(clusters, specs, config=with_queues(**weights))
    got = shares(result, specs)
    assert sum(got.values()) == 128
    if expected is not None:
        assert dict(got) == expected
    else:
        assert got["a"] > got["b"] > got["c"]


def test_a_queue_under_its_share_goes_first() -> None:
    holder = spec("held", gpus=8, replicas=4, queue="a")
    snapshot_cluster = cluster("c", "r", pool(H100, nodes=1, extra={0: 4}))  # 4 nodes held by queue a, 1 free
    result = cycle([snapshot_cluster], [spec("a-next", gpus=8, queue="a"), spec("b-first", gpus=8, queue="b")],
                   config=with_queues(a=1, b=1), allocations=[running(holder, "c")])
    assert [d.job_id for d in result.decisions] == ["b-first"]
    assert result.pending["a-next"].code is ReasonCode.INSUFFICIENT_ACCELERATORS


def test_priority_then_submission_order_within_a_queue() -> None:
    specs = [spec("old-low", gpus=8), spec("new-high", gpus=8, priority=5), spec("new-low", gpus=8)]
    result = cycle([n_h100_nodes(2)], specs)
    assert [d.job_id for d in result.decisions] == ["new-high", "old-low"]


def test_gpu_quota_caps_a_queue_and_says_so() -> None:
    specs = [spec(f"r{i}", gpus=8, models=("H100",), queue="research") for i in range(3)]
    result = cycle([n_h100_nodes(8)], specs, config=with_quota("research", gpus={"H100": 16}))
    assert [d.job_id for d in result.decisions] == ["r0", "r1"]
    reason = result.pending["r2"]
    assert reason.code is ReasonCode.QUOTA_EXCEEDED
    assert reason.message == "quota of queue research on H100: 16 accelerators, too few left: the job needs 8"


def test_a_job_larger_than_the_whole_quota_is_told_it_can_never_run_in_that_queue() -> None:
    """"0 of 16 in use, the job needs 32" (0.20.0) read as a busy queue; the job would wait for ever (QA F3)."""
    result = cycle([n_h100_nodes(8)], [spec("big", gpus=8, replicas=4, models=("H100",), queue="research")],
                   config=with_quota("research", gpus={"H100": 16}))
    reason = result.pending["big"]
    assert reason.code is ReasonCode.QUOTA_EXCEEDED
    assert reason.message.startswith("quota of queue research on H100: 16 accelerators, too few left: the job needs "
                                     "32, more than the whole quota: it can never run in this queue")


def test_a_quota_reason_keeps_its_words_while_the_queue_starts_another_job() -> None:
    """What the queue holds of its quota is not in the words (kubescaleqa62 H1, M2): holding 24 or 32 of 32, a job of
    16 reads the same, so a job the queue starts rewrites none of its waiting jobs' stored reasons."""
    def said(running: int) -> str:
        held = [spec(f"h{i}", gpus=8, models=("H100",), queue="research") for i in range(running)]
        result = cycle([n_h100_nodes(8)], [*held, spec("big", gpus=8, replicas=2, models=("H100",), queue="research")],
                       config=with_quota("research", gpus={"H100": 32}))
        return result.pending["big"].message

    assert said(3) == said(4) == "quota of queue research on H100: 32 accelerators, too few left: the job needs 16"


def test_quota_counts_running_work_too() -> None:
    held = spec("held", gpus=8, replicas=2, queue="research")
    result = cycle([n_h100_nodes(8)], [spec("more", gpus=8, queue="research")],
                   config=with_quota("research", gpus={"H100": 16}), allocations=[running(held, "c")])
    assert result.pending["more"].code is ReasonCode.QUOTA_EXCEEDED


def test_a_job_open_to_two_models_uses_the_one_with_quota_left() -> None:
    c = cluster("c", "r", pool(H100, nodes=4), pool(A100, nodes=4))
    specs = [spec(f"r{i}", gpus=8, models=("H100", "A100"), queue="research") for i in range(3)]
    result = cycle([c], specs, config=with_quota("research", gpus={"H100": 8}))
    models = [d.assignments[0].accelerator_model for d in result.decisions]
    assert len(models) == 3 and models.count(H100) <= 1


def test_cpu_quota() -> None:
    result = cycle([cluster("c", "r", cpu=512)], [spec("a", cpu=64, queue="etl"), spec("b", cpu=64, queue="etl")],
                   config=with_quota("etl", cpu=100))
    assert [d.job_id for d in result.decisions] == ["a"]
    assert result.pending["b"].code is ReasonCode.QUOTA_EXCEEDED and "on cpu" in result.pending["b"].message


def test_other_queues_are_not_capped_by_a_quota() -> None:
    specs = [spec(f"s{i}", gpus=8, queue="serving") for i in range(3)]
    result = cycle([n_h100_nodes(8)], specs, config=with_quota("research", gpus={"H100": 8}))
    assert len(result.decisions) == 3


def test_bad_queue_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="weight"):
        SchedulerConfig(queues={"a": QueueConfig(weight=0)})
