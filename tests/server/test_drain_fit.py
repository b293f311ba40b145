"""A drain's reply names the jobs no other cluster has room for now (server/drain_fit.py), and its dry run says so
without changing anything: over real gRPC, an admin's dry run, then the drain."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from test_services_edge import channel, served

from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.model import ClusterAffinity, JobKind
from federator.model.cordon import Cordon
from federator.server.drain_fit import NoRoom, no_room_elsewhere
from federator.server.federator import Federator
from federator.store import SqliteJobStore

from builders import cluster, job, pool

H100 = "NVIDIA-H100-80GB-HBM3"


def fleet(*, west_nodes: int, fed: Federator | None = None) -> Federator:
    """east-1 runs a gang of 8 H100s and a serving job's two 8-H100 replicas; west-1 has `west_nodes` free nodes."""
    fed = fed or Federator(store=SqliteJobStore(Path(":memory:")))
    fed.report(fed.connect(cluster="east-1", region="east", labels={}),
               cluster("east-1", "east", pool(H100, nodes=3)).capacity)
    fed.submit(job("train", gpus=8))
    fed.submit(job("serve", kind=JobKind.INFERENCE, replicas=2, gpus=8))
    fed.schedule_once()
    assert sorted(p.cluster for j in fed.jobs.values() for p in j.placements) == ["east-1", "east-1"]
    if west_nodes:
        fed.report(fed.connect(cluster="west-1", region="west", labels={}),
                   cluster("west-1", "west", pool(H100, nodes=west_nodes)).capacity)
    return fed


def ids(fed: Federator, *names: str) -> tuple[str, ...]:
    by_name = {j.spec.name: str(j.job_id) for j in fed.jobs.values()}
    return tuple(by_name[n] for n in names)


def named(fed: Federator) -> NoRoom:
    return asyncio.run(no_room_elsewhere(fed, "east-1", fed.drains.left("east-1")))


def test_the_jobs_no_other_cluster_has_room_for_are_named_a_serving_job_placed_in_part_too() -> None:
    fed = fleet(west_nodes=0)
    assert named(fed) == NoRoom(2, tuple(str(j.job_id) for j in fed.drains.left("east-1")))  # nowhere at all
    fed = fleet(west_nodes=3)
    assert named(fed) == NoRoom()  # room for the gang and both replicas
    fed = fleet(west_nodes=2)
    got = named(fed)
    assert got.count == 1 and got.job_ids[0] in ids(fed, "train", "serve")  # room for two of the three asked
    fed = fleet(west_nodes=1)
    assert ids(fed, "serve")[0] in named(fed).job_ids  # one replica of two fits: still left short, so named


def test_a_cluster_whose_maintenance_window_a_job_would_cross_is_no_room_for_it() -> None:
    """west-1 has room for both jobs, but its maintenance begins tomorrow and neither job has a run bound: the cycle
    would place neither there (scheduler/maintenance_window.py), so the drain's what-if names both, as it does when
    west-1 has no room at all. Before, the what-if was not told of windows and said they had somewhere to go."""
    fed = fleet(west_nodes=3)
    assert named(fed) == NoRoom()
    now = fed.clock()
    window = Cordon("admin", now, "switch firmware", window_from=now + 86_400, window_until=now + 90_000)
    assert asyncio.run(fed.cordons.cordon("west-1", window))
    assert named(fed) == NoRoom(2, tuple(str(j.job_id) for j in fed.drains.left("east-1")))


def test_a_dry_run_changes_nothing_and_says_which_jobs_would_be_left_pending() -> None:
    async def main() -> None:
        async with served() as s, channel(s.target) as ch:
            fed = fleet(west_nodes=1, fed=s.fed)
            clusters = jobs_pb2_grpc.ClusterServiceStub(ch)
            dry = await clusters.Drain(jobs_pb2.DrainClusterRequest(cluster="east-1", reason="swap", dry_run=True))
            assert (dry.dry_run, dry.changed, dry.jobs, dry.drained_by, dry.surge_seconds) == \
                (True, False, 2, "", 600.0)
            assert fed.cordons.names() == frozenset() and fed.drains.left("east-1")  # nothing changed
            assert dry.no_room_elsewhere >= 1 and ids(fed, "serve")[0] in dry.no_room_elsewhere_job_ids
            reply = await clusters.Drain(jobs_pb2.DrainClusterRequest(cluster="east-1", reason="swap"))
            assert (reply.dry_run, reply.changed, reply.jobs) == (False, True, 2)
            assert list(reply.no_room_elsewhere_job_ids) == list(dry.no_room_elsewhere_job_ids)
            again = await clusters.Drain(jobs_pb2.DrainClusterRequest(cluster="east-1", dry_run=True))
            assert (again.changed, again.drained_by, again.reason) == (False, "anonymous", "swap")

    asyncio.run(main())


def test_a_job_following_another_of_the_drain_by_same_as_is_judged_beside_where_that_one_would_go() -> None:
    """new60b N4: a rollout whose spec.clusters.sameAs names the learner on the drained cluster was named as fitting
    nowhere (the what-if read the learner as holding nothing), though it follows the learner to west-1."""
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    fed.report(fed.connect(cluster="east-1", region="east", labels={}),
               cluster("east-1", "east", pool(H100, nodes=2)).capacity)
    learner = fed.submit(job("learner", gpus=8))
    fed.schedule_once()
    rollout = fed.submit(replace(job("rollout", kind=JobKind.INFERENCE, gpus=8),
                                 clusters=ClusterAffinity(same_as=(str(learner.job_id),))))
    fed.schedule_once()
    assert [p.cluster for j in (learner, rollout) for p in fed.jobs[j.job_id].placements] == ["east-1", "east-1"]
    fed.report(fed.connect(cluster="west-1", region="west", labels={}),
               cluster("west-1", "west", pool(H100, nodes=2)).capacity)
    assert named(fed) == NoRoom()  # the learner fits west-1, and the rollout beside it
    fed.report(fed.connect(cluster="west-1", region="west", labels={}),
               cluster("west-1", "west", pool(H100, nodes=1)).capacity)
    assert named(fed) == NoRoom(1, (str(rollout.job_id),))  # room for the learner alone: no room beside it
