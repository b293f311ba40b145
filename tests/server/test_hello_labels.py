"""Labels that claim what the certificate and the trust file decide (region, provider), over real mTLS sockets."""

from __future__ import annotations

import grpc
import pytest
from test_services_edge import agent_stream, channel, provider_files, providers, report, run, served

from federator.api.v1 import agent_pb2
from federator.security.limits import Limits
from federator.security.pki import CertsDir
from federator.security.trust import Trust

__all__ = ["providers"]  # the fixture, shared with test_services_edge


def hello(cluster: str, region: str, **labels: str) -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(hello=agent_pb2.Hello(cluster=cluster, region=region, labels=labels))


@pytest.mark.parametrize(("labels", "code", "said", "reason"), [
    ({"topology.kubernetes.io/region": "west"}, grpc.StatusCode.INVALID_ARGUMENT,
     "hello.labels[topology.kubernetes.io/region]: 'west' is not the cluster's region 'east' (hello.region)",
     "bad_hello"),
    ({"federator.io/provider": "globex"}, grpc.StatusCode.PERMISSION_DENIED,
     "hello.labels[federator.io/provider]: 'globex' is not the provider of cluster 'acme-1': its certificate comes "
     "from provider 'acme''s CA", "identity_mismatch"),
], ids=["region-label-of-another-region", "provider-label-of-another-provider"])
def test_a_label_claiming_another_region_or_provider_is_refused(providers: tuple[CertsDir, Trust],
                                                                labels: dict[str, str], code: grpc.StatusCode,
                                                                said: str, reason: str) -> None:
    certs, trust = providers

    async def go() -> None:
        async with served(certs=certs, trust=trust) as s:
            async with channel(s.target, provider_files(certs, "acme", "acme-1")) as ch:
                # the Hello alone: a report sent after the refusal races it, and the client may see its own
                # failed send (INTERNAL) instead of the federator's status
                _, err = await agent_stream(ch, [hello("acme-1", "east", **labels)])
                assert err is not None and err.code() is code, err
                assert (err.details() or "").startswith(said)
                assert s.rejected(reason) == 1 and "acme-1" not in s.fed.clusters
            async with channel(s.target, provider_files(certs, "acme", "acme-1")) as ch:  # labels that agree
                got, err = await agent_stream(ch, [hello("acme-1", "east", **{
                    "topology.kubernetes.io/region": "east", "federator.io/provider": "acme"}), report()])
                assert err is None and got[0].WhichOneof("body") == "welcome"
                assert s.fed.clusters["acme-1"].labels == {"topology.kubernetes.io/region": "east",
                                                           "federator.io/provider": "acme"}

    run(go)


def test_the_welcome_states_the_job_update_budget_the_operator_set() -> None:
    """A third-party agent learns the JobUpdate budget from its Welcome (serve --max-job-updates-per-second,
    --job-update-burst), as it learns the report budget, instead of from a default written in the contract."""
    async def go() -> None:
        async with served(limits=Limits(job_updates_per_second=7.5, job_update_burst=30)) as s:
            async with channel(s.target) as ch:
                got, err = await agent_stream(ch, [hello("east-1", "east"), report()])
                assert err is None, err
                welcome = got[0].welcome
                assert (welcome.max_job_updates_per_second, welcome.job_update_burst) == (7.5, 30)
                assert welcome.max_reports_per_second == 5.0  # the others as before

    run(go)
