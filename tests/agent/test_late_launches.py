"""A Launch that arrives past its bound only because the stream was busy is held, and started once a later message
of the stream arrives fresh; one no such message confirms is never started (agent/late_launches.py).

Outside WAN QA W4: 300 Launches at once onto a cluster behind a 5,000 B/s downlink queued in the transport; the
ones at the back arrived up to 24 s after the federator dated them, over the 7.5 s bound, and 206 were refused,
each a re-placement round trip. A federator listing "launch-confirmation" in its Welcome gives a placement up only
by a Cancel after its Launch or by ending the stream, so a fresh message after a late Launch confirms it; the
bound still keeps the agent from starting what the federator may have given up on. Real gRPC over loopback; the
federator's clock is a fixed number, the agent's estimate of it runs from the Welcome.
"""

from __future__ import annotations

import asyncio

from agent_support import ScriptedFederator, launch, with_agent

from federator.agent.agent import Agent
from federator.agent.late_launches import CONFIRMED, LateLaunches
from federator.api.launch_confirmation import LAUNCH_CONFIRMATION
from federator.api.v1 import agent_pb2
from federator.jobfile import parse_job
from federator.server.terms import StreamTerms

NOW = 100_000.0  # the federator's clock at the Welcome
BOUND = 5.0
ONE = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",  # 8 fit on the test cluster
                 "metadata": {"name": "j", "annotations": {"federator.io/sim-duration": "300s"}},
                 "spec": {"kind": "training", "resources": {"cpu": "1", "nvidia.com/gpu": 1}}})


def dated(pid: str, *, age: float) -> agent_pb2.FederatorMessage:
    """A Launch the federator dated `age` seconds before its Welcome."""
    msg = launch(pid, spec=ONE)
    msg.launch.issued_at, msg.launch.max_age_seconds = NOW - age, BOUND
    return msg


def heartbeat(*, age: float) -> agent_pb2.FederatorMessage:
    return agent_pb2.FederatorMessage(heartbeat=agent_pb2.Heartbeat(federator_time=NOW - age))


def cancel(pid: str) -> agent_pb2.FederatorMessage:
    return agent_pb2.FederatorMessage(cancel=agent_pb2.Cancel(placement_id=pid, reason="superseded: test"))


def acks(fed: ScriptedFederator) -> dict[str, agent_pb2.Ack]:
    return {m.ack.placement_id: m.ack for s in fed.sessions for m in s if m.WhichOneof("body") == "ack"}


def federator(*scripts: list[agent_pb2.FederatorMessage], confirms: bool = True) -> ScriptedFederator:
    return ScriptedFederator(list(scripts), clock=lambda: NOW, order_max_age=BOUND,
                             features=(LAUNCH_CONFIRMATION,) if confirms else ())


def test_launches_late_behind_a_busy_stream_start_once_a_later_fresh_message_confirms_them() -> None:
    """20 s old as they arrive (the bound is 5 s): held, then started by a fresh Heartbeat; and one held and
    confirmed by a fresh Launch behind it. Before: each refused as "stale order: issued 20.0s ago"."""
    async def main() -> None:
        fed = federator([dated("late-1", age=20), dated("late-2", age=19), heartbeat(age=0),
                         dated("late-3", age=18), dated("fresh", age=0)])

        async def body(agent: Agent) -> None:
            await fed.until(lambda: {"late-1", "late-2", "late-3", "fresh"} <= set(acks(fed)))
            got = acks(fed)
            assert all(got[p].ok for p in ("late-1", "late-2", "late-3", "fresh")), {p: a.message
                                                                                     for p, a in got.items()}
            assert {"late-1", "late-2", "late-3", "fresh"} <= set(agent.backend.placements())
            assert len(fed.sessions) == 1  # nothing fenced, no reconnect

        await asyncio.wait_for(with_agent(fed, body), 30)

    asyncio.run(main())


def test_a_late_launch_no_fresh_message_confirms_is_never_started() -> None:
    """Truly stale: a Launch that arrived late followed only by a stale Heartbeat and the stream's end (a Lost
    cluster's stream ends so) is not started and not acknowledged; one withdrawn by a Cancel before any
    confirmation is not started either, even when a fresh message follows the Cancel."""
    async def main() -> None:
        fed = federator([dated("withdrawn", age=20), dated("stale", age=20), heartbeat(age=15), cancel("withdrawn"),
                         dated("fresh", age=0), dated("stale-2", age=20), heartbeat(age=12),
                         agent_pb2.FederatorMessage()], [])

        async def body(agent: Agent) -> None:
            await fed.until(lambda: len(fed.sessions) >= 2 and {"fresh", "stale"} <= set(agent.backend.placements()))
            await asyncio.sleep(0.3)  # what the first stream held had its chance to start
            placements = agent.backend.placements()
            # "stale" was confirmed by the fresh Launch, the Cancel came first for "withdrawn"; "stale-2" waited
            # behind nothing fresh until the stream ended
            assert "stale" in placements and "withdrawn" not in placements and "stale-2" not in placements
            assert "withdrawn" not in acks(fed) and "stale-2" not in acks(fed)
            resynced = {m.job_update.placement_id for m in fed.sessions[1] if m.WhichOneof("body") == "job_update"}
            assert "stale-2" not in resynced and "withdrawn" not in resynced  # the new stream holds neither

        await asyncio.wait_for(with_agent(fed, body), 30)

    asyncio.run(main())


def test_a_federator_that_does_not_confirm_has_a_late_launch_refused_as_stale_at_once() -> None:
    """An older federator (no "launch-confirmation" in its Welcome): refused as it arrives, as before 0.20.0."""
    async def main() -> None:
        fed = federator([dated("late", age=20), heartbeat(age=0)], confirms=False)

        async def body(agent: Agent) -> None:
            await fed.until(lambda: "late" in acks(fed))
            assert not acks(fed)["late"].ok
            assert acks(fed)["late"].message.startswith("stale order: issued 20.")
            assert "late" not in agent.backend.placements()

        await asyncio.wait_for(with_agent(fed, body), 30)

    asyncio.run(main())


def test_the_welcome_says_the_federator_confirms_late_launches() -> None:
    welcome = StreamTerms(report_interval=2, lease_seconds=10, lost_after=60, order_max_age=7.5).welcome()
    assert LAUNCH_CONFIRMATION in welcome.welcome.features


def test_a_fence_or_a_stale_message_confirms_nothing_held_and_a_fresh_one_confirms_all() -> None:
    async def main() -> None:
        late = LateLaunches()
        assert late.hold("a") is None  # a federator that does not confirm: refused at once, not held
        late.stream_up([LAUNCH_CONFIRMATION])
        a, b = late.hold("a"), late.hold("b")
        assert a is not None and b is not None
        late.dated(age=6.0, bound=BOUND)  # stale: confirms nothing
        late.dated(age=None, bound=BOUND)  # undated: nothing either
        assert not a.done() and not b.done()
        late.fenced()
        assert a.result() != CONFIRMED and b.result() != CONFIRMED and late.held() == 0
        c, d = late.hold("c"), late.hold("d")
        late.cancelled("c")
        late.dated(age=0.5, bound=BOUND)
        assert c is not None and d is not None and c.result() != CONFIRMED and d.result() == CONFIRMED

    asyncio.run(main())
