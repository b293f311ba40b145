"""ClusterService.CancelOrphans and ClusterStatus.orphan_placements over the real gRPC API with mTLS (0.16.0).

An orphan (server/orphans.py) was held for --orphan-grace and counted only in federator_orphan_placements: a user
saw nothing in `get clusters`, and an admin who had decided there was no store to restore could free the
accelerators only by restarting the federator with --orphan-grace 0. Now List says each cluster's count, and an
admin cancels them now (server/orphan_cancel.py): refused to anyone else, audited, recorded until the member
confirms."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from test_tenancy_api import Served, served

from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.model import ClusterCapacity, JobPhase
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue
from federator.security.tls import user_files

from builders import cluster, pool
from support import cancels_sent

GRACE = 1800.0
A, B, C = "lost-a.g1.east-1", "lost-b.g1.east-1", "lost-c.g1.west-1"  # jobs the store has no record of


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertsDir:
    c = CertsDir(tmp_path_factory.mktemp("certs"))
    init_ca(c)
    for user in ("alice", "admin"):
        issue(c, Identity(IdentityKind.USER, user))
    return c


def reported(*placement_ids: str) -> ClusterCapacity:
    return replace(cluster("x", "r", pool("NVIDIA-H100", nodes=2)).capacity, placement_ids=frozenset(placement_ids))


@asynccontextmanager
async def clusters(s: Served, certs: CertsDir, user: str) -> AsyncIterator[jobs_pb2_grpc.ClusterServiceStub]:
    async with grpc.aio.secure_channel(s.target, user_files(certs, user).channel_credentials()) as ch:
        yield jobs_pb2_grpc.ClusterServiceStub(ch)


async def counts(stub: jobs_pb2_grpc.ClusterServiceStub) -> dict[str, int]:
    return {c.name: c.orphan_placements for c in (await stub.List(jobs_pb2.ListClustersRequest())).clusters}


def test_an_admin_cancels_a_clusters_orphans_now_and_every_caller_sees_the_count(certs: CertsDir,
                                                                                tmp_path: Path) -> None:
    async def main() -> None:
        async with served(certs, tmp_path) as s, clusters(s, certs, "alice") as alice, \
                clusters(s, certs, "admin") as admin:
            fed = s.fed
            fed.orphans.grace = GRACE  # as `serve` has it by default: held, not cancelled
            east = fed.connect(cluster="east-1", region="east", labels={})
            west = fed.connect(cluster="west-1", region="west", labels={})
            fed.report(east, reported(A, B))
            fed.report(west, reported(C))
            assert cancels_sent(east) == {} and cancels_sent(west) == {}
            assert await counts(alice) == {"east-1": 2, "west-1": 1}  # a count names no job: anyone sees it

            with pytest.raises(grpc.aio.AioRpcError) as err:
                await alice.CancelOrphans(jobs_pb2.CancelOrphansRequest(cluster="east-1"))
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert err.value.details() == ("cancel --orphans: only an admin may cancel a member cluster's orphans "
                                           "(rule: admin)")
            assert cancels_sent(east) == {} and fed.orphans.count("east-1") == 2

            reply = await admin.CancelOrphans(jobs_pb2.CancelOrphansRequest(cluster="east-1"))
            assert reply.cancelled == 2
            assert [(c.cluster, c.cancelled, list(c.placement_ids)) for c in reply.clusters] == [
                ("east-1", 2, [A, B])]
            why = "orphan: cancelled by admin (federator cancel --orphans)"
            assert cancels_sent(east) == {A: why, B: why} and cancels_sent(west) == {}
            assert await counts(alice) == {"east-1": 0, "west-1": 1}

            # The member has not stopped them yet: its next report still names them, and is answered with the
            # Cancel again (the cancel is recorded), not held as orphans anew.
            fed.report(east, reported(A, B))
            assert set(cancels_sent(east)) == {A, B} and fed.orphans.count("east-1") == 0
            fed.job_update(east, A, JobPhase.CANCELLED, "cancelled")
            fed.report(east, reported(B))
            assert set(cancels_sent(east)) == {B}

            again = await admin.CancelOrphans(jobs_pb2.CancelOrphansRequest(cluster="east-1"))  # a retry
            assert (again.cancelled, list(again.clusters)) == (0, [])
            every = await admin.CancelOrphans(jobs_pb2.CancelOrphansRequest())  # no cluster: every one
            assert [(c.cluster, c.cancelled) for c in every.clusters] == [("west-1", 1)]
            assert cancels_sent(west) == {C: why}

            for asked, code, said in (
                    ("East_1", grpc.StatusCode.INVALID_ARGUMENT, "cluster: 'East_1' is not a member cluster's name"),
                    ("north-1", grpc.StatusCode.NOT_FOUND, "cancel --orphans: cluster 'north-1' is not a member "
                                                           "cluster this federator knows")):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await admin.CancelOrphans(jobs_pb2.CancelOrphansRequest(cluster=asked))
                assert err.value.code() == code and (err.value.details() or "").startswith(said), err.value

            lines = [(line["identity"]["user"], line["object"], line["result"], line["code"])  # type: ignore[index]
                     for line in s.audit() if line["action"] == "cancel.orphans"]
            assert lines == [
                ("alice", {"kind": "MemberCluster", "name": "east-1"}, "refused", "PERMISSION_DENIED"),
                ("admin", {"kind": "MemberCluster", "name": "east-1", "cancelled": 2}, "accepted", "OK"),
                ("admin", {"kind": "MemberCluster", "name": "east-1", "cancelled": 0}, "unchanged", "OK"),
                ("admin", {"kind": "MemberCluster", "name": "", "cancelled": 1}, "accepted", "OK"),
                ("admin", {"kind": "MemberCluster", "name": "East_1"}, "failed", "INVALID_ARGUMENT"),
                ("admin", {"kind": "MemberCluster", "name": "north-1"}, "failed", "NOT_FOUND")]

    asyncio.run(main())
