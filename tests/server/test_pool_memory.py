"""A pool's device memory is what its agent reports or what the catalog knows of exactly that model, never a guess
(outside QA, vendors V7; catalog.Catalog.model_memory).

A Hygon member's pool is "DCU" (the plugin labels neither product nor memory). Its words select both DCU-Z100
(32 GiB) and DCU-K100 (64 GiB), and the federator gave it the first one's memory: a 64 GiB ask waited beside K100s
for ever, and a 32 GiB ask was sent to devices nobody said had 32 GiB. Over real gRPC: an agent reports, then jobs
asking by capability are submitted and a cycle runs.
"""

from __future__ import annotations

import asyncio

from scripted_agent import ScriptedStream
from test_agent_input import pool
from test_pool_vendor import capacity
from test_services_edge import channel, served

from federator.api import convert
from federator.api.v1 import agent_pb2, jobs_pb2, jobs_pb2_grpc
from federator.jobfile import parse_job
from federator.model import JobId, JobPhase
from federator.server.federator import Federator


def dcu(model: str, nodes: int = 1) -> agent_pb2.CapacityReport:
    return capacity(1, pool(accelerator_model=model, vendor="hygon", resource_name="hygon.com/dcu", memory_mib=0,
                            nodes_by_free=[0] * 8 + [nodes], total_accelerators=8 * nodes,
                            allocatable_accelerators=8 * nodes)).capacity


def request(name: str, memory_mib: int) -> jobs_pb2.SubmitRequest:
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
        "spec": {"kind": "training", "resources": {"cpu": "100m"},
                 "accelerators": [{"vendor": "hygon", "minMemoryMiB": memory_mib, "count": 8}]}})))


async def joined(fed: Federator, agent: ScriptedStream, target: str) -> asyncio.Task[None]:
    task = asyncio.get_running_loop().create_task(agent.run(target))
    for _ in range(200):  # until its first report is in (a bound, not a timed assertion)
        rec = fed.clusters.get(agent.name)
        if rec is not None and rec.capacity is not None and rec.capacity.accelerator_pools:
            return task
        await asyncio.sleep(0.05)
    raise AssertionError(f"{agent.name} never reported")


def test_a_pool_whose_model_the_catalog_cannot_tell_has_unknown_memory_and_no_memory_ask_matches_it() -> None:
    async def go() -> None:
        async with served() as s:
            kb = ScriptedStream("kb", agent_pb2.Hello(cluster="kb", region="west"), dcu("DCU"))
            kc = ScriptedStream("kc", agent_pb2.Hello(cluster="kc", region="west"), dcu("DCU-K100", nodes=2))
            tasks = [await joined(s.fed, kb, s.target)]
            try:
                (got,) = s.fed.clusters["kb"].capacity.accelerator_pools  # type: ignore[union-attr]
                assert (got.vendor, got.memory_mib) == ("hygon", 0)  # not DCU-Z100's 32768, the first DCU listed
                async with channel(s.target) as ch:
                    stub = jobs_pb2_grpc.JobServiceStub(ch)
                    small = await stub.Submit(request("dcu32", 32768))
                    s.fed.schedule_once()
                    job = s.fed.jobs[JobId(small.job.job_id)]
                    assert job.phase is JobPhase.PENDING and job.pending_reason is not None
                    assert "kb has no hygon accelerator nodes with at least 32Gi per device" in \
                        job.pending_reason.message, job.pending_reason.message

                    tasks.append(await joined(s.fed, kc, s.target))
                    (got,) = s.fed.clusters["kc"].capacity.accelerator_pools  # type: ignore[union-attr]
                    assert got.memory_mib == 65536  # the catalog's entry of exactly that model
                    big = await stub.Submit(request("dcu64", 65536))
                    s.fed.schedule_once()
                    placed = {j.spec.name: [p.cluster for p in j.placements] for j in s.fed.jobs.values()}
                    assert placed == {"dcu32": ["kc"], "dcu64": ["kc"]}  # K100s serve both, the unknown DCU neither
                    assert big.job.job_id
            finally:
                for t in tasks:
                    t.cancel()

    asyncio.run(go())
