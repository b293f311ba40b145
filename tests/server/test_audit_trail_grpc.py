"""Where a job ran, from the audit log alone (outside compliance QA, C3, C5, C7), over real gRPC sockets with
scripted agents and the federator's loop as `federator serve` runs it: a training job placed on east-1, re-queued
when east-1 is Lost and placed on west-1, moved by a drain to central-1, and ended there; then cancelled by its
owner after its end, which changes nothing and is audited so. Before: the log held the submit and an accepted
cancel, nothing of the three placements or the end."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

from scripted_agent import ScriptedStream
from test_drains_grpc import Agent, submit, until
from test_services_edge import channel, served

from federator.api import convert
from federator.api.v1 import agent_pb2, jobs_pb2, jobs_pb2_grpc
from federator.model import JobPhase
from federator.security.audit import FILE_MODE, AuditLog
from federator.server.audit_trail import AuditTrail, attach_trail

from support import audit_lines


def _lines(path: Path) -> list[dict[str, Any]]:
    return audit_lines(path)


def test_the_audit_log_says_each_placement_of_a_job_each_move_and_why_and_its_end(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(path, background=True)

    async def go() -> None:
        async with served(audit=audit) as s, channel(s.target) as ch:
            fed = s.fed
            attach_trail(fed, AuditTrail(audit, provider_of=lambda name: {"central-1": "acme"}.get(name, "")))
            fed.cycle_interval, fed.lease_seconds, fed.lost_after_seconds = 0.1, 1.0, 1.0
            api, admin = jobs_pb2_grpc.JobServiceStub(ch), jobs_pb2_grpc.ClusterServiceStub(ch)
            loop = asyncio.get_running_loop()
            tasks = [loop.create_task(fed.run())]

            async def join(agent: ScriptedStream) -> asyncio.Task[None]:
                task = loop.create_task(agent.run(s.target))
                tasks.append(task)
                await until(lambda: fed.clusters.get(agent.name) is not None
                            and fed.clusters[agent.name].connected
                            and fed.clusters[agent.name].capacity is not None, f"{agent.name} reports")
                return task

            def on(job_id: str, cluster: str) -> bool:
                job = fed.jobs[job_id]
                return job.phase is JobPhase.RUNNING and [p.cluster for p in job.placements] == [cluster]

            try:
                east = await join(Agent("east-1", nodes=1))
                job_id = (await api.Submit(submit("training", "records", 1), timeout=5)).job.job_id
                await until(lambda: on(job_id, "east-1"), "the job runs on east-1")
                east.cancel()  # east-1's agent goes silent: Partitioned, then Lost, the job re-queued
                await join(Agent("west-1", nodes=1))
                await until(lambda: on(job_id, "west-1"), "the job runs on west-1 after east-1 is Lost")
                central = Agent("central-1", nodes=1)
                await join(central)
                await admin.Drain(jobs_pb2.DrainClusterRequest(cluster="west-1", reason="swap"), timeout=5)
                await until(lambda: on(job_id, "central-1"), "the drain moved the job to central-1")
                [last] = fed.jobs[job_id].placements
                central.send(job_update=agent_pb2.JobUpdate(placement_id=last.placement_id,
                                                            phase=convert.phase_to_pb(JobPhase.SUCCEEDED)))
                await until(lambda: fed.jobs[job_id].phase is JobPhase.SUCCEEDED, "the job succeeds")
                got = await api.Cancel(jobs_pb2.CancelJobRequest(job_id=job_id), timeout=5)  # after its end
                assert got.phase == convert.phase_to_pb(JobPhase.SUCCEEDED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(go())
    audit.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == FILE_MODE == 0o600  # C7: personal data, the owner's alone
    lines = _lines(path)
    assert [x["seq"] for x in lines] == list(range(2, len(lines) + 2))  # after the chain's start: numbered
    trail = [(x["action"], x["object"].get("cluster", ""), x["object"].get("reason", ""), x["result"])
             for x in lines if x["action"] not in ("drain",)]
    assert trail == [
        ("submit", "", "", "accepted"),
        ("place", "east-1", "", "accepted"),
        ("unplace", "east-1", "ClusterNotReady", "accepted"),
        ("place", "west-1", "", "accepted"),
        ("unplace", "west-1", "Drained", "accepted"),
        ("place", "central-1", "", "accepted"),
        ("finish", "", "", "accepted"),
        ("cancel", "", "", "unchanged"),
    ], trail
    places = [x for x in lines if x["action"] == "place"]
    assert [(p["object"]["region"], p["object"]["from"]) for p in places] == [
        ("east", []), ("west", ["east-1 (east)"]), ("central", ["west-1 (west)"])]
    first = places[0]
    assert first["identity"] is None  # the federator's own doing
    assert {k: first["object"][k] for k in ("kind", "name", "queue", "owner", "replicas", "provider")} == {
        "kind": "Placement", "name": "records", "queue": "default", "owner": "anonymous", "replicas": 1,
        "provider": ""}
    assert places[2]["object"]["provider"] == "acme"
    assert len({p["object"]["placement_id"] for p in places}) == 3
    [drain] = [x for x in lines if x["action"] == "unplace" and x["object"]["reason"] == "Drained"]
    assert "drained" in drain["message"] and drain["object"]["phase"] == "Superseded"
    [finish] = [x for x in lines if x["action"] == "finish"]
    assert (finish["object"]["phase"], finish["object"]["on"]) == ("Succeeded", ["central-1 (central)"])
    assert finish["object"]["finished_at"].endswith("Z")
    [cancel] = [x for x in lines if x["action"] == "cancel"]
    assert cancel["message"] == "already Succeeded: nothing to cancel"


def test_the_submit_line_carries_the_regions_the_job_was_promised_beside_its_queues_fence(tmp_path: Path) -> None:
    """Outside compliance QA C1/C3: an auditor reads the promise (the job's hard and preferred regions, its queue's
    fence as resolved at submit) on the submit line, beside the placements' regions."""
    from dataclasses import replace

    from federator.jobfile import parse_job

    path = tmp_path / "audit.jsonl"
    audit = AuditLog(path)

    def spec(name: str, regions: dict[str, object]) -> jobs_pb2.SubmitRequest:
        return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job({
            "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
            "spec": {"kind": "inference", "resources": {"cpu": "1"}, "regions": regions}})))

    async def go() -> None:
        async with served(audit=audit) as s, channel(s.target) as ch:
            config = s.fed.scheduler.config
            s.fed.set_scheduler_config(replace(config, default_queue=replace(config.default_queue,
                                                                             allowed_regions=("east", "north"))))
            api = jobs_pb2_grpc.JobServiceStub(ch)
            await api.Submit(spec("fenced", {"allowed": ["east"], "preferred": ["east"]}), timeout=5)
            await api.Submit(spec("near", {"user": "east", "maxLatencyMs": 20}), timeout=5)

    asyncio.run(go())
    audit.close()
    fenced, near = (x["object"] for x in _lines(path) if x["action"] == "submit")
    assert {k: fenced[k] for k in ("name", "allowed_regions", "preferred_regions", "queue_allowed_regions")} == {
        "name": "fenced", "allowed_regions": ["east"], "preferred_regions": ["east"],
        "queue_allowed_regions": ["east", "north"]}
    assert "user_region" not in fenced
    assert {k: near[k] for k in ("allowed_regions", "preferred_regions", "user_region", "max_latency_ms")} == {
        "allowed_regions": [], "preferred_regions": [], "user_region": "east", "max_latency_ms": 20}
