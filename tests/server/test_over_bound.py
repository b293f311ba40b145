"""A report over its provider's maxAccelerators offers at most the bound (server/over_bound.py): which pools lose.

Outside provider QA F4: one node added past the bound had every report refused, freezing the cluster's capacity
view. These are the clamp's rules as a table, the agent's side (an Error counted by reason, logged once at ERROR)
and `get clusters`' state.
"""

from __future__ import annotations

import logging

import pytest

from federator.agent.metrics import AgentMetrics
from federator.agent.rejections import Rejections
from federator.cli.output import cluster_rows
from federator.model import AcceleratorPool, ClusterCapacity
from federator.server.consistency import contradictions
from federator.server.over_bound import clamp
from federator.server.validation import check_plausible


def pool(model: str, hist: tuple[int, ...], total: int, *, vendor: str = "nvidia", sharing: str = "",
         unit_milli: int = 0, room_classes: tuple[tuple[int, int, int, int], ...] = ()) -> AcceleratorPool:
    return AcceleratorPool(model, hist, total, total, vendor=vendor, sharing=sharing, unit_milli=unit_milli,
                           room_classes=room_classes)


EIGHT = (0,) * 8
A100 = pool("A100", EIGHT + (2,), 16)  # two idle nodes of 8
L40S_BUSY = pool("L40S", EIGHT + (0,), 8)  # one node of 8, all in use
L4 = pool("L4", (0, 0, 0, 0, 1), 4)  # a node of 4 just added, idle


def shown(cap: ClusterCapacity) -> list[tuple[str, tuple[int, ...], int]]:
    return [(p.accelerator_model, p.nodes_by_free, p.total_accelerators) for p in cap.accelerator_pools]


@pytest.mark.parametrize(("pools", "bound", "expected", "taken"), [
    ((A100, L40S_BUSY), 24, [("A100", EIGHT + (2,), 16), ("L40S", EIGHT + (0,), 8)], 0),
    ((A100, L40S_BUSY, L4), 24, [("A100", EIGHT + (2,), 16), ("L40S", EIGHT + (0,), 8)], 4000),
    ((A100, L40S_BUSY), 20, [("A100", EIGHT + (1,), 8), ("L40S", EIGHT + (0,), 8)], 8000),
    ((A100, L40S_BUSY), 4, [("A100", EIGHT + (0,), 0), ("L40S", EIGHT + (0,), 8)][1:], 16000),
    ((pool("H100", (0, 2, 0, 0, 0, 0, 0, 0, 1), 16),), 14, [("H100", (0, 0, 0, 0, 0, 0, 0, 0, 1), 14)], 2000),
    ((pool("MIG-1g", (0, 0, 0, 0, 0, 0, 0, 0, 2), 16, sharing="MIG", unit_milli=125), A100), 17,
     [("MIG-1g", EIGHT + (1,), 8), ("A100", EIGHT + (2,), 16)], 1000),
], ids=["within", "idle-new-pool-first", "the-pool-not-in-use", "in-use-stays", "least-free-nodes-first",
        "mig-in-device-equivalents"])
def test_the_clamp_takes_free_nodes_of_the_least_used_smallest_pools_first(
        pools: tuple[AcceleratorPool, ...], bound: int, expected: list[tuple[str, tuple[int, ...], int]],
        taken: int) -> None:
    cap = ClusterCapacity(accelerator_pools=pools)
    clamped, gone = clamp(cap, bound)
    assert (shown(clamped), gone) == (expected, taken)
    assert check_plausible(clamped) is None
    assert clamp(cap, bound) == (clamped, gone)  # deterministic


def test_what_is_in_use_stays_as_reported_so_listed_placements_still_add_up() -> None:
    half = pool("A100", (0, 0, 0, 0, 1, 0, 0, 0, 1), 16,
                room_classes=((4, 32_000, 1 << 36, 1), (8, 64_000, 1 << 37, 1)))
    clamped, _ = clamp(ClusterCapacity(accelerator_pools=(half,)), 12)
    (p,) = clamped.accelerator_pools
    assert (p.nodes_by_free, p.total_accelerators) == ((0, 0, 0, 0, 0, 0, 0, 0, 1), 12)
    assert p.total_accelerators - p.free_accelerators == 4  # the 4 in use, as before
    assert p.room_classes == ((8, 64_000, 1 << 37, 1),)  # the node taken out left its class
    assert contradictions(clamped, []) == []


def test_the_agent_counts_each_error_and_logs_a_report_refusal_once_at_error(
        caplog: pytest.LogCaptureFixture) -> None:
    said = Rejections()
    levels = [said.level(r) for r in ("over_bound", "over_bound", "implausible_report", "implausible_report",
                                      "inconsistent_report")]
    assert levels == [logging.ERROR, logging.DEBUG, logging.ERROR, logging.DEBUG, logging.WARNING]
    said.new_stream()
    assert said.level("over_bound") == logging.ERROR  # a new stream says it again
    metrics = AgentMetrics(cluster="c", region="r")
    for reason in ("over_bound", "over_bound", "no_such_reason"):
        metrics.rejected(reason)
    sample = metrics.registry.get_sample_value
    assert sample("federator_agent_messages_rejected_total", {"reason": "over_bound"}) == 2
    assert sample("federator_agent_messages_rejected_total", {"reason": "other"}) == 1


def test_get_clusters_shows_a_clamped_cluster_over_bound() -> None:
    _, (row,) = cluster_rows([{"name": "member-b", "region": "us", "state": "Ready", "capacity": None,
                               "last_report_at": 0.0, "placements": 0, "over_bound": "capacity...: 68 ..."}],
                             wide=False)
    assert row[2] == "Ready,OverBound"


def test_an_agent_told_its_report_is_clamped_says_it_once_at_error(caplog: pytest.LogCaptureFixture) -> None:
    from federator.agent.agent import Agent, AgentConfig
    from federator.api.v1 import agent_pb2
    from federator.backends.sim.fleet import parse_fleet
    from federator.backends.sim.runtime import SimBackend

    fleet = parse_fleet({"clusters": [{"name": "b", "region": "us", "nodes": [
        {"count": 1, "gpuModel": "H100", "gpus": 8, "cpu": 64, "memory": "256Gi"}]}]})
    agent = Agent(AgentConfig(cluster="b", region="us", target="127.0.0.1:1"), SimBackend(fleet["b"]))
    with caplog.at_level(logging.DEBUG, logger="federator.agent"):
        for _ in range(3):  # one per report, every 2 s
            agent._federator_error(agent_pb2.Error(reason="over_bound", message="68 accelerators ... at most 64"))
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.levelno, "clamped" in r.getMessage()) for r in loud] == [(logging.ERROR, True)]
    assert agent.metrics.registry.get_sample_value("federator_agent_messages_rejected_total",
                                                   {"reason": "over_bound"}) == 3
