"""A member's price label (Hello.labels federator.io/price-per-accelerator-hour, "a decimal"), read by the
Price score: a value that is not a finite decimal of at least 0 is refused at the Hello, and one that reaches
the scheduler another way is read as no price.

Before: float() read "nan", "inf" and "-5" as prices. One agent saying "nan" made every scheduling cycle of
the federation fail (the Price score rounds NaN: ValueError) for as long as it stayed connected, and a negative
price scored above the maximum, drawing work to that cluster whatever it cost. A third-party Go agent found it.
"""

from __future__ import annotations

import grpc
import pytest
from server_support import Clock, MemoryStore, capacity, make, spec
from test_services_edge import agent_stream, channel, run, served

from federator.api.v1 import agent_pb2
from federator.model import PRICE_LABEL, JobPhase


@pytest.mark.parametrize("price", ["nan", "inf", "-5", "cheap", "1e999"])
def test_a_hello_whose_price_is_not_a_decimal_of_at_least_0_is_refused_naming_the_label(price: str) -> None:
    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            first = agent_pb2.AgentMessage(hello=agent_pb2.Hello(cluster="east-1", region="east",
                                                                 labels={PRICE_LABEL: price}))
            got, err = await agent_stream(ch, [first])
            assert not any(m.HasField("welcome") for m in got)
            assert err is not None and err.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert f"hello.labels[{PRICE_LABEL}]: must be a decimal number of at least 0" in (err.details() or "")
            assert s.rejected("bad_hello") == 1
    run(go)


def test_a_hello_with_a_decimal_price_is_welcomed() -> None:
    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            first = agent_pb2.AgentMessage(hello=agent_pb2.Hello(cluster="east-1", region="east",
                                                                 labels={PRICE_LABEL: "4.10"}))
            got, err = await agent_stream(ch, [first])
            assert err is None and got and got[0].HasField("welcome")
    run(go)


@pytest.mark.parametrize("price", ["nan", "inf", "-5"])
def test_a_price_that_reached_the_scheduler_unchecked_does_not_stop_or_steer_scheduling(price: str) -> None:
    fed = make(MemoryStore(), Clock())
    odd = fed.connect(cluster="odd", region="r", labels={PRICE_LABEL: price})  # as a store from before the check
    fed.report(odd, capacity())
    for name, fair in (("cheap", "1.0"), ("dear", "4.0")):
        fed.report(fed.connect(cluster=name, region="r", labels={PRICE_LABEL: fair}), capacity())
    job = fed.submit(spec("train"))
    fed.schedule_once()
    assert job.phase is JobPhase.PLACED
    # the unpriced (odd) scores half of Price, the cheapest three quarters, the dearest none
    assert [p.cluster for p in job.placements] == ["cheap"]
