"""A job a member's API refuses as invalid fails with the member's words, once another provider agrees, over real
gRPC with scripted agents (agent.proto Ack.invalid, server/invalid_specs.py).

Outside QA (an ML engineer on the test bed): a pod template the federator accepted, refused by a member's
kube-apiserver with 422 Invalid, was answered `Ack ok=false` and read as the cluster refusing: the job was placed
and refused again for minutes, until --max-refusals, its reason "refused by cluster".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import grpc
from scripted_agent import ScriptedStream
from test_early_failures_grpc import job
from test_services_edge import channel, run, served

from federator.api import convert
from federator.api.v1 import agent_pb2, jobs_pb2, jobs_pb2_grpc
from federator.model import JobPhase, ReasonCode
from federator.security.trust import PROVIDER_LABEL
from federator.server.federator import Federator

from builders import cluster, pool

H100 = "NVIDIA-H100-80GB-HBM3"
WORDS = ('spec.template.spec.containers[0].ports[0].name: Invalid value: "metrics-exporter-port": must be no more '
         "than 15 characters (HTTP 422 Invalid; federator-workloads/x)")


class ScriptedAgent(ScriptedStream):
    """Hello with its provider, and each Launch answered `Ack ok=false` with the API's words, `invalid` as told."""

    def __init__(self, name: str, provider: str, *, invalid: bool) -> None:
        super().__init__(name, agent_pb2.Hello(cluster=name, region="r", labels={PROVIDER_LABEL: provider}),
                         convert.capacity_to_pb(cluster(name, "r", pool(H100, nodes=2)).capacity))
        self.invalid = invalid

    def answer(self, placement_id: str) -> None:
        self.send(ack=agent_pb2.Ack(placement_id=placement_id, ok=False, message=WORDS, invalid=self.invalid))


async def until(what: Callable[[], bool], *, tries: int = 200) -> bool:
    for _ in range(tries):
        if what():
            return True
        await asyncio.sleep(0.05)
    return what()


async def fleet(agents: list[ScriptedAgent],
                then: Callable[[Federator, str, str], Awaitable[None]]) -> None:
    """The federator's loop and `agents` connected, one job submitted over the API; `then(fed, target, job_id)`."""
    async with served() as s:
        fed = s.fed
        fed.cycle_interval = 0.1
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(a.run(s.target)) for a in agents]
        runner = loop.create_task(fed.run())
        try:
            names = {a.name for a in agents}
            assert await until(lambda: names <= {n for n, r in fed.clusters.items() if r.capacity is not None})
            async with channel(s.target) as ch:
                job_id = (await jobs_pb2_grpc.JobServiceStub(ch).Submit(job("bad-port"), timeout=5)).job.job_id
            await then(fed, s.target, job_id)
        finally:
            runner.cancel()
            for task in tasks:
                task.cancel()
            for task in (runner, *tasks):
                with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                    await task


async def got(target: str, job_id: str) -> jobs_pb2.Job:
    async with channel(target) as ch:
        return await jobs_pb2_grpc.JobServiceStub(ch).Get(jobs_pb2.GetJobRequest(job_id=job_id), timeout=5)


def retries(fed: Federator, reason: str) -> float:
    return fed.metrics.registry.get_sample_value("federator_placement_retries_total", {"reason": reason}) or 0.0


def test_two_providers_calling_it_invalid_fail_the_job_with_the_members_words_after_one_try_each() -> None:
    acme = ScriptedAgent("acme-east", "acme", invalid=True)
    gx = ScriptedAgent("gx-west", "gx", invalid=True)

    async def then(fed: Federator, target: str, job_id: str) -> None:
        assert await until(lambda: fed.jobs[job_id].phase is JobPhase.FAILED), fed.jobs[job_id].pending_reason
        # One try on each provider's cluster: the second was asked at once, not after a refusal's back-off.
        assert (len(acme.launched), len(gx.launched)) == (1, 1)
        answer = await got(target, job_id)
        assert convert.phase_from_pb(answer.phase) is JobPhase.FAILED
        assert answer.pending_reason.code == ReasonCode.INVALID_SPEC.value == "InvalidSpec"
        assert WORDS in answer.message and "the job's spec is invalid" in answer.message
        assert "acme-east (provider acme)" in answer.message and "gx-west (provider gx)" in answer.message
        assert retries(fed, "InvalidSpec") == 2.0 and retries(fed, "RefusedByCluster") == 0.0
        assert fed.metrics.registry.get_sample_value("federator_placements_total", {"result": "invalid"}) == 2.0

    run(lambda: fleet([acme, gx], then))


def test_in_a_one_provider_fleet_the_first_invalid_fails_the_job() -> None:
    one = ScriptedAgent("acme-east", "acme", invalid=True)
    two = ScriptedAgent("acme-west", "acme", invalid=True)  # the same provider: its word would add nothing

    async def then(fed: Federator, target: str, job_id: str) -> None:
        assert await until(lambda: fed.jobs[job_id].phase is JobPhase.FAILED), fed.jobs[job_id].pending_reason
        assert len(one.launched) + len(two.launched) == 1
        answer = await got(target, job_id)
        assert answer.pending_reason.code == "InvalidSpec"
        assert "no cluster of another provider is Ready to confirm it" in answer.message and WORDS in answer.message

    run(lambda: fleet([one, two], then))


def test_a_refusal_without_invalid_keeps_todays_behaviour() -> None:
    acme = ScriptedAgent("acme-east", "acme", invalid=False)
    gx = ScriptedAgent("gx-west", "gx", invalid=False)

    async def then(fed: Federator, target: str, job_id: str) -> None:
        assert await until(lambda: len(acme.launched) == len(gx.launched) == 1)
        assert await until(lambda: fed.refusals.avoided(job_id, fed.clock()) == ("acme-east", "gx-west"))
        answer = await got(target, job_id)
        assert convert.phase_from_pb(answer.phase) is JobPhase.PENDING  # both kept off a while, tried again later
        assert answer.pending_reason.code in ("RefusedByCluster", "RecentlyRefused")
        assert retries(fed, "RefusedByCluster") == 2.0 and retries(fed, "InvalidSpec") == 0.0

    run(lambda: fleet([acme, gx], then))
