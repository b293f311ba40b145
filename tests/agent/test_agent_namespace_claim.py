"""A backend's claim on where it runs (agent/backend.py `ClaimsNamespace`; the Kubernetes one:
backends/kube/namespace_claim.py): while refused the agent is not ready and says why on /readyz and its metric; a
claim taken over while it runs ends the agent with the claim's words."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agent_support import FLEET

from federator.agent.agent import Agent, AgentConfig
from federator.agent.metrics import AgentMetrics
from federator.backends.kube.namespace_claim import NamespaceTaken
from federator.backends.sim.runtime import SimBackend

REFUSED = "namespace N is claimed by another federation's agent (Lease N/federator-agent-c-1: federator F)"


def value(m: AgentMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


class ClaimedSim(SimBackend):
    """A simulated cluster with a claim: refused at start, then held, then taken over while the agent runs."""

    said: Any = None

    def tell_claim(self, said: Any) -> None:
        self.said = said

    async def start(self, on_update: Any) -> None:
        self.said("refused", REFUSED)
        self.said("held", "")
        await super().start(on_update)

    async def keep_claim(self) -> None:
        await asyncio.sleep(0.05)
        raise NamespaceTaken(0, f"{REFUSED}. This agent held it until it could not renew the claim")


def test_an_agent_whose_claim_is_taken_over_ends_saying_why() -> None:
    config = AgentConfig(cluster="c-1", region="east", target="127.0.0.1:9")  # nothing listens there: it retries
    agent = Agent(config, ClaimedSim(FLEET["c-1"]))
    with pytest.raises(NamespaceTaken, match="could not renew the claim"):
        asyncio.run(asyncio.wait_for(agent.run(), 30))
    assert value(agent.metrics, "federator_agent_namespace_claim", cluster="c-1", state="held") == 1


def test_a_backend_without_a_claim_shows_no_claim_metric() -> None:
    agent = Agent(AgentConfig(cluster="c-1", region="east", target="127.0.0.1:9"), SimBackend(FLEET["c-1"]))
    assert value(agent.metrics, "federator_agent_namespace_claim", cluster="c-1", state="held") is None


def test_a_refused_claim_is_not_ready_with_its_words_and_on_the_metric() -> None:
    m = AgentMetrics(cluster="c-1", region="east")
    m.session_opened()
    m.sent(report=True)
    assert m.ready()
    m.namespace_claim("refused", REFUSED)
    assert not m.ready() and m.not_ready() == f"not running: {REFUSED}"
    assert value(m, "federator_agent_namespace_claim", cluster="c-1", state="refused") == 1
    assert value(m, "federator_agent_namespace_claim", cluster="c-1", state="held") == 0
    m.namespace_claim("held", "")
    assert m.ready() and "not connected" in m.not_ready()
    assert value(m, "federator_agent_namespace_claim", cluster="c-1", state="held") == 1
    assert value(m, "federator_agent_namespace_claim", cluster="c-1", state="refused") == 0
