"""A member that reports a job Running for ever, over real gRPC: at the job's spec.max_run_seconds the federator's
own loop cancels the placement on the agent's stream and the job ends Failed, DeadlineExceeded, as Get answers
(server/run_limits.py). The federator's clock is a fake one the test moves; the agent's stream is real."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
from scripted_agent import ScriptedStream
from server_support import Clock
from test_invalid_specs_grpc import got, until
from test_services_edge import channel, run, served

from federator.api import convert
from federator.api.v1 import agent_pb2, jobs_pb2, jobs_pb2_grpc
from federator.jobfile import parse_job
from federator.model import JobPhase

from builders import cluster, pool

H100 = "NVIDIA-H100-80GB-HBM3"
LIMIT = 3_600


class Forever(ScriptedStream):
    """Acks each Launch, says Running, and says it again with every capacity report, whatever it is told."""

    def __init__(self) -> None:
        super().__init__("stuck", agent_pb2.Hello(cluster="stuck", region="r"),
                         convert.capacity_to_pb(cluster("stuck", "r", pool(H100, nodes=2)).capacity))

    def answer(self, placement_id: str) -> None:
        self.send(ack=agent_pb2.Ack(placement_id=placement_id, ok=True))
        self.capacity.placement_ids.append(placement_id)
        self.send(job_update=agent_pb2.JobUpdate(placement_id=placement_id,
                                                 phase=convert.phase_to_pb(JobPhase.RUNNING)))


def test_a_job_a_member_keeps_running_is_cancelled_on_it_and_fails_at_its_limit() -> None:
    async def go() -> None:
        async with served() as s:
            fed, clock = s.fed, Clock()
            fed.clock = clock  # every clock reading of the loop is the test's from here on
            fed.cycle_interval = 0.05
            fed.lease_seconds = 10 * LIMIT  # the clock jumps by the hour: the member's lease must not lapse
            agent = Forever()
            loop = asyncio.get_running_loop()
            tasks = [loop.create_task(agent.run(s.target)), loop.create_task(fed.run())]
            try:
                assert await until(lambda: "stuck" in fed.clusters and fed.clusters["stuck"].capacity is not None)
                request = jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job({
                    "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "hung"},
                    "spec": {"kind": "training", "maxRunSeconds": LIMIT,
                             "resources": {"cpu": "4", "nvidia.com/gpu": 8}}})))
                async with channel(s.target) as ch:
                    job_id = (await jobs_pb2_grpc.JobServiceStub(ch).Submit(request, timeout=5)).job.job_id
                assert await until(lambda: fed.jobs[job_id].phase is JobPhase.RUNNING)
                answer = await got(s.target, job_id)
                assert answer.spec.max_run_seconds == LIMIT and answer.started_at == clock.now
                (pid,) = agent.launched

                clock.now += LIMIT - 5  # short of the limit: it runs on, however many turns pass
                await asyncio.sleep(0.3)
                assert fed.jobs[job_id].phase is JobPhase.RUNNING and not agent.cancelled

                clock.now += 10
                assert await until(lambda: bool(agent.cancelled))
                assert agent.cancelled[0].placement_id == pid
                assert agent.cancelled[0].reason.startswith("job ran 1h0m5s, past its spec.maxRunSeconds of 3600s")
                answer = await got(s.target, job_id)
                assert convert.phase_from_pb(answer.phase) is JobPhase.FAILED
                assert answer.pending_reason.code == "DeadlineExceeded"
                assert answer.message == answer.pending_reason.message
                assert "3600s (1h0m0s)" in answer.message
                assert convert.phase_from_pb(answer.placements[0].phase) is JobPhase.CANCELLED
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                        await task

    run(go)
