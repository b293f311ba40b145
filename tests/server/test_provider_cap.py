"""One provider may have at most --max-clusters-per-provider clusters connected: a provider's CA can certify any
number of cluster names, and 50 forged clusters' reports stalled the federator for everyone else."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from test_services_edge import agent_stream, channel, served

from federator.api.v1 import agent_pb2
from federator.model import ClusterState
from federator.security.limits import Limits
from federator.server.clusters import over_provider_cap

PROVIDER = "federator.io/provider"


def hello(cluster: str, provider: str = "") -> agent_pb2.AgentMessage:
    labels = {PROVIDER: provider} if provider else {}
    return agent_pb2.AgentMessage(hello=agent_pb2.Hello(cluster=cluster, region="r", labels=labels))


def test_a_hello_past_the_providers_cap_is_refused_naming_the_provider_and_the_cap() -> None:
    async def main() -> None:
        async with served(limits=Limits(max_clusters_per_provider=2)) as s:
            for name in ("acme-1", "acme-2"):
                s.fed.connect(cluster=name, region="r", labels={PROVIDER: "acme"})
            async with channel(s.target) as ch:
                _, err = await agent_stream(ch, [hello("acme-3", "acme")])
                assert err is not None and err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
                assert "provider 'acme'" in (err.details() or "") and "--max-clusters-per-provider 2" in (
                    err.details() or "")
                assert "acme-3" not in s.fed.clusters
                got, err = await agent_stream(ch, [hello("acme-2", "acme")])  # its own cluster, reconnecting
                assert got and got[0].HasField("welcome"), err
                got, err = await agent_stream(ch, [hello("other-1", "other")])  # another provider is not held
                assert got and got[0].HasField("welcome"), err
                got, err = await agent_stream(ch, [hello("own-1")])  # nor the federation's own clusters
                assert got and got[0].HasField("welcome"), err
            s.fed.disconnect(s.fed.clusters["acme-1"])  # gone, but it may be back: it keeps its place...
            assert over_provider_cap(s.fed.clusters, cluster="acme-3", provider="acme", cap=2) != ""
            s.fed.clusters["acme-1"].state = ClusterState.LOST  # ...until it is Lost
            assert over_provider_cap(s.fed.clusters, cluster="acme-3", provider="acme", cap=2) == ""  # room again

    asyncio.run(main())


def test_zero_means_no_cap_and_a_negative_cap_is_refused_naming_the_flag() -> None:
    assert Limits(max_clusters_per_provider=0).max_clusters_per_provider == 0
    with pytest.raises(ValueError, match="max_clusters_per_provider"):
        Limits(max_clusters_per_provider=-1)
