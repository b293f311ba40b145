"""A Launch leaving for an agent silent past its lease is dated when the lease ran out (server/terms.py).

Found with WAN QA W4's fix (wan61): the fencing rule (docs/reliability.md, "Pauses") assumes nothing leaves for an
agent silent for a lease, and the heartbeat holds to it, but a Launch queued behind a slow link left whenever the
transport took it, dated afresh: one dated just before its cluster went Lost and read within the bound was taken
fresh after the job was placed elsewhere. Dated back, it is stale before the federator may give it up.
"""

from __future__ import annotations

import asyncio

from agent_stream import A_WHILE, agent_stream
from server_support import MemoryStore

from federator.api.v1 import agent_pb2
from federator.jobfile import parse_job
from federator.model import JobId, Placement, PlacementId
from federator.server.federator import Federator
from federator.server.orders import LaunchOrder
from federator.server.terms import StreamTerms

NOW = 5_000.0


def dated(*, silent: float) -> agent_pb2.Launch:
    launch = agent_pb2.Launch()
    StreamTerms(report_interval=2, lease_seconds=10, lost_after=30, order_max_age=7.5,
                clock=lambda: NOW).stamp(launch, silent=silent)
    return launch


def test_a_launch_to_a_heard_agent_is_dated_as_it_leaves() -> None:
    assert dated(silent=0.0).issued_at == NOW and dated(silent=9.0).issued_at == NOW
    assert dated(silent=0.0).max_age_seconds == 7.5


def test_a_launch_to_an_agent_silent_past_its_lease_is_dated_when_the_lease_ran_out() -> None:
    # silent 38 s: Partitioned at 10 s, Lost at 40 s (lease + --lost-after 30); dated at 10 s it is stale (7.5 s)
    # by 17.5 s, long before the job can be placed elsewhere
    assert dated(silent=38.0).issued_at == NOW - 28.0


def test_the_stream_dates_a_launch_to_a_silent_agent_back_to_when_its_lease_ran_out() -> None:
    """Real gRPC: the agent silent 38 s on the federator's clock (Partitioned, not yet Lost), a Launch queued for
    it leaves dated 28 s back, so the agent reads it stale (bound 7.5 s with --lost-after 30)."""
    now = [NOW]
    fed = Federator(store=MemoryStore(), lease_seconds=10.0, lost_after_seconds=30.0, cycle_interval=0.05,
                    clock=lambda: now[0])
    spec = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "j"},
                      "spec": {"kind": "training", "resources": {"cpu": "1"}}})

    async def scenario() -> None:
        async with agent_stream(fed) as agent:
            now[0] += 38.0  # nothing heard from the agent since its Hello
            fed.send("east-1", LaunchOrder(Placement(PlacementId("j.g1.east-1"), JobId("j"), "east-1", "east", 1,
                                                     "", 1), spec))
            while (msg := await agent.order()).WhichOneof("body") != "launch":
                pass
            assert msg.launch.issued_at < now[0] - 7.5  # stale as it leaves: dated when the lease ran out
            assert msg.launch.issued_at >= NOW + 10.0

    asyncio.run(asyncio.wait_for(scenario(), A_WHILE))
