"""A provider's trust entry bounds what one of its clusters may claim (`maxAccelerators`), over real mTLS sockets.

Outside red team F02: an agent claimed 100,000 nodes of H100s at price 0 and drew every tenant's work, since a
report was only checked to add up. A report over its provider's bound offers at most the bound. It was refused
whole, and the cluster kept its last good report; outside provider QA F4: one node added past the bound then froze
the cluster's capacity view, silently. Now it is taken clamped (server/over_bound.py): the agent hears it once
(an Error of reason over_bound, naming the claim and the bound), it is counted, and `get clusters` says OverBound.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from test_services_edge import channel, provider_files, run
from test_trust_reload import GLOBEX, Live, served

from federator.api.v1 import agent_pb2
from federator.security.pki import CertsDir, Identity, IdentityKind, create_ca, init_ca, issue
from federator.security.tls import cluster_files
from federator.security.trust_reload import ReloadResult

ACME = "  acme: {ca: providers/acme/ca.crt, clusters: ['acme-*'], maxAccelerators: 16}\n"


@pytest.fixture
def certs(tmp_path: Path) -> CertsDir:
    """The federation's CA with cluster east-1; providers acme (cluster acme-1) and globex (gx-1)."""
    c = CertsDir(tmp_path)
    init_ca(c)
    issue(c, Identity(IdentityKind.CLUSTER, "east-1"))
    for name, cluster in (("acme", "acme-1"), ("globex", "gx-1")):
        create_ca(c.provider(name), common_name=f"{name} provider CA")
        issue(c.provider(name), Identity(IdentityKind.CLUSTER, cluster))
    return c


def gpus(*pools: int, sequence: int) -> agent_pb2.AgentMessage:
    """A plausible report of one pool per count: that many H100s, all free, on nodes of 8 (or one node)."""
    return agent_pb2.AgentMessage(capacity=agent_pb2.CapacityReport(
        sequence=sequence, cpu_milli_allocatable=64000, cpu_milli_free=64000, node_cpu_milli_free_max=64000,
        memory_bytes_allocatable=1 << 38, memory_bytes_free=1 << 38, node_memory_bytes_free_max=1 << 38,
        accelerator_pools=[agent_pb2.AcceleratorPool(
            accelerator_model=f"H100-{i}", vendor="nvidia", nodes_by_free=_nodes(n), total_accelerators=n,
            allocatable_accelerators=n) for i, n in enumerate(pools)]))


def _nodes(accelerators: int) -> list[int]:
    return [0] * 8 + [accelerators // 8] if accelerators % 8 == 0 else [0] * accelerators + [1]


async def taken(fed, cluster: str, total: int) -> None:  # type: ignore[no-untyped-def]
    """Wait until the cluster's capacity is a report of `total` accelerators."""
    for _ in range(250):
        cap = fed.clusters[cluster].capacity if cluster in fed.clusters else None
        if cap is not None and cap.total_accelerators == total:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{cluster}: no report of {total} accelerators was taken")


async def refusal(live: Live) -> agent_pb2.Error:
    """The next Error on the stream (reading past heartbeats)."""
    async with asyncio.timeout(5):
        while True:
            message = await live.call.read()
            assert message is not grpc.aio.EOF
            if message.WhichOneof("body") == "error":
                return message.error


def over_bound(message: str, *, claimed: int, bound: int) -> bool:
    return message.startswith(
        f"capacity.accelerator_pools: {claimed} accelerators in all (whole-device equivalents over every pool) are "
        f"more than maxAccelerators {bound}, the most the trust file lets one cluster of provider 'acme' report: "
        f"the federator offers at most {bound}")


def test_a_report_over_its_providers_bound_is_taken_clamped_to_it_and_said_once(certs: CertsDir) -> None:
    certs.trust.write_text("providers:\n" + ACME + GLOBEX)

    async def go() -> None:
        async with served(certs) as s, \
                channel(s.target, provider_files(certs, "acme", "acme-1")) as acme_ch, \
                channel(s.target, provider_files(certs, "globex", "gx-1")) as gx_ch, \
                channel(s.target, cluster_files(certs, "east-1")) as east_ch:
            acme = Live(acme_ch, "acme-1", "east")
            await acme.welcomed()
            acme.send(gpus(8, 8, sequence=2))  # at the bound: taken
            await taken(s.fed, "acme-1", 16)
            assert s.fed.clusters["acme-1"].over_bound == ""
            acme.send(gpus(8, 8, 4, sequence=3))  # a node of 4 added past it: taken, that idle pool left out
            error = await refusal(acme)
            assert error.reason == "over_bound"
            assert over_bound(error.message, claimed=20, bound=16), error.message
            await taken(s.fed, "acme-1", 16)
            rec = s.fed.clusters["acme-1"]
            assert [p.accelerator_model for p in rec.capacity.accelerator_pools] == ["H100-0", "H100-1"]
            assert over_bound(rec.over_bound, claimed=20, bound=16)  # get clusters: Ready,OverBound
            acme.send(gpus(8, 8, 4, sequence=4))  # the same again: applied, counted, not said again
            acme.send(gpus(100_000 * 8, sequence=5))  # a claim past any room: offers the bound, no more
            error = await refusal(acme)
            assert over_bound(error.message, claimed=800_000, bound=16), error.message
            await taken(s.fed, "acme-1", 16)
            assert s.metrics.registry.get_sample_value("federator_reports_clamped_total", {"cluster": "acme-1"}) == 3
            assert not s.metrics.registry.get_sample_value("federator_messages_rejected_total",
                                                           {"reason": "implausible_report"})
            acme.send(gpus(8, sequence=6))  # back within it
            await taken(s.fed, "acme-1", 8)
            assert s.fed.clusters["acme-1"].over_bound == ""
            assert await acme.still_open(0.1)  # the stream goes on

            gx, east = Live(gx_ch, "gx-1", "west"), Live(east_ch, "east-1", "south")
            for live in (gx, east):
                await live.welcomed()
                live.send(gpus(512, 512, sequence=2))  # another provider, and the federation's own: no bound
            await taken(s.fed, "gx-1", 1024)
            await taken(s.fed, "east-1", 1024)

    run(go)


def test_a_reload_lowering_the_bound_clamps_the_next_report(certs: CertsDir) -> None:
    """The bound is read at each report: a lower one applies from the next, a stream already open included (it is
    not ended); a higher one lets the next report in whole."""
    certs.trust.write_text("providers:\n" + ACME)

    async def go() -> None:
        async with served(certs) as s, channel(s.target, provider_files(certs, "acme", "acme-1")) as ch:
            acme = Live(ch, "acme-1", "east")
            await acme.welcomed()
            acme.send(gpus(16, sequence=2))
            await taken(s.fed, "acme-1", 16)
            assert s.reload("providers:\n" + ACME.replace("16", "8")) is ReloadResult.OK
            assert await acme.still_open(0.1)
            acme.send(gpus(16, sequence=3))
            assert over_bound((await refusal(acme)).message, claimed=16, bound=8)
            await taken(s.fed, "acme-1", 8)
            assert s.reload("providers:\n" + ACME.replace("maxAccelerators: 16", "maxAccelerators: 32")) \
                is ReloadResult.OK
            acme.send(gpus(32, sequence=5))
            await taken(s.fed, "acme-1", 32)

    run(go)
