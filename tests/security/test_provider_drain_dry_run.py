"""A provider's `federator drain` without --yes asks the federator's dry run, so it counts the jobs of every cluster
its certificate may drain, not only of the cluster the certificate names (the only one `get clusters` shows it).
Before, a sibling cluster's jobs counted 0 and the sibling was drained without --yes. Over real mTLS, the CLI as a
provider would run it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from test_provider_drain import certs, provider_files  # noqa: F401 (certs: the module's fixture)

from federator.api.v1 import identity_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from federator.cli import main
from federator.security.auth import Authenticator
from federator.security.pki import CertsDir
from federator.security.tls import server_files
from federator.security.trust import load_trust
from federator.server.cluster_service import ClusterService
from federator.server.federator import Federator
from federator.server.identity_service import IdentityService
from federator.store.sqlite import SqliteJobStore

from builders import cluster, job, pool

H100 = "NVIDIA-H100-80GB-HBM3"


@contextmanager
def serving(certs: CertsDir, fed: Federator) -> Iterator[str]:  # noqa: F811 (the fixture's value)
    """ClusterService and IdentityService of `fed` over mTLS, judged by the trust file as `federator serve` does,
    on a loop of their own (the CLI's calls block); yields their address."""
    trust = load_trust(certs.trust, federation_ca=certs.ca_cert)
    loop = asyncio.new_event_loop()
    holder: dict[str, grpc.aio.Server] = {}

    async def serve() -> int:
        server = grpc.aio.server()
        edge = ClusterService(fed, Authenticator(trust=trust))
        jobs_pb2_grpc.add_ClusterServiceServicer_to_server(edge, server)
        identity_pb2_grpc.add_IdentityServiceServicer_to_server(IdentityService(edge), server)
        port = server.add_secure_port("127.0.0.1:0",
                                      server_files(certs).server_credentials(client_roots=trust.bundle_pem()))
        holder["server"] = server
        await server.start()
        return port

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{asyncio.run_coroutine_threadsafe(serve(), loop).result(timeout=10)}"
    finally:
        if "server" in holder:
            asyncio.run_coroutine_threadsafe(holder["server"].stop(0), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_a_providers_drain_of_its_sibling_cluster_counts_the_siblings_jobs_first(
        certs: CertsDir, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    for name in ("acme-1", "beta-1"):
        fed.report(fed.connect(cluster=name, region="r", labels={}), cluster(name, "r", pool(H100, nodes=0)).capacity)
    fed.report(fed.connect(cluster="acme-2", region="r", labels={}),
               cluster("acme-2", "r", pool(H100, nodes=1)).capacity)
    train = fed.submit(job("train", gpus=8))
    fed.schedule_once()
    assert [p.cluster for p in train.placements] == ["acme-2"]
    files = provider_files(certs, "acme", "acme-1")  # the agent of acme-1's certificate
    with serving(certs, fed) as address:
        tls = ["--server", address, "--ca", str(files.ca), "--cert", str(files.cert), "--key", str(files.key)]
        assert main(["drain", "acme-2", "--reason", "rack swap", *tls]) == 2
        err = capsys.readouterr().err
        assert f"cluster acme-2 holds 1 federated job(s): {train.job_id}" in err
        assert f"warning: 1 of them fit on no other cluster as the fleet is now and would be left pending until " \
               f"room comes: {train.job_id}" in err
        assert err.endswith("nothing drained: pass --yes to requeue them elsewhere\n")
        assert fed.cordons.names() == frozenset()  # not drained: before, the sibling's 0 placements let it through

        assert main(["drain", "beta-1", *tls]) == 1  # another provider's: refused as a drain is, dry run or not
        assert "drain (dry run) 'beta-1': the certificate of cluster 'acme-1' may drain only" in capsys.readouterr().err
        assert main(["drain", "acme-2", "--reason", "rack swap", "--yes", "--surge-seconds", "1800", *tls]) == 0
        out = capsys.readouterr()
        assert f"1 job(s) to move: {train.job_id}" in out.out and "would be left" not in out.err
        assert fed.cordons.draining()["acme-2"].surge_seconds == 1800.0


def test_a_bad_surge_bound_is_refused_by_the_cli_and_by_the_federator(
        certs: CertsDir, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    with pytest.raises(SystemExit) as exit_:
        main(["drain", "acme-1", "--surge-seconds", "100000", "--server", "127.0.0.1:1", "--insecure"])
    assert exit_.value.code == 2
    assert "--surge-seconds: must be from 1 to 86400 seconds (a day), or 0 for the default 600; got 100000" in \
        capsys.readouterr().err
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    files = provider_files(certs, "acme", "acme-1")

    async def call() -> None:
        with serving(certs, fed) as address:
            async with grpc.aio.secure_channel(address, files.channel_credentials()) as ch:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await jobs_pb2_grpc.ClusterServiceStub(ch).Drain(
                        jobs_pb2.DrainClusterRequest(cluster="acme-1", surge_seconds=-5))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details() == ("surge_seconds: must be from 1 to 86400 seconds (a day), or 0 for the "
                                       "default 600; got -5")

    asyncio.run(call())
    assert fed.cordons.names() == frozenset()
