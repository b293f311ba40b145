"""The federator's gRPC edge over real loopback sockets: authentication, limits, hostile bytes.

An in-process `grpc.aio` server with the real services (no subprocesses), so
each refusal can be checked together with the metric that counts it, and the
check that the federator keeps serving everyone else afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from federator.api import convert
from federator.api.v1 import agent_pb2, agent_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from federator.jobfile import parse_job
from federator.model import JobPhase
from federator.security.audit import AuditLog
from federator.security.auth import Authenticator, RevocationList
from federator.security.limits import Limits
from federator.security.pki import CertsDir, Identity, IdentityKind, create_ca, init_ca, issue
from federator.security.tls import TlsFiles, cluster_files, server_files, user_files
from federator.security.trust import Trust, load_trust
from federator.server.federator import Federator
from federator.server.services import AgentService, ClusterService, JobService, decode_guard
from federator.store import JobStore, SqliteJobStore


@dataclass
class Served:
    fed: Federator
    target: str
    token_target: str

    def rejected(self, reason: str) -> float:
        return self.fed.metrics.registry.get_sample_value("federator_messages_rejected_total",
                                                          {"reason": reason}) or 0.0


@asynccontextmanager
async def served(*, certs: CertsDir | None = None, limits: Limits | None = None,
                 tokens: tuple[str, ...] = (), store: JobStore | None = None,
                 trust: Trust | None = None, audit: AuditLog | None = None) -> AsyncIterator[Served]:
    """`trust`: provider CAs, as `federator serve --trust` loads them (their clusters' certificates accepted);
    `audit`: the job and cluster services' audit log."""
    fed = Federator(store=store or SqliteJobStore(Path(":memory:")), limits=limits, report_interval=60.0)
    auth = Authenticator(insecure=certs is None, tokens=tokens, trust=trust,
                         revocations=RevocationList(certs.revoked if certs else None, interval=0.0))
    max_bytes = 4 * fed.limits.max_message_bytes
    server = grpc.aio.server(interceptors=[decode_guard(fed)],
                             options=[("grpc.max_receive_message_length", max_bytes)])
    agent_pb2_grpc.add_AgentServiceServicer_to_server(AgentService(fed, auth), server)
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(fed, auth, audit=audit), server)
    jobs_pb2_grpc.add_ClusterServiceServicer_to_server(ClusterService(fed, auth, audit=audit), server)
    token_port = 0
    if certs is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        roots = trust.bundle_pem() if trust is not None else None
        port = server.add_secure_port("127.0.0.1:0", server_files(certs).server_credentials(client_roots=roots))
        token_port = server.add_secure_port("127.0.0.1:0",
                                            server_files(certs).server_credentials(require_client_auth=False))
    await server.start()
    try:
        yield Served(fed, f"127.0.0.1:{port}", f"127.0.0.1:{token_port}")
    finally:
        await server.stop(0)


def channel(target: str, tls: TlsFiles | None = None, token: str = "") -> grpc.aio.Channel:
    if tls is None:
        return grpc.aio.insecure_channel(target)
    creds = tls.channel_credentials()
    if token:
        creds = grpc.composite_channel_credentials(creds, grpc.access_token_call_credentials(token))
    return grpc.aio.secure_channel(target, creds)


def good_spec(name: str = "good", **spec: object) -> jobs_pb2.SubmitRequest:
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
        "spec": {"kind": "training", "resources": {"cpu": "1"}, **spec}})))


SUPERSEDED = 30.0
"""`agent_stream`'s quiet for a stream the federator is to end (superseded): past it, the stream reads as not ended."""


async def agent_stream(ch: grpc.aio.Channel, first: list[agent_pb2.AgentMessage] | list[bytes],
                       raw: bool = False, quiet: float = 2.0,
                       ) -> tuple[list[agent_pb2.FederatorMessage], grpc.aio.AioRpcError | None]:
    """Send messages (or raw frames), read what comes back until the federator goes quiet (`quiet` seconds without
    a message) or ends the stream. A stream a test expects the federator to end (superseded by a newer one) passes
    a long `quiet`: on a loaded machine the newer stream's Hello came more than 2 s after the older's Welcome, and
    the older one, gone quiet, was read as not ended."""
    method = ch.stream_stream("/federator.v1.AgentService/Connect",
                              request_serializer=(lambda b: b) if raw else agent_pb2.AgentMessage.SerializeToString,
                              response_deserializer=agent_pb2.FederatorMessage.FromString)
    done = asyncio.Event()

    async def requests() -> AsyncIterator[object]:
        for m in first:
            yield m
        await done.wait()

    call = method(requests())
    got: list[agent_pb2.FederatorMessage] = []
    try:
        while True:
            msg = await asyncio.wait_for(call.read(), quiet)
            if msg is grpc.aio.EOF:
                return got, None
            got.append(msg)
    except TimeoutError:
        return got, None
    except grpc.aio.AioRpcError as err:
        return got, err
    finally:
        done.set()
        call.cancel()


def hello(cluster: str = "east-1", region: str = "east") -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(hello=agent_pb2.Hello(cluster=cluster, region=region))


def report() -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(capacity=agent_pb2.CapacityReport(cpu_milli_allocatable=1000, cpu_milli_free=1000))


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coro())  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertsDir:
    c = CertsDir(tmp_path_factory.mktemp("certs"))
    init_ca(c)
    for name in ("east-1", "west-1"):
        issue(c, Identity(IdentityKind.CLUSTER, name))
    return c


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> CertsDir:
    """Another federation's CA, with a certificate for a cluster of the same name."""
    c = CertsDir(tmp_path_factory.mktemp("stranger"))
    init_ca(c)
    issue(c, Identity(IdentityKind.CLUSTER, "east-1"))
    return c


def test_garbage_bytes_get_an_error_and_the_federator_keeps_serving() -> None:
    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            submit = ch.unary_unary("/federator.v1.JobService/Submit", request_serializer=lambda b: b,
                                    response_deserializer=jobs_pb2.SubmitResponse.FromString)
            for junk in (b"\xff\xff\xff\xff", b"\x0a\x05\x0a\x03\xff\xfe\xfd", bytes(range(256))):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await submit(junk, timeout=5)
                assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
                assert "SubmitRequest" in (err.value.details() or "")  # names what could not be decoded
            assert s.rejected("malformed") == 3
            reply = await jobs_pb2_grpc.JobServiceStub(ch).Submit(good_spec(), timeout=5)
            assert reply.job.spec.name == "good"

    run(go)


def test_an_oversized_submit_is_refused_naming_the_limit_and_counted() -> None:
    async def go() -> None:
        async with served(limits=Limits(max_message_bytes=10_000)) as s, channel(s.target) as ch:
            stub = jobs_pb2_grpc.JobServiceStub(ch)
            big = good_spec("big", template={"spec": {"blob": "x" * 20_000}})
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Submit(big, timeout=5)
            assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "over the limit of 10000 bytes" in (err.value.details() or "")
            assert s.rejected("oversized") == 1
            huge = good_spec("huge", template={"spec": {"blob": "x" * 100_000}})  # past the transport's cap
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Submit(huge, timeout=5)
            assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert (await stub.Submit(good_spec(), timeout=5)).job.spec.name == "good"
            assert s.fed.list_jobs() and all(j.spec.name == "good" for j in s.fed.list_jobs())

    run(go)


@pytest.mark.parametrize(("first", "words"), [
    (hello(cluster="East 1"), "hello.cluster"),
    (hello(region=""), "hello.region"),
    (report(), "the first message must be a Hello"),
], ids=["bad-cluster-name", "no-region", "report-first"])
def test_a_bad_hello_is_refused_naming_the_field(first: agent_pb2.AgentMessage, words: str) -> None:
    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            _, err = await agent_stream(ch, [first])
            assert err is not None and err.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert words in (err.details() or "")
            assert s.rejected("bad_hello") == 1 and not s.fed.clusters

    run(go)


def test_a_stream_without_a_hello_in_time_hears_that_it_timed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """It was told "the first message must be a Hello", as if it had sent something else."""
    from federator.server import agent_service

    monkeypatch.setattr(agent_service, "HELLO_TIMEOUT_SECONDS", 0.3)

    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            _, err = await agent_stream(ch, [])
            assert err is not None and err.code() is grpc.StatusCode.DEADLINE_EXCEEDED, err
            assert "no Hello within 0.3s" in (err.details() or "")
            assert s.rejected("bad_hello") == 1 and not s.fed.clusters

    run(go)


def test_a_report_flood_is_rate_limited_and_a_garbage_frame_is_dropped() -> None:
    async def go() -> None:
        async with served(limits=Limits(reports_per_second=1.0, report_burst=5)) as s:
            async with channel(s.target) as quiet, channel(s.target) as loud:
                calm = asyncio.create_task(agent_stream(quiet, [hello("west-1", "west"), report()]))
                got, err = await agent_stream(loud, [hello(), *[report() for _ in range(50)]])
                assert err is None and got[0].WhichOneof("body") == "welcome"
                assert 30 <= s.rejected("rate_limited") <= 45  # the burst passes, the rest is refused
                assert s.fed.clusters["east-1"].capacity is not None
                frames = [hello().SerializeToString(), b"\xff\xff garbage", report().SerializeToString()]
                got, err = await agent_stream(loud, frames, raw=True)  # type: ignore[arg-type]
                assert err is None and got and got[0].WhichOneof("body") == "welcome"
                assert s.rejected("malformed") == 1  # the bad frame is dropped; the stream goes on
                assert (await calm)[0][0].WhichOneof("body") == "welcome"
                assert s.fed.clusters["west-1"].capacity is not None  # the other agent never noticed

    run(go)


def test_mtls_takes_the_cluster_from_the_certificate(certs: CertsDir, stranger: CertsDir) -> None:
    async def go() -> None:
        async with served(certs=certs) as s:
            async with channel(s.target, cluster_files(certs, "east-1")) as ch:
                got, err = await agent_stream(ch, [hello(), report()])
                assert err is None and got[0].WhichOneof("body") == "welcome"
            async with channel(s.target, cluster_files(certs, "east-1")) as ch:  # claims to be west-1
                _, err = await agent_stream(ch, [hello("west-1", "west")])
                assert err is not None and err.code() is grpc.StatusCode.PERMISSION_DENIED
                assert "hello.cluster: 'west-1' does not match" in (err.details() or "")
                assert s.rejected("identity_mismatch") == 1 and "west-1" not in s.fed.clusters
            tls = TlsFiles(certs.ca_cert, stranger.cert(Identity(IdentityKind.CLUSTER, "east-1")),
                           stranger.key(Identity(IdentityKind.CLUSTER, "east-1")))
            async with channel(s.target, tls) as ch:  # right name, unknown CA: the handshake fails
                _, err = await agent_stream(ch, [hello()])
                assert err is not None and err.code() is grpc.StatusCode.UNAVAILABLE
            async with channel(s.target, user_files(certs)) as ch:  # a user certificate is not an agent
                _, err = await agent_stream(ch, [hello("admin", "x")])
                assert err is not None and err.code() is grpc.StatusCode.PERMISSION_DENIED

    run(go)


@pytest.fixture(scope="module")
def providers(tmp_path_factory: pytest.TempPathFactory) -> tuple[CertsDir, Trust]:
    """A federation with two providers: acme, bound to regions east and north, and globex, bound to none; a
    cluster certificate from each, and east-1 from the federation's CA."""
    c = CertsDir(tmp_path_factory.mktemp("providers"))
    init_ca(c)
    issue(c, Identity(IdentityKind.CLUSTER, "east-1"))
    for name, cluster in (("acme", "acme-1"), ("globex", "gx-1")):
        create_ca(c.provider(name), common_name=f"{name} provider CA")
        issue(c.provider(name), Identity(IdentityKind.CLUSTER, cluster))
    c.trust.write_text("providers:\n"
                       "  acme: {ca: providers/acme/ca.crt, clusters: ['acme-*'], regions: [east, north]}\n"
                       "  globex: {ca: providers/globex/ca.crt, clusters: ['gx-*']}\n")
    return c, load_trust(c.trust, federation_ca=c.ca_cert)


def provider_files(certs: CertsDir, provider: str, cluster: str) -> TlsFiles:
    mine, me = certs.provider(provider), Identity(IdentityKind.CLUSTER, cluster)
    return TlsFiles(certs.ca_cert, mine.cert(me), mine.key(me))


def test_a_provider_bound_to_regions_may_not_claim_another(providers: tuple[CertsDir, Trust]) -> None:
    """A provider's agent claiming a region where it has no cluster would draw the latency-sensitive jobs meant
    for clusters near their users: the trust file's `regions` bind what it may claim."""
    certs, trust = providers

    async def go() -> None:
        async with served(certs=certs, trust=trust) as s:
            async with channel(s.target, provider_files(certs, "acme", "acme-1")) as ch:
                _, err = await agent_stream(ch, [hello("acme-1", "west"), report()])
                assert err is not None and err.code() is grpc.StatusCode.INVALID_ARGUMENT, err
                assert err.details() == ("hello.region: 'west' is not a region of provider 'acme'; the trust file "
                                         "binds its clusters to regions east, north")
                assert s.rejected("bad_hello") == 1 and "acme-1" not in s.fed.clusters
            async with channel(s.target, provider_files(certs, "acme", "acme-1")) as ch:  # a region of its own
                got, err = await agent_stream(ch, [hello("acme-1", "north"), report()])
                assert err is None and got[0].WhichOneof("body") == "welcome"
                assert s.fed.clusters["acme-1"].region == "north"
                assert s.fed.clusters["acme-1"].labels["federator.io/provider"] == "acme"
            async with channel(s.target, provider_files(certs, "globex", "gx-1")) as ch:  # no regions: any
                got, err = await agent_stream(ch, [hello("gx-1", "west"), report()])
                assert err is None and got[0].WhichOneof("body") == "welcome"
                assert s.fed.clusters["gx-1"].region == "west"
            async with channel(s.target, cluster_files(certs, "east-1")) as ch:  # the federation's own: any
                got, err = await agent_stream(ch, [hello("east-1", "south"), report()])
                assert err is None and got[0].WhichOneof("body") == "welcome"
            assert s.rejected("bad_hello") == 1

    run(go)


def test_revoking_a_connected_cluster_ends_its_stream_and_refuses_it_after(certs: CertsDir) -> None:
    async def go() -> None:
        certs.revoked.write_text("")
        try:
            async with served(certs=certs) as s, channel(s.target, cluster_files(certs, "west-1")) as ch:
                method = ch.stream_stream("/federator.v1.AgentService/Connect",
                                          request_serializer=agent_pb2.AgentMessage.SerializeToString,
                                          response_deserializer=agent_pb2.FederatorMessage.FromString)
                outbox: asyncio.Queue[agent_pb2.AgentMessage] = asyncio.Queue()
                for m in (hello("west-1", "west"), report()):
                    outbox.put_nowait(m)

                async def requests() -> AsyncIterator[agent_pb2.AgentMessage]:
                    while True:
                        yield await outbox.get()

                call = method(requests())
                assert (await call.read()).WhichOneof("body") == "welcome"
                certs.revoked.write_text("cluster west-1\n")
                outbox.put_nowait(report())  # the next message finds the certificate revoked
                with pytest.raises(grpc.aio.AioRpcError) as ended:  # ended with a status saying why, not OK
                    await asyncio.wait_for(call.read(), 5)
                assert ended.value.code() is grpc.StatusCode.PERMISSION_DENIED
                assert "west-1: its certificate was revoked" in (ended.value.details() or "")
                for _ in range(100):  # the server's side lets go of the stream just after the status is sent
                    if not s.fed.clusters["west-1"].connected:
                        break
                    await asyncio.sleep(0.02)
                assert not s.fed.clusters["west-1"].connected
                _, err = await agent_stream(ch, [hello("west-1", "west")])
                assert err is not None and err.code() is grpc.StatusCode.PERMISSION_DENIED
                assert "revoked" in (err.details() or "") and s.rejected("revoked") >= 2
        finally:
            certs.revoked.write_text("")

    run(go)


def test_the_job_api_takes_a_user_certificate_or_a_bearer_token_only(certs: CertsDir) -> None:
    async def go() -> None:
        async with served(certs=certs, tokens=("s3cret",)) as s:
            async with channel(s.target, user_files(certs)) as ch:
                assert (await jobs_pb2_grpc.JobServiceStub(ch).Submit(good_spec(), timeout=5)).job.job_id
            async with channel(s.target, cluster_files(certs, "east-1")) as ch:  # an agent may not submit
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await jobs_pb2_grpc.JobServiceStub(ch).List(jobs_pb2.ListJobsRequest(), timeout=5)
                assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED
            async with channel(s.target, TlsFiles(certs.ca_cert)) as ch:  # no client certificate: no handshake
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await jobs_pb2_grpc.JobServiceStub(ch).List(jobs_pb2.ListJobsRequest(), timeout=5)
                assert err.value.code() is grpc.StatusCode.UNAVAILABLE
            async with channel(s.token_target, TlsFiles(certs.ca_cert), token="s3cret") as ch:
                jobs = await jobs_pb2_grpc.JobServiceStub(ch).List(jobs_pb2.ListJobsRequest(), timeout=5)
                assert [j.spec.name for j in jobs.jobs] == []  # a token with no name is user `token`: not admin's jobs
            for token in ("wrong", ""):
                async with channel(s.token_target, TlsFiles(certs.ca_cert), token=token) as ch:
                    with pytest.raises(grpc.aio.AioRpcError) as err:
                        await jobs_pb2_grpc.ClusterServiceStub(ch).List(jobs_pb2.ListClustersRequest(), timeout=5)
                    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
            async with channel(s.token_target, TlsFiles(certs.ca_cert), token="s3cret") as ch:
                _, err = await agent_stream(ch, [hello()])  # a token is not an agent identity
                assert err is not None and err.code() is grpc.StatusCode.UNAUTHENTICATED

    run(go)



def test_submit_with_a_seen_request_id_returns_the_original_job_and_a_changed_spec_is_refused() -> None:
    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            stub = jobs_pb2_grpc.JobServiceStub(ch)
            request = good_spec("once")
            request.request_id = "cli-7f3a"
            first = (await stub.Submit(request, timeout=5)).job
            s.fed.cancel(first.job_id)  # finished before the retry arrives: the retry still gets it back
            again = (await stub.Submit(request, timeout=5)).job
            assert again.job_id == first.job_id
            assert convert.job_from_pb(again).phase is JobPhase.CANCELLED
            assert [j.job_id for j in s.fed.list_jobs()] == [first.job_id]

            changed = good_spec("once", replicas=2)
            changed.request_id = "cli-7f3a"
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Submit(changed, timeout=5)
            assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
            assert "request_id: 'cli-7f3a' was already used" in (err.value.details() or "")

            bad = good_spec("other")
            bad.request_id = "not an id"
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Submit(bad, timeout=5)
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert (err.value.details() or "").startswith("request_id:")
            assert [j.job_id for j in s.fed.list_jobs()] == [first.job_id]

    run(go)


@pytest.mark.parametrize("call", ["Get", "Cancel"])
def test_a_get_or_cancel_without_a_job_id_is_invalid_argument_naming_the_field(call: str) -> None:
    """An empty job_id used to read as a job nobody has: NOT_FOUND "no job with id or name ''"."""
    async def main() -> None:
        async with served() as s, channel(s.target) as ch:
            stub = jobs_pb2_grpc.JobServiceStub(ch)
            request = jobs_pb2.GetJobRequest() if call == "Get" else jobs_pb2.CancelJobRequest()
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await getattr(stub, call)(request, timeout=5)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value
            assert err.value.details() == "job_id: must not be empty"
            status = rpc_status.from_call(err.value)  # type: ignore[arg-type]
            assert status is not None
            bad = error_details_pb2.BadRequest()
            assert status.details[0].Unpack(bad)
            assert [(v.field, v.description) for v in bad.field_violations] == [
                ("job_id", "must not be empty")]

    asyncio.run(main())


def test_a_hello_that_waited_out_a_stall_of_the_federator_is_not_counted_as_the_agents_fault(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside SRE: every federator stall or restart counted agents' streams as bad Hellos (10, 71, 8 of them), with
    no line to say why. A timeout while the federator's own loop was held is not counted."""
    from federator.server import agent_service

    monkeypatch.setattr(agent_service, "HELLO_TIMEOUT_SECONDS", 0.3)

    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            s.fed.stalls.record(ended_at=s.fed.clock() + 60, seconds=1.0)  # the loop held while the stream waited
            _, err = await agent_stream(ch, [])
            assert err is not None and err.code() is grpc.StatusCode.DEADLINE_EXCEEDED, err
            assert s.rejected("bad_hello") == 0

    run(go)
