"""The agent answers `Ack ok=false invalid=true` only for a backend's `Invalid` refusal: the member's API refused
the workload object itself (agent.proto, Ack.invalid). Any other refusal stays a plain one, the cluster's."""

from __future__ import annotations

import asyncio

from agent_support import FLEET, ScriptedFederator, launch, with_agent

from federator.agent.agent import Agent
from federator.agent.backend import Invalid
from federator.api.v1 import agent_pb2
from federator.backends.sim.runtime import SimBackend
from federator.model import JobSpec, Placement

WORDS = ('the member cluster refused the Job: spec.template.spec.containers[0].ports[0].name: Invalid value: '
         '"metrics-exporter-port": must be no more than 15 characters (HTTP 422 Invalid; w/x)')


class RefusingBackend(SimBackend):
    """Refuses "bad" as the member's API refusing the object, "full" as the cluster's own refusal."""

    async def launch(self, placement: Placement, spec: JobSpec) -> str | None:
        if placement.placement_id == "bad":
            return Invalid(WORDS)
        if placement.placement_id == "full":
            return 'jobs "x" is forbidden: exceeded quota: gpu (HTTP 403 Forbidden; w/x)'
        return await super().launch(placement, spec)


def acks(fed: ScriptedFederator) -> dict[str, agent_pb2.Ack]:
    return {m.ack.placement_id: m.ack for s in fed.sessions for m in s if m.WhichOneof("body") == "ack"}


def test_only_an_invalid_refusal_sets_ack_invalid_with_the_apis_words() -> None:
    async def main() -> None:
        fed = ScriptedFederator([[launch("bad"), launch("full"), launch("fine")]])

        async def body(agent: Agent) -> None:
            await fed.until(lambda: {"bad", "full", "fine"} <= set(acks(fed)))
            got = acks(fed)
            assert (got["bad"].ok, got["bad"].invalid, got["bad"].message) == (False, True, WORDS)
            assert (got["full"].ok, got["full"].invalid) == (False, False)
            assert (got["fine"].ok, got["fine"].invalid) == (True, False)

        await asyncio.wait_for(with_agent(fed, body, RefusingBackend(FLEET["c-1"])), 20)

    asyncio.run(main())
