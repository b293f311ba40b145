"""A Cancel that ended its job (Cancel.job_ended: a cancel, a deleted FederatedJob) is said back on the placement's
Cancelled update, the live one and the next re-sync's: a federator whose store was restored from an older snapshot
holds that job Running again, and without it ran the job again (outside QA, Kubernetes DR, K1)."""

from __future__ import annotations

import asyncio

from agent_support import ScriptedFederator, kinds, launch, with_agent

from federator.agent.agent import Agent
from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.model import JobPhase

CANCELLED = convert.phase_to_pb(JobPhase.CANCELLED)


def _cancel(pid: str, *, job_ended: bool) -> agent_pb2.FederatorMessage:
    return agent_pb2.FederatorMessage(cancel=agent_pb2.Cancel(placement_id=pid, reason="job cancelled",
                                                              job_ended=job_ended))


def _cancelled(msgs: list[agent_pb2.AgentMessage]) -> dict[str, bool]:
    return {m.job_update.placement_id: m.job_update.job_ended for m in msgs
            if m.WhichOneof("body") == "job_update" and m.job_update.phase == CANCELLED}


def test_the_cancelled_update_of_a_placement_whose_job_ended_says_so_live_and_at_the_re_sync() -> None:
    fed = ScriptedFederator([[launch("a.g1.c-1"), launch("b.g1.c-1"), _cancel("a.g1.c-1", job_ended=True),
                              _cancel("b.g1.c-1", job_ended=False)], []], lost_after=1.0)

    async def body(agent: Agent) -> None:
        await fed.until(lambda: len(_cancelled(fed.sessions[0])) == 2)
        assert _cancelled(fed.sessions[0]) == {"a.g1.c-1": True, "b.g1.c-1": False}  # b: superseded, moved
        await asyncio.sleep(1.2)  # past the federator's lost-after time: the re-sync still says it
        agent._outbox.put_nowait(None)  # noqa: SLF001 - the stream breaks
        await fed.until(lambda: len(fed.sessions) == 2 and "capacity" in kinds(fed.sessions[1]))
        assert _cancelled(fed.sessions[1]) == {"a.g1.c-1": True, "b.g1.c-1": False}

    asyncio.run(with_agent(fed, body))
