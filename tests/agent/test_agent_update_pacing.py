"""An update the federator drops past its budget makes the agent re-sync (agent/pacing.py); other Errors do not.

Only the first update of a dropped run is answered, so the agent cannot tell which were lost: a new stream's
re-sync (not charged to the budget) carries every placement's phase. (The pacing itself, against the real
federator's budget: tests/server/test_update_pacing_grpc.py.)
"""

from __future__ import annotations

import asyncio

from agent_support import ScriptedFederator, launch, with_agent

from federator.agent.agent import Agent
from federator.api.v1 import agent_pb2


def test_an_update_the_federator_still_drops_makes_the_agent_re_sync_every_phase() -> None:
    dropped = agent_pb2.FederatorMessage(error=agent_pb2.Error(
        reason="rate_limited", placement_id="c-1-p1",
        message="job_update: over this cluster's budget of 1 JobUpdates a second (1 at once); dropped"))
    fed = ScriptedFederator([[launch("c-1-p1"), agent_pb2.FederatorMessage()], [dropped]])  # empty: end the stream

    async def body(agent: Agent) -> None:
        # the second session's Error ended it: a third began, and re-synced up to its first report
        await fed.until(lambda: any(m.WhichOneof("body") == "capacity" for m in fed.sessions[2]))
        resynced = [m.job_update for m in fed.sessions[2] if m.WhichOneof("body") == "job_update"]
        assert [(u.placement_id, u.resync) for u in resynced][:1] == [("c-1-p1", True)]

    asyncio.run(with_agent(fed, body))


def test_an_error_of_another_kind_does_not_end_the_stream() -> None:
    other = agent_pb2.FederatorMessage(error=agent_pb2.Error(
        reason="unexpected", placement_id="c-1-zz", message="job_update: no such placement of this cluster"))
    fed = ScriptedFederator([[other]])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: len([m for m in fed.sessions[0] if m.WhichOneof("body") == "capacity"]) >= 3)
        assert len(fed.sessions) == 1

    asyncio.run(with_agent(fed, body))
