"""A brought workload's unequal roles are reserved and billed at what each asks (JobSpec.pod_sets, 0.20.0).

Outside QA, ML platform E2: an RL JobSet of a learner 2 x 8, a rollout 4 x 1 and a reward model 1 x 1 (21
accelerators) was reserved, quota-checked and billed as 7 x 8 = 56, and waited GangDoesNotFit for ever on a member
that could hold 21. Here it is submitted over the real gRPC Submit (with pod sets a client made up, which the
federator replaces by its own), placed on a member of 24 H100, read back over GetJob, billed over the real usage API
on the simulated clock, and read back from the store after a restart.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
from test_usage import Clock, ask, running, start, table

from federator.api.convert import job_from_pb, spec_to_pb
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2
from federator.jobfile import parse_job
from federator.model import JobPhase, format_job_accelerators, placement_held_milli, placement_total
from federator.security.auth import Authenticator
from federator.server.federator import Federator
from federator.server.services import JobService
from federator.store.codec import job_to_dict

from builders import cluster, pool

H100 = "NVIDIA-H100-80GB-HBM3"


def _role(name: str, jobs: int, gpus: int, cpu: int) -> dict[str, Any]:
    return {"name": name, "replicas": jobs, "template": {"spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": name, "image": "rl:1", "resources": {
            "requests": {"cpu": str(cpu), "memory": "16Gi"}, "limits": {"nvidia.com/gpu": gpus}}}]}}}}}


RL = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "rl"},
      "spec": {"queue": "research", "acceleratorModels": ["H100"], "workload": {
          "apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": "rl"},
          "spec": {"replicatedJobs": [_role("learner", 2, 8, 8), _role("rollout", 4, 1, 2),
                                      _role("reward", 1, 1, 2)]}}}}


async def _submit_and_get(fed: Federator, spec: types_pb2.JobSpec) -> tuple[str, types_pb2.Job]:
    """Submit over a real socket, as `federator submit` does; then GetJob of what was stored."""
    server = grpc.aio.server()
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(fed, Authenticator(insecure=True)), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = jobs_pb2_grpc.JobServiceStub(ch)
            job_id = (await stub.Submit(jobs_pb2.SubmitRequest(spec=spec))).job.job_id
            fed.schedule_once()
            got = await stub.Get(jobs_pb2.GetJobRequest(job_id=job_id))
            return job_id, got
    finally:
        await server.stop(0)


def test_the_rl_jobset_is_placed_reserved_and_billed_at_21_not_56(tmp_path: Path) -> None:
    db, clock = tmp_path / "federator.db", Clock(1_000.0)
    fed, meter, usage = start(db, clock)
    rec = fed.connect(cluster="east-1", region="r", labels={"federator.io/provider": "acme"})
    member = cluster("east-1", "r", pool(H100, nodes=3)).capacity  # 24 H100: 21 fit, 7 x 8 never would
    fed.report(rec, replace(member, workload_kinds=frozenset({"JobSet.jobset.x-k8s.io"})))

    wire = spec_to_pb(parse_job(RL))
    del wire.pod_sets[:]  # a client's made-up pod sets: one of 1 pod of 1; Submit derives its own
    wire.pod_sets.add(name="made-up", count=1, resources=types_pb2.Resources(accelerator_milli=1000))
    job_id, got = asyncio.run(_submit_and_get(fed, wire))

    job = fed.jobs[job_id]  # type: ignore[index]
    assert [(p.name, p.count, p.resources.accelerator_milli) for p in job.spec.pod_sets] == [
        ("learner", 2, 8000), ("rollout", 4, 1000), ("reward", 1, 1000)]
    assert (job.spec.replicas, job.spec.resources.accelerator_milli) == (7, 8000)  # as 0.19.0 stored it
    assert job.phase is JobPhase.PLACED, job.pending_reason
    (placed,) = job.placements
    assert (placed.cluster, placed.replicas) == ("east-1", 7)
    assert placement_held_milli(placed, job.spec) == 21_000
    assert placement_total(placed, job.spec).cpu_milli == 26_000  # what `get queues` counts held: 2 x 8 + 5 x 2
    # what the federator holds on the member until its agent reports the pods: 21 of its 24, 26 CPUs
    (member,) = fed.snapshot().clusters
    assert member.capacity.pool(H100).free_accelerators == 3
    # GetJob, as `federator get jobs` reads it: its pod sets, and ACCELERATORS 21
    assert [(p.name, p.count) for p in got.spec.pod_sets] == [("learner", 2), ("rollout", 4), ("reward", 1)]
    assert format_job_accelerators(job_from_pb(got)) == "21"

    running(fed, job_id, JobPhase.RUNNING)
    clock.now = 1_100.0
    meter.tick()
    assert table(asyncio.run(ask(fed, usage, by="job"))) == {job_id: 2_100.0, "TOTAL": 2_100.0}  # 21 x 100 s

    stored = job_to_dict(job)["spec"]  # a key 0.19.0 ignores: it reads the job as 7 x 8, as it ran them
    assert json.dumps(stored["pod_sets"]) and stored["replicas"] == 7
    fed.store.close()
    usage.close()
    fed, meter, usage = start(db, clock)  # a restart on the same files
    assert fed.jobs[job_id].spec.pod_sets == job.spec.pod_sets  # type: ignore[index]
    assert sorted(r.accelerators_milli for r in meter.open.values()) == [21_000]
