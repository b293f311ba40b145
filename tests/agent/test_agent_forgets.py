"""What an agent holds and re-syncs of finished placements is bounded, not its whole history.

Outside SRE soak (finding 3): a sim agent re-sent every placement it had ever run on every reconnect. The
contract (agent.proto, step 3) asks for the placements the cluster holds and the final phase of those that
ended within a day of stream time (or lost_after_seconds if longer); no more. A day, not lost_after_seconds only:
a federator whose store was restored from an older snapshot (a host cluster's etcd) holds such a placement Running
again, and without its end ran the job again (outside QA, Kubernetes DR, K1).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from agent_support import FLEET, ScriptedFederator, kinds, launch, with_agent

from federator.agent.agent import ENDED_KEPT_SECONDS, Agent
from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.backends.sim.fleet import parse_fleet
from federator.backends.sim.runtime import SimBackend
from federator.jobfile import parse_job
from federator.model import JobPhase

BIG = parse_fleet({"clusters": [{"name": "c-1", "region": "r", "nodes": [  # room for all of them at once
    {"count": 8, "gpuModel": "H100", "gpus": 8, "cpu": 64, "memory": "256Gi"}]}]})

SHORT = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                   "metadata": {"name": "j", "annotations": {"federator.io/sim-duration": "10ms",
                                                             "federator.io/sim-startup": "0s"}},
                   "spec": {"kind": "training", "resources": {"cpu": "1", "nvidia.com/gpu": 1}}})
N = 40


def updates(msgs: list[agent_pb2.AgentMessage]) -> list[agent_pb2.JobUpdate]:
    return [m.job_update for m in msgs if m.WhichOneof("body") == "job_update"]


def ended(msgs: list[agent_pb2.AgentMessage]) -> set[str]:
    return {u.placement_id for u in updates(msgs) if convert.phase_from_pb(u.phase).is_terminal}


def test_a_reconnect_re_syncs_the_live_placements_and_only_the_recent_ends() -> None:
    script = [launch("live.g1.c-1", 1)] + [launch(f"s{i}.g1.c-1", 1, spec=SHORT) for i in range(N)]
    fed = ScriptedFederator([script, [], [], []], lost_after=1.0)
    backend = SimBackend(BIG["c-1"], finished_ttl=0.05)

    def running(msgs: list[agent_pb2.AgentMessage]) -> set[str]:
        return {u.placement_id for u in updates(msgs) if convert.phase_from_pb(u.phase) is JobPhase.RUNNING}

    async def body(agent: Agent) -> None:
        # live's Running too, told on the first stream: it starts 0.5 s after its launch (the sim's default), about
        # when the 40 short ones have ended and 0.2 s passed; reached once the second stream was open, its live
        # update (resync false) was read with that stream's re-sync (1 run in 30 on a loaded machine)
        await fed.until(lambda: len(ended(fed.sessions[0])) == N and "live.g1.c-1" in running(fed.sessions[0]))
        await asyncio.sleep(0.2)  # past the backend's finished_ttl, within lost_after
        assert set(backend.placements()) == {"live.g1.c-1"}
        agent._outbox.put_nowait(None)  # noqa: SLF001 - the stream breaks
        await fed.until(lambda: len(fed.sessions) == 2 and "capacity" in kinds(fed.sessions[1]))
        second = updates(fed.sessions[1])
        assert all(u.resync for u in second)
        assert second[0].placement_id == "live.g1.c-1"  # what it holds, then what ended lately (step 3)
        assert {u.placement_id for u in second[1:]} == {f"s{i}.g1.c-1" for i in range(N)}

        await asyncio.sleep(1.0)  # past lost_after: a federator restored from an older store still needs the ends
        agent._outbox.put_nowait(None)  # noqa: SLF001
        await fed.until(lambda: len(fed.sessions) == 3 and "capacity" in kinds(fed.sessions[2]))
        assert {u.placement_id for u in updates(fed.sessions[2])[1:]} == {f"s{i}.g1.c-1" for i in range(N)}

        for pid, end in list(agent._ended.items()):  # noqa: SLF001 - each ended a day of stream time ago
            agent._ended[pid] = replace(end, at=end.at - ENDED_KEPT_SECONDS - 1)  # noqa: SLF001
        agent._live_since = agent._live_since - ENDED_KEPT_SECONDS - 1  # type: ignore[operator]  # noqa: SLF001
        agent._outbox.put_nowait(None)  # noqa: SLF001
        await fed.until(lambda: len(fed.sessions) == 4 and "capacity" in kinds(fed.sessions[3]))
        assert [(u.placement_id, u.phase) for u in updates(fed.sessions[3])] == [
            ("live.g1.c-1", convert.phase_to_pb(JobPhase.RUNNING))]
        assert len(agent._ended) == 0  # noqa: SLF001

    asyncio.run(with_agent(fed, body, backend=backend))


def test_a_launch_of_a_placement_that_ended_and_was_forgotten_starts_nothing_new() -> None:
    """Contract step 6: the same id twice starts nothing new, though the cluster no longer holds it."""
    fed = ScriptedFederator([[launch("s.g1.c-1", 1, spec=SHORT)], [launch("s.g1.c-1", 1, spec=SHORT)]])
    backend = SimBackend(FLEET["c-1"], finished_ttl=0.01)

    async def body(agent: Agent) -> None:
        await fed.until(lambda: ended(fed.sessions[0]) == {"s.g1.c-1"})
        await asyncio.sleep(0.1)
        assert backend.placements() == {}
        agent._outbox.put_nowait(None)  # noqa: SLF001 - the next session launches it again
        await fed.until(lambda: len(fed.sessions) == 2 and "ack" in kinds(fed.sessions[1])
                        and len(updates(fed.sessions[1])) >= 2)
        (ack,) = [m.ack for m in fed.sessions[1] if m.WhichOneof("body") == "ack"]
        assert ack.ok and ack.message.startswith("already ended here")
        phases = {convert.phase_from_pb(u.phase) for u in updates(fed.sessions[1])}
        assert phases == {JobPhase.SUCCEEDED}  # the re-sync's and the answer's: never Placed or Running again
        await asyncio.sleep(0.1)
        assert backend.placements() == {}

    asyncio.run(with_agent(fed, body, backend=backend))


def test_a_final_phase_outlives_a_federator_away_longer_than_lost_after() -> None:
    """Outside SRE QA F1: jobs that succeeded while the federator was paused for 142 s (lost-after 120 s) were run
    a second time, because the agent had forgotten their final phases by the time the federator was back, and the
    re-sync's silence said "lost". Time without a stream no longer ages a final phase: the re-sync after a long
    outage still carries it."""
    fed = ScriptedFederator([[launch("s.g1.c-1", 1, spec=SHORT), agent_pb2.FederatorMessage()]], lost_after=0.3)
    backend = SimBackend(BIG["c-1"], finished_ttl=0.01)  # the member forgets the finished Job at once

    async def away(delay: float) -> None:
        await asyncio.sleep(1.0)  # the federator is down: no stream for three times lost_after

    async def body(agent: Agent) -> None:
        agent.reconnect_sleep = away
        await fed.until(lambda: len(fed.sessions) == 2 and "capacity" in kinds(fed.sessions[1]))
        assert backend.placements() == {}
        assert [(u.placement_id, convert.phase_from_pb(u.phase), u.resync) for u in updates(fed.sessions[1])] == [
            ("s.g1.c-1", JobPhase.SUCCEEDED, True)]

    asyncio.run(with_agent(fed, body, backend=backend))
