"""Simulated members on a real federator (gRPC over loopback): the planner's fleets run live as they run in `sim`.

Outside QA, planners P15: `agent --sim fleet_prov.csv` (the node CSV `sim --fleet` takes) was parsed as YAML and
refused as "clusters: must be a list of clusters". P14: under `agent --sim` a vNPU pool named as a member names it
(Ascend310P3-vNPU-2c) reported huawei.com/Ascend910, so the live federator said "v has no huawei.com/Ascend310P
devices" to a job asking huawei.com/Ascend310P: 250m.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import grpc

from federator.agent.agent import Agent, AgentConfig
from federator.api.v1 import agent_pb2_grpc, jobs_pb2_grpc
from federator.backends.sim.fleet import ClusterSpec, parse_fleet
from federator.backends.sim.runtime import SimBackend
from federator.cli.agent import sim_fleet
from federator.jobfile import parse_job
from federator.model import JobPhase
from federator.security.auth import Authenticator, RevocationList
from federator.server.federator import Federator
from federator.server.services import AgentService, ClusterService, JobService
from federator.store import SqliteJobStore

from support import federator_cli

CSV_FLEET = "gpu_model,gpu_capacity_num,cpu_num,node_name,cluster,region\n" \
            "H800,8,96,n1,gd-0,guangdong\nH800,8,96,n2,gd-0,guangdong\nA10,1,16,n3,bj-0,beijing\n"


@asynccontextmanager
async def served() -> AsyncIterator[tuple[Federator, str]]:
    fed = Federator(store=SqliteJobStore(Path(":memory:")), report_interval=60.0)
    auth = Authenticator(insecure=True, revocations=RevocationList(None, interval=0.0))
    server = grpc.aio.server()
    agent_pb2_grpc.add_AgentServiceServicer_to_server(AgentService(fed, auth), server)
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(fed, auth), server)
    jobs_pb2_grpc.add_ClusterServiceServicer_to_server(ClusterService(fed, auth), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield fed, f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def until(cond: Callable[[], object], timeout: float = 20.0) -> None:
    async def wait() -> None:
        while not cond():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(wait(), timeout)


async def with_member(spec: ClusterSpec, then: Callable[[Federator], object]) -> None:
    """A real agent of `spec` on a real federator until `then(fed)` (awaited) is done."""
    async with served() as (fed, target):
        backend = SimBackend(spec)
        agent = Agent(AgentConfig(cluster=spec.name, region=spec.region, target=target, max_backoff=0.2), backend)
        task = asyncio.create_task(agent.run())
        try:
            await until(lambda: (rec := fed.clusters.get(spec.name)) is not None and rec.resynced)
            await then(fed)  # type: ignore[misc]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await backend.stop()


def test_a_job_asking_the_chips_resource_runs_on_a_vnpu_pool_named_as_a_member_names_it() -> None:
    spec = parse_fleet({"clusters": [{"name": "v", "region": "r1", "nodes": [
        {"count": 1, "vendor": "huawei", "model": "Ascend310P3-vNPU-2c", "accelerators": 32, "cpu": 64,
         "memory": "512Gi", "sharing": "MIG", "unitMilli": 250}]}]})["v"]
    job_spec = parse_job({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "vj"},
        "spec": {"kind": "inference", "replicas": 4,
                 "resources": {"huawei.com/Ascend310P": "250m", "cpu": "1", "memory": "4Gi"},
                 "template": {"spec": {"containers": [{"name": "t", "image": "x"}]}}}})

    async def check(fed: Federator) -> None:
        job = fed.submit(job_spec)
        fed.schedule_once()
        await until(lambda: job.phase is JobPhase.RUNNING)  # was pending: "v has no huawei.com/Ascend310P devices"
        (placement,) = job.placements
        assert placement.cluster == "v" and placement.replicas == 4

    asyncio.run(with_member(spec, check))


def test_a_node_csv_fleet_runs_as_a_live_member(tmp_path: Path) -> None:
    (tmp_path / "fleet.csv").write_text(CSV_FLEET)
    fleet = sim_fleet(tmp_path / "fleet.csv", "gd-0")
    assert sorted(fleet) == ["bj-0", "gd-0"]

    async def check(fed: Federator) -> None:
        capacity = fed.clusters["gd-0"].capacity
        assert capacity is not None
        assert [(p.accelerator_model, p.total_accelerators) for p in capacity.accelerator_pools] == [("H800", 16)]
        assert fed.clusters["gd-0"].region == "guangdong"

    asyncio.run(with_member(fleet["gd-0"], check))


def test_a_node_csv_without_a_cluster_column_is_the_one_member_named(tmp_path: Path) -> None:
    (tmp_path / "spot.csv").write_text("gpu_model,gpu_capacity_num,cpu_num,node_name\nH800,8,96,n1\nA10,1,16,n2\n")
    (spec,) = sim_fleet(tmp_path / "spot.csv", "spot-1").values()
    assert (spec.name, spec.region) == ("spot-1", "spot-1")
    assert [(n.name, n.accelerator_model, n.accelerators) for n in spec.nodes] == \
        [("spot-1-n1", "H800", 8), ("spot-1-n2", "A10", 1)]


def test_the_agent_reads_a_node_csv_and_names_its_clusters_when_the_one_asked_is_not_there(tmp_path: Path) -> None:
    (tmp_path / "fleet.csv").write_text(CSV_FLEET)
    out = federator_cli("agent", "--sim", str(tmp_path / "fleet.csv"), "--cluster", "nope", "--insecure",
                        "--server", "127.0.0.1:1")
    assert out.returncode == 2
    assert out.stderr.strip() == f"federator agent: --cluster: 'nope' is not in {tmp_path / 'fleet.csv'} " \
                                 "(clusters: bj-0, gd-0)"  # was: "clusters: must be a list of clusters"


def test_a_bad_node_csv_is_refused_naming_the_row_and_column(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("gpu_model,gpu_capacity_num,cpu_num,node_name\nH800,-8,96,n1\n")
    out = federator_cli("agent", "--sim", str(tmp_path / "bad.csv"), "--cluster", "x", "--insecure",
                        "--server", "127.0.0.1:1")
    assert out.returncode == 2
    assert out.stderr.strip() == f"federator agent: {tmp_path / 'bad.csv'}:2: column gpu_capacity_num: must not be " \
                                 "negative, got '-8'"
