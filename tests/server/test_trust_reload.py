"""The trust file reloaded while the federator serves, over real mTLS sockets: the TLS layer's client-CA bundle,
new calls and the live agent streams follow the new trust; a file that does not load changes nothing, and neither
does a trust one of them refuses.

The wiring is the federator's own (`server/app.py` `_subscribe_trust`, `server/reloads.py` `reload_trust`); the
trust file is reloaded by hand here, by SIGHUP in a real `federator serve` in tests/security/test_trust_file.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from test_services_edge import agent_stream, channel, provider_files, run

from federator.api.v1 import agent_pb2, agent_pb2_grpc
from federator.jobfile import parse_job
from federator.metrics import Metrics
from federator.model import ClusterState, JobPhase
from federator.security.auth import Authenticator, RevocationList
from federator.security.pki import CertsDir, Identity, IdentityKind, create_ca, init_ca, issue
from federator.security.tls import ServedTls, TlsFiles, cluster_files, server_files
from federator.security.trust_reload import ReloadResult, TrustFile
from federator.server.app import _subscribe_trust
from federator.server.federator import Federator
from federator.server.reloads import Reloads, reload_trust
from federator.server.services import AgentService, decode_guard
from federator.store import SqliteJobStore

ACME = "  acme: {ca: providers/acme/ca.crt, clusters: ['acme-*'], regions: [east, north]}\n"
GLOBEX = "  globex: {ca: providers/globex/ca.crt, clusters: ['gx-*']}\n"


@pytest.fixture
def certs(tmp_path: Path) -> CertsDir:
    """The federation's CA with cluster east-1; providers acme (regions east, north; clusters acme-1 and acme-2)
    and globex (gx-1); the trust file names acme only."""
    c = CertsDir(tmp_path)
    init_ca(c)
    issue(c, Identity(IdentityKind.CLUSTER, "east-1"))
    for name, cluster in (("acme", "acme-1"), ("acme", "acme-2"), ("globex", "gx-1")):
        if not c.provider(name).ca_cert.exists():
            create_ca(c.provider(name), common_name=f"{name} provider CA")
        issue(c.provider(name), Identity(IdentityKind.CLUSTER, cluster))
    c.trust.write_text("providers:\n" + ACME)
    return c


@dataclass
class Served:
    fed: Federator
    target: str
    trust: TrustFile
    metrics: Metrics
    now: list[float]
    auth: Authenticator
    roots: ServedTls

    def reload(self, text: str | None = None) -> ReloadResult:
        """Write the trust file (if given) and look at it, as the federator's poll does."""
        if text is not None:
            self.trust.path.write_text(text)
        return reload_trust(self.trust, self.metrics, asked=False)

    def reloads(self, result: str) -> float:
        return self.metrics.registry.get_sample_value("federator_trust_reload_total", {"result": result}) or 0.0

    @property
    def failing(self) -> float | None:
        return self.metrics.registry.get_sample_value("federator_trust_reload_failing")


@asynccontextmanager
async def served(certs: CertsDir) -> AsyncIterator[Served]:
    now = [1_000.0]
    metrics = Metrics()
    fed = Federator(store=SqliteJobStore(Path(":memory:")), metrics=metrics, report_interval=60.0,
                    lost_after_seconds=30.0, clock=lambda: now[0])
    trust = TrustFile(certs.trust, federation_ca=certs.ca_cert)
    auth = Authenticator(trust=trust.current, revocations=RevocationList(None))
    agents = AgentService(fed, auth)
    roots = server_files(certs).served(trust.current.bundle_pem())
    _subscribe_trust(trust, auth=auth, roots=roots, agents=agents)
    server = grpc.aio.server(interceptors=[decode_guard(fed)])
    agent_pb2_grpc.add_AgentServiceServicer_to_server(agents, server)
    port = server.add_secure_port("127.0.0.1:0", roots.credentials(require_client_auth=True))
    await server.start()
    try:
        yield Served(fed, f"127.0.0.1:{port}", trust, metrics, now, auth, roots)
    finally:
        await server.stop(0)


def report() -> agent_pb2.AgentMessage:
    """Room for a one-CPU job."""
    return agent_pb2.AgentMessage(capacity=agent_pb2.CapacityReport(
        sequence=1, cpu_milli_allocatable=4000, cpu_milli_free=4000, node_cpu_milli_free_max=4000,
        memory_bytes_allocatable=1 << 34, memory_bytes_free=1 << 34, node_memory_bytes_free_max=1 << 34))


class Live:
    """An agent stream kept open: Hello and a report, then whatever the test sends, until the federator ends it."""

    def __init__(self, ch: grpc.aio.Channel, cluster: str, region: str, labels: dict[str, str] | None = None) -> None:
        self._outbox: asyncio.Queue[agent_pb2.AgentMessage] = asyncio.Queue()
        for m in (agent_pb2.AgentMessage(hello=agent_pb2.Hello(cluster=cluster, region=region, labels=labels)),
                  report()):
            self._outbox.put_nowait(m)
        method = ch.stream_stream("/federator.v1.AgentService/Connect",
                                  request_serializer=agent_pb2.AgentMessage.SerializeToString,
                                  response_deserializer=agent_pb2.FederatorMessage.FromString)
        self.call = method(self._requests())

    async def _requests(self) -> AsyncIterator[agent_pb2.AgentMessage]:
        while True:
            yield await self._outbox.get()

    def send(self, message: agent_pb2.AgentMessage) -> None:
        self._outbox.put_nowait(message)

    async def welcomed(self) -> None:
        assert (await self.call.read()).WhichOneof("body") == "welcome"

    async def ended(self) -> grpc.aio.AioRpcError:
        """The status the federator ended the stream with (reading past heartbeats)."""
        async with asyncio.timeout(5):
            while True:
                try:
                    await self.call.read()
                except grpc.aio.AioRpcError as err:
                    return err

    async def still_open(self, seconds: float = 0.5) -> bool:
        await asyncio.sleep(seconds)  # not a read: cancelling one would cancel the call
        return not self.call.done()


async def welcomed(target: str, tls: TlsFiles, cluster: str, region: str) -> grpc.aio.AioRpcError | None:
    """A new agent stream: None if it was welcomed, else how it was refused."""
    async with channel(target, tls) as ch:
        got, err = await agent_stream(ch, [agent_pb2.AgentMessage(hello=agent_pb2.Hello(cluster=cluster,
                                                                                        region=region))])
        if err is None:
            assert got and got[0].WhichOneof("body") == "welcome"
        return err


def test_a_provider_added_by_a_reload_can_connect_after_and_not_before(certs: CertsDir) -> None:
    async def go() -> None:
        async with served(certs) as s:
            globex = provider_files(certs, "globex", "gx-1")
            before = await welcomed(s.target, globex, "gx-1", "west")
            assert before is not None and before.code() is grpc.StatusCode.UNAVAILABLE  # its CA: not in the bundle
            assert s.reload() is ReloadResult.UNCHANGED and s.reloads("ok") == 0  # nothing new on disk
            assert s.reload("providers:\n" + ACME + GLOBEX) is ReloadResult.OK
            assert await welcomed(s.target, globex, "gx-1", "west") is None
            assert s.fed.clusters["gx-1"].labels["federator.io/provider"] == "globex"
            assert (s.reloads("ok"), s.reloads("refused"), s.failing) == (1, 0, 0)

    run(go)


def test_a_provider_removed_by_a_reload_has_its_live_stream_ended_and_the_others_stay(certs: CertsDir) -> None:
    """Its cluster goes as a cluster whose stream dropped: Partitioned, then Lost after --lost-after with its
    placements re-placed, not forgotten."""
    certs.trust.write_text("providers:\n" + ACME + GLOBEX)

    async def go() -> None:
        async with served(certs) as s, \
                channel(s.target, provider_files(certs, "globex", "gx-1")) as gx_ch, \
                channel(s.target, provider_files(certs, "acme", "acme-1")) as acme_ch, \
                channel(s.target, cluster_files(certs, "east-1")) as east_ch:
            gx = Live(gx_ch, "gx-1", "west")
            await gx.welcomed()
            for _ in range(500):  # its report applied (a loaded machine takes its time): a record is Ready from
                rec = s.fed.clusters.get("gx-1")  # its Hello, but the scheduler sees it only with a capacity
                if rec is not None and rec.state is ClusterState.READY and rec.capacity is not None:
                    break
                await asyncio.sleep(0.02)
            assert s.fed.clusters["gx-1"].state is ClusterState.READY and s.fed.clusters["gx-1"].capacity is not None
            job = s.fed.submit(parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                          "metadata": {"name": "on-gx"},
                                          "spec": {"kind": "training", "resources": {"cpu": "1"}}}))
            for _ in range(20):
                if job.placements:
                    break
                s.fed.schedule_once()
            assert [p.cluster for p in job.placements] == ["gx-1"], job.pending_reason
            acme, east = Live(acme_ch, "acme-1", "north"), Live(east_ch, "east-1", "south")
            await acme.welcomed()
            await east.welcomed()

            assert s.reload("providers:\n" + ACME) is ReloadResult.OK
            ended = await gx.ended()
            assert ended.code() is grpc.StatusCode.PERMISSION_DENIED
            assert ended.details() == ("cluster gx-1: the reloaded trust file no longer admits it: provider "
                                       "'globex', whose CA signed its certificate, is no longer in the trust file")
            assert await acme.still_open() and await east.still_open()
            assert s.fed.clusters["acme-1"].connected and s.fed.clusters["east-1"].connected
            gx_rec = s.fed.clusters["gx-1"]
            assert not gx_rec.connected and gx_rec.state is ClusterState.PARTITIONED
            assert s.metrics.registry.get_sample_value("federator_messages_rejected_total",
                                                       {"reason": "untrusted"}) == 1
            again = await welcomed(s.target, provider_files(certs, "globex", "gx-1"), "gx-1", "west")
            assert again is not None and again.code() is grpc.StatusCode.UNAVAILABLE  # refused at the handshake

            s.now[0] += 31  # past --lost-after: Lost, and its job goes back to the queue to be placed again
            s.fed.check_leases()
            assert gx_rec.state is ClusterState.LOST
            assert job.phase is JobPhase.PENDING and not job.placements
            assert job.pending_reason is not None and "gx-1 was Lost; re-placing" in job.pending_reason.message

    run(go)


def test_a_region_the_provider_may_no_longer_serve_ends_that_stream_only(certs: CertsDir) -> None:
    async def go() -> None:
        async with served(certs) as s, \
                channel(s.target, provider_files(certs, "acme", "acme-1")) as north_ch, \
                channel(s.target, provider_files(certs, "acme", "acme-2")) as east_ch:
            north, east = Live(north_ch, "acme-1", "north"), Live(east_ch, "acme-2", "east")
            await north.welcomed()
            await east.welcomed()
            assert s.reload("providers:\n" + ACME.replace("[east, north]", "[east]")) is ReloadResult.OK
            ended = await north.ended()
            assert ended.code() is grpc.StatusCode.PERMISSION_DENIED
            assert ended.details() == ("cluster acme-1: the reloaded trust file no longer admits it: hello.region: "
                                       "'north' is not a region of provider 'acme'; the trust file binds its "
                                       "clusters to regions east")
            assert await east.still_open()

    run(go)


def test_a_provider_renamed_keeps_its_live_streams_under_its_new_name(certs: CertsDir) -> None:
    """The same CA, clusters and regions under another name: nothing to refuse; its usage is its new name's."""
    async def go() -> None:
        async with served(certs) as s, channel(s.target, provider_files(certs, "acme", "acme-1")) as ch:
            live = Live(ch, "acme-1", "east")
            await live.welcomed()
            assert s.fed.clusters["acme-1"].labels["federator.io/provider"] == "acme"
            assert s.reload("providers:\n" + ACME.replace("  acme:", "  acme-corp:")) is ReloadResult.OK
            assert await live.still_open()
            assert s.fed.clusters["acme-1"].labels["federator.io/provider"] == "acme-corp"

    run(go)


def test_a_reload_to_no_providers_trusts_only_the_federations_ca_even_on_an_open_connection(certs: CertsDir) -> None:
    """The TLS handshake of a connection already open is not done again: a new stream on it is judged by the
    reloaded trust alone, which must not take a file without providers for "trust every certificate"."""
    async def go() -> None:
        async with served(certs) as s, channel(s.target, provider_files(certs, "acme", "acme-1")) as ch:
            live = Live(ch, "acme-1", "east")
            await live.welcomed()
            assert s.reload("providers: {}\n") is ReloadResult.OK
            assert (await live.ended()).code() is grpc.StatusCode.PERMISSION_DENIED
            got, err = await agent_stream(ch, [agent_pb2.AgentMessage(hello=agent_pb2.Hello(cluster="acme-1",
                                                                                           region="east"))])
            assert err is not None and err.code() in (grpc.StatusCode.PERMISSION_DENIED,
                                                      grpc.StatusCode.UNAVAILABLE), err
            assert err.code() is not grpc.StatusCode.PERMISSION_DENIED or \
                "signed by no CA of the trust file" in (err.details() or "")
            assert not s.fed.clusters["acme-1"].connected
            assert await welcomed(s.target, cluster_files(certs, "east-1"), "east-1", "south") is None

    run(go)


@pytest.mark.parametrize(("text", "said"), [
    ("providers:\n  acme: {ca: providers/acme/ca.crt, clusters: ['acme-*']\n",
     "line 3"),  # a YAML error: the line
    ("providers:\n" + ACME + "  globex: {ca: providers/globex/ca.crt, clusters: ['gx-*'], regions: [West]}\n",
     "providers.globex.regions[0]: must be a region name as agents give it"),
    ("providers:\n" + ACME + "  globex: {ca: providers/globex/nope.crt, clusters: ['gx-*']}\n",
     "providers.globex.ca:"),
], ids=["yaml-syntax", "bad-region", "missing-ca-file"])
def test_a_file_that_does_not_load_keeps_the_last_good_trust_and_is_counted(certs: CertsDir, text: str,
                                                                            said: str) -> None:
    async def go() -> None:
        async with served(certs) as s, channel(s.target, provider_files(certs, "acme", "acme-1")) as ch:
            live = Live(ch, "acme-1", "north")
            await live.welcomed()
            kept = s.trust.current
            assert s.reload(text) is ReloadResult.REFUSED
            assert said in s.trust.problem and str(certs.trust) in s.trust.problem
            assert s.trust.current is kept
            assert (s.reloads("ok"), s.reloads("refused"), s.failing) == (0, 1, 1)
            assert s.reload() is ReloadResult.UNCHANGED and s.reloads("refused") == 1  # counted once, not per poll
            assert await live.still_open()  # the last good trust: acme still admitted, globex still not
            # (in the region acme-1 registered with: a Hello claiming another is refused, server/cluster_regions.py)
            assert await welcomed(s.target, provider_files(certs, "acme", "acme-1"), "acme-1", "north") is None
            refused = await welcomed(s.target, provider_files(certs, "globex", "gx-1"), "gx-1", "west")
            assert refused is not None and refused.code() is grpc.StatusCode.UNAVAILABLE
            assert s.reload("providers:\n" + ACME + GLOBEX) is ReloadResult.OK  # fixed: taken, and no longer failing
            assert (s.reloads("ok"), s.reloads("refused"), s.failing, s.trust.problem) == (1, 1, 0, "")

    run(go)


class _Broken(RuntimeError):
    pass


def _fail(*_args: object) -> None:
    raise _Broken("the authenticator is out to lunch")


@pytest.mark.parametrize("where", ["midway", "after"])
def test_a_reload_a_holder_refuses_leaves_the_old_trust_in_every_holder_and_is_counted_refused(
        certs: CertsDir, where: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """0.7.0 review: the trust file's holders were told one after the other with nothing put back, as the policy
    file's were before 0.7.0's fix. Midway: the authenticator raises after the TLS layer took the new CA bundle;
    after: a later holder raises once all three took it. Either way the TLS layer, the authenticator and
    `current` keep the old trust (globex, added by the file, is still refused at the handshake), the reload is
    counted, flagged and logged as refused naming the error, and the next look takes the same file."""
    async def go() -> None:
        async with served(certs) as s:
            kept, bundle = s.trust.current, s.roots.pem
            broken = [True]
            if where == "midway":
                monkeypatch.setattr(s.auth, "use_trust", _fail)
            else:
                s.trust.subscribe(lambda _old, _new: _fail() if broken else None)
            reloads = Reloads(s.metrics, trust=s.trust, serving=None)
            s.trust.path.write_text("providers:\n" + ACME + GLOBEX)
            with caplog.at_level(logging.ERROR, logger="federator.security"):
                reloads.look()
            assert s.trust.current is kept and s.auth.trust is kept and s.roots.pem == bundle
            refused = await welcomed(s.target, provider_files(certs, "globex", "gx-1"), "gx-1", "west")
            assert refused is not None and refused.code() is grpc.StatusCode.UNAVAILABLE, refused
            assert (s.reloads("ok"), s.reloads("refused"), s.failing) == (0, 1, 1)
            assert "_Broken: the authenticator is out to lunch" in s.trust.problem
            assert any("trust file refused" in r.getMessage() and "out to lunch" in r.getMessage()
                       for r in caplog.records)
            monkeypatch.undo()  # the fault is mended
            broken.clear()
            reloads.look()  # the same file: nothing was wrong with it, so it is read again
            assert s.trust.current is not kept and "globex" in s.auth.trust.providers  # type: ignore[union-attr]
            assert await welcomed(s.target, provider_files(certs, "globex", "gx-1"), "gx-1", "west") is None
            assert (s.reloads("ok"), s.reloads("refused"), s.failing, s.trust.problem) == (1, 1, 0, "")

    run(go)
