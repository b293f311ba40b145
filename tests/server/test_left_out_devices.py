"""Devices a member's agent leaves out of its report are shown on the federator's side, over a real socket.

Outside QA (vendors re-test, R5): the devices an agent sees but does not offer (no label names their model; units
that are not chips, such as Ascend vNPUs) were said only in the agent's log and metrics, so the federator's operator
saw a member's capacity drop with no reason. The report now lists them (agent.proto CapacityReport.left_out); the
federator keeps them with the cluster's capacity, shows them in ClusterService.List (both views) and
federator_cluster_left_out_accelerators, and refuses a malformed entry naming its field.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import pytest
from agent_stream import AgentStream
from prometheus_client import generate_latest
from test_pool_vendor import ENFLAME, capacity
from test_services_edge import channel, hello, served

from federator.api import convert
from federator.api.v1 import agent_pb2, jobs_pb2, jobs_pb2_grpc
from federator.cli.cluster_view import summary_from_pb
from federator.cli.get import capacity_document
from federator.cli.output import cluster_rows

LEFT_OUT = [agent_pb2.LeftOutDevices(resource_name="nvidia.com/gpu", reason="unlabelled", devices=16),
            agent_pb2.LeftOutDevices(resource_name="huawei.com/Ascend310P-2c", reason="unsupported", devices=10)]
SHOWN = [("huawei.com/Ascend310P-2c", "unsupported", 10), ("nvidia.com/gpu", "unlabelled", 16)]


def with_left_out(seq: int, *left_out: agent_pb2.LeftOutDevices) -> agent_pb2.AgentMessage:
    message = capacity(seq, ENFLAME)
    message.capacity.left_out.extend(left_out)
    return message


async def statuses(ch: grpc.aio.Channel, view: int = jobs_pb2.CLUSTER_VIEW_BASIC) -> jobs_pb2.ClusterStatus:
    (status,) = (await jobs_pb2_grpc.ClusterServiceStub(ch).List(jobs_pb2.ListClustersRequest(view=view),
                                                                  timeout=5)).clusters
    return status


async def until(ch: grpc.aio.Channel, ok: Callable[[jobs_pb2.ClusterStatus], bool]) -> jobs_pb2.ClusterStatus:
    for _ in range(200):  # the stream's messages are handled apart from the List: wait for them
        clusters = (await jobs_pb2_grpc.ClusterServiceStub(ch).List(jobs_pb2.ListClustersRequest(), timeout=5)).clusters
        if clusters and ok(clusters[0]):
            return clusters[0]
        await asyncio.sleep(0.05)
    raise AssertionError("the report was never taken")


def listed(status: jobs_pb2.ClusterStatus) -> list[tuple[str, str, int]]:
    return [(d.resource_name, d.reason, d.devices) for d in status.capacity.left_out]


def test_left_out_devices_are_listed_in_both_views_counted_and_cleared_by_a_report_without_them() -> None:
    async def main() -> None:
        async with served() as s, channel(s.target) as ch:
            agent = AgentStream.on(ch, hello())
            await agent.send(with_left_out(1, *LEFT_OUT))
            status = await until(ch, lambda st: st.HasField("capacity"))
            assert listed(status) == SHOWN  # BASIC: what `get clusters` reads
            assert listed(await statuses(ch, jobs_pb2.CLUSTER_VIEW_FULL)) == SHOWN
            doc = capacity_document(convert.capacity_from_pb(status.capacity))  # `get clusters -o yaml`
            headers, [row] = cluster_rows([{"name": status.name, "region": status.region, "state": status.state,
                                            "capacity": summary_from_pb(status.capacity), "placements": 0,
                                            "last_report_at": status.last_report_at}], wide=True)  # `-o wide`
            assert row[headers.index("LEFT OUT")] == ("huawei.com/Ascend310P-2c 10 unsupported, "
                                                      "nvidia.com/gpu 16 unlabelled")
            assert doc["left_out"][1] == {"resource_name": "nvidia.com/gpu", "reason": "unlabelled", "devices": 16}
            scrape = (await asyncio.to_thread(generate_latest, s.fed.metrics.registry)).decode()
            assert ('federator_cluster_left_out_accelerators{cluster="east-1",reason="unsupported",region="east",'
                    'resource="huawei.com/Ascend310P-2c"} 10.0') in scrape

            await agent.send(with_left_out(2))  # labelled since: nothing left out
            await until(ch, lambda st: st.capacity.sequence == 2)
            assert listed(await statuses(ch)) == []
            scrape = (await asyncio.to_thread(generate_latest, s.fed.metrics.registry)).decode()
            assert "federator_cluster_left_out_accelerators{" not in scrape
            agent.close()

    asyncio.run(main())


def _entry(resource_name: str = "nvidia.com/gpu", reason: str = "unlabelled",
           devices: int = 8) -> agent_pb2.LeftOutDevices:
    return agent_pb2.LeftOutDevices(resource_name=resource_name, reason=reason, devices=devices)


BAD = {
    "reason": ([_entry(reason="broken")], "capacity.left_out[0].reason: must be one of unlabelled, unsupported"),
    "devices": ([_entry(devices=0)], "capacity.left_out[0].devices: must be at least 1"),
    "negative": ([_entry(devices=-3)], "capacity.left_out[0].devices: must be at least 1"),
    "resource": ([_entry(), _entry(resource_name="nvidia gpu")], "capacity.left_out[1].resource_name: must be"),
    "empty": ([_entry(resource_name="")], "capacity.left_out[0].resource_name: must be"),
    "twice": ([_entry(), _entry(devices=2)], "capacity.left_out[1]: nvidia.com/gpu unlabelled is listed twice"),
    "many": ([_entry(resource_name=f"v{i}.com/gpu") for i in range(65)], "capacity.left_out: at most 64 entries"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_malformed_left_out_entry_refuses_the_report_naming_the_field(case: str) -> None:
    entries, words = BAD[case]

    async def main() -> None:
        async with served() as s, channel(s.target) as ch:
            agent = AgentStream.on(ch, hello())
            await agent.send(with_left_out(1, *entries))
            error = await agent.next_error()
            assert error.reason == "malformed"
            assert words in error.message
            status = await statuses(ch)
            assert not status.HasField("capacity") and words in status.reports_refused  # nothing of it taken
            agent.close()

    asyncio.run(main())
