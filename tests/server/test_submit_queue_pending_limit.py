"""Back-pressure per queue: one tenant's queue cannot fill the federator and refuse every other organisation.

Found by a red-team review: the only bound on waiting work was the federator's (`--max-pending-jobs`), so a
single queue submitting in a loop filled it and every other queue's Submit was refused RESOURCE_EXHAUSTED.
Fair share ordered placement, not admission. A queue now has its own cap (its `maxPendingJobs`, else
`--max-pending-jobs-per-queue`, else half the federator's), read from a count kept as jobs enter and leave
Pending (server/pending_counts.py), never a scan.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from server_support import Clock, MemoryStore, job_api, make, spec, walk_a_pending_count

from federator.api import convert
from federator.api.v1 import jobs_pb2
from federator.model import JobPhase, JobSpec
from federator.scheduler import QueueConfig, SchedulerConfig
from federator.security.limits import Limits
from federator.server.federator import Federator
from federator.server.intake import QueueFull, QueuePendingLimit
from federator.store import StoreUnavailable
from federator.store.sqlite import SqliteJobStore


def queued(name: str, queue: str, *, gpus: int = 8) -> JobSpec:
    return replace(spec(name, gpus=gpus), queue=queue)


def rejected(fed: Federator, reason: str) -> float:
    return fed.metrics.registry.get_sample_value("federator_messages_rejected_total", {"reason": reason}) or 0.0


def test_a_queue_at_its_cap_is_refused_while_another_queues_submit_is_accepted() -> None:
    fed = make(MemoryStore(), Clock(), limits=Limits(max_pending_jobs_per_queue=2, queue_full_retry_seconds=3))
    fed.submit(queued("flood-0", "flood"))
    fed.submit(queued("flood-1", "flood"))
    with pytest.raises(QueuePendingLimit) as refused:
        fed.submit(queued("flood-2", "flood"))
    other = fed.submit(queued("paper-0", "research"))  # another organisation is not affected

    said = str(refused.value)
    assert "queue 'flood' is full: 2 of its jobs are pending, its limit is 2" in said
    assert "--max-pending-jobs-per-queue" in said and "retry after 3s" in said
    assert "The cap is this queue's own: other queues are held to theirs" in said
    assert isinstance(refused.value, QueueFull) and refused.value.retry_after == 3  # every edge's back-pressure
    assert (refused.value.queue, refused.value.pending, refused.value.limit) == ("flood", 2, 2)
    assert other.phase is JobPhase.PENDING and len(fed.jobs) == 3  # the refused job holds nothing
    assert rejected(fed, "queue_pending_limit") == 1 and rejected(fed, "queue_full") == 0
    assert fed.cycles.by_queue.count("flood") == 2 and fed.cycles.by_queue.count("research") == 1


def test_a_repeated_request_id_is_answered_with_its_job_even_when_the_queue_is_at_its_cap() -> None:
    fed = make(MemoryStore(), Clock(), limits=Limits(max_pending_jobs_per_queue=1))
    first = fed.submit(queued("flood-0", "flood"), request_id="req-0")
    assert fed.submit(queued("flood-0", "flood"), request_id="req-0").job_id == first.job_id  # a retry, not a job


@pytest.mark.parametrize(("config", "queue", "limit", "source"), [
    pytest.param(SchedulerConfig(queues={"flood": QueueConfig(max_pending_jobs=1)}), "flood", 1,
                 "queue 'flood' maxPendingJobs", id="the-queue's-own"),
    pytest.param(SchedulerConfig(default_queue=QueueConfig(max_pending_jobs=2)), "unlisted", 2,
                 "the policy's defaultQueue.maxPendingJobs", id="defaultQueue-for-unlisted-queues"),
    pytest.param(SchedulerConfig(queues={"flood": QueueConfig(weight=2)}), "flood", 3,
                 "--max-pending-jobs-per-queue", id="listed-without-one:-the-flag"),
    pytest.param(SchedulerConfig(queues={"flood": QueueConfig(max_pending_jobs=50)}), "flood", 4,
                 "the federator's queue is full", id="the-federator's-cap-still-bounds-all"),
])
def test_a_queues_cap_comes_from_its_policy_then_the_flag(config: SchedulerConfig, queue: str, limit: int,
                                                            source: str) -> None:
    fed = make(MemoryStore(), Clock(), limits=Limits(max_pending_jobs=4, max_pending_jobs_per_queue=3,
                                                     max_pending_jobs_per_user=4))  # the owner's cap: not here
    fed.set_scheduler_config(config)
    for i in range(limit):
        fed.submit(queued(f"j-{i}", queue))
    with pytest.raises(QueueFull) as refused:
        fed.submit(queued("one-more", queue))
    assert source in str(refused.value)


def test_without_the_flag_a_queue_may_hold_half_the_federators_pending_jobs() -> None:
    assert Limits().pending_per_queue == 125_000
    assert Limits(max_pending_jobs=1).pending_per_queue == 1
    fed = make(MemoryStore(), Clock(), limits=Limits(max_pending_jobs=4, max_pending_jobs_per_user=4))
    fed.submit(queued("a-0", "a"))
    fed.submit(queued("a-1", "a"))
    with pytest.raises(QueuePendingLimit, match="by default half of --max-pending-jobs"):
        fed.submit(queued("a-2", "a"))
    fed.submit(queued("b-0", "b"))


def test_the_count_follows_jobs_placed_cancelled_finished_and_requeued() -> None:
    fed = make(MemoryStore(), Clock(), limits=Limits(max_pending_jobs_per_queue=2))
    walk_a_pending_count(fed, lambda name, gpus: queued(name, "a", gpus=gpus), lambda: fed.cycles.by_queue.count("a"),
                         QueuePendingLimit, fed.cycles.by_queue)


def test_a_restart_counts_the_pending_jobs_the_store_holds() -> None:
    store, clock = MemoryStore(), Clock()
    fed = make(store, clock, limits=Limits(max_pending_jobs_per_queue=2))
    fed.submit(queued("a-0", "a"))
    fed.submit(queued("a-1", "a"))
    again = make(store, clock, limits=Limits(max_pending_jobs_per_queue=2))
    assert again.cycles.by_queue.count("a") == 2
    with pytest.raises(QueuePendingLimit):
        again.submit(queued("a-2", "a"))


def test_a_job_whose_write_failed_is_not_counted() -> None:
    class FullDisk(MemoryStore):
        def put(self, jobs: object) -> None:
            raise StoreUnavailable("disk full")

    fed = make(FullDisk(), Clock(), limits=Limits(max_pending_jobs_per_queue=1))
    for _ in range(2):
        with pytest.raises(StoreUnavailable):
            fed.submit(queued("a-0", "a"))
    assert fed.cycles.by_queue.count("a") == 0


def test_over_grpc_a_queue_at_its_cap_gets_resource_exhausted_with_a_retry_after(tmp_path: Path) -> None:
    async def scenario() -> tuple[grpc.aio.AioRpcError, str]:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"),
                        limits=Limits(max_pending_jobs_per_queue=1, queue_full_retry_seconds=2))
        try:
            async with job_api(fed) as stub:

                def submit(name: str, queue: str) -> grpc.aio.UnaryUnaryCall:  # type: ignore[type-arg]
                    return stub.Submit(jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(queued(name, queue, gpus=1))))

                await submit("flood-0", "flood")
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await submit("flood-1", "flood")
                other = (await submit("paper-0", "research")).job.job_id
        finally:
            fed.store.close()
        return refused.value, other

    refused, other = asyncio.run(scenario())
    assert refused.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "queue 'flood' is full: 1 of its jobs are pending, its limit is 1" in (refused.details() or "")
    assert dict(refused.trailing_metadata() or ())["retry-after"] == "2"
    assert other.startswith("paper-0-")
