"""Byte budgets: one user's unfinished jobs, and everyone's, may weigh only so much (red team F01).

Every cap counted jobs, none bytes: 300 near-limit pending jobs of one user grew the federator by 195 MB of RAM
and 221 MB of SQLite, and a user may have 125,000 pending. Submit now also checks the new job's spec, as the store
writes it, against `--max-unfinished-bytes-per-user` and `--max-unfinished-bytes`, read from sums kept as jobs
are accepted and finish (server/job_bytes.py), never a scan.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from server_support import Clock, MemoryStore, join, make, spec

from federator.model import JobId, JobPhase, JobSpec
from federator.security.authz import Principal, Submitter, stamp_owner
from federator.security.limits import Limits
from federator.server.federator import Federator
from federator.server.intake import ByteBudgetFull, QueueFull, SubmitError
from federator.server.job_bytes import UnfinishedBytes
from federator.server.retention import Retention, RetentionPolicy
from federator.store import StoreUnavailable
from federator.store.codec import spec_bytes
from federator.store.sqlite import SqliteJobStore

FAT = 10_000  # bytes of annotation that make a job "fat"


def fat(user: str, name: str, *, gpus: int = 8, pad: int = FAT) -> JobSpec:
    """A job as the gRPC edge hands it on (owner recorded), padded with an annotation of `pad` bytes."""
    return stamp_owner(spec(name, gpus=gpus, pad="x" * pad), Principal(user))


SIZE = spec_bytes(fat("mallory", "m-0"))  # every fat job of a name this long weighs this


def rejected(fed: Federator, reason: str) -> float:
    return fed.metrics.registry.get_sample_value("federator_messages_rejected_total", {"reason": reason}) or 0.0


def held(fed: Federator, user: str) -> int:
    return fed.intake.bytes.owner(Submitter(user=user))


def test_a_user_past_the_byte_budget_is_refused_naming_it_while_another_user_is_accepted() -> None:
    fed = make(MemoryStore(), Clock(), limits=Limits(max_unfinished_bytes_per_user=3 * SIZE - 1,
                                                    queue_full_retry_seconds=3))
    fed.submit(fat("mallory", "m-0"))
    fed.submit(fat("mallory", "m-1"))
    with pytest.raises(ByteBudgetFull) as refused:
        fed.submit(fat("mallory", "m-2"))
    other = fed.submit(fat("alice", "a-0"))
    said = str(refused.value)
    assert f"user 'mallory' is at its byte budget: its unfinished (pending, placed, running) jobs' specs take " \
           f"{2 * SIZE} bytes and this one {SIZE}, over its limit of {3 * SIZE - 1} " \
           "(--max-unfinished-bytes-per-user); retry after 3s" in said
    assert "other users are held to theirs" in said
    assert isinstance(refused.value, QueueFull) and refused.value.retry_after == 3  # RESOURCE_EXHAUSTED, waits
    assert other.phase is JobPhase.PENDING and len(fed.jobs) == 3  # the refused job holds nothing
    assert held(fed, "mallory") == 2 * SIZE and held(fed, "alice") == spec_bytes(other.spec)
    assert fed.intake.bytes.total == 2 * SIZE + spec_bytes(other.spec)
    assert rejected(fed, "user_pending_limit") == 1  # a user's cap, as the count's: the alert already covers it
    assert fed.metrics.registry.get_sample_value("federator_jobs_rejected_total") == 0  # not an invalid job


def test_the_federators_byte_budget_bounds_every_user_together() -> None:
    fed = make(MemoryStore(), Clock(), limits=Limits(max_unfinished_bytes=2 * SIZE))
    fed.submit(fat("mallory", "m-0"))
    fed.submit(fat("mallory", "m-1"))
    with pytest.raises(ByteBudgetFull) as refused:
        fed.submit(fat("mallor2", "m-2"))
    assert refused.value.owner is None
    assert f"the federator is at its byte budget: its unfinished jobs' specs take {2 * SIZE} bytes and this one " \
           f"{SIZE}, over its limit of {2 * SIZE} (--max-unfinished-bytes)" in str(refused.value)
    assert rejected(fed, "queue_full") == 1


def test_a_job_bigger_than_a_budget_by_itself_is_refused_as_invalid_not_told_to_wait() -> None:
    """Waiting never makes room for it: a FederatedJob told QueueFull would be tried again forever."""
    fed = make(MemoryStore(), Clock(), limits=Limits(max_unfinished_bytes_per_user=SIZE - 1))
    with pytest.raises(SubmitError) as refused:
        fed.submit(fat("mallory", "m-0"))
    assert not isinstance(refused.value, QueueFull)
    assert f"spec: the job weighs {SIZE} bytes as stored, over --max-unfinished-bytes-per-user ({SIZE - 1}) by " \
           "itself" in str(refused.value)
    assert rejected(fed, "limit_exceeded") == 1 and len(fed.jobs) == 0 and held(fed, "mallory") == 0


def test_a_kubectl_jobs_bytes_count_against_its_namespace() -> None:
    fed = make(MemoryStore(), Clock(), limits=Limits(max_unfinished_bytes_per_user=SIZE + 100))
    fed.submit(replace(spec("k-0", pad="x" * FAT), namespace="team-a"))
    with pytest.raises(ByteBudgetFull) as refused:
        fed.submit(replace(spec("k-1", pad="x" * FAT), namespace="team-a"))
    fed.submit(fat("team-a", "u-0"))  # a user named like the namespace is another owner
    assert "namespace 'team-a' is at its byte budget" in str(refused.value)
    assert "a FederatedJob made with kubectl has no user, so its namespace stands for one" in str(refused.value)


def test_the_bytes_follow_a_job_until_it_finishes_placed_running_requeued_succeeded_failed_cancelled() -> None:
    """Unfinished, not only pending: a placed or running job's spec is held as much as a pending one's."""
    clock = Clock()
    fed = make(MemoryStore(), clock, limits=Limits(max_unfinished_bytes_per_user=3 * SIZE))
    rec = join(fed, "x")  # 4 nodes of 8 free H100
    jobs = [fed.submit(fat("mallory", f"m-{i}")) for i in range(3)]
    with pytest.raises(ByteBudgetFull):
        fed.submit(fat("mallory", "m-3"))
    fed.schedule_once()
    assert all(j.phase is JobPhase.PLACED for j in jobs) and held(fed, "mallory") == 3 * SIZE  # placed: held
    with pytest.raises(ByteBudgetFull):
        fed.submit(fat("mallory", "m-3"))
    ids = [j.placements[0].placement_id for j in jobs]
    for pid in ids:
        fed.job_update(rec, pid, JobPhase.RUNNING, "running")
    fed.job_update(rec, ids[0], JobPhase.CANCELLED, "evicted")  # the member stopped it: re-queued, still held
    assert jobs[0].phase is JobPhase.PENDING and held(fed, "mallory") == 3 * SIZE
    fed.job_update(rec, ids[1], JobPhase.SUCCEEDED, "done")
    assert held(fed, "mallory") == 2 * SIZE
    fed.submit(fat("mallory", "m-3"))  # room again
    clock.now += 3600  # after an hour's run Failed is final (an early failure would place the job once more)
    fed.job_update(rec, ids[2], JobPhase.FAILED, "oom")
    fed.cancel(jobs[0].job_id)  # pending, cancelled
    assert held(fed, "mallory") == SIZE
    fed.cancel(jobs[1].job_id)  # already finished: nothing changes
    assert held(fed, "mallory") == SIZE and len(fed.intake.bytes) == 1 and fed.intake.bytes.total == SIZE


def test_removing_finished_jobs_changes_nothing_and_a_failed_write_is_never_counted(tmp_path: Path) -> None:
    clock, store = Clock(), SqliteJobStore(tmp_path / "jobs.db")
    fed = make(store, clock, limits=Limits(max_unfinished_bytes_per_user=2 * SIZE))  # type: ignore[arg-type]
    done = fed.submit(fat("mallory", "m-0"))
    waiting = fed.submit(fat("mallory", "m-1"))
    fed.cancel(done.job_id)
    clock.now += 10
    removed = asyncio.run(Retention(fed, RetentionPolicy(ttl_seconds=1, max_per_owner=0)).sweep())
    assert removed == [done.job_id] and held(fed, "mallory") == SIZE and waiting.job_id in fed.jobs
    store.close()

    class FullDisk(MemoryStore):
        def put(self, jobs: object) -> None:
            raise StoreUnavailable("disk full")

    full = make(FullDisk(), Clock(), limits=Limits(max_unfinished_bytes_per_user=SIZE))
    for _ in range(2):
        with pytest.raises(StoreUnavailable):
            full.submit(fat("mallory", "m-0"))
    assert held(full, "mallory") == 0 and full.intake.bytes.total == 0


def test_a_restart_counts_the_unfinished_jobs_it_loads_and_not_the_finished(tmp_path: Path) -> None:
    store, clock = SqliteJobStore(tmp_path / "jobs.db"), Clock()
    fed = make(store, clock, limits=Limits(max_unfinished_bytes_per_user=2 * SIZE))  # type: ignore[arg-type]
    rec = join(fed, "x")
    running = fed.submit(fat("mallory", "m-0"))
    fed.schedule_once()
    fed.job_update(rec, running.placements[0].placement_id, JobPhase.RUNNING, "running")
    fed.submit(fat("mallory", "m-1", gpus=64, pad=FAT - 1))  # no node has 64: pending (one digit more, one pad less)
    fed.cancel(fed.submit(fat("mallor2", "a-0")).job_id)
    again = make(store, clock, limits=Limits(max_unfinished_bytes_per_user=2 * SIZE))  # type: ignore[arg-type]
    assert held(again, "mallory") == 2 * SIZE and held(again, "mallor2") == 0 and again.intake.bytes.total == 2 * SIZE
    with pytest.raises(ByteBudgetFull):
        again.submit(fat("mallory", "m-2"))
    store.close()


def test_a_job_counts_what_the_store_writes_for_its_spec(tmp_path: Path) -> None:
    """The JSON the SQLite store keeps, escapes and all: quotes and non-ASCII weigh what they take on disk."""
    store = SqliteJobStore(tmp_path / "jobs.db")
    fed = make(store, Clock())  # type: ignore[arg-type]
    job = fed.submit(stamp_owner(spec("m-0", pad='"\u00e9\U0001f600' * 100), Principal("mallory")))
    (doc,) = sqlite3.connect(tmp_path / "jobs.db").execute("SELECT doc FROM jobs").fetchone()
    stored = json.dumps(json.loads(doc)["spec"], separators=(",", ":"))
    assert stored in doc and held(fed, "mallory") == len(stored.encode()) == spec_bytes(job.spec)
    store.close()


def test_entering_or_leaving_twice_changes_nothing() -> None:
    counts = UnfinishedBytes()
    owner = Submitter(user="u")
    job_id = JobId("j-1")
    counts.enter(job_id, owner, 100)
    counts.enter(job_id, owner, 100)
    assert counts.owner(owner) == counts.total == 100 and len(counts) == 1
    counts.leave(job_id)
    counts.leave(job_id)
    assert counts.owner(owner) == counts.total == 0 and len(counts) == 0


def test_the_serve_flags_set_the_budgets_and_a_bad_value_is_refused_naming_the_flag() -> None:
    from federator.cli import build_parser
    from federator.cli.serve import _limits

    args = build_parser().parse_args(["serve", "--max-unfinished-bytes-per-user", "1000",
                                      "--max-unfinished-bytes", "5000"])
    limits = _limits(args)
    assert (limits.max_unfinished_bytes_per_user, limits.max_unfinished_bytes) == (1000, 5000)
    assert (Limits().max_unfinished_bytes_per_user, Limits().max_unfinished_bytes) == (256 << 20, 4 << 30)
    with pytest.raises(ValueError, match="--max-unfinished-bytes-per-user: must be at least 1, got 0"):
        _limits(build_parser().parse_args(["serve", "--max-unfinished-bytes-per-user", "0"]))
