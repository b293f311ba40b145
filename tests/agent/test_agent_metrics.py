"""The agent's metrics and probes: AgentMetrics with a fake clock, the HTTP endpoint, and an agent that counts.

The agent runs against the scripted federator of `agent_support` over a real
loopback socket, and its endpoint is read over real HTTP.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import pytest
from agent_support import FLEET, ScriptedFederator, kinds, launch, with_agent
from prometheus_client.parser import text_string_to_metric_families

from federator import __version__
from federator.agent.agent import Agent, AgentConfig
from federator.agent.endpoint import Endpoint, ListenError, parse_listen
from federator.agent.metrics import LIVENESS_TIMEOUT, AgentMetrics
from federator.api.v1 import agent_pb2, agent_pb2_grpc, types_pb2
from federator.backends.sim.runtime import SimBackend
from federator.model import JobPhase


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def value(m: AgentMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


# -- AgentMetrics ---------------------------------------------------------------


@pytest.mark.parametrize(("steps", "alive", "ready"), [
    pytest.param([], True, False, id="started"),
    pytest.param(["open"], True, False, id="welcomed-no-report-yet"),
    pytest.param(["report"], True, False, id="report-before-welcome"),
    pytest.param(["open", "report"], True, True, id="welcomed-and-reported"),
    pytest.param(["open", "send"], True, False, id="welcomed-sent-no-report"),
    pytest.param(["open", "report", "close"], True, False, id="stream-lost"),
    pytest.param(["open", "report", "close", "open"], True, False, id="new-stream-not-yet-reported"),
    pytest.param(["open", "report", "stall"], False, False, id="event-loop-stuck"),
    pytest.param(["open", "report", "stop"], False, False, id="agent-ended"),
])
def test_liveness_and_readiness(steps: list[str], alive: bool, ready: bool) -> None:
    clock = FakeClock()
    m = AgentMetrics(cluster="c-1", region="r", clock=clock)
    m.tick({})
    for step in steps:
        {"open": m.session_opened, "close": m.session_closed, "stop": m.stopped,
         "report": lambda: m.sent(report=True), "send": lambda: m.sent(report=False),
         "stall": lambda: setattr(clock, "now", clock.now + LIVENESS_TIMEOUT + 1)}[step]()
    assert (m.alive(), m.ready()) == (alive, ready)


def test_connected_sessions_and_reports_are_counted() -> None:
    m = AgentMetrics(cluster="c-1", region="r")
    assert value(m, "federator_agent_connected", cluster="c-1") == 0
    assert value(m, "federator_agent_info", cluster="c-1", region="r", version=__version__) == 1
    m.session_opened()
    m.sent(report=True)
    m.sent(report=False)
    m.sent(report=True)
    assert value(m, "federator_agent_connected", cluster="c-1") == 1
    assert value(m, "federator_agent_stream_sessions_total") == 1
    assert value(m, "federator_agent_reports_sent_total") == 2
    m.session_closed()
    assert value(m, "federator_agent_connected", cluster="c-1") == 0


def test_last_send_age_counts_from_start_then_from_each_send() -> None:
    clock = FakeClock()
    m = AgentMetrics(cluster="c-1", region="r", clock=clock)
    clock.now += 7
    assert value(m, "federator_agent_last_send_age_seconds") == 7
    m.sent(report=False)
    clock.now += 2.5
    assert value(m, "federator_agent_last_send_age_seconds") == 2.5


def test_placements_by_phase_are_the_last_snapshot_with_every_phase() -> None:
    m = AgentMetrics(cluster="c-1", region="r")
    m.tick({"a": JobPhase.RUNNING, "b": JobPhase.RUNNING, "c": JobPhase.SUCCEEDED})
    got = {p.value: value(m, "federator_agent_placements", phase=p.value) for p in JobPhase}
    assert got == {"Pending": 0, "Placed": 0, "Running": 2, "Succeeded": 1, "Failed": 0, "Cancelled": 0}


def test_launch_results_and_durations() -> None:
    m = AgentMetrics(cluster="c-1", region="r")
    assert value(m, "federator_agent_launches_total", result="failed") == 0  # every result exported from the start
    m.launched("ok", 0.02)
    m.launched("refused", None)
    assert value(m, "federator_agent_launches_total", result="ok") == 1
    assert value(m, "federator_agent_launches_total", result="refused") == 1
    assert value(m, "federator_agent_launch_duration_seconds_count") == 1
    assert value(m, "federator_agent_launch_duration_seconds_bucket", le="0.05") == 1


# -- the endpoint ---------------------------------------------------------------------


@pytest.mark.parametrize(("listen", "want"), [
    pytest.param("127.0.0.1:9100", ("127.0.0.1", 9100), id="host-port"),
    pytest.param(":9100", ("0.0.0.0", 9100), id="every-address"),
    pytest.param("[::1]:0", ("::1", 0), id="ipv6"),
])
def test_parse_listen(listen: str, want: tuple[str, int]) -> None:
    assert parse_listen(listen) == want


@pytest.mark.parametrize("listen", [
    pytest.param("9100", id="no-colon"), pytest.param("localhost:http", id="port-not-a-number"),
    pytest.param("127.0.0.1:70000", id="port-out-of-range"),
])
def test_bad_listen_addresses_are_refused_naming_the_flag(listen: str) -> None:
    with pytest.raises(ListenError, match="--metrics-listen"):
        parse_listen(listen)


def test_an_address_in_use_is_refused_naming_the_flag() -> None:
    first = Endpoint(AgentMetrics(cluster="c-1", region="r"), "127.0.0.1:0")
    try:
        with pytest.raises(ListenError, match=f"--metrics-listen: cannot bind 127.0.0.1:{first.port}"):
            Endpoint(AgentMetrics(cluster="c-1", region="r"), f"127.0.0.1:{first.port}")
    finally:
        first.stop()


def test_endpoint_serves_metrics_and_probes() -> None:
    m = AgentMetrics(cluster="c-1", region="r")
    m.tick({})
    ep = Endpoint(m, "127.0.0.1:0")
    try:
        status, text = get(f"{ep.url}/metrics")
        assert status == 200
        names = {f.name for f in text_string_to_metric_families(text)}
        assert {"federator_agent_connected", "federator_agent_placements", "federator_agent_launches"} <= names
        assert get(f"{ep.url}/healthz")[0] == 200
        status, why = get(f"{ep.url}/readyz")
        assert status == 503 and "not connected" in why
        m.session_opened()
        m.sent(report=True)
        assert get(f"{ep.url}/readyz") == (200, "ready\n")
        m.stopped()
        assert get(f"{ep.url}/healthz")[0] == 503
        assert get(f"{ep.url}/nothing")[0] == 404
    finally:
        ep.stop()


# -- an agent counting what it does ---------------------------------------------------------


async def until(holds: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait for something the agent does on its own loop (it is polled: the agent signals nothing)."""
    async def poll() -> None:
        while not holds():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(poll(), timeout)


def cancel(pid: str) -> agent_pb2.FederatorMessage:
    return agent_pb2.FederatorMessage(cancel=agent_pb2.Cancel(placement_id=pid, reason="test"))


def test_an_agent_counts_sessions_reports_launches_and_cancels_and_serves_them() -> None:
    malformed = agent_pb2.FederatorMessage(launch=agent_pb2.Launch(placement=types_pb2.Placement(placement_id="x")))
    fed = ScriptedFederator([[launch("ok.g1.c-1"), launch("big.g1.c-1", gpus_replicas=3), malformed,
                              cancel("ok.g1.c-1"), agent_pb2.FederatorMessage()]])  # then the stream ends

    async def body(agent: Agent) -> None:
        m = agent.metrics
        await fed.until(lambda: len(fed.sessions) == 2 and "capacity" in kinds(fed.sessions[1]))
        # The re-sync goes out before the Welcome comes back: the second session counts once the agent reads it.
        await until(lambda: agent.sessions == 2)
        assert agent.endpoint is not None
        assert value(m, "federator_agent_launches_total", result="ok") == 1
        assert value(m, "federator_agent_launches_total", result="refused") == 2  # does not fit; malformed
        assert value(m, "federator_agent_launch_duration_seconds_count") == 2  # the malformed one never ran
        assert value(m, "federator_agent_cancels_total", origin="federator") == 1
        assert value(m, "federator_agent_stream_sessions_total") == 2
        sent = value(m, "federator_agent_reports_sent_total")
        assert sent is not None and sent >= 2
        await fed.until(lambda: kinds(fed.sessions[1]).count("capacity") >= 3)  # the report loop runs
        status, text = await asyncio.to_thread(get, f"{agent.endpoint.url}/metrics")
        assert status == 200 and 'federator_agent_connected{cluster="c-1"} 1.0' in text
        assert (await asyncio.to_thread(get, f"{agent.endpoint.url}/readyz"))[0] == 200

        await until(lambda: value(m, "federator_agent_placements", phase="Cancelled") == 1)

    asyncio.run(with_agent(fed, body, metrics_listen="127.0.0.1:0"))


def test_a_fenced_agent_counts_the_fence_and_its_cancels() -> None:
    async def main() -> None:
        fed = ScriptedFederator([[launch("a.g1.c-1")]])
        server = grpc.aio.server()
        agent_pb2_grpc.add_AgentServiceServicer_to_server(fed, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        backend = SimBackend(FLEET["c-1"])
        agent = Agent(AgentConfig(cluster="c-1", region="r", target=f"127.0.0.1:{port}", max_backoff=0.2,
                                  fence_after=0.4), backend)
        task = asyncio.create_task(agent.run())
        try:
            await fed.until(lambda: "ack" in kinds(fed.sessions[0]))
            await server.stop(0)  # the federator is gone for good

            await until(lambda: bool(value(agent.metrics, "federator_agent_self_fences_total")))
            assert backend.placements() == {"a.g1.c-1": JobPhase.CANCELLED}
            assert value(agent.metrics, "federator_agent_cancels_total", origin="fence") == 1
            assert value(agent.metrics, "federator_agent_connected", cluster="c-1") == 0
            assert not agent.metrics.ready()
            await asyncio.sleep(1.0)  # more fence rounds find nothing left to stop: still one event
            assert value(agent.metrics, "federator_agent_self_fences_total") == 1
        finally:
            task.cancel()
            await backend.stop()

    asyncio.run(main())


def test_the_kube_agent_gets_the_endpoint_flags_too() -> None:
    """The chart's probes need the Kubernetes-backed agent to serve the endpoint as the simulated one does."""
    from federator.cli import build_parser
    from federator.cli.agent import agent_config

    args = build_parser().parse_args(["agent", "--cluster", "m", "--region", "r", "--in-cluster",
                                      "--metrics-listen", "0.0.0.0:9102", "--ready-file", "/tmp/ready.json"])
    cfg = agent_config(args, {})
    assert (cfg.metrics_listen, str(cfg.ready_file)) == ("0.0.0.0:9102", "/tmp/ready.json")


def test_the_cli_refuses_a_bad_listen_address_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from federator.cli import main

    from support import EXAMPLES

    code = main(["agent", "--cluster", "west-1", "--sim", str(EXAMPLES / "fleet.yaml"), "--insecure",
                 "--metrics-listen", "localhost"])
    assert code == 2
    assert "--metrics-listen: expected HOST:PORT" in capsys.readouterr().err
