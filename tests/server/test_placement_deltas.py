"""A report may say its placement list as a change to an earlier report's (agent.proto, PlacementDelta).

Found by outside WAN QA (W3): every report repeated every placement id, 26.7 KB/s at rest for 2,003 placements, past
what a slow link carries. The federator rebuilds the full list from a delta as the report arrives; a delta it
cannot apply (its base not the list held, or one that contradicts it) is not taken and the full list is asked for
(PlacementListWanted), once; a contradiction is also refused naming the field. Real gRPC over loopback.
"""

from __future__ import annotations

import asyncio

from agent_stream import A_WHILE, AgentStream, agent_stream
from server_support import MemoryStore, capacity

from federator.api import convert
from federator.api.placement_lists import PLACEMENT_DELTAS, digest
from federator.api.v1 import agent_pb2
from federator.server.federator import Federator
from federator.server.placement_lists import ASK_AGAIN_AFTER
from federator.server.terms import StreamTerms

A, B, C, D = (f"{j}.g1.east-1" for j in "abcd")


def full(seq: int, *ids: str) -> agent_pb2.AgentMessage:
    report = convert.capacity_to_pb(capacity(*ids))
    report.sequence = seq
    return agent_pb2.AgentMessage(capacity=report)


def delta(seq: int, base: int, after: set[str], *, added: tuple[str, ...] = (), removed: tuple[str, ...] = (),
          count: int | None = None) -> agent_pb2.AgentMessage:
    report = convert.capacity_to_pb(capacity())
    report.sequence = seq
    report.placement_delta.CopyFrom(agent_pb2.PlacementDelta(
        base_sequence=base, added=added, removed=removed, count=len(after) if count is None else count,
        digest=digest(after)))
    return agent_pb2.AgentMessage(capacity=report)


async def listed(fed: Federator, seq: int) -> frozenset[str]:
    """The placement list of the cluster's report `seq`, once it is taken (a hang fails after A_WHILE)."""
    async def taken() -> frozenset[str]:
        while (cap := fed.clusters["east-1"].capacity) is None or cap.sequence != seq:
            await asyncio.sleep(0.01)
        return cap.placement_ids
    return await asyncio.wait_for(taken(), A_WHILE)


async def answer(agent: AgentStream) -> agent_pb2.FederatorMessage:
    """The federator's next message that is neither a heartbeat nor a Cancel."""
    while (message := await agent.order()).WhichOneof("body") == "cancel":
        pass
    return message


def test_the_welcome_says_the_federator_takes_placement_deltas() -> None:
    welcome = StreamTerms(report_interval=2, lease_seconds=10, lost_after=60, order_max_age=7.5).welcome()
    assert PLACEMENT_DELTAS in welcome.welcome.features


def test_a_delta_is_rebuilt_into_the_full_list_and_one_that_does_not_fit_is_refused_and_the_full_list_asked_for() \
        -> None:
    async def scenario() -> None:
        fed = Federator(store=MemoryStore(), lease_seconds=10.0, cycle_interval=0.05)
        async with agent_stream(fed) as agent:
            await agent.send(full(1, A, B))
            assert await listed(fed, 1) == {A, B}
            await agent.send(delta(2, 1, {B, C}, added=(C,), removed=(A,)))
            assert await listed(fed, 2) == {B, C}
            await agent.send(delta(3, 2, {B, C}))  # at rest: nothing changed, no id sent
            assert await listed(fed, 3) == {B, C}
            unreachable = full(30, A)  # a report whose agent cannot reach its member says no list: no base
            unreachable.capacity.member_unreachable = "GET /readyz: read timed out after 5s"
            await agent.send(unreachable)
            await agent.send(delta(31, 3, {B}, removed=(C,)))
            assert await listed(fed, 31) == {B}
            await agent.send(full(32, B, C))
            assert await listed(fed, 32) == {B, C}

            # A delta removing an id the list does not hold: refused naming it, the full list asked for once.
            await agent.send(delta(40, 32, {B}, removed=(D,)))
            error = await answer(agent)
            assert error.WhichOneof("body") == "error" and error.error.reason == "malformed"
            assert error.error.message.startswith("capacity.placement_delta.removed[0]: 'd.g1.east-1' is not in "
                                                  "the list of report 32"), error.error.message
            wanted = await answer(agent)
            assert wanted.WhichOneof("body") == "placement_list_wanted"
            assert "removed[0]" in wanted.placement_list_wanted.reason
            await agent.send(delta(41, 40, {B}))  # sent before the agent read the ask: dropped, unanswered
            await agent.send(full(42, B, D))
            assert await listed(fed, 42) == {B, D}  # reports 40 and 41 were never taken
            assert fed.clusters["east-1"].reports_refused == ""  # a full list taken clears the refusal

            # A delta whose base is not the list held (report 41 refused as stale before its list was read): no
            # fault of the agent's, so no Error, only the ask.
            await agent.send(full(41, A))
            assert (await answer(agent)).error.reason == "stale_report"
            await agent.send(delta(43, 41, {D}, removed=(A,)))
            wanted = await answer(agent)
            assert wanted.WhichOneof("body") == "placement_list_wanted", wanted
            assert "base_sequence: 41 is not the report whose list the federator holds (42)" in \
                wanted.placement_list_wanted.reason
            await agent.send(full(44, D))
            assert await listed(fed, 44) == {D}

            # A digest that does not match: the agent's list and the federator's differ.
            bad = delta(45, 44, {D, A}, added=(A,))
            bad.capacity.placement_delta.digest ^= 1
            await agent.send(bad)
            error = await answer(agent)
            assert error.error.reason == "malformed" and "capacity.placement_delta.digest" in error.error.message
            assert (await answer(agent)).WhichOneof("body") == "placement_list_wanted"
            # An id added twice, and a count that is wrong, each named the same way after a fresh full list.
            for seq, bad, field in ((47, delta(47, 46, {D, A}, added=(A, A)), "added[1]"),
                                    (49, delta(49, 48, {D, A}, added=(A,), count=7), "count")):
                await agent.send(full(seq - 1, D))
                assert await listed(fed, seq - 1) == {D}
                await agent.send(bad)
                error = await answer(agent)
                assert f"capacity.placement_delta.{field}" in error.error.message, error.error.message
                assert (await answer(agent)).WhichOneof("body") == "placement_list_wanted"
            assert fed.clusters["east-1"].capacity.sequence == 48  # none of the bad ones was taken

    asyncio.run(scenario())


def test_a_delta_as_a_streams_first_report_is_not_taken_and_the_full_list_is_asked_for() -> None:
    """A new stream holds no list (a reconnect, a restarted or new leader federator): its first report lists its
    placements in full; a delta there is based on a list this stream never said."""
    async def scenario() -> None:
        fed = Federator(store=MemoryStore(), lease_seconds=10.0, cycle_interval=0.05)
        async with agent_stream(fed) as agent:
            await agent.send(delta(7, 6, {A}, added=(A,)))
            wanted = await answer(agent)
            assert wanted.WhichOneof("body") == "placement_list_wanted"
            assert "holds no list" in wanted.placement_list_wanted.reason
            assert fed.clusters["east-1"].capacity is None or fed.clusters["east-1"].capacity.sequence != 7
            # The full list the agent sent back may be lost (refused before its list was read): deltas dropped
            # unanswered, the ask made again at the 15th (ASK_AGAIN_AFTER), not at each.
            for seq in range(8, 8 + ASK_AGAIN_AFTER):
                await agent.send(delta(seq, seq - 1, {A}))
            again = await answer(agent)
            assert again.placement_list_wanted.reason.startswith(f"report {7 + ASK_AGAIN_AFTER}: "), again
            await agent.send(full(50, A))
            assert await listed(fed, 50) == {A}

    asyncio.run(scenario())


def test_an_old_agents_full_lists_are_taken_as_before() -> None:
    async def scenario() -> None:
        fed = Federator(store=MemoryStore(), lease_seconds=10.0, cycle_interval=0.05)
        async with agent_stream(fed) as agent:
            for seq, ids in ((1, {A, B}), (2, {B}), (3, set())):
                await agent.send(full(seq, *ids))
                assert await listed(fed, seq) == ids

    asyncio.run(scenario())


def test_a_placement_a_delta_adds_that_was_never_sent_here_is_judged_as_in_a_full_list() -> None:
    """Another cluster's id added by a delta: cancelled on this cluster and an Error `unexpected`, the report taken;
    one of this cluster's form the store never knew: an orphan, held for --orphan-grace (agent.proto,
    placement_ids)."""
    async def scenario() -> None:
        fed = Federator(store=MemoryStore(), lease_seconds=10.0, cycle_interval=0.05, orphan_grace=1800.0)
        async with agent_stream(fed) as agent:
            await agent.send(full(1, A))
            assert await listed(fed, 1) == {A}
            foreign = "x.g1.west-2"
            await agent.send(delta(2, 1, {A, foreign}, added=(foreign,)))
            cancel = await agent.order()
            assert cancel.WhichOneof("body") == "cancel" and cancel.cancel.placement_id == foreign
            error = await agent.next_error()
            assert error.reason == "unexpected" and "capacity.placement_ids" in error.message
            assert await listed(fed, 2) == {A, foreign}  # taken; the id counts for nothing here
            await agent.send(delta(3, 2, {A, foreign, B}, added=(B,)))
            assert await listed(fed, 3) == {A, foreign, B}
            orphans = fed.metrics.registry.get_sample_value("federator_orphan_placements", {"cluster": "east-1"})
            assert orphans == 2  # A and B; the other cluster's id is none

    asyncio.run(scenario())


def test_each_ask_for_the_full_list_is_counted_by_reason() -> None:
    """small60: an ask was an INFO line alone; federator_agent_placement_list_asks_total{cluster,reason} counts each
    ask (not each delta dropped while one is awaited), by a bounded reason."""
    def asks(fed: Federator, reason: str) -> float:
        return fed.metrics.registry.get_sample_value("federator_agent_placement_list_asks_total",
                                                     {"cluster": "east-1", "reason": reason}) or 0.0

    async def scenario() -> None:
        fed = Federator(store=MemoryStore(), lease_seconds=10.0, cycle_interval=0.05)
        async with agent_stream(fed) as agent:
            await agent.send(delta(7, 6, {A}, added=(A,)))  # a stream's first report as a delta
            assert (await answer(agent)).WhichOneof("body") == "placement_list_wanted"
            await agent.send(delta(8, 7, {A}))  # dropped unanswered: no second ask
            await agent.send(full(9, A))
            assert await listed(fed, 9) == {A}
            await agent.send(delta(10, 9, {A}, removed=(B,)))  # contradicts the list held
            assert (await answer(agent)).error.reason == "malformed"
            assert (await answer(agent)).WhichOneof("body") == "placement_list_wanted"
            await agent.send(full(11, A))
            assert await listed(fed, 11) == {A}
            await agent.send(delta(12, 5, {A}))  # based on a report whose list is not the one held
            assert (await answer(agent)).WhichOneof("body") == "placement_list_wanted"
            assert (asks(fed, "no_list"), asks(fed, "malformed"), asks(fed, "other_base")) == (1.0, 1.0, 1.0)

    asyncio.run(scenario())


def test_a_member_unreachable_report_carrying_a_delta_is_refused_naming_both_fields() -> None:
    """agent.proto: a report with member_unreachable set says no list and carries no delta. One that carries a delta
    broke the contract: refused naming both fields (secqa61 L1: it was taken without a word), the list held kept as
    the next base (it asks for no list: the agent's list did not go wrong, its report did)."""
    async def scenario() -> None:
        fed = Federator(store=MemoryStore(), lease_seconds=10.0, cycle_interval=0.05)
        async with agent_stream(fed) as agent:
            await agent.send(full(1, A))
            assert await listed(fed, 1) == {A}
            bad = delta(2, 1, {A})
            bad.capacity.member_unreachable = "GET /readyz: read timed out after 5s"
            await agent.send(bad)
            error = await answer(agent)
            assert error.WhichOneof("body") == "error" and error.error.reason == "malformed", error
            assert error.error.message.startswith("capacity.placement_delta: set beside "
                                                  "capacity.member_unreachable"), error.error.message
            assert fed.clusters["east-1"].unreachable == ""  # the report was not taken
            await agent.send(delta(3, 1, {A, B}, added=(B,)))  # the list of report 1 is still the base
            assert await listed(fed, 3) == {A, B}

    asyncio.run(scenario())
