"""`federator agent --maintenance REASON` (outside provider QA F5): every report of every stream asks for it, the
first one included, since the federator does not store it (agent.proto CapacityReport.maintenance)."""

from __future__ import annotations

import asyncio

from agent_support import ScriptedFederator, with_agent

from federator.agent.agent import Agent
from federator.api.v1 import agent_pb2

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
