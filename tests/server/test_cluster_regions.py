"""A member cluster's region is the one it registered with: an agent claiming another is refused (cluster_regions.py).

Outside compliance QA C2: west-1's agent restarted with `--region east` relabelled west-1 at once (an INFO line, no
audit line, no metric), and a job fenced to east ran in the west data centre under a record saying `region: east`.
Real gRPC over loopback: the federator's AgentService and ClusterService with an audit log, real agents with the
simulated backend.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from agent_stream import AgentStream

from federator.agent.agent import Agent, AgentConfig
from federator.api.v1 import agent_pb2, agent_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from federator.backends.sim.fleet import parse_fleet
from federator.backends.sim.runtime import SimBackend
from federator.jobfile import parse_job
from federator.model import ClusterState, JobPhase
from federator.security.audit import AuditLog
from federator.security.auth import Authenticator
from federator.server.federator import Federator
from federator.server.services import AgentService, ClusterService
from federator.store import SqliteJobStore
from federator.store.members import SqliteMemberStore

FLEET = parse_fleet({"clusters": [{"name": "west-1", "region": "west", "nodes": [
    {"count": 1, "gpuModel": "H100", "gpus": 8, "cpu": 64, "memory": "256Gi"}]}]})
TRAIN = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                   "metadata": {"name": "train", "annotations": {"federator.io/sim-startup": "0s",
                                                                 "federator.io/sim-duration": "3600s"}},
                   "spec": {"kind": "training", "replicas": 1, "resources": {"cpu": "1", "nvidia.com/gpu": 4}}})


@dataclass
class Served:
    fed: Federator
    target: str
    audit: Path

    def lines(self, action: str) -> list[dict[str, object]]:
        return [line for line in map(json.loads, self.audit.read_text().splitlines()) if line["action"] == action]

    def refused(self, cluster: str = "west-1") -> float:
        return self.fed.metrics.registry.get_sample_value(
            "federator_agent_region_changes_refused_total", {"cluster": cluster}) or 0.0


@asynccontextmanager
async def served(tmp: Path, *, fed: Federator | None = None) -> AsyncIterator[Served]:
    fed = fed or Federator(store=SqliteJobStore(Path(":memory:")), report_interval=0.2)
    audit = AuditLog(tmp / "audit.log")
    server = grpc.aio.server()
    auth = Authenticator(insecure=True)
    agent_pb2_grpc.add_AgentServiceServicer_to_server(AgentService(fed, auth, audit=audit), server)
    jobs_pb2_grpc.add_ClusterServiceServicer_to_server(ClusterService(fed, auth, audit=audit), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield Served(fed, f"127.0.0.1:{port}", tmp / "audit.log")
    finally:
        await server.stop(0)
        fed.cycles.close()
        audit.close()


async def until(cond: Callable[[], object], timeout: float = 20.0) -> None:
    async def wait() -> None:
        while not cond():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(wait(), timeout)


async def hello(target: str, region: str, cluster: str = "west-1") -> grpc.aio.AioRpcError | agent_pb2.FederatorMessage:
    """One raw Hello: the federator's first answer (its Welcome), or the error the stream ended with."""
    async with grpc.aio.insecure_channel(target) as ch:
        stream = AgentStream.on(ch, agent_pb2.AgentMessage(hello=agent_pb2.Hello(cluster=cluster, region=region)))
        try:
            return await stream.read()
        except grpc.aio.AioRpcError as err:
            return err
        finally:
            stream.close()


def test_an_agent_claiming_another_region_is_refused_and_the_cluster_keeps_its_region_and_its_work(
        tmp_path: Path) -> None:
    async def go() -> None:
        async with served(tmp_path) as s:
            fed = s.fed
            backend = SimBackend(FLEET["west-1"])
            first = Agent(AgentConfig(cluster="west-1", region="west", target=s.target, max_backoff=0.2), backend)
            task = asyncio.create_task(first.run())
            try:
                await until(lambda: (rec := fed.clusters.get("west-1")) is not None and rec.resynced)
                job = fed.submit(TRAIN)
                fed.schedule_once()
                await until(lambda: job.phase is JobPhase.RUNNING)
                (placed,) = job.placements
            finally:
                task.cancel()
            await until(lambda: not fed.clusters["west-1"].connected)

            relabelled = SimBackend(FLEET["west-1"])  # the same data centre, restarted with --region east
            second = Agent(AgentConfig(cluster="west-1", region="east", target=s.target, max_backoff=0.2),
                           relabelled)
            task = asyncio.create_task(second.run())
            try:
                await until(lambda: s.refused() >= 1 or second.sessions)
            finally:
                task.cancel()
            answer = await hello(s.target, "east")  # what the agent is told, as a raw stream sees it

            assert isinstance(answer, grpc.aio.AioRpcError)
            assert answer.code() is grpc.StatusCode.PERMISSION_DENIED
            said = answer.details() or ""
            assert said.startswith("hello.region: cluster 'west-1' is registered in region 'west'")
            assert "claims 'east'" in said and "federator forget west-1" in said
            assert second.sessions == 0  # never welcomed
            rec = fed.clusters["west-1"]
            assert rec.region == "west" and not rec.connected
            # its work stays: the placement is current and Running, nothing was launched under the new claim
            assert [(p.placement_id, p.phase, p.region) for p in job.placements] == \
                [(placed.placement_id, JobPhase.RUNNING, "west")]
            assert relabelled.placements() == {}
            assert s.refused() >= 2

            (registered,) = s.lines("cluster.register")
            assert registered["object"] == {"kind": "MemberCluster", "name": "west-1", "region": "west",
                                          "bound_by": ""}
            changes = s.lines("cluster.region-change")
            assert len(changes) >= 2 and changes[-1]["result"] == "refused"
            assert changes[-1]["code"] == "PERMISSION_DENIED"
            assert changes[-1]["object"] == {"kind": "MemberCluster", "name": "west-1", "region": "west",
                                             "claimed": "east"}
            assert changes[-1]["identity"]["user"] == "cluster west-1"  # type: ignore[index]

            assert isinstance(await hello(s.target, "west"), agent_pb2.FederatorMessage)  # its own region: welcome

    asyncio.run(go())


def test_the_refusal_is_a_warning(tmp_path: Path, caplog: object) -> None:
    import logging

    async def go() -> None:
        async with served(tmp_path) as s:
            assert (await hello(s.target, "west")).WhichOneof("body") == "welcome"  # type: ignore[union-attr]
            await until(lambda: not s.fed.clusters["west-1"].connected)
            assert isinstance(await hello(s.target, "east"), grpc.aio.AioRpcError)

    with caplog.at_level(logging.WARNING, logger="federator.server"):  # type: ignore[attr-defined]
        asyncio.run(go())
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]  # type: ignore[attr-defined]
    assert any("refused the agent of cluster west-1" in m and "claims 'east'" in m for m in warned), warned


def test_the_region_holds_across_a_restart_of_the_federator(tmp_path: Path) -> None:
    """SQLite mode: the members table keeps the region it registered with; the restarted federator refuses too."""
    async def first_life() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "f.db"), members=SqliteMemberStore(tmp_path / "f.db"),
                        report_interval=0.2)
        async with served(tmp_path, fed=fed) as s:
            backend = SimBackend(FLEET["west-1"])
            agent = Agent(AgentConfig(cluster="west-1", region="west", target=s.target, max_backoff=0.2), backend)
            task = asyncio.create_task(agent.run())
            try:
                await until(lambda: (rec := fed.clusters.get("west-1")) is not None and rec.resynced)
                fed.membership.flush()
            finally:
                task.cancel()
        fed.store.close()

    async def second_life() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "f.db"), members=SqliteMemberStore(tmp_path / "f.db"),
                        report_interval=0.2)
        async with served(tmp_path, fed=fed) as s:
            answer = await hello(s.target, "east")
            assert isinstance(answer, grpc.aio.AioRpcError), answer
            assert "registered in region 'west'" in (answer.details() or "")
            assert fed.clusters["west-1"].region == "west"
            assert s.refused() == 1

    asyncio.run(first_life())
    asyncio.run(second_life())


def test_an_admin_re_regions_a_cluster_by_forgetting_it_once_lost_then_it_rejoins(tmp_path: Path) -> None:
    now = [1_000_000.0]
    fed = Federator(store=SqliteJobStore(Path(":memory:")), clock=lambda: now[0], lease_seconds=10.0,
                    lost_after_seconds=60.0)

    async def go() -> None:
        async with served(tmp_path, fed=fed) as s:
            assert (await hello(s.target, "west")).WhichOneof("body") == "welcome"  # type: ignore[union-attr]
            await until(lambda: not fed.clusters["west-1"].connected)
            async with grpc.aio.insecure_channel(s.target) as ch:
                clusters = jobs_pb2_grpc.ClusterServiceStub(ch)
                try:  # not Lost yet: the forget is refused, the region stays
                    await clusters.Forget(jobs_pb2.ForgetClusterRequest(cluster="west-1"))
                    raise AssertionError("forgot a cluster that was not Lost")
                except grpc.aio.AioRpcError as err:
                    assert err.code() is grpc.StatusCode.FAILED_PRECONDITION
                now[0] += 100.0
                fed.check_leases()
                now[0] += 100.0
                fed.check_leases()
                assert fed.clusters["west-1"].state is ClusterState.LOST
                await clusters.Forget(jobs_pb2.ForgetClusterRequest(cluster="west-1"))
            assert "west-1" not in fed.clusters
            assert (await hello(s.target, "east")).WhichOneof("body") == "welcome"  # type: ignore[union-attr]
            assert fed.clusters["west-1"].region == "east"
            assert [line["result"] for line in s.lines("forget")] == ["failed", "accepted"]
            assert [line["object"]["region"] for line in s.lines("cluster.register")] == ["west", "east"]  # type: ignore[index]
            assert s.refused() == 0

    asyncio.run(go())


def test_work_placed_under_another_region_is_named_when_the_record_overrules_the_agent(caplog: object) -> None:
    """Kubernetes mode: the MemberCluster's region overrules an agent that connected first claiming another
    (cluster_regions.admin_record); the jobs already placed there under the claimed region are named in a WARNING
    (their region fences were checked against it), and go on: another change decides what to do with them."""
    import logging

    from server_support import Clock, MemoryStore, join, make, spec

    from federator.server import cluster_regions
    from federator.server.outbox import EndCode

    fed = make(MemoryStore(), Clock())
    rec = join(fed, "acme-1", region="east")
    job = fed.submit(spec("serve"))
    fed.schedule_once()
    assert [p.region for p in job.placements] == ["east"]
    with caplog.at_level(logging.WARNING, logger="federator.server"):  # type: ignore[attr-defined]
        cluster_regions.admin_record(fed, rec, "west")
    assert rec.region == "west"
    assert rec.outbox.ending is not None and rec.outbox.ending.code is EndCode.PERMISSION_DENIED
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]  # type: ignore[attr-defined]
    assert any(str(job.job_id) in m and "federator drain acme-1" in m for m in warned), warned
    assert cluster_regions.placed_elsewhere(fed, "acme-1", "east") == []  # the region it was placed in: nothing
    fed.cycles.close()
