"""The agent says its reports' placement list as a change only to a federator that takes it (PlacementDelta).

Outside WAN QA (W3): every report repeated every placement id, 26.7 KB/s at rest for 2,003 placements. To a
federator whose Welcome lists "placement-deltas" the agent sends the list in full in a stream's first report and
after a PlacementListWanted, and as a change otherwise; to an older federator (no Welcome.features) always in full,
as it reads an empty list as "nothing held". Real gRPC over loopback, with the scripted federator.
"""

from __future__ import annotations

import asyncio

from agent_support import ScriptedFederator, launch, with_agent

from federator.agent.agent import Agent
from federator.agent.placement_deltas import SentList
from federator.api.placement_lists import PLACEMENT_DELTAS, digest
from federator.api.v1 import agent_pb2

P1, P2 = "j.g1.c-1", "k.g1.c-1"


def reports(fed: ScriptedFederator, session: int = 0) -> list[agent_pb2.CapacityReport]:
    return [m.capacity for m in fed.sessions[session] if m.WhichOneof("body") == "capacity"]


def test_to_an_older_federator_every_report_lists_every_placement_in_full() -> None:
    fed = ScriptedFederator([[launch(P1)]])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: sum(P1 in r.placement_ids for r in reports(fed)) >= 3)

    asyncio.run(with_agent(fed, body))
    assert all(not r.HasField("placement_delta") for r in reports(fed))
    assert all(P1 in r.placement_ids for r in reports(fed)[-3:])


def test_to_a_federator_that_takes_them_the_list_is_sent_as_changes_and_in_full_when_asked() -> None:
    fed = ScriptedFederator([[launch(P1)]], features=(PLACEMENT_DELTAS,))

    def changed(pid: str) -> int | None:  # the index of the report whose delta adds pid
        return next((i for i, r in enumerate(reports(fed)) if pid in r.placement_delta.added), None)

    async def body(agent: Agent) -> None:
        await fed.until(lambda: changed(P1) is not None and len(reports(fed)) >= changed(P1) + 3)  # type: ignore[operator]
        fed.later.put_nowait(launch(P2))
        await fed.until(lambda: changed(P2) is not None)
        asked = len(reports(fed))
        fed.later.put_nowait(agent_pb2.FederatorMessage(placement_list_wanted=agent_pb2.PlacementListWanted(
            reason="report 9: capacity.placement_delta.base_sequence: ...")))
        await fed.until(lambda: any(not r.HasField("placement_delta") for r in reports(fed)[asked:]))
        await fed.until(lambda: len(reports(fed)) >= asked + 3)

    asyncio.run(with_agent(fed, body))
    sent = reports(fed)
    assert not sent[0].HasField("placement_delta")  # the report that closes the re-sync: in full
    # Rebuild the list as the federator does: each change on the list of the report before it.
    held: set[str] = set()
    base = 0
    for r in sent:
        if r.HasField("placement_delta"):
            d = r.placement_delta
            assert not r.placement_ids and d.base_sequence == base
            assert not set(d.removed) - held and not set(d.added) & held
            held = (held - set(d.removed)) | set(d.added)
            assert d.count == len(held) and d.digest == digest(held)
        else:
            held = set(r.placement_ids)
        base = r.sequence
    assert held == {P1, P2}
    i = changed(P1)
    assert i is not None and all(not r.placement_delta.added and not r.placement_delta.removed
                                 for r in sent[i + 1:i + 3])  # at rest: no id at all
    full_after_ask = [r for r in sent[1:] if not r.HasField("placement_delta")]
    assert full_after_ask and set(full_after_ask[0].placement_ids) == {P1, P2}


def test_the_list_goes_in_full_every_period_and_a_report_without_a_list_is_no_base() -> None:
    now = [0.0]
    sent = SentList(clock=lambda: now[0], full_every=300.0)
    sent.stream_up(agent_pb2.Welcome(features=[PLACEMENT_DELTAS]))

    def report(seq: int, *ids: str, unreachable: str = "") -> agent_pb2.CapacityReport:
        r = agent_pb2.CapacityReport(sequence=seq, placement_ids=sorted(ids), member_unreachable=unreachable)
        sent.shape(r)
        return r

    assert list(report(1, P1).placement_ids) == [P1]  # the stream's first: in full
    now[0] = 2.0
    unreachable = report(2, unreachable="GET /readyz: timed out")
    assert not unreachable.HasField("placement_delta") and not unreachable.placement_ids
    now[0] = 4.0
    d = report(3, P1, P2).placement_delta
    assert d.base_sequence == 1 and list(d.added) == [P2] and d.count == 2  # based on the last report with a list
    now[0] = 300.0
    assert list(report(4, P1, P2).placement_ids) == [P1, P2]  # 300 s after the last full list: in full again
    now[0] = 302.0
    assert report(5, P1, P2).placement_delta.base_sequence == 4
