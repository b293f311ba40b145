"""Back-pressure per owner: one user cannot get past the queue's cap by submitting to many queues.

Left by the per-queue cap (test_submit_queue_pending_limit.py): any queue the policy does not list is open unless
defaultQueue.access restricts it, and each queue a tenant invents got a cap of its own, so one user submitting
to `flood-0`, `flood-1`, ... filled the federator all the same. Submit now also checks the job's owner (the user
the federator recorded; a FederatedJob made with kubectl has none, and its namespace stands for it) against
`--max-pending-jobs-per-user` (else half the federator's), read from a count kept as jobs enter and leave
Pending (server/pending_counts.py), never a scan.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from server_support import Clock, MemoryStore, job_api_by_token, make, spec, walk_a_pending_count

from federator.api import convert
from federator.api.v1 import jobs_pb2
from federator.model import JobPhase, JobSpec
from federator.security.auth import Authenticator, Token
from federator.security.authz import Principal, Submitter, stamp_owner
from federator.security.limits import Limits
from federator.server.federator import Federator
from federator.server.intake import QueueFull, QueuePendingLimit, SubmitError, UserPendingLimit
from federator.store import StoreUnavailable
from federator.store.sqlite import SqliteJobStore


def by(user: str, name: str, queue: str, *, gpus: int = 8) -> JobSpec:
    """A job as the gRPC edge hands it on: its owner recorded from the caller's identity."""
    return stamp_owner(replace(spec(name, gpus=gpus), queue=queue), Principal(user))


def kubectl(name: str, namespace: str, queue: str) -> JobSpec:
    """A job of a FederatedJob made with kubectl: no user recorded."""
    return replace(spec(name), queue=queue, namespace=namespace)


def rejected(fed: Federator, reason: str) -> float:
    return fed.metrics.registry.get_sample_value("federator_messages_rejected_total", {"reason": reason}) or 0.0


def test_a_user_at_the_cap_over_several_queues_is_refused_while_another_user_is_accepted() -> None:
    fed = make(MemoryStore(), Clock(), limits=Limits(max_pending_jobs_per_user=3, queue_full_retry_seconds=3))
    for i in range(3):  # three invented queues, each far from its own cap
        fed.submit(by("mallory", f"flood-{i}", f"flood-{i}"))
    with pytest.raises(UserPendingLimit) as refused:
        fed.submit(by("mallory", "flood-3", "flood-3"))
    other = fed.submit(by("alice", "paper-0", "flood-3"))  # another user, even in that queue, is not affected

    said = str(refused.value)
    assert "user 'mallory' is at its cap of pending jobs: 3 of its jobs are pending over all queues" in said
    assert "its limit is 3 (--max-pending-jobs-per-user)" in said and "retry after 3s" in said
    assert "other users are held to theirs" in said
    assert isinstance(refused.value, QueueFull) and refused.value.retry_after == 3  # every edge's back-pressure
    assert (refused.value.owner, refused.value.pending, refused.value.limit) == (Submitter(user="mallory"), 3, 3)
    assert other.phase is JobPhase.PENDING and len(fed.jobs) == 4  # the refused job holds nothing
    assert rejected(fed, "user_pending_limit") == 1
    assert rejected(fed, "queue_pending_limit") == rejected(fed, "queue_full") == 0
    assert fed.cycles.by_owner.count(Submitter(user="mallory")) == 3
    assert fed.cycles.by_owner.count(Submitter(user="alice")) == 1


@pytest.mark.parametrize(("limits", "refusal", "said"), [
    pytest.param(Limits(max_pending_jobs=2, max_pending_jobs_per_queue=2, max_pending_jobs_per_user=2), QueueFull,
                 "the federator's queue is full", id="the-federator's-first"),
    pytest.param(Limits(max_pending_jobs_per_queue=2, max_pending_jobs_per_user=2), QueuePendingLimit,
                 "queue 'flood' is full", id="then-the-queue's"),
    pytest.param(Limits(max_pending_jobs_per_queue=3, max_pending_jobs_per_user=2), UserPendingLimit,
                 "user 'mallory' is at its cap", id="then-the-user's"),
])
def test_the_caps_are_checked_federator_queue_then_user(limits: Limits, refusal: type[QueueFull], said: str) -> None:
    fed = make(MemoryStore(), Clock(), limits=limits)
    fed.submit(by("mallory", "flood-0", "flood"))
    fed.submit(by("mallory", "flood-1", "flood"))
    with pytest.raises(QueueFull) as refused:
        fed.submit(by("mallory", "flood-2", "flood"))
    assert type(refused.value) is refusal and said in str(refused.value)
    # Back-pressure refuses a valid job: not among the invalid submissions (federator_jobs_rejected_total, whose
    # docs say "refused as invalid"), which counted every cap's refusal too.
    assert sum(rejected(fed, r) for r in ("queue_full", "queue_pending_limit", "user_pending_limit")) == 1
    assert fed.metrics.registry.get_sample_value("federator_jobs_rejected_total") == 0
    with pytest.raises(SubmitError):
        fed.submit(replace(by("mallory", "bad", "flood"), replicas=0))
    assert fed.metrics.registry.get_sample_value("federator_jobs_rejected_total") == 1


def test_a_federatedjob_made_with_kubectl_counts_against_its_namespace_not_a_user_of_that_name() -> None:
    fed = make(MemoryStore(), Clock(), limits=Limits(max_pending_jobs_per_user=2))
    fed.submit(kubectl("a-0", "team-a", "q-0"))
    fed.submit(kubectl("a-1", "team-a", "q-1"))
    with pytest.raises(UserPendingLimit) as refused:
        fed.submit(kubectl("a-2", "team-a", "q-2"))
    fed.submit(kubectl("b-0", "team-b", "q-2"))  # another namespace
    fed.submit(by("team-a", "u-0", "q-2"))  # a user named like the namespace is another owner
    said = str(refused.value)
    assert "namespace 'team-a' is at its cap of pending jobs: 2 of its jobs are pending over all queues" in said
    assert "a FederatedJob made with kubectl has no user, so its namespace stands for one" in said
    assert "other namespaces and users are held to theirs" in said
    assert refused.value.owner == Submitter(namespace="team-a")
    assert fed.cycles.by_owner.count(Submitter(user="team-a")) == 1


def test_the_owners_count_follows_jobs_placed_cancelled_finished_and_requeued() -> None:
    """As a queue's count, with each job in a queue of its own: the owner's count is over all of them."""
    fed = make(MemoryStore(), Clock(), limits=Limits(max_pending_jobs_per_user=2))
    walk_a_pending_count(fed, lambda name, gpus: by("mallory", name, f"q-{name}", gpus=gpus),
                         lambda: fed.cycles.by_owner.count(Submitter(user="mallory")), UserPendingLimit,
                         fed.cycles.by_owner)


def test_a_restart_counts_each_owners_pending_jobs() -> None:
    store, clock = MemoryStore(), Clock()
    fed = make(store, clock, limits=Limits(max_pending_jobs_per_user=2))
    fed.submit(by("mallory", "a-0", "q-0"))
    fed.submit(by("mallory", "a-1", "q-1"))
    again = make(store, clock, limits=Limits(max_pending_jobs_per_user=2))
    assert again.cycles.by_owner.count(Submitter(user="mallory")) == 2
    with pytest.raises(UserPendingLimit):
        again.submit(by("mallory", "a-2", "q-2"))


def test_a_job_whose_write_failed_is_not_counted_against_its_owner() -> None:
    class FullDisk(MemoryStore):
        def put(self, jobs: object) -> None:
            raise StoreUnavailable("disk full")

    fed = make(FullDisk(), Clock(), limits=Limits(max_pending_jobs_per_user=1))
    for _ in range(2):
        with pytest.raises(StoreUnavailable):
            fed.submit(by("mallory", "a-0", "q-0"))
    assert fed.cycles.by_owner.count(Submitter(user="mallory")) == 0


def test_without_the_flag_a_user_may_hold_half_the_federators_pending_jobs_whatever_the_per_queue_flag() -> None:
    """Half, as a queue's default: a single-user federation keeps the room one queue has. Never the per-queue
    flag: every caller of an insecure federator is the one user 'anonymous', and a small per-queue cap there
    would have become one small cap on all of them."""
    assert Limits().pending_per_user == 125_000
    assert Limits(max_pending_jobs_per_queue=1).pending_per_user == 125_000
    assert Limits(max_pending_jobs=1).pending_per_user == 1
    with pytest.raises(ValueError, match="max_pending_jobs_per_user: must be at least 1, got 0"):
        Limits(max_pending_jobs_per_user=0)
    fed = make(MemoryStore(), Clock(), limits=Limits(max_pending_jobs=4, max_pending_jobs_per_queue=4))
    fed.submit(by("mallory", "a-0", "a"))
    fed.submit(by("mallory", "a-1", "b"))
    with pytest.raises(UserPendingLimit, match="by default half of --max-pending-jobs"):
        fed.submit(by("mallory", "a-2", "c"))


def test_over_grpc_the_caller_is_the_owner_and_is_told_resource_exhausted_with_a_retry_after(tmp_path: Path) -> None:
    """Two bearer tokens, two users: the owner is the caller's identity (stamp_owner), not what the spec says."""

    async def scenario() -> tuple[grpc.aio.AioRpcError, str]:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"),
                        limits=Limits(max_pending_jobs_per_user=2, queue_full_retry_seconds=2))
        auth = Authenticator(tokens=(Token("m-secret", "mallory"), Token("a-secret", "alice")))

        def request(name: str, queue: str, **annotations: str) -> jobs_pb2.SubmitRequest:
            job = replace(spec(name, gpus=1, **annotations), queue=queue)
            return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(job))

        try:
            async with job_api_by_token(fed, auth, tmp_path / "certs") as stub:
                mallory = stub("m-secret")
                await mallory.Submit(request("flood-0", "flood-0"), timeout=5)
                await mallory.Submit(request("flood-1", "flood-1"), timeout=5)
                with pytest.raises(grpc.aio.AioRpcError) as refused:  # claiming to be another user changes nothing
                    await mallory.Submit(request("flood-2", "flood-2", **{"federator.io/user": "alice"}), timeout=5)
                other = (await stub("a-secret").Submit(request("paper", "flood-2"), timeout=5)).job.job_id
        finally:
            fed.store.close()
        return refused.value, other

    refused, other = asyncio.run(scenario())
    assert refused.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "user 'mallory' is at its cap of pending jobs: 2 of its jobs are pending" in (refused.details() or "")
    assert dict(refused.trailing_metadata() or ())["retry-after"] == "2"
    assert other.startswith("paper-")


def test_the_last_tenth_of_the_room_is_kept_for_owners_who_hold_little() -> None:
    """Outside QA M3: two users of one organisation, each within the per-user cap (half of the whole by default),
    filled --max-pending-jobs, and every other tenant's Submit was refused. The last tenth is kept for owners
    holding fewer than a tenth of the room."""
    fed = make(MemoryStore(), Clock(), limits=Limits(max_pending_jobs=20, queue_full_retry_seconds=3))
    for i in range(10):
        fed.submit(by("alice", f"a-{i}", f"q-{i}"))
    for i in range(8):
        fed.submit(by("alice2", f"b-{i}", f"r-{i}"))
    with pytest.raises(QueueFull) as refused:  # 18 of 20 pending: alice2 holds 8, not fewer than 2
        fed.submit(by("alice2", "b-8", "r-8"))
    assert str(refused.value) == ("the federator's queue is nearly full: 18 jobs are pending, its limit is 20 "
                                  "(--max-pending-jobs), and the last 2 are kept for owners holding fewer than 2; "
                                  "user 'alice2' holds 8; retry after 3s")
    assert not isinstance(refused.value, UserPendingLimit)
    fed.submit(by("bob", "own-0", "qb"))  # another tenant still gets in, up to the tenth
    fed.submit(by("carol", "own-1", "qc"))
    with pytest.raises(QueueFull, match="the federator's queue is full: 20 jobs are pending"):
        fed.submit(by("dave", "own-2", "qd"))
