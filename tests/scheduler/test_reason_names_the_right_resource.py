"""A waiting job's reason names what it is short of (fairness audit F4).

An A100-only job in a queue whose H100 quota was full was told first of the H100 quota, which it cannot use, and
the REASON column showed only that; and a job whose accelerators were free but whose CPU fit no node beside them
was told "no node with 1 free A100".
"""

from __future__ import annotations

from dataclasses import replace

from scenarios import A100, H100, cycle, running, spec, with_quota

from federator.model import JobKind, ReasonCode

from builders import cluster, pool

INF = JobKind.INFERENCE


def test_a_quota_of_models_the_job_cannot_use_is_not_its_reason() -> None:
    fleet = [cluster("c1", "r", pool(H100, nodes=2)), cluster("c2", "r", pool(A100, nodes=4))]
    held = running(spec("gang", gpus=8, replicas=2), "c1", model=H100)
    config = with_quota("default", gpus={"H100": 16, "A100": 8})
    result = cycle(fleet, [spec("a100x12", gpus=1, replicas=12, models=("A100",), kind=INF)], config=config,
                   allocations=[held])
    reason = result.pending["a100x12"]
    assert reason.code is ReasonCode.QUOTA_EXCEEDED
    assert "A100 8 left" in reason.message and "H100" not in reason.message, reason.message
    # a job open to both models still hears of both
    both = cycle(fleet, [spec("anyx12", gpus=1, replicas=12, models=("A100", "H100"), kind=INF)], config=config,
                 allocations=[held]).pending["anyx12"]
    assert "H100 0 left" in both.message and "A100 8 left" in both.message, both.message


def test_free_accelerators_with_no_node_room_for_the_cpu_say_so() -> None:
    roomy = replace(pool(A100, nodes=4), host_room=tuple((64_000, 512 * 2**30) for _ in range(9)))
    result = cycle([cluster("c2", "r", roomy)], [spec("big-cpu", gpus=1, cpu=190, models=("A100",))])
    reason = result.pending["big-cpu"]
    assert "has free NVIDIA-A100-SXM4-80GB accelerators but no node with room beside them for one replica's " \
           "190 CPUs" in reason.message, reason.message
    assert reason.code is ReasonCode.INSUFFICIENT_CPU, reason  # not "InsufficientAccelerators" (outside HPC QA, H2)


def test_free_accelerators_with_no_node_room_for_the_memory_say_insufficient_memory() -> None:
    roomy = replace(pool(A100, nodes=4), host_room=tuple((64_000, 512 * 2**30) for _ in range(9)))
    reason = cycle([cluster("c2", "r", roomy)], [spec("big-mem", gpus=1, cpu=8, memory_gib=4096, models=("A100",))]
                   ).pending["big-mem"]
    assert reason.code is ReasonCode.INSUFFICIENT_MEMORY, reason
    assert "no node with room beside them for one replica's 8 CPUs and 4Ti memory" in reason.message, reason
