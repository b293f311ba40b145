"""A maintenance window end to end over real gRPC sockets (`federator cordon CLUSTER --from T --until T`): scripted
agents on loopback, the federator's loop running as in `federator serve`, under a test clock the test moves.

Before the window a job whose run bound ends by its start is placed on the windowed cluster; one that would cross it
goes elsewhere; one with no bound is not started there and its reason says why. At its start the window is a cordon
in force (what runs stays; federator_cluster_cordoned 1), at its end it is over by itself; uncordon cancels it; a
restart keeps it; a window in the past or ending before it begins is refused naming the field."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import generate_latest
from scripted_agent import ScriptedStream
from server_support import Clock
from test_drains_grpc import Agent, until

from federator.api import convert
from federator.api.v1 import agent_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from federator.jobfile import parse_job
from federator.model import JobPhase
from federator.security.audit import AuditLog
from federator.security.auth import Authenticator, RevocationList
from federator.server.federator import Federator
from federator.server.services import AgentService, ClusterService, JobService, decode_guard
from federator.store import SqliteJobStore
from federator.store.cordons import SqliteCordonStore

from support import audit_lines

HOUR = 3600.0


@asynccontextmanager
async def served(clock: Clock, db: Path) -> AsyncIterator[tuple[Federator, str]]:
    """A federator on loopback whose clock is `clock` (leases long: the test moves the clock by hours, and the
    scripted agents do not report again), its cordons in the SQLite file `db` as `federator serve` keeps them."""
    fed = Federator(store=SqliteJobStore(Path(":memory:")), clock=clock, report_interval=60.0,
                    lease_seconds=100 * HOUR, lost_after_seconds=1000 * HOUR)
    fed.cordons.attach(SqliteCordonStore(db))
    auth = Authenticator(insecure=True, revocations=RevocationList(None, interval=0.0))
    server = grpc.aio.server(interceptors=[decode_guard(fed)])
    agent_pb2_grpc.add_AgentServiceServicer_to_server(AgentService(fed, auth), server)
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(fed, auth), server)
    jobs_pb2_grpc.add_ClusterServiceServicer_to_server(
        ClusterService(fed, auth, audit=AuditLog(db.with_name("audit.jsonl"))), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield fed, f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


def submit(name: str, max_run_seconds: int = 0) -> jobs_pb2.SubmitRequest:
    spec: dict[str, Any] = {"kind": "training", "replicas": 1,
                            "resources": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 8}}
    if max_run_seconds:
        spec["maxRunSeconds"] = max_run_seconds
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name}, "spec": spec})))


async def running(fed: Federator, target: str, agents: list[ScriptedStream],
                  body: Callable[[], Awaitable[None]]) -> None:
    loop = asyncio.get_running_loop()
    fed.cycle_interval = 0.05
    tasks = [loop.create_task(fed.run())]
    try:
        for agent in agents:
            tasks.append(loop.create_task(agent.run(target)))
            await until(lambda a=agent: fed.clusters.get(a.name) is not None  # type: ignore[misc]
                        and fed.clusters[a.name].capacity is not None, f"{agent.name} reports")
        await body()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def listed(admin: jobs_pb2_grpc.ClusterServiceStub, name: str) -> jobs_pb2.ClusterStatus:
    [row] = [c for c in (await admin.List(jobs_pb2.ListClustersRequest(), timeout=5)).clusters if c.name == name]
    return row


def why(fed: Federator, job_id: str) -> str:
    reason = fed.jobs[job_id].pending_reason
    return reason.message if reason is not None else ""


def cordoned_metric(fed: Federator, cluster: str) -> str:
    scrape = generate_latest(fed.metrics.registry).decode()
    [line] = [ln for ln in scrape.splitlines() if ln.startswith(f'federator_cluster_cordoned{{cluster="{cluster}"')]
    return line.rsplit(" ", 1)[1]


def test_a_window_takes_the_jobs_done_before_it_begins_cordons_at_its_start_and_ends_by_itself(
        tmp_path: Path) -> None:
    clock = Clock()
    clock.now = time.time()  # the federator's settling began at its construction, on the wall clock
    t0 = clock.now
    start, end = t0 + 2 * HOUR, t0 + 4 * HOUR

    async def go() -> None:
        async with served(clock, tmp_path / "fed.db") as (fed, target), \
                grpc.aio.insecure_channel(target) as ch:
            east, west = Agent("east-1", nodes=4), Agent("west-1", nodes=2)
            api, admin = jobs_pb2_grpc.JobServiceStub(ch), jobs_pb2_grpc.ClusterServiceStub(ch)

            async def body() -> None:
                early = (await api.Submit(submit("early"), timeout=5)).job.job_id  # before any window: no bound
                await until(lambda: fed.jobs[early].phase is JobPhase.RUNNING, "early runs on east-1")
                reply = await admin.Cordon(jobs_pb2.CordonClusterRequest(
                    cluster="east-1", reason="switch firmware", window_from=start, window_until=end), timeout=5)
                assert (reply.changed, reply.cordoned, reply.window_from, reply.window_until) == \
                    (True, True, start, end)
                row = await listed(admin, "east-1")
                assert (row.cordoned, row.window_from, row.window_until, row.cordon_reason) == \
                    (False, start, end, "switch firmware")
                assert cordoned_metric(fed, "east-1") == "0.0"  # a window to come is not a cordon
                [line] = audit_lines(tmp_path / "audit.jsonl")
                assert (line["action"], line["object"]["window_from"], line["object"]["window_until"]) == \
                    ("cordon", start, end)

                short = (await api.Submit(submit("short", int(HOUR)), timeout=5)).job.job_id
                await until(lambda: fed.jobs[short].phase is JobPhase.RUNNING, "short runs")
                assert [p.cluster for p in fed.jobs[short].placements] == ["east-1"]  # done an hour before it
                unbound = (await api.Submit(submit("unbound"), timeout=5)).job.job_id
                crossing = (await api.Submit(submit("crossing", int(3 * HOUR)), timeout=5)).job.job_id
                said = "east-1 has maintenance from "
                await until(lambda: all(said in why(fed, j) for j in (unbound, crossing)), "both say why")
                assert said in fed.jobs[unbound].pending_reason.message  # type: ignore[union-attr]
                assert "this job has no run bound" in fed.jobs[unbound].pending_reason.message  # type: ignore[union-attr]
                assert said in fed.jobs[crossing].pending_reason.message  # type: ignore[union-attr]
                assert fed.jobs[unbound].phase is fed.jobs[crossing].phase is JobPhase.PENDING

                west_task = asyncio.get_running_loop().create_task(west.run(target))  # room elsewhere
                try:
                    await until(lambda: all(fed.jobs[j].phase is JobPhase.RUNNING for j in (unbound, crossing)),
                                "both run on west-1")
                    assert {p.cluster for j in (unbound, crossing) for p in fed.jobs[j].placements} == {"west-1"}

                    clock.now = start  # the window begins: a cordon in force; what runs stays
                    await until(lambda: "east-1" in fed.cordons.names(), "the window is in force")
                    row = await listed(admin, "east-1")
                    assert row.cordoned and cordoned_metric(fed, "east-1") == "1.0"
                    [kept] = fed.jobs[early].placements
                    assert fed.jobs[early].phase is JobPhase.RUNNING and kept.cluster == "east-1"
                    assert kept.placement_id not in {c.placement_id for c in east.cancelled}
                    late = (await api.Submit(submit("late", 60), timeout=5)).job.job_id
                    await until(lambda: "east-1 is Cordoned" in why(fed, late), "late waits")

                    clock.now = end  # over by itself: stored so, and east-1 takes work again
                    await until(lambda: fed.cordons.get("east-1") is None, "the window is over")
                    assert SqliteCordonStore(tmp_path / "fed.db").load() == {}
                    await until(lambda: fed.jobs[late].phase is JobPhase.RUNNING, "late runs on east-1")
                    assert [p.cluster for p in fed.jobs[late].placements] == ["east-1"]
                    row = await listed(admin, "east-1")
                    assert (row.cordoned, row.window_from, row.window_until) == (False, 0.0, 0.0)
                    assert cordoned_metric(fed, "east-1") == "0.0"
                finally:
                    west_task.cancel()

            await running(fed, target, [east], body)

    asyncio.run(go())


def test_uncordon_cancels_a_window_and_a_restart_keeps_one(tmp_path: Path) -> None:
    clock = Clock()
    clock.now = time.time()
    start, end = clock.now + HOUR, clock.now + 2 * HOUR
    db = tmp_path / "fed.db"

    async def go() -> None:
        async with served(clock, db) as (fed, target), grpc.aio.insecure_channel(target) as ch:
            admin = jobs_pb2_grpc.ClusterServiceStub(ch)
            for name in ("east-1", "west-1"):
                await admin.Cordon(jobs_pb2.CordonClusterRequest(cluster=name, window_from=start, window_until=end),
                                   timeout=5)
            reply = await admin.Uncordon(jobs_pb2.UncordonClusterRequest(cluster="west-1"), timeout=5)
            assert (reply.changed, reply.cordoned, reply.window_from, reply.window_until) == \
                (True, False, start, end)  # the window that was cancelled
        async with served(clock, db) as (fed, target), grpc.aio.insecure_channel(target) as ch:  # a restart
            assert fed.cordons.ahead() == {"east-1": start}
            api, admin = jobs_pb2_grpc.JobServiceStub(ch), jobs_pb2_grpc.ClusterServiceStub(ch)

            async def body() -> None:
                row = await listed(admin, "east-1")
                assert (row.cordoned, row.window_from, row.window_until) == (False, start, end)
                unbound = (await api.Submit(submit("unbound"), timeout=5)).job.job_id
                await until(lambda: "east-1 has maintenance from" in why(fed, unbound), "unbound waits")
                assert "east-1 has maintenance from" in fed.jobs[unbound].pending_reason.message  # type: ignore[union-attr]
                await admin.Uncordon(jobs_pb2.UncordonClusterRequest(cluster="east-1"), timeout=5)
                await until(lambda: fed.jobs[unbound].phase is JobPhase.RUNNING, "unbound runs once cancelled")
                assert SqliteCordonStore(db).load() == {}

            await running(fed, target, [Agent("east-1", nodes=1)], body)

    asyncio.run(go())


@pytest.mark.parametrize(("window_from", "window_until", "field"), [
    (-HOUR, HOUR, "window_from"),  # in the past
    (HOUR, HOUR, "window_until"),  # not after its start
    (0.0, -60.0, "window_until"),  # from now, ending in the past
    (float("nan"), 0.0, "window_from"),
])
def test_a_bad_window_is_refused_naming_its_field(tmp_path: Path, window_from: float, window_until: float,
                                                  field: str) -> None:
    clock = Clock()
    clock.now = time.time()

    async def go() -> None:
        async with served(clock, tmp_path / "fed.db") as (fed, target), grpc.aio.insecure_channel(target) as ch:
            admin = jobs_pb2_grpc.ClusterServiceStub(ch)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await admin.Cordon(jobs_pb2.CordonClusterRequest(
                    cluster="east-1", window_from=clock.now + window_from if window_from else 0.0,
                    window_until=clock.now + window_until), timeout=5)
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert (err.value.details() or "").startswith(f"{field}: ")
            assert fed.cordons.get("east-1") is None

    asyncio.run(go())
