"""Two agents with one cluster name do not fight: the second is refused while the first is live (server/duplicates.py).

Outside SRE, chaos day: a second agent started with `--cluster east-1` superseded the first; its re-sync said it
held nothing, so the 4 placements east-1 ran were cancelled and placed again on west-1, and the two streams then
superseded each other about ten times a second while `get clusters` showed east-1 Ready. Real gRPC over loopback:
the federator's AgentService, raw streams and real agents with the simulated backend.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import grpc
import pytest
from test_services_edge import SUPERSEDED, agent_stream, channel, report, run, served

from federator.agent.agent import Agent, AgentConfig
from federator.api.v1 import agent_pb2, jobs_pb2, jobs_pb2_grpc
from federator.backends.sim.fleet import parse_fleet
from federator.backends.sim.runtime import SimBackend
from federator.cli.output import cluster_rows
from federator.jobfile import parse_job
from federator.model import JobPhase
from federator.server import duplicates

FLEET = parse_fleet({"clusters": [{"name": "east-1", "region": "east", "nodes": [
    {"count": 1, "gpuModel": "H100", "gpus": 8, "cpu": 64, "memory": "256Gi"}]}]})
TRAIN = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                   "metadata": {"name": "train", "annotations": {"federator.io/sim-startup": "0s",
                                                                 "federator.io/sim-duration": "3600s"}},
                   "spec": {"kind": "training", "replicas": 1, "resources": {"cpu": "1", "nvidia.com/gpu": 4}}})
A, B = "6f1c1b7e-0000-4000-8000-00000000000a", "6f1c1b7e-0000-4000-8000-00000000000b"


def hello(instance: str, cluster: str = "east-1") -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(hello=agent_pb2.Hello(cluster=cluster, region="east", instance=instance))


def refused_count(fed: object, cluster: str = "east-1") -> float:
    return fed.metrics.registry.get_sample_value(  # type: ignore[attr-defined]
        "federator_agent_duplicates_refused_total", {"cluster": cluster}) or 0.0


async def until(cond: Callable[[], object], timeout: float = 20.0) -> None:
    async def wait() -> None:
        while not cond():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(wait(), timeout)


def test_a_second_agent_is_refused_and_the_first_keeps_its_running_placement() -> None:
    async def go() -> None:
        async with served() as s:
            fed = s.fed
            first_backend, second_backend = SimBackend(FLEET["east-1"]), SimBackend(FLEET["east-1"])
            first = Agent(AgentConfig(cluster="east-1", region="east", target=s.target, max_backoff=0.2),
                          first_backend)
            second = Agent(AgentConfig(cluster="east-1", region="east", target=s.target, max_backoff=0.2),
                           second_backend)
            tasks = [asyncio.create_task(first.run())]
            try:
                await until(lambda: (rec := fed.clusters.get("east-1")) is not None and rec.resynced)
                job = fed.submit(TRAIN)
                fed.schedule_once()
                await until(lambda: job.phase is JobPhase.RUNNING)
                (placed,) = job.placements
                held = fed.clusters["east-1"]

                tasks.append(asyncio.create_task(second.run()))  # the twin: same name, another process
                # refused, and again at each retry (before the fix: welcomed, and its re-sync moved the job)
                await until(lambda: refused_count(fed) >= 3 or (second.sessions and job.placements != [placed]))

                assert [(p.placement_id, p.phase) for p in job.placements] == \
                    [(placed.placement_id, JobPhase.RUNNING)], job.message
                assert job.phase is JobPhase.RUNNING
                assert first_backend.placements() == {placed.placement_id: JobPhase.RUNNING}  # never cancelled
                assert fed.clusters["east-1"] is held and held.connected and not held.closing
                assert held.instance == first.instance != second.instance
                assert first.sessions == 1 and second.sessions == 0  # never superseded, never welcomed
                assert fed.metrics.registry.get_sample_value("federator_agent_connections_total",
                                                             {"cluster": "east-1"}) == 1.0

                async with channel(s.target) as ch:  # `get clusters` says so
                    resp = await jobs_pb2_grpc.ClusterServiceStub(ch).List(jobs_pb2.ListClustersRequest())
                (status,) = resp.clusters
                assert status.state == "Ready"
                assert "127.0.0.1" in status.duplicate_agent and "another agent instance" in status.duplicate_agent
                _, (row,) = cluster_rows([{"name": status.name, "region": status.region, "state": status.state,
                                           "capacity": None, "last_report_at": 0.0, "placements": 1,
                                           "duplicate_agent": status.duplicate_agent}], wide=False)
                assert row[2] == "Ready,DuplicateAgent"
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await first_backend.stop()
                await second_backend.stop()

    run(go)


def test_the_refusal_is_already_exists_naming_the_cluster_the_holder_and_when_it_was_heard(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="federator.server")

    async def go() -> None:
        async with served() as s:
            async with channel(s.target) as ch:
                older = asyncio.create_task(agent_stream(ch, [hello(A), report()]))
                await until(lambda: (rec := s.fed.clusters.get("east-1")) is not None and rec.resynced)
                got, err = await agent_stream(ch, [hello(B)])
                assert got == []  # no Welcome
                assert err is not None and err.code() is grpc.StatusCode.ALREADY_EXISTS
                details = err.details() or ""
                assert details.startswith("cluster east-1: another agent instance (" + A + " at ipv")
                assert "127.0.0.1" in details and "s ago) holds it" in details
                assert "refused until the first has been silent for a lease (10s)" in details
                assert refused_count(s.fed) == 1.0
                rec = s.fed.clusters["east-1"]
                assert rec.instance == A and rec.connected and not rec.closing and rec.outbox.qsize() == 0
                now = s.fed.clock()
                assert duplicates.shown(rec, now).startswith("an agent at ipv")  # said on the cluster a minute
                assert duplicates.shown(rec, now + duplicates.SHOWN_SECONDS + 1) == ""
                first, ended = await older
                assert ended is None and first[0].WhichOneof("body") == "welcome"

    run(go)
    (line,) = [r.getMessage() for r in caplog.records if "refused an agent stream of cluster east-1" in r.getMessage()]
    assert line.startswith("refused an agent stream of cluster east-1 from ipv4:127.0.0.1:")  # where to find it


@pytest.mark.parametrize(("old", "new"), [(A, A), (A, ""), ("", B), ("", "")],
                         ids=["same-instance-reconnects", "newcomer-without-instance", "holder-without-instance",
                              "neither-says"])
def test_a_newer_stream_takes_over_at_once_when_it_is_the_same_instance_or_either_says_none(old: str,
                                                                                           new: str) -> None:
    async def go() -> None:
        async with served() as s:
            async with channel(s.target) as ch:
                older = asyncio.create_task(agent_stream(ch, [hello(old)], quiet=SUPERSEDED))
                await until(lambda: "east-1" in s.fed.clusters)
                newer, err = await agent_stream(ch, [hello(new)])
                assert err is None and newer[0].WhichOneof("body") == "welcome"
                _, ended = await older
            assert ended is not None and ended.code() is grpc.StatusCode.ABORTED
            assert "superseded by a newer stream for cluster east-1" in (ended.details() or "")
            assert refused_count(s.fed) == 0.0

    run(go)


def test_another_instance_takes_over_once_the_holder_has_been_silent_for_a_lease() -> None:
    """The agent restarted on a new pod after the old one's node died: the old stream may look open for ever."""
    async def go() -> None:
        async with served() as s:
            async with channel(s.target) as ch:
                older = asyncio.create_task(agent_stream(ch, [hello(A)], quiet=SUPERSEDED))
                await until(lambda: "east-1" in s.fed.clusters)
                rec = s.fed.clusters["east-1"]
                rec.last_seen_at -= s.fed.lease_seconds - 1  # heard within the lease: still the holder
                _, err = await agent_stream(ch, [hello(B)])
                assert err is not None and err.code() is grpc.StatusCode.ALREADY_EXISTS
                rec.last_seen_at -= 2  # now silent for longer than a lease
                newer, err = await agent_stream(ch, [hello(B)])
                assert err is None and newer[0].WhichOneof("body") == "welcome"
                _, ended = await older
            assert ended is not None and ended.code() is grpc.StatusCode.ABORTED
            assert s.fed.clusters["east-1"].instance == B
            assert refused_count(s.fed) == 1.0

    run(go)


@pytest.mark.parametrize("instance", ["x" * 65, "a\nb"], ids=["too-long", "line-break"])
def test_an_instance_out_of_bounds_is_refused_naming_the_field(instance: str) -> None:
    async def go() -> None:
        async with served() as s:
            async with channel(s.target) as ch:
                _, err = await agent_stream(ch, [hello(instance)])
            assert err is not None and err.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert (err.details() or "").startswith("hello.instance: must be at most 64 printable characters")
            assert "east-1" not in s.fed.clusters

    run(go)


async def take_over(s: object, ch: grpc.aio.Channel, session: int) -> asyncio.Task[object]:
    """Open a stream without an instance and wait until it holds the cluster as `session`."""
    task: asyncio.Task[object] = asyncio.create_task(agent_stream(ch, [hello("")]))
    await until(lambda: (rec := s.fed.clusters.get("east-1")) is not None  # type: ignore[attr-defined]
                and rec.session == session)
    return task


def test_twins_without_an_instance_are_told_by_their_takeovers_and_the_next_one_is_refused(
        caplog: pytest.LogCaptureFixture) -> None:
    """Two older agents with one name: each superseded the other at every reconnect, for ever."""
    caplog.set_level(logging.WARNING, logger="federator.server")

    async def go() -> None:
        async with served() as s:
            async with channel(s.target) as ch:
                streams = [await take_over(s, ch, 1)]
                for session in range(2, 2 + duplicates.TWIN_TAKEOVERS):  # a blip's reconnect takes over, as before
                    streams.append(await take_over(s, ch, session))
                holder = s.fed.clusters["east-1"]
                assert len(holder.takeovers) == duplicates.TWIN_TAKEOVERS
                got, err = await agent_stream(ch, [hello("")])
                assert got == []  # no Welcome
                assert err is not None and err.code() is grpc.StatusCode.ALREADY_EXISTS
                details = err.details() or ""
                assert details.startswith("cluster east-1: another agent (no instance at ipv4:127.0.0.1:")
                assert f"taken over {duplicates.TWIN_TAKEOVERS} times in the last 300s while live" in details
                assert "refused until the holder has been silent for a lease (10s)" in details
                assert s.fed.clusters["east-1"] is holder and holder.connected and not holder.closing
                assert refused_count(s.fed) == 1.0
                assert duplicates.shown(holder, s.fed.clock()).startswith("an agent at ipv4:127.0.0.1:")
                ended = [await t for t in streams]
            for _, err in ended[:-1]:  # superseded, each by the next
                assert err is not None and err.code() is grpc.StatusCode.ABORTED
            assert ended[-1][1] is None  # the holder's stream was never touched
            assert s.fed.metrics.registry.get_sample_value("federator_agent_connections_total",
                                                           {"cluster": "east-1"}) == 1 + duplicates.TWIN_TAKEOVERS

    run(go)
    assert any("refused an agent stream of cluster east-1 from ipv4:127.0.0.1:" in r.getMessage()
               for r in caplog.records)


def test_a_twin_that_keeps_retrying_stays_refused_past_the_window_and_one_that_stopped_is_forgotten() -> None:
    async def go() -> None:
        async with served() as s:
            async with channel(s.target) as ch:
                streams = [await take_over(s, ch, n) for n in range(1, 2 + duplicates.TWIN_TAKEOVERS)]
                holder = s.fed.clusters["east-1"]
                step = 0.6 * duplicates.TWIN_WINDOW_SECONDS
                for _ in range(3):  # it retries within the window each time: each refusal keeps the evidence
                    holder.takeovers = tuple(t - step for t in holder.takeovers)
                    if holder.duplicate is not None:
                        holder.duplicate = duplicates.Duplicate(holder.duplicate.message, holder.duplicate.at - step)
                    _, err = await agent_stream(ch, [hello("")])
                    assert err is not None and err.code() is grpc.StatusCode.ALREADY_EXISTS
                assert refused_count(s.fed) == 3.0
                assert "a second agent with its name was refused 180s ago" in (err.details() or "")
                # the twin was stopped: a window later, a new stream without an instance takes over again
                assert holder.duplicate is not None
                holder.duplicate = duplicates.Duplicate(holder.duplicate.message,
                                                        holder.duplicate.at - duplicates.TWIN_WINDOW_SECONDS - 1)
                streams.append(await take_over(s, ch, 2 + duplicates.TWIN_TAKEOVERS))
                assert len(s.fed.clusters["east-1"].takeovers) == 1
                for t in streams:
                    await t

    run(go)


def test_an_agent_taken_for_a_twin_gets_its_cluster_once_the_holder_has_been_silent_for_a_lease() -> None:
    """A single older agent with three half-open reconnects in the window: refused a lease, not for ever."""
    async def go() -> None:
        async with served() as s:
            async with channel(s.target) as ch:
                streams = [await take_over(s, ch, n) for n in range(1, 2 + duplicates.TWIN_TAKEOVERS)]
                holder = s.fed.clusters["east-1"]
                _, err = await agent_stream(ch, [hello("")])
                assert err is not None and err.code() is grpc.StatusCode.ALREADY_EXISTS
                holder.last_seen_at -= s.fed.lease_seconds + 1  # the half-open stream it left went silent
                streams.append(await take_over(s, ch, 2 + duplicates.TWIN_TAKEOVERS))
                assert s.fed.clusters["east-1"].takeovers == ()  # an agent coming back, not a twin
                for t in streams:
                    await t

    run(go)


def test_two_real_agents_without_an_instance_stop_superseding_each_other() -> None:
    async def go() -> None:
        async with served() as s:
            fed = s.fed
            backends = [SimBackend(FLEET["east-1"]), SimBackend(FLEET["east-1"])]
            agents = [Agent(AgentConfig(cluster="east-1", region="east", target=s.target, max_backoff=0.2), b)
                      for b in backends]
            for agent in agents:
                agent._session.instance = ""  # an older agent: its Hello says no instance
            tasks = [asyncio.create_task(agents[0].run())]
            try:
                await until(lambda: (rec := fed.clusters.get("east-1")) is not None and rec.resynced)
                tasks.append(asyncio.create_task(agents[1].run()))

                def connects() -> float:
                    return fed.metrics.registry.get_sample_value("federator_agent_connections_total",
                                                                 {"cluster": "east-1"}) or 0.0

                # before: they superseded each other at every reconnect, and never one was refused
                await until(lambda: refused_count(fed) >= 3 or connects() > 10)
                assert connects() == 1 + duplicates.TWIN_TAKEOVERS
                holder = fed.clusters["east-1"]
                assert holder.connected and not holder.closing
                await until(lambda: refused_count(fed) >= 6 or connects() > 1 + duplicates.TWIN_TAKEOVERS)
                assert fed.clusters["east-1"] is holder and connects() == 1 + duplicates.TWIN_TAKEOVERS
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                for b in backends:
                    await b.stop()

    run(go)
