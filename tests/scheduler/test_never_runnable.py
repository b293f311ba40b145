"""`Reason.never`: the scheduler marks a pending job that can never run as asked, more than its queue's whole quota
on every way it may run, apart from one that waits for room (outside QA, ops F9: one such job kept
FederatorJobsPendingTooLong firing for its queue for good)."""

from __future__ import annotations

import pytest
from scenarios import A100, H100, cycle, n_h100_nodes, running, spec, with_quota

from federator.model import JobKind, NeverRunnable, ReasonCode
from federator.scheduler import QueueConfig, SchedulerConfig
from federator.scheduler.config import Quota

from builders import cluster, pool

BOTH = [cluster("c", "r", pool(H100, nodes=8), pool(A100, nodes=8))]


def _two_quotas(h100: int, a100: int) -> SchedulerConfig:
    return SchedulerConfig(queues={"research": QueueConfig(quota=Quota(
        accelerator_milli={"H100": h100 * 1000, "A100": a100 * 1000}))})


@pytest.mark.parametrize(("job", "config", "clusters", "never"), [
    pytest.param(spec("big", gpus=8, replicas=8, models=("H100",), queue="research"),
                 with_quota("research", gpus={"H100": 48}), [n_h100_nodes(8)], True, id="gang-over-the-whole-quota"),
    pytest.param(spec("big", gpus=8, replicas=8, models=("H100", "A100"), queue="research"), _two_quotas(48, 32),
                 BOTH, True, id="over-every-quota-it-may-use"),
    pytest.param(spec("big", gpus=8, replicas=8, models=("H100", "A100"), queue="research"),
                 with_quota("research", gpus={"H100": 48}), [cluster("c", "r", pool(H100, nodes=8),
                                                                     pool(A100, nodes=4))],
                 False, id="another-model-has-no-quota"),  # its H100 note says "can never run"; A100 may free up
    pytest.param(spec("big", cpu=200, queue="research"), with_quota("research", cpu=100), [n_h100_nodes(8)], True,
                 id="cpu-over-the-whole-quota"),
    pytest.param(spec("serve", kind=JobKind.INFERENCE, gpus=8, replicas=8, models=("H100",), queue="research"),
                 with_quota("research", gpus={"H100": 48}), [n_h100_nodes(8)], False,
                 id="spread-whose-replicas-fit-in-part"),
    pytest.param(spec("serve", kind=JobKind.INFERENCE, gpus=8, replicas=2, models=("H100",), queue="research"),
                 with_quota("research", gpus={"H100": 4}), [n_h100_nodes(8)], True,
                 id="spread-whose-one-replica-is-over-the-quota"),
])
def test_a_job_over_its_whole_quota_is_marked_never(job, config, clusters, never) -> None:  # type: ignore[no-untyped-def]
    reason = cycle(clusters, [job], config=config).pending[job.name]
    assert (reason.never is NeverRunnable.QUOTA) is never, reason
    assert reason.code is ReasonCode.QUOTA_EXCEEDED or not never


def test_a_job_that_waits_for_its_queues_running_work_is_not_never() -> None:
    held = spec("held", gpus=8, replicas=4, models=("H100",), queue="research")
    result = cycle([n_h100_nodes(8)], [spec("next", gpus=8, replicas=2, models=("H100",), queue="research")],
                   config=with_quota("research", gpus={"H100": 32}), allocations=[running(held, "c")])
    assert result.pending["next"].code is ReasonCode.QUOTA_EXCEEDED and not result.pending["next"].never
