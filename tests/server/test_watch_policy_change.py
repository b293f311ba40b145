"""A numbered Watch across a change of the access policy, over real gRPC (outside QA, portal re-test N8): a
policy reload that takes a user out of a group leaves jobs they may no longer see, and no removal is ever sent
for them, so the portal kept showing them. A numbered Watch open across the change is ended OUT_OF_RANGE ("list
again"), a resume from before it gets the same answer, and an old-style Watch (it re-checks the caller per job)
stays open."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from server_support import Clock, JobStub, job_api_by_token, read_watch, submit_request

from federator.api.v1 import jobs_pb2
from federator.security.auth import Authenticator, Token
from federator.security.authz import Authorizer
from federator.server.federator import Federator
from federator.server.policy_file import PolicyFile
from federator.server.policy_use import use_policy
from federator.server.reloads import Reloads
from federator.store import SqliteJobStore

TOGETHER = """
tenancy:
  admins: {users: [root]}
  groups: {team-a: {users: [alice, bob]}}
queues:
  default: {weight: 1, access: {users: [alice, bob]}}
"""
# bob leaves team-a: alice's jobs leave his view
APART = TOGETHER.replace("team-a: {users: [alice, bob]}", "team-a: {users: [alice]}")


@dataclass
class Bed:
    fed: Federator
    reloads: Reloads
    stub: Callable[[str], JobStub]


@asynccontextmanager
async def _served(tmp_path: Path) -> AsyncIterator[Bed]:
    """The job service over TLS, alice and bob known by token, the policy file TOGETHER under a reloader."""
    path = tmp_path / "policy.yaml"
    path.write_text(TOGETHER)
    policy = PolicyFile(path)
    fed = Federator(store=SqliteJobStore(tmp_path / "f.db"), clock=Clock())
    authz = Authorizer(policy.current.tenancy)
    policy.subscribe(lambda old, new: use_policy(old, new, fed=fed, authz=authz))
    reloads = Reloads(fed.metrics, trust=None, serving=None, policy=policy)
    auth = Authenticator(tokens=(Token("a-secret", "alice"), Token("b-secret", "bob")))
    try:
        async with job_api_by_token(fed, auth, tmp_path / "certs", authz=authz) as stub:
            yield Bed(fed, reloads, stub)
    finally:
        fed.store.close()


async def _ended(watch: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async with asyncio.timeout(10):
            while True:
                await watch.read()  # type: ignore[attr-defined]
    return err.value


def test_a_numbered_watch_open_across_a_policy_change_and_a_resume_from_before_it_are_told_to_list_again(
        tmp_path: Path) -> None:
    async def main() -> None:
        async with _served(tmp_path) as bed:
            alice, bob = bed.stub("a-secret"), bed.stub("b-secret")
            ids = [(await alice.Submit(submit_request(n))).job.job_id for n in ("a", "b")]
            watch = bob.Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True))
            snapshot = await read_watch(watch, 3)
            assert [m.job_id for m in snapshot[:2]] == ids and snapshot[2].bookmark  # team-a: bob sees alice's
            resume_at = snapshot[2].revision
            bed.reloads.policy.path.write_text(APART)  # type: ignore[union-attr]
            bed.reloads.look()
            changed_at = bed.fed.history.policy_at
            assert changed_at > resume_at
            said = f"the access policy changed at revision {changed_at}"
            ended = await _ended(watch)
            assert ended.code() == grpc.StatusCode.OUT_OF_RANGE and said in (ended.details() or "")
            assert "list again" in (ended.details() or "")
            resumed = await _ended(bob.Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True,
                                                                       since_revision=resume_at)))
            assert resumed.code() == grpc.StatusCode.OUT_OF_RANGE and said in (resumed.details() or "")
            # Listing again is the new truth: alice's jobs are no longer there, and a resume from it is taken.
            again = bob.Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True))
            (bookmark,) = await read_watch(again, 1)
            assert bookmark.bookmark and bookmark.revision >= changed_at
            again.cancel()
            later = bob.Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True, since_revision=bookmark.revision))
            mine = (await bob.Submit(submit_request("c"))).job.job_id
            assert [m.job_id for m in await read_watch(later, 2) if not m.bookmark][:1] == [mine]
            later.cancel()

    asyncio.run(main())


def test_an_old_style_watch_is_not_ended_by_a_policy_change(tmp_path: Path) -> None:
    async def main() -> None:
        async with _served(tmp_path) as bed:
            alice, bob = bed.stub("a-secret"), bed.stub("b-secret")
            first = (await alice.Submit(submit_request("a"))).job.job_id
            watch = bob.Watch(jobs_pb2.WatchJobsRequest())
            assert [m.job_id for m in await read_watch(watch, 1)] == [first]
            bed.reloads.policy.path.write_text(APART)  # type: ignore[union-attr]
            bed.reloads.look()
            await alice.Submit(submit_request("b"))  # no longer bob's to see: not sent
            mine = (await bob.Submit(submit_request("c"))).job.job_id
            (got,) = await read_watch(watch, 1)
            assert got.job_id == mine and not got.revision
            watch.cancel()

    asyncio.run(main())
