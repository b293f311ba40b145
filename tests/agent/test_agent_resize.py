"""The agent and Resize (agent.proto): it says "resize" in its Hello for a backend that can, carries a Resize out
in order with the placement's other orders, and answers only one it cannot carry out (Ack ok=false, resize=true)."""

from __future__ import annotations

import asyncio

from agent_support import FLEET, ScriptedFederator, kinds, launch, with_agent

from federator.agent.agent import Agent
from federator.api.v1 import agent_pb2
from federator.backends.sim.runtime import SimBackend


def resize(pid: str, replicas: int, generation: int = 1) -> agent_pb2.FederatorMessage:
    return agent_pb2.FederatorMessage(resize=agent_pb2.Resize(placement_id=pid, generation=generation,
                                                             replicas=replicas, reason="scaled from 2 to 1"))


def test_a_sim_agent_says_it_resizes_and_shrinks_a_placement_in_place() -> None:
    # 2 x 4 accelerators on the one 8-accelerator node, shrunk to 1 (twice: a re-sync), then an old generation's
    fed = ScriptedFederator([[launch("j.g1.c-1", gpus_replicas=2), resize("j.g1.c-1", 1), resize("j.g1.c-1", 1),
                              resize("j.g1.c-1", 1, generation=0)]])
    free: list[int] = []

    async def body(agent: Agent) -> None:
        await fed.until(lambda: "ack" in kinds(fed.sessions[0]))
        await fed.until(lambda: agent.backend.capacity().free_accelerators == 4)
        await asyncio.sleep(0.1)  # the repeated and the fenced Resize change nothing
        free.append(agent.backend.capacity().free_accelerators)

    asyncio.run(with_agent(fed, body))
    hello = fed.sessions[0][0].hello
    # the simulated backend reads its "output" too, dated (a follow's)
    assert list(hello.features) == ["lost", "seals", "resize", "logs", "logs-since"]
    assert free == [4]
    acks = [m.ack for m in fed.sessions[0] if m.WhichOneof("body") == "ack"]
    assert [(a.ok, a.resize) for a in acks] == [(True, False)]  # the Launch's; a Resize carried out is not answered


class CannotShrink(SimBackend):
    async def resize(self, placement_id: str, generation: int, replicas: int) -> str | None:
        return f"LeaderWorkerSet w/{placement_id} cannot shrink in place"


def test_a_resize_the_backend_cannot_carry_out_is_answered_ack_ok_false_resize_true() -> None:
    fed = ScriptedFederator([[launch("j.g1.c-1", gpus_replicas=2), resize("j.g1.c-1", 1)]])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: kinds(fed.sessions[0]).count("ack") == 2)

    asyncio.run(with_agent(fed, body, backend=CannotShrink(FLEET["c-1"])))
    acks = [m.ack for m in fed.sessions[0] if m.WhichOneof("body") == "ack"]
    assert [(a.ok, a.resize) for a in acks] == [(True, False), (False, True)]
    assert "cannot shrink in place" in acks[1].message


class NoResize:
    """A backend without `resize` (a third party's, an older one): the agent must not claim the feature."""

    def __init__(self) -> None:
        self.sim = SimBackend(FLEET["c-1"])

    def __getattr__(self, name: str) -> object:
        if name == "resize":
            raise AttributeError(name)
        return getattr(self.sim, name)


def test_an_agent_whose_backend_cannot_resize_says_no_feature() -> None:
    fed = ScriptedFederator([[]])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: len(fed.sessions[0]) >= 1)

    backend = NoResize()
    asyncio.run(with_agent(fed, body, backend=backend))  # type: ignore[arg-type]
    assert "resize" not in fed.sessions[0][0].hello.features
