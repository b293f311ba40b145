"""The agent logs the federator's Errors as what they are, once while they last (outside provider QA F2), and
counts its backend's own stops (F8)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest
from agent_support import ScriptedFederator, kinds, launch, with_agent

from federator.agent.agent import Agent, AgentConfig
from federator.agent.federator_errors import REPEAT_SECONDS, ErrorLog
from federator.api.v1 import agent_pb2
from federator.backends.kube.backend import KubeBackend

INCONSISTENT = ("capacity.accelerator_pools[1] (nvidia/NVIDIA-H100-80GB-HBM3): capacity.placement_ids lists 1 live "
                "placement(s) of the pool holding at least {n} accelerator(s) (e.g. gang-9e40bf.g2.member-a), but the "
                "report leaves only 8 not whole free ...; the report is applied, and the federator holds those "
                "placements' resources itself as if they were not listed")


class _Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_applied_reports_warning_is_not_called_a_refusal_and_is_logged_once_while_it_lasts(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = _Clock()
    errors = ErrorLog(logging.getLogger("federator.agent"), clock)
    with caplog.at_level(logging.WARNING, logger="federator.agent"):
        for _ in range(32):  # a report every 2 s for a minute
            errors.error("inconsistent_report", INCONSISTENT.format(n=16))
            clock.now += 2
        errors.error("inconsistent_report", INCONSISTENT.format(n=24))  # the numbers changed: the same state
        errors.error("implausible_report", "capacity.accelerator_pools: 68 accelerators in all")
        errors.error("implausible_report", "capacity.accelerator_pools: 68 accelerators in all")
        clock.now += REPEAT_SECONDS
        errors.error("inconsistent_report", INCONSISTENT.format(n=16))  # still there ten minutes on: said again
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert lines[0].startswith("the federator applied a report but does not trust part of it (inconsistent_report)")
    assert "refused" not in lines[0]
    assert lines[1].startswith("the federator refused a message (implausible_report): ")
    assert lines[2].startswith("the federator applied a report")


def test_the_agent_counts_its_kubernetes_backends_own_stops() -> None:
    """federator_agent_placements_stopped_total{reason}: the backend's count goes to the agent's metric."""
    backend = KubeBackend(object(), namespace="w")  # type: ignore[arg-type]
    agent = Agent(AgentConfig(cluster="c-1", region="r", target="127.0.0.1:1"), backend)
    on_stopped: Callable[[str], None] = backend.stops.on_stopped
    on_stopped("gang_broken")
    on_stopped("gang_broken")
    reg = agent.metrics.registry
    assert reg.get_sample_value("federator_agent_placements_stopped_total", {"reason": "gang_broken"}) == 2
    assert reg.get_sample_value("federator_agent_placements_stopped_total", {"reason": "evicted"}) == 0


def test_an_agent_told_the_same_inconsistency_at_every_report_logs_it_once_and_not_as_a_refusal(
        caplog: pytest.LogCaptureFixture) -> None:
    """Over the wire: the federator answers 30 reports with the same inconsistent_report Error (a node deleted under
    a gang, until pod garbage collection: outside provider QA F2); the agent's log says it once, as applied."""
    errors = [agent_pb2.FederatorMessage(error=agent_pb2.Error(reason="inconsistent_report",
                                                               message=INCONSISTENT.format(n=16)))] * 30
    fed = ScriptedFederator([[*errors, launch("after.g1.c-1")]])

    async def body(_agent: Agent) -> None:
        await fed.until(lambda: "ack" in kinds(fed.sessions[0]))  # the launch came after every Error

    with caplog.at_level(logging.WARNING, logger="federator.agent"):
        asyncio.run(with_agent(fed, body))
    said = [r.getMessage() for r in caplog.records if "inconsistent_report" in r.getMessage()]
    assert len(said) == 1 and "applied a report" in said[0] and "refused" not in said[0]


def test_a_refused_report_is_logged_once_then_again_when_its_words_change_or_ten_minutes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    """An agent whose every report is refused (a pool with no vendor) was told so at every report interval."""
    clock = _Clock()
    errors = ErrorLog(logging.getLogger("federator.agent"), clock)
    vendor = "capacity: capacity.accelerator_pools[{i}].vendor: is required"
    with caplog.at_level(logging.WARNING, logger="federator.agent"):
        logged = []
        for _ in range(30):  # a report every 2 s for a minute, each refused alike
            logged.append(errors.error("malformed", vendor.format(i=1)))
            clock.now += 2
        logged.append(errors.error("oversized", "capacity: 5000000 bytes"))  # another reason: said at once
        clock.now += REPEAT_SECONDS
        logged.append(errors.error("malformed", vendor.format(i=1)))  # still refused ten minutes on: said again
    assert logged == [True] + [False] * 29 + [True, True]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3 and all(line.startswith("the federator refused a message (") for line in lines)
    assert "(logged again when it changes, or every 600s while it lasts)" in lines[0]
