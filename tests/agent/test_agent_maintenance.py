"""`federator agent --maintenance REASON` (outside provider QA F5): every report of every stream asks for it, the
first one included, since the federator does not store it (agent.proto CapacityReport.maintenance)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from agent_support import FLEET, SPEC, ScriptedFederator, launch, with_agent

from federator.agent.agent import Agent
from federator.api.v1 import agent_pb2
from federator.backends.sim.runtime import SimBackend
from federator.model import JobId, Placement, PlacementId

WHY = "driver upgrade, ticket 4711"


def test_every_report_of_every_stream_carries_the_providers_maintenance() -> None:
    fed = ScriptedFederator([[agent_pb2.FederatorMessage()], []])  # the first stream ends: a reconnect

    def reports(session: int) -> list[agent_pb2.CapacityReport]:
        return [m.capacity for m in fed.sessions[session] if m.WhichOneof("body") == "capacity"]

    async def body(agent: Agent) -> None:
        await fed.until(lambda: len(reports(1)) >= 2)

    asyncio.run(with_agent(fed, body, maintenance=WHY))
    sent = reports(0) + reports(1)
    assert sent and all(r.maintenance == WHY for r in sent)


def test_without_the_flag_no_report_asks_for_it() -> None:
    fed = ScriptedFederator([])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: sum(m.WhichOneof("body") == "capacity" for m in fed.sessions[0]) >= 2)

    asyncio.run(with_agent(fed, body))
    assert all(not m.capacity.maintenance for m in fed.sessions[0])


def _scraped_maintenance(agent: Agent) -> float | None:
    """federator_agent_maintenance as a Prometheus scrape of the agent's registry reads it."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    text = generate_latest(agent.metrics.registry).decode()
    return next((s.value for f in text_string_to_metric_families(text) for s in f.samples
                 if s.name == "federator_agent_maintenance" and s.labels == {"cluster": agent.config.cluster}), None)


def test_the_agents_metrics_say_the_cluster_is_in_maintenance_and_not_without_the_flag() -> None:
    """The member's SRE sees the provider's maintenance on the agent's own /metrics (provider QA: no agent metric
    said it), 1 with --maintenance and 0 without, so a maintenance left on can be alerted on where the member is
    watched."""
    def scraped(**kwargs: str) -> float | None:
        fed = ScriptedFederator([])
        seen: list[float | None] = []

        async def body(agent: Agent) -> None:
            await fed.until(lambda: any(m.WhichOneof("body") == "capacity" for m in fed.sessions[0]))
            seen.append(_scraped_maintenance(agent))

        asyncio.run(with_agent(fed, body, **kwargs))
        return seen[0]

    assert (scraped(maintenance=WHY), scraped()) == (1.0, 0.0)


def test_in_maintenance_the_agent_itself_refuses_new_placements_and_keeps_those_it_holds(
        caplog: pytest.LogCaptureFixture) -> None:
    """Outside QA (ops, F8): a 0.5 federator ignores CapacityReport.maintenance and keeps the cluster Ready, and the
    0.6 agent launched the new gang it was sent. The agent enforces its maintenance itself: a Launch of a placement
    it does not hold is refused (Ack ok=false naming maintenance, a refused launch, a WARNING); one it holds, sent
    again after a reconnect, is answered as before and keeps running."""
    fed = ScriptedFederator([[launch("held"), launch("new")]])  # as a federator that knows no maintenance would
    backend = SimBackend(FLEET["c-1"])

    def acks() -> dict[str, agent_pb2.Ack]:
        return {m.ack.placement_id: m.ack for s in fed.sessions for m in s if m.WhichOneof("body") == "ack"}

    async def main() -> Agent:
        # it ran here before the provider restarted the agent with --maintenance
        assert await backend.launch(Placement(PlacementId("held"), JobId("j"), "c-1", "r", 1, "H100", 1),
                                    SPEC) is None

        async def body(agent: Agent) -> None:
            await fed.until(lambda: {"held", "new"} <= acks().keys())

        return await asyncio.wait_for(with_agent(fed, body, backend=backend, maintenance=WHY), 20)

    with caplog.at_level(logging.WARNING, logger="federator.agent"):
        agent = asyncio.run(main())
    assert acks()["held"].ok
    refused = acks()["new"]
    assert not refused.ok and "maintenance" in refused.message and WHY in refused.message
    assert "new" not in backend.placements() and "held" in backend.placements()
    assert agent.metrics.registry.get_sample_value("federator_agent_launches_total", {"result": "refused"}) == 1
    assert any("refused placement new" in r.getMessage() and "maintenance" in r.getMessage() for r in caplog.records)


def test_without_maintenance_the_same_launch_is_carried_out() -> None:
    fed = ScriptedFederator([[launch("new")]])

    def acks() -> dict[str, agent_pb2.Ack]:
        return {m.ack.placement_id: m.ack for s in fed.sessions for m in s if m.WhichOneof("body") == "ack"}

    async def body(agent: Agent) -> None:
        await fed.until(lambda: "new" in acks())

    asyncio.run(asyncio.wait_for(with_agent(fed, body), 20))
    assert acks()["new"].ok
