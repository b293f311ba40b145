"""`federator get queues` (QueueService.List) over real mTLS: each queue's standing as Slurm's sshare shows an
account's (outside QA, HPC H11), who sees which queue, and that the figures are the ones /metrics exports.

Two queues under load on one 24-accelerator member: acme (weight 3: alice and bob) holds 16 with two jobs waiting,
globex (weight 1: carol) holds 4 with one waiting. A user sees only the queues they may submit to; an admin all.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import yaml
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from prometheus_client.parser import text_string_to_metric_families

from federator.api import convert
from federator.api.features import FEATURES, QUEUES_LIST
from federator.api.v1 import identity_pb2_grpc, jobs_pb2, jobs_pb2_grpc, queues_pb2, queues_pb2_grpc
from federator.cli import main as cli_main
from federator.jobfile import parse_job
from federator.metrics import Metrics
from federator.model import JobPhase
from federator.scheduler import Scheduler
from federator.scheduler.policy import policy_from_document
from federator.security.audit import AuditLog
from federator.security.auth import Authenticator
from federator.security.authz import Authorizer, Principal, recorded_owner, tenancy_from_document
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue
from federator.security.tls import cluster_files, server_files, user_files
from federator.server.federator import Federator
from federator.server.identity_service import IdentityService
from federator.server.metrics_endpoint import MetricsEndpoint
from federator.server.queue_service import QueueService
from federator.server.services import ClusterService, JobService
from federator.store import SqliteJobStore

from builders import cluster, job, pool

H100 = "NVIDIA-H100-80GB-HBM3"
POLICY = """
tenancy:
  admins: {users: [root]}
  groups:
    acme: {users: [alice, bob]}
    globex: {users: [carol]}
queues:
  acme: {weight: 3, access: {groups: [acme]}, namespaces: [acme-jobs], maxPendingJobs: 50,
         quota: {accelerators: {H100: 20}, cpu: 100}, allowedRegions: [east]}
  globex: {weight: 1, access: {groups: [globex]}, namespaces: [globex-jobs], ownerShare: false}
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertsDir:
    c = CertsDir(tmp_path_factory.mktemp("certs"))
    init_ca(c)
    for user in ("alice", "bob", "carol", "root", "dave"):
        issue(c, Identity(IdentityKind.USER, user))
    issue(c, Identity(IdentityKind.CLUSTER, "east-1"))
    return c


@dataclass
class Served:
    fed: Federator
    clock: Clock
    target: str
    metrics_url: str


@asynccontextmanager
async def served(certs: CertsDir, tmp_path: Path, *, queues: bool = True) -> AsyncIterator[Served]:
    """A real Federator behind its JobService, IdentityService and (unless `queues` is false: a federator older
    than 0.14.0) QueueService on a loopback mTLS port, and its /metrics on a loopback HTTP port."""
    clock = Clock()
    metrics = Metrics()
    fed = Federator(store=SqliteJobStore(Path(":memory:")), metrics=metrics, clock=clock, report_interval=60.0,
                    scheduler=Scheduler(policy_from_document(yaml.safe_load(POLICY))))
    authz = Authorizer(tenancy_from_document(yaml.safe_load(POLICY)))
    audit = AuditLog(tmp_path / "audit.jsonl")
    server = grpc.aio.server()
    clusters = ClusterService(fed, Authenticator(), authz=authz, audit=audit)
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(fed, clusters.auth, authz=authz, audit=audit), server)
    identity_pb2_grpc.add_IdentityServiceServicer_to_server(IdentityService(clusters), server)
    if queues:
        queues_pb2_grpc.add_QueueServiceServicer_to_server(QueueService(clusters), server)
    port = server.add_secure_port("127.0.0.1:0", server_files(certs).server_credentials())
    endpoint = MetricsEndpoint(metrics.registry, "127.0.0.1:0")
    metrics.state_loop = asyncio.get_running_loop()  # a scrape samples on the loop, as `serve` has it
    await server.start()
    try:
        yield Served(fed, clock, f"127.0.0.1:{port}", f"{endpoint.url}/metrics")
    finally:
        await server.stop(0)
        endpoint.stop()
        audit.close()
        fed.store.close()


@asynccontextmanager
async def channel(s: Served, certs: CertsDir, user: str = "", *, cluster: str = "") -> AsyncIterator[grpc.aio.Channel]:
    files = cluster_files(certs, cluster) if cluster else user_files(certs, user)
    async with grpc.aio.secure_channel(s.target, files.channel_credentials()) as ch:
        yield ch


def gpu_job(name: str, queue: str, gpus: int) -> jobs_pb2.SubmitRequest:
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
        "spec": {"kind": "training", "queue": queue, "acceleratorModels": ["H100"],
                 "resources": {"cpu": "2", "nvidia.com/gpu": gpus}}})))


async def load(s: Served, certs: CertsDir) -> None:
    """acme: alice's a-0 (running) and a-1 (placed), 8 each; bob's b-0 and alice's a-2 wait. globex: carol's c-0
    (4, placed) and c-1 wait. 24 accelerators in three nodes of 8: after the first cycle 4 are free, on one node."""
    fed = s.fed
    rec = fed.connect(cluster="east-1", region="east", labels={})
    fed.report(rec, cluster("east-1", "east", pool(H100, nodes=3)).capacity)
    async with channel(s, certs, "alice") as a, channel(s, certs, "bob") as b, channel(s, certs, "carol") as c:
        alice, bob, carol = (jobs_pb2_grpc.JobServiceStub(ch) for ch in (a, b, c))
        await alice.Submit(gpu_job("a-0", "acme", 8))
        await alice.Submit(gpu_job("a-1", "acme", 8))
        await carol.Submit(gpu_job("c-0", "globex", 4))
        fed.schedule_once()
        s.clock.now = 1_100.0
        await bob.Submit(gpu_job("b-0", "acme", 8))
        s.clock.now = 1_200.0
        await alice.Submit(gpu_job("a-2", "acme", 8))
        await carol.Submit(gpu_job("c-1", "globex", 8))
        fed.schedule_once()
    by_name = {j.spec.name: j for j in fed.jobs.values()}
    assert [by_name[n].phase for n in ("a-0", "a-1", "c-0", "b-0", "a-2", "c-1")] == \
        [JobPhase.PLACED] * 3 + [JobPhase.PENDING] * 3
    fed.job_update(rec, by_name["a-0"].placements[0].placement_id, JobPhase.RUNNING, "started")
    s.clock.now = 1_500.0


async def listed(ch: grpc.aio.Channel, **request: object) -> queues_pb2.ListQueuesResponse:
    return await queues_pb2_grpc.QueueServiceStub(ch).List(queues_pb2.ListQueuesRequest(**request))  # type: ignore[arg-type]


def scrape(url: str) -> dict[tuple[str, str], float]:
    """/metrics as {(sample name, queue label): value} for the queue series (and the phase of federator_jobs)."""
    with urllib.request.urlopen(url, timeout=30) as r:  # noqa: S310 - loopback
        text = r.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if "queue" in sample.labels:
                key = sample.labels["queue"] + ("/" + sample.labels["phase"] if "phase" in sample.labels else "")
                out[(sample.name, key)] = sample.value
    return out


def test_two_queues_under_load_read_as_the_metrics_do_and_each_user_sees_their_own(certs: CertsDir,
                                                                                      tmp_path: Path) -> None:
    async def main() -> tuple[dict[str, queues_pb2.ListQueuesResponse], dict[tuple[str, str], float], str]:
        async with served(certs, tmp_path) as s:
            await load(s, certs)
            answers = {}
            for user in ("alice", "bob", "carol", "root", "dave"):
                async with channel(s, certs, user) as ch:
                    answers[user] = await listed(ch)
            said = next(j.pending_reason for j in s.fed.jobs.values() if j.spec.name == "a-2")
            assert said is not None
            return answers, await asyncio.to_thread(scrape, s.metrics_url), said.message
    answers, metrics, a2_reason = asyncio.run(main())

    root = {q.name: q for q in answers["root"].queues}
    assert sorted(root) == ["acme", "globex"]  # an admin: every queue
    acme, globex = root["acme"], root["globex"]
    assert answers["root"].fleet_accelerators == 24
    assert answers["root"].sampled_at == 1_500.0
    # weight, held, fair share (3 / (3 + 1) of 24), jobs by phase, the oldest wait (b-0, submitted at 1100)
    assert (acme.weight, acme.held_accelerators, acme.fair_share_accelerators) == (3.0, 16.0, 18.0)
    # running: placed or running (holding room, as a Queue object's runningJobs); placed: not yet reported running
    assert (acme.pending_jobs, acme.running_jobs, acme.placed_jobs, acme.oldest_pending_seconds) == (2, 2, 1, 400.0)
    assert acme.held_cpu_cores == 4.0
    assert (globex.weight, globex.held_accelerators, globex.fair_share_accelerators) == (1.0, 4.0, 6.0)
    assert (globex.pending_jobs, globex.running_jobs, globex.placed_jobs, globex.oldest_pending_seconds) == \
        (1, 1, 1, 300.0)
    # the caps: quota, the pending cap and use, priority and run bounds, the order within
    assert [(a.model, a.accelerators) for a in acme.quota.accelerators] == [("H100", 20.0)]
    assert acme.quota.cpu_cores == 100.0 and not acme.quota.HasField("memory_bytes")
    assert (acme.pending_limit.limit, acme.pending_limit.used) == (50, 2)
    assert acme.owner_share and not globex.owner_share
    assert list(acme.allowed_regions) == ["east"] and not globex.allowed_regions  # the residency fence
    assert not globex.quota.accelerators and not globex.quota.HasField("cpu_cores")

    # the same figures /metrics exports, at the same state
    for q in (acme, globex):
        assert metrics[("federator_queue_weight", q.name)] == q.weight
        assert metrics[("federator_queue_fair_share", q.name)] == q.fair_share_accelerators
        assert metrics[("federator_queue_accelerators", q.name)] == q.held_accelerators
        assert metrics[("federator_oldest_pending_job_age_seconds", q.name)] == q.oldest_pending_seconds
        jobs = {phase: metrics.get(("federator_jobs", f"{q.name}/{phase}"), 0) for phase in ("Pending", "Placed",
                                                                                             "Running")}  # none: 0
        assert (jobs["Pending"], jobs["Placed"], jobs["Placed"] + jobs["Running"]) == \
            (q.pending_jobs, q.placed_jobs, q.running_jobs)

    # a user sees the queues they may submit to, never another organisation's
    assert [q.name for q in answers["alice"].queues] == ["acme"]
    assert [q.name for q in answers["bob"].queues] == ["acme"]
    assert [q.name for q in answers["carol"].queues] == ["globex"]
    assert [q.name for q in answers["dave"].queues] == []  # in no group: no queue of anyone's
    assert answers["alice"].queues[0].held_accelerators == 16.0  # a queue seen is seen whole

    # each user's own standing: what they hold against the others, how many waiting jobs go before theirs
    alice = answers["alice"].queues[0].own
    assert alice.owner == "user alice"
    assert (alice.held_accelerators, alice.held_cpu_cores, alice.others_held_accelerators) == (16.0, 4.0, 0.0)
    assert (alice.pending_jobs, alice.running_jobs, alice.placed_jobs) == (1, 2, 1)
    assert (alice.owners, alice.owners_holding_less, alice.jobs_ahead) == (2, 1, 1)  # bob holds less: b-0 first
    assert "1 waiting job of queue acme goes before its owner's" in a2_reason  # as the cycle told her job
    bob = answers["bob"].queues[0].own
    assert (bob.held_accelerators, bob.others_held_accelerators, bob.pending_jobs) == (0.0, 16.0, 1)
    assert (bob.owners_holding_less, bob.jobs_ahead) == (0, 0)
    carol = answers["carol"].queues[0].own
    assert (carol.held_accelerators, carol.pending_jobs, carol.running_jobs, carol.jobs_ahead) == (4.0, 1, 1, 0)
    assert answers["alice"].user_pending_jobs.used == 1


def test_pages_a_named_queue_and_bad_input_names_the_field(certs: CertsDir, tmp_path: Path) -> None:
    async def main() -> None:
        async with served(certs, tmp_path) as s:
            await load(s, certs)
            async with channel(s, certs, "root") as r, channel(s, certs, "alice") as a:
                first = await listed(r, page_size=1)
                second = await listed(r, page_size=1, page_token=first.next_page_token)
                assert [q.name for q in [*first.queues, *second.queues]] == ["acme", "globex"]
                assert first.next_page_token and not second.next_page_token
                assert [q.name for q in (await listed(r, queue="globex")).queues] == ["globex"]
                # a queue alice may not see answers as one nobody has: empty, no error
                assert not (await listed(a, queue="globex")).queues
                assert not (await listed(a, queue="nobody")).queues
                for request, field in (({"page_token": "not-a-token"}, "page_token"),
                                       # a token is the caller's own: root's is no page for alice
                                       ({"page_token": first.next_page_token}, "page_token"),
                                       ({"page_size": -1}, "page_size"),
                                       ({"queue": "Bad_Q"}, "queue")):
                    with pytest.raises(grpc.aio.AioRpcError) as err:
                        await listed(a, **request)
                    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
                    assert (err.value.details() or "").startswith(field), err.value.details()
                    status = rpc_status.from_call(err.value)  # type: ignore[arg-type]
                    assert status is not None
                    bad = error_details_pb2.BadRequest()
                    assert status.details[0].Unpack(bad)
                    assert [v.field for v in bad.field_violations] == [field]
                with pytest.raises(grpc.aio.AioRpcError) as err:  # a token made for another queue filter
                    await listed(r, page_size=1, page_token=first.next_page_token, queue="acme")
                assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            async with channel(s, certs, cluster="east-1") as c:  # a provider's certificate: no queue
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await listed(c)
                assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED
                assert "queues are the tenants'" in (err.value.details() or "")
    asyncio.run(main())


def test_the_cli_shows_the_table_and_says_plainly_when_the_federator_is_older(
        certs: CertsDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert QUEUES_LIST in FEATURES  # a client tells an older federator (no feature, UNIMPLEMENTED) from a refusal
    tls = ["--certs-dir", str(certs.root)]

    async def main(queues: bool) -> tuple[int, ...]:
        async with served(certs, tmp_path, queues=queues) as s:
            await load(s, certs)
            codes = []
            for argv in (["get", "queues", "--user", "alice"], ["get", "queues", "acme", "-o", "json", "--user", "bob"],
                         ["get", "queues", "globex", "--user", "alice"]):
                codes.append(await asyncio.to_thread(cli_main, [*argv, "--server", s.target, *tls]))
            return tuple(codes)

    assert asyncio.run(main(queues=True)) == (0, 0, 3)
    out, err = capsys.readouterr()
    table, _, doc = out.partition("\n{")
    header, row = table.splitlines()[:2]
    assert header.split() == ["QUEUE", "WEIGHT", "HELD", "FAIR-SHARE", "SHARE", "PENDING", "RUNNING", "OLDEST-WAIT",
                              "QUOTA", "YOU"]
    assert row.split()[:8] == ["acme", "3", "16", "18.0", "under", "2", "2", "6m40s"]
    assert "hold 16 of 16; 1 waiting, 1 ahead" in row
    bob = json.loads("{" + doc)
    assert (bob["name"], bob["own"]["owner"], bob["own"]["othersHeldAccelerators"]) == ("acme", "user bob", 16.0)
    assert bob["allowedRegions"] == ["east"]
    assert "no queue 'globex' you may see" in err

    assert asyncio.run(main(queues=False)) == (1, 1, 1)  # a federator before 0.14.0
    _, err = capsys.readouterr()
    assert "older than 0.14.0 (UNIMPLEMENTED)" in err and "Traceback" not in err


def test_a_queue_the_tenancy_declares_before_the_scheduler_knows_it_gets_its_share_by_the_same_rule() -> None:
    """A queue declared to the tenancy policy alone (a Queue object the scheduler has not taken yet) has no metric
    series: its share is what it would get were it to ask now, as an idle queue's metric says."""
    fed = Federator(store=SqliteJobStore(Path(":memory:")), report_interval=60.0,
                    scheduler=Scheduler(policy_from_document(yaml.safe_load(POLICY))))
    rec = fed.connect(cluster="east-1", region="east", labels={})
    fed.report(rec, cluster("east-1", "east", pool(H100, nodes=3)).capacity)
    tenancy = tenancy_from_document(yaml.safe_load(POLICY)).with_queues({}, {}, declared=["newcomer"])
    fed.submit(job("waits", gpus=8, models=(H100,), queue="acme"))
    service = QueueService(ClusterService(fed, Authenticator(), authz=Authorizer(tenancy)))
    root = Principal("root", frozenset(), "certificate", admin=True)
    shares = {q.name: q.fair_share_accelerators for q in service.answer(root, queue="", size=10, after="").queues}
    # acme has work, so all 24 are its share; an idle queue's is its weight over acme's and its own (newcomer:
    # defaultQueue's weight, 1), as globex's metric says
    assert shares == {"acme": 24.0, "globex": 6.0, "newcomer": 6.0}
    assert fed.sample().queue_fair_share["globex"] == 6.0 and "newcomer" not in fed.sample().queue_fair_share


def test_the_calls_of_one_second_share_a_sample_and_each_says_when_it_was_taken() -> None:
    """A crowd polling `get queues` together paid a state sample (a scrape's cost) per call; the calls of the same
    second now share one. sampled_at is the sample's time, the figures are that sample's, and what is the caller's
    own (the queues they may see, their standing) is read at each call."""
    clock = Clock()
    fed = Federator(store=SqliteJobStore(Path(":memory:")), report_interval=60.0, clock=clock,
                    scheduler=Scheduler(policy_from_document(yaml.safe_load(POLICY))))
    rec = fed.connect(cluster="east-1", region="east", labels={})
    fed.report(rec, cluster("east-1", "east", pool(H100, nodes=3)).capacity)
    authz = Authorizer(tenancy_from_document(yaml.safe_load(POLICY)))
    service = QueueService(ClusterService(fed, Authenticator(), authz=authz))
    root = Principal("root", frozenset(), "certificate", admin=True)
    alice = Principal("alice", frozenset({"acme"}), "certificate")
    fed.submit(recorded_owner(job("a-0", gpus=8, models=(H100,), queue="acme"), "alice"))

    def acme(who: Principal) -> tuple[float, int, int]:
        answer = service.answer(who, queue="acme", size=10, after="")
        return answer.sampled_at, answer.queues[0].pending_jobs, answer.queues[0].own.pending_jobs

    assert acme(root) == (1_000.0, 1, 0)
    clock.now = 1_000.5
    fed.submit(recorded_owner(job("a-1", gpus=8, models=(H100,), queue="acme"), "alice"))
    # The same second: the first call's sample (its time, its one pending job); alice's own jobs are read now.
    assert acme(alice) == (1_000.0, 1, 2)
    assert [q.name for q in service.answer(alice, queue="", size=10, after="").queues] == ["acme"]  # hers alone
    assert service.samples.samples == 1
    clock.now = 1_001.0  # a second on: a new sample
    assert acme(root) == (1_001.0, 2, 0)
    assert service.samples.samples == 2
