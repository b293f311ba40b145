"""The agent judges whether its member's API answers (agent/member_health.py; QA F5): unreachable after the
hysteresis, reachable again at the first answer; meanwhile its reports say so instead of a stale capacity, and a
Launch is refused at once with the reason."""

from __future__ import annotations

import asyncio
import logging

import pytest
from agent_support import FLEET, ScriptedFederator, launch, with_agent

from federator.agent.agent import Agent
from federator.agent.member_health import MemberHealth
from federator.api.v1 import agent_pb2
from federator.backends.sim.runtime import SimBackend


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("gaps", "turns_at"), [
    ([5.0, 5.0, 5.0], 2),  # a frozen API: each probe waits its timeout; the 2nd failure is 10 s on
    ([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 10),  # refused at once: held until 10 s have passed
], ids=["timeouts", "refused-at-once"])
def test_failures_turn_it_unreachable_only_after_the_hysteresis(gaps: list[float], turns_at: int) -> None:
    clock = Clock()
    health = MemberHealth(cluster="c-1", clock=clock)
    turned = []
    for gap in gaps:
        clock.now += gap
        turned.append(health.failed("GET /readyz: read timed out"))
    assert turned.index(True) == turns_at - 1 and turned.count(True) == 1  # said once, when it turns
    assert not health.reachable and health.why.startswith("GET /readyz: read timed out (failing since ")
    assert health.refusal().startswith("c-1's agent cannot reach its API server: GET /readyz")


def test_one_failure_between_successes_never_turns_it() -> None:
    clock = Clock()
    health = MemberHealth(cluster="c-1", clock=clock)
    for _ in range(10):
        clock.now += 20
        assert not health.failed("slow")
        clock.now += 2
        assert not health.succeeded()
    assert health.reachable


def test_the_first_success_turns_it_reachable_again(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    health = MemberHealth(cluster="c-1", clock=clock)
    caplog.set_level(logging.INFO, "federator.agent")
    for _ in range(3):
        clock.now += 6
        health.failed("GET /readyz: connection refused")
    assert not health.reachable
    assert health.succeeded() and health.reachable and health.why == ""
    assert not health.succeeded()
    said = [r.getMessage() for r in caplog.records]
    assert len([m for m in said if "is unreachable" in m]) == 1 and len([m for m in said if "answers again" in m]) == 1


class FrozenApi(SimBackend):
    """A simulated cluster whose API answers the probe as `problem` says (None: it answers); a launch hangs while
    it does not, as one on a frozen kube-apiserver did for 30 s."""

    problem: str | None = None
    launches = 0

    async def probe_member(self) -> str | None:
        return self.problem

    async def launch(self, placement, spec):  # type: ignore[no-untyped-def]
        self.launches += 1
        if self.problem:
            await asyncio.sleep(30)
        return await super().launch(placement, spec)


def reports(fed: ScriptedFederator) -> list[agent_pb2.CapacityReport]:
    return [m.capacity for m in fed.sessions[0] if m.WhichOneof("body") == "capacity"]


def test_an_unreachable_member_is_reported_instead_of_capacity_and_launches_are_refused_at_once() -> None:
    gate = asyncio.Event()

    async def main() -> None:
        fed = ScriptedFederator([[]], report_interval=0.05)
        backend = FrozenApi(FLEET["c-1"])

        async def body(agent: Agent) -> None:
            agent.member.after = 0.2  # the hysteresis, shortened for the test
            await fed.until(lambda: len(reports(fed)) >= 2)
            assert not any(r.member_unreachable for r in reports(fed))
            backend.problem = "GET /readyz: read timed out"
            await fed.until(lambda: reports(fed)[-1].member_unreachable)
            last = reports(fed)[-1]
            assert last.member_unreachable.startswith("GET /readyz: read timed out (failing since ")
            assert not last.accelerator_pools and not last.cpu_milli_allocatable  # no stale capacity
            assert last.sequence > reports(fed)[-2].sequence  # its sequence moves on, as any report's
            assert agent.metrics.registry.get_sample_value("federator_agent_member_api_reachable",
                                                           {"cluster": "c-1"}) == 0.0

            started = asyncio.get_running_loop().time()
            await agent._launch(launch("p-1").launch)
            assert asyncio.get_running_loop().time() - started < 1.0  # at once, not after the 30 s the API takes
            await fed.until(lambda: any(m.WhichOneof("body") == "ack" for m in fed.sessions[0]))
            (ack,) = [m.ack for m in fed.sessions[0] if m.WhichOneof("body") == "ack"]
            assert not ack.ok and ack.message.startswith("c-1's agent cannot reach its API server: GET /readyz")
            assert backend.launches == 0

            backend.problem = None
            await fed.until(lambda: reports(fed)[-1].accelerator_pools and not reports(fed)[-1].member_unreachable)
            assert agent.metrics.registry.get_sample_value("federator_agent_member_api_reachable",
                                                           {"cluster": "c-1"}) == 1.0
            gate.set()

        await asyncio.wait_for(with_agent(fed, body, backend, report_interval=0.05), 20)

    asyncio.run(main())
    assert gate.is_set()


def test_the_simulated_backend_is_never_unreachable() -> None:
    assert not hasattr(SimBackend, "probe_member")
