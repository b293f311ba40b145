"""Tenancy over the real gRPC API with mTLS: who may submit where, see and cancel which jobs; the audit log.

An in-process `grpc.aio` server with the real services and real user
certificates (their subject O attributes are groups), so every decision is the
one a remote client gets, with its status code and message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import pytest
import yaml

from federator.accounting import SqliteUsageStore, UsageRecord
from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2, usage_pb2, usage_pb2_grpc
from federator.jobfile import parse_job
from federator.metrics import OTHER, Metrics
from federator.model import ClusterCapacity
from federator.scheduler import Scheduler
from federator.scheduler.policy import policy_from_document
from federator.security.audit import AuditLog
from federator.security.auth import Authenticator, RevocationList, Token
from federator.security.authz import USER_ANNOTATION, Authorizer, Submitter, tenancy_from_document
from federator.security.limits import Limits
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue
from federator.security.tls import TlsFiles, server_files, user_files
from federator.server.federator import Federator
from federator.server.services import ClusterService, JobService
from federator.server.usage_service import UsageService
from federator.store import SqliteJobStore

from support import audit_lines

POLICY = """
tenancy:
  admins: {users: [admin]}
  groups:
    team-a: {users: [alice, carol]}
    viewers: {users: [dave, alice], jobs: view}
queues:
  research:
    access: {users: [erin], groups: [team-a, ml]}
  open: {weight: 1}
"""


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertsDir:
    c = CertsDir(tmp_path_factory.mktemp("certs"))
    init_ca(c)
    for user in ("alice", "bob", "carol", "dave", "erin"):
        issue(c, Identity(IdentityKind.USER, user))
    issue(c, Identity(IdentityKind.USER, "frank"), groups=("ml",))  # a group from the certificate's subject O
    return c


@dataclass
class Served:
    fed: Federator
    target: str
    token_target: str
    audit_path: Path

    def audit(self) -> list[dict[str, object]]:
        return audit_lines(self.audit_path)


@asynccontextmanager
async def served(certs: CertsDir, tmp_path: Path, policy: str = POLICY, *,
                 metrics: Metrics | None = None, limits: Limits | None = None,
                 revoked: Path | None = None, db: Path | None = None,
                 tokens: Sequence[Token] = (Token("t-bob", "bob"), Token("t-old"))) -> AsyncIterator[Served]:
    """The job API over mTLS (and a token port), with the policy's tenancy and its queues (the scheduler's, as
    `--policy` gives); `db`: a store file that outlives it (a restart), else one in memory."""
    fed = Federator(store=SqliteJobStore(db or Path(":memory:")), report_interval=60.0, metrics=metrics,
                    limits=limits, scheduler=Scheduler(policy_from_document(yaml.safe_load(policy))))
    auth = Authenticator(revocations=RevocationList(revoked, interval=0.0), tokens=list(tokens))
    authz = Authorizer(tenancy_from_document(yaml.safe_load(policy)))
    audit = AuditLog(tmp_path / "audit.jsonl")
    server = grpc.aio.server()
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(fed, auth, authz=authz, audit=audit), server)
    jobs_pb2_grpc.add_ClusterServiceServicer_to_server(ClusterService(fed, auth, authz=authz, audit=audit), server)
    port = server.add_secure_port("127.0.0.1:0", server_files(certs).server_credentials())
    token_port = server.add_secure_port("127.0.0.1:0",
                                        server_files(certs).server_credentials(require_client_auth=False))
    await server.start()
    try:
        yield Served(fed, f"127.0.0.1:{port}", f"127.0.0.1:{token_port}", tmp_path / "audit.jsonl")
    finally:
        await server.stop(0)
        audit.close()
        fed.store.close()


@asynccontextmanager
async def client(s: Served, certs: CertsDir, user: str = "",
                 token: str = "") -> AsyncIterator[jobs_pb2_grpc.JobServiceStub]:
    if token:
        creds = grpc.composite_channel_credentials(TlsFiles(certs.ca_cert).channel_credentials(),
                                                   grpc.access_token_call_credentials(token))
        ch = grpc.aio.secure_channel(s.token_target, creds)
    else:
        ch = grpc.aio.secure_channel(s.target, user_files(certs, user).channel_credentials())
    async with ch:
        yield jobs_pb2_grpc.JobServiceStub(ch)


def spec(name: str, queue: str = "open", **extra: object) -> jobs_pb2.SubmitRequest:
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name, **extra},
        "spec": {"kind": "training", "queue": queue, "resources": {"cpu": "1"}}})))


async def denied(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, err.value
    return err.value


async def absent(call: object) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    assert err.value.code() == grpc.StatusCode.NOT_FOUND, err.value
    return err.value.details() or ""


def test_a_user_cannot_see_or_cancel_another_users_job_nor_learn_that_it_exists(certs: CertsDir,
                                                                                 tmp_path: Path) -> None:
    """Another user's job is answered as one nobody has, word for word: "may not see this job ... it is not
    yours" confirmed that a guessed name was in use (outside QA, tenants F1)."""
    async def main() -> None:
        async with served(certs, tmp_path) as s, client(s, certs, "bob") as bob, client(s, certs, "alice") as alice:
            job = (await bob.Submit(spec("bobs"))).job
            for key, nobodys in ((job.job_id, "bobs-000000"), ("bobs", "nobodys"), ("open/bobs", "open/nobodys")):
                for call, unknown in ((alice.Get(jobs_pb2.GetJobRequest(job_id=key)),
                                       alice.Get(jobs_pb2.GetJobRequest(job_id=nobodys))),
                                      (alice.Cancel(jobs_pb2.CancelJobRequest(job_id=key)),
                                       alice.Cancel(jobs_pb2.CancelJobRequest(job_id=nobodys)))):
                    assert (await absent(call)).replace(key, "K") == (await absent(unknown)).replace(nobodys, "K")
            hidden = [x for x in s.audit() if x["action"] == "cancel" and job.job_id in str(x["message"])]
            assert len(hidden) == 3 and {x["rule"] for x in hidden} == {"owner"}  # the audit log knows which job
            assert [j.job_id for j in (await alice.List(jobs_pb2.ListJobsRequest())).jobs] == []
            assert [j.job_id for j in (await bob.List(jobs_pb2.ListJobsRequest())).jobs] == [job.job_id]
            assert s.fed.jobs[job.job_id].phase.value == "Pending"  # alice's cancel did nothing
            # the owner is the caller, whatever the spec claimed
            forged = (await alice.Submit(spec("forged", annotations={USER_ANNOTATION: "bob"}))).job
            assert s.fed.jobs[forged.job_id].spec.annotation(USER_ANNOTATION) == "alice"
            await absent(bob.Get(jobs_pb2.GetJobRequest(job_id=forged.job_id)))
            # the admin sees and cancels everything
            async with client(s, certs, "admin") as admin:
                assert len((await admin.List(jobs_pb2.ListJobsRequest())).jobs) == 2
                cancelled = await admin.Cancel(jobs_pb2.CancelJobRequest(job_id=job.job_id))
                assert cancelled.phase == types_pb2.JOB_PHASE_CANCELLED

    asyncio.run(main())


def test_a_taken_name_names_the_other_job_only_to_whom_may_see_it(certs: CertsDir, tmp_path: Path) -> None:
    """Tenants share namespaces. Alice, guessing Bob's job name, learnt his job's id and phase (ALREADY_EXISTS).
    Now she hears that the name is taken, and Bob, or the admin, hears which job holds it. (Request ids are
    each owner's own: test_the_same_request_id_from_another_user_is_another_job.)"""
    async def main() -> None:
        async with served(certs, tmp_path) as s, client(s, certs, "bob") as bob, client(s, certs, "alice") as alice:
            first = spec("bobs")
            first.request_id = "bobs-req"
            job = (await bob.Submit(first)).job
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await alice.Submit(spec("bobs"))
            said = err.value.details() or ""
            assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS, said
            assert job.job_id not in said and "Pending" not in said and "not available" in said, said
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await bob.Submit(spec("bobs"))
            assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS and job.job_id in (err.value.details() or "")
            with pytest.raises(grpc.aio.AioRpcError) as err:  # his own id with another spec: he hears which job
                await bob.Submit(jobs_pb2.SubmitRequest(spec=spec("other").spec, request_id="bobs-req"))
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert job.job_id in (err.value.details() or ""), err.value
            assert len(s.fed.jobs) == 1
            assert any(job.job_id in str(line.get("message")) and line.get("identity", {}) for line in s.audit()
                       if line.get("result") == "failed")  # the audit keeps the whole message

    asyncio.run(main())


def test_the_same_request_id_from_another_user_is_another_job(certs: CertsDir, tmp_path: Path) -> None:
    """Red team F03: the CLI's request id is a hash of the file, the same for every user, and ids were one
    namespace for all tenants. Bob, submitting any job with the id alice's file would use, made her
    `federator submit -f` fail for good (FAILED_PRECONDITION). An id is now its owner's own: hers makes her
    job, and each retry returns each owner's own job."""
    async def main() -> None:
        async with served(certs, tmp_path) as s, client(s, certs, "bob") as bob, client(s, certs, "alice") as alice:
            squat = jobs_pb2.SubmitRequest(spec=spec("squat").spec, request_id="cli-4b60e3df")
            bobs = (await bob.Submit(squat)).job
            hers = jobs_pb2.SubmitRequest(spec=spec("train").spec, request_id="cli-4b60e3df")
            answer = await alice.Submit(hers)
            assert not answer.replayed and answer.job.job_id != bobs.job_id
            assert s.fed.jobs[answer.job.job_id].spec.annotation(USER_ANNOTATION) == "alice"
            again = await alice.Submit(hers)  # her retry is her job, as before
            assert again.replayed and again.job.job_id == answer.job.job_id
            mine = await bob.Submit(squat)
            assert mine.replayed and mine.job.job_id == bobs.job_id
            assert len(s.fed.jobs) == 2

    asyncio.run(main())


def test_queues_one_tenant_invents_cannot_fold_the_policys_queues_into_other(certs: CertsDir,
                                                                              tmp_path: Path) -> None:
    """Red team F05: with an open defaultQueue bob submitted to 200 queues of his invention and took every
    `queue` label; the policy's queues, submitted to later, showed only as `other` in federator_jobs and the
    alerts built on it. The policy's queues (here `research` and `open`) now always keep their names; bob's
    invented ones share what is left of the bound (here 4 - 2 = 2). The defaultQueue is open on purpose
    (`access: {anyone: true}`): under tenancy an undeclared queue is else closed to all but admins."""
    open_default = POLICY + "defaultQueue: {access: {anyone: true}}\n"

    async def main() -> dict[str, float]:
        async with served(certs, tmp_path, open_default, metrics=Metrics(label_limit=4)) as s, \
                client(s, certs, "bob") as bob, client(s, certs, "alice") as alice:
            for i in range(6):
                await bob.Submit(spec(f"junk-{i}", queue=f"bob-junk-{i}"))
            await alice.Submit(spec("paper", queue="research"))
            await bob.Submit(spec("real", queue="open"))
            families = {f.name: f for f in s.fed.metrics.registry.collect()}
            return {sample.labels["queue"]: sample.value for sample in families["federator_jobs"].samples
                    if sample.labels["phase"] == "Pending"}

    pending = asyncio.run(main())
    assert pending == {"bob-junk-0": 1.0, "bob-junk-1": 1.0, OTHER: 4.0, "research": 1.0, "open": 1.0}


def test_one_users_fat_jobs_meet_a_byte_budget_while_another_user_still_submits(certs: CertsDir,
                                                                                tmp_path: Path) -> None:
    """Red team F01: every cap counted jobs, so bob's 300 jobs of ~750 KB each (annotations and an env-heavy
    template near their limits) took 195 MB of RAM and 221 MB of disk, and he could have 125,000. Here his
    unfinished jobs may weigh 2 MB (--max-unfinished-bytes-per-user): his third ~750 KB job is
    RESOURCE_EXHAUSTED with a retry-after, naming the budget, his use and the flag; alice's job goes in."""
    env = [{"name": f"E{i}", "value": "v" * 990} for i in range(490)]
    template = {"spec": {"containers": [{"name": "c", "image": "busybox", "env": env}]}}
    annotations = {f"k{i}": "a" * 1000 for i in range(250)}

    def heavy(name: str) -> jobs_pb2.SubmitRequest:
        return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job({
            "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"kind": "training", "queue": "open", "resources": {"cpu": "1"}, "template": template}})))

    async def main() -> None:
        limits = Limits(max_unfinished_bytes_per_user=2_000_000, queue_full_retry_seconds=7)
        async with served(certs, tmp_path, limits=limits) as s, client(s, certs, "bob") as bob, \
                client(s, certs, "alice") as alice:
            assert heavy("fat-0").ByteSize() > 740_000
            for i in range(2):
                await bob.Submit(heavy(f"fat-{i}"))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await bob.Submit(heavy("fat-2"))
            said = err.value.details() or ""
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, said
            assert "user 'bob' is at its byte budget" in said and "over its limit of 2000000" in said
            assert "(--max-unfinished-bytes-per-user)" in said
            assert f"take {s.fed.intake.bytes.owner(Submitter(user='bob'))} bytes" in said
            assert dict(err.value.trailing_metadata() or ())["retry-after"] == "7"
            await alice.Submit(heavy("alices"))
            assert len(s.fed.jobs) == 3

    asyncio.run(main())


def test_members_of_one_group_see_and_cancel_each_others_jobs(certs: CertsDir, tmp_path: Path) -> None:
    async def main() -> None:
        async with served(certs, tmp_path) as s, client(s, certs, "carol") as carol, \
                client(s, certs, "alice") as alice, client(s, certs, "dave") as dave:
            job = (await carol.Submit(spec("carols"))).job
            assert (await alice.Get(jobs_pb2.GetJobRequest(job_id="carols"))).job_id == job.job_id
            assert [j.job_id for j in (await alice.List(jobs_pb2.ListJobsRequest())).jobs] == [job.job_id]
            # dave shares only `viewers` (jobs: view) with alice: he sees her job but may not cancel it
            ajob = (await alice.Submit(spec("alices"))).job
            assert (await dave.Get(jobs_pb2.GetJobRequest(job_id=ajob.job_id))).job_id == ajob.job_id
            err = await denied(dave.Cancel(jobs_pb2.CancelJobRequest(job_id=ajob.job_id)))
            assert "viewers" in (err.details() or "") and "jobs: view" in (err.details() or "")
            cancelled = await alice.Cancel(jobs_pb2.CancelJobRequest(job_id=job.job_id))
            assert cancelled.phase == types_pb2.JOB_PHASE_CANCELLED

    asyncio.run(main())


def test_a_queue_access_list_refuses_outsiders(certs: CertsDir, tmp_path: Path) -> None:
    async def main() -> None:
        async with served(certs, tmp_path) as s:
            async with client(s, certs, "bob") as bob:
                err = await denied(bob.Submit(spec("nope", queue="research")))
                assert "queue-access" in (err.details() or "")
                assert "queues.research.access admits users [erin] and groups [ml, team-a]" in (err.details() or "")
            for user in ("erin", "alice", "frank"):  # by name, by a policy group, by the certificate's O
                async with client(s, certs, user) as c:
                    assert (await c.Submit(spec(f"by-{user}", queue="research"))).job.spec.queue == "research"
            async with client(s, certs, token="t-bob") as bob_token:  # a named token is its user
                await denied(bob_token.Submit(spec("nope2", queue="research")))
                assert (await bob_token.Submit(spec("bob-open"))).job.job_id
            assert not [j for j in s.fed.jobs.values() if j.spec.name.startswith("nope")]

    asyncio.run(main())


def test_an_audit_line_for_each_mutating_call(certs: CertsDir, tmp_path: Path) -> None:
    async def main() -> None:
        async with served(certs, tmp_path) as s, client(s, certs, "bob") as bob, client(s, certs, "alice") as alice:
            job = (await bob.Submit(jobs_pb2.SubmitRequest(spec=spec("a").spec, request_id="r-1")))
            await denied(bob.Submit(spec("b", queue="research")))
            await absent(alice.Cancel(jobs_pb2.CancelJobRequest(job_id=job.job.job_id)))
            await bob.Cancel(jobs_pb2.CancelJobRequest(job_id=job.job.job_id))
            with pytest.raises(grpc.aio.AioRpcError):
                bad = spec("bad")
                bad.spec.name = "Bad_Name"
                await bob.Submit(bad)
            await bob.Get(jobs_pb2.GetJobRequest(job_id=job.job.job_id))  # reads are not audited
            lines = s.audit()
            assert [(x["action"], x["result"], x["code"]) for x in lines] == [
                ("submit", "accepted", "OK"), ("submit", "refused", "PERMISSION_DENIED"),
                ("cancel", "failed", "NOT_FOUND"), ("cancel", "accepted", "OK"),
                ("submit", "failed", "INVALID_ARGUMENT")]
            first = lines[0]
            assert first["identity"] == {"user": "bob", "groups": [], "via": "certificate", "admin": False}
            assert first["object"] == {"kind": "Job", "namespace": "open", "name": "a", "queue": "open",
                                       "job_id": job.job.job_id, "allowed_regions": [], "preferred_regions": [],
                                       "queue_allowed_regions": []}
            assert first["request_id"] == "r-1" and first["rule"] == "open-queue"
            assert str(first["time"]).endswith("Z")
            assert lines[1]["rule"] == "queue-access" and "research" in str(lines[1]["message"])
            assert lines[2]["identity"]["user"] == "alice" and lines[2]["rule"] == "owner"  # type: ignore[index]
            assert lines[3]["rule"] == "owner"

    asyncio.run(main())


def test_with_no_tenancy_section_every_queue_is_open_and_admin_is_the_admin(certs: CertsDir, tmp_path: Path) -> None:
    async def main() -> None:
        async with served(certs, tmp_path, policy="queues: {research: {weight: 2}}") as s:
            async with client(s, certs, "bob") as bob:
                job = (await bob.Submit(spec("x", queue="research"))).job
            async with client(s, certs, "alice") as alice:
                assert (await alice.List(jobs_pb2.ListJobsRequest())).jobs == []
            async with client(s, certs, "admin") as admin:
                assert [j.job_id for j in (await admin.List(jobs_pb2.ListJobsRequest())).jobs] == [job.job_id]
            async with client(s, certs, token="t-old") as old:  # a token line with no name is the user `token`
                await old.Submit(spec("y"))
            assert s.fed.get("y").spec.annotation(USER_ANNOTATION) == "token"

    asyncio.run(main())


def test_usage_shows_a_user_their_own_and_the_admin_everyones(certs: CertsDir, tmp_path: Path) -> None:
    usage = SqliteUsageStore(tmp_path / "usage.db")
    usage.put([UsageRecord(f"p-{user}", f"j-{user}", "q", user, "default", "c", "", "H100", 2000, 100.0, 110.0)
               for user in ("alice", "bob")])

    async def main() -> None:
        async with served(certs, tmp_path) as s:
            edge = ClusterService(s.fed, Authenticator(revocations=RevocationList(None)),
                                  authz=Authorizer(tenancy_from_document(yaml.safe_load(POLICY))))
            server = grpc.aio.server()
            usage_pb2_grpc.add_UsageServiceServicer_to_server(UsageService(edge, usage), server)
            port = server.add_secure_port("127.0.0.1:0", server_files(certs).server_credentials())
            await server.start()
            try:
                for user, want in (("alice", {"alice": 20.0}), ("admin", {"alice": 20.0, "bob": 20.0})):
                    creds = user_files(certs, user).channel_credentials()
                    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", creds) as ch:
                        resp = await usage_pb2_grpc.UsageServiceStub(ch).Get(usage_pb2.UsageRequest(by="user"))
                    assert {r.key: r.accelerator_seconds for r in resp.rows} == want
                    assert resp.total.accelerator_seconds == sum(want.values())
                async with grpc.aio.secure_channel(f"127.0.0.1:{port}", creds) as ch:
                    with pytest.raises(grpc.aio.AioRpcError) as err:
                        await usage_pb2_grpc.UsageServiceStub(ch).Get(usage_pb2.UsageRequest(by="colour"))
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "by: must be one of" in str(
                    err.value.details())
            finally:
                await server.stop(0)

    asyncio.run(main())


def test_cluster_list_shows_placement_ids_only_of_jobs_the_caller_may_see(certs: CertsDir, tmp_path: Path) -> None:
    """A placement id names its job: mallory listing clusters read alice's job names off every member."""
    async def main() -> None:
        async with served(certs, tmp_path) as s:
            async with client(s, certs, "bob") as bob:
                bobs = (await bob.Submit(spec("bobs"))).job
            async with client(s, certs, "erin") as erin:
                erins = (await erin.Submit(spec("erins"))).job
            rec = s.fed.connect(cluster="m1", region="r", labels={})
            cap = ClusterCapacity(cpu_milli_allocatable=64_000, cpu_milli_free=64_000, memory_bytes_allocatable=1 << 40,
                                  memory_bytes_free=1 << 40, node_cpu_milli_free_max=64_000,
                                  node_memory_bytes_free_max=1 << 40)
            s.fed.report(rec, cap)
            s.fed.schedule_once()
            ids = {j: next(p.placement_id for p in s.fed.jobs[j].placements) for j in (bobs.job_id, erins.job_id)}
            s.fed.report(rec, replace(cap, sequence=1, placement_ids=frozenset({*ids.values(), "stray.g1.m1"})))

            async def listed(user: str, view: int) -> set[str]:
                ch = grpc.aio.secure_channel(s.target, user_files(certs, user).channel_credentials())
                async with ch:
                    reply = await jobs_pb2_grpc.ClusterServiceStub(ch).List(jobs_pb2.ListClustersRequest(view=view))
                [m1] = reply.clusters
                return set(m1.capacity.placement_ids)

            full = jobs_pb2.CLUSTER_VIEW_FULL
            assert await listed("bob", full) == {ids[bobs.job_id]}
            assert await listed("erin", full) == {ids[erins.job_id]}
            assert await listed("carol", full) == set()  # neither job is hers (nor her group's)
            assert await listed("admin", full) == {*ids.values(), "stray.g1.m1"}
            assert await listed("admin", jobs_pb2.CLUSTER_VIEW_BASIC) == set()  # the default view has no ids

    asyncio.run(main())



def test_a_tenant_pages_through_exactly_what_it_may_see_reading_only_that(certs: CertsDir, tmp_path: Path) -> None:
    """With a national backlog, a tenant's List page sorted every job and asked the policy about each: half a
    second of the event loop per page at 100,000 jobs. Now the job table's order and owner indexes say where
    to look (server/job_table.py): the pages hold the same jobs in the same order as the policy over every job,
    and the policy is asked only about jobs of the caller's owners and groups."""
    from federator.model import Job, JobId
    from federator.security.authz import Principal, recorded_owner

    owners = ("bob", "carol", "alice", "erin", "frank", "zed")
    asked: list[int] = []
    visible = Authorizer.visible

    def counting(self: Authorizer, who: Principal, jobs: Iterable[Job]) -> list[Job]:
        got = list(jobs)
        asked.append(len(got))
        return visible(self, who, got)

    async def main() -> None:
        async with served(certs, tmp_path) as s:
            for i in range(3_000):
                owner = owners[i % 50] if i % 50 < len(owners) else f"other{i % 97}"
                groups = {"frank": "ml", "zed": "team-a"}.get(owner, "")  # zed's certificate says O=team-a
                base = convert.spec_from_pb(spec(f"j{i}", queue="research" if i % 3 == 0 else "open").spec)
                job_id = JobId(f"j{i}-x")  # submitted out of order: the table keeps submission order
                s.fed.jobs[job_id] = Job(job_id=job_id, spec=recorded_owner(base, owner, groups),
                                         submitted_at=1_000.0 + (i * 7919) % 3_001)
            everything = sorted(s.fed.jobs.values(), key=lambda j: (j.submitted_at, j.job_id))
            authz = Authorizer(tenancy_from_document(yaml.safe_load(POLICY)))
            alice_sees = visible(authz, Principal("alice", frozenset({"team-a", "viewers"}), "certificate"),
                                 everything)
            assert {owners[1], owners[2], "zed"} == {j.spec.annotation(USER_ANNOTATION) for j in alice_sees}
            Authorizer.visible = counting  # type: ignore[method-assign]
            try:
                async with client(s, certs, "alice") as alice:
                    for queue in ("", "research"):
                        got: list[str] = []
                        token = ""
                        while True:
                            reply = await alice.List(jobs_pb2.ListJobsRequest(queue=queue, page_size=7,
                                                                              page_token=token))
                            got += [j.job_id for j in reply.jobs]
                            if not (token := reply.next_page_token):
                                break
                        assert got == [j.job_id for j in alice_sees if not queue or j.spec.queue == queue]
            finally:
                Authorizer.visible = visible  # type: ignore[method-assign]
            # carol's, alice's and zed's 60 jobs each, listed twice: never the 2,820 others'
            assert 0 < sum(asked) <= 2 * 180, sum(asked)

    asyncio.run(main())


def test_an_open_watch_ends_within_seconds_of_its_user_being_revoked(certs: CertsDir, tmp_path: Path) -> None:
    """Revoking a user refused their new calls, but an open Watch went on streaming their team's new jobs, specs
    and all, for as long as it stayed open (outside red team). It now ends as a new call would be refused."""
    revoked = tmp_path / "revoked.txt"
    revoked.write_text("")

    async def main() -> None:
        async with served(certs, tmp_path, revoked=revoked) as s, client(s, certs, "alice") as alice, \
                client(s, certs, "carol") as carol:
            first = (await carol.Submit(spec("before"))).job
            watch = alice.Watch(jobs_pb2.WatchJobsRequest())
            seen = [(await watch.read()).job_id]
            assert seen == [first.job_id]
            revoked.write_text("user alice\n")
            await carol.Submit(spec("after"))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                async with asyncio.timeout(15):
                    while True:
                        got = await watch.read()
                        assert got is not grpc.aio.EOF, "the watch ended without saying why"
                        seen.append(got.job_id)
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, err.value
            assert "revoked" in (err.value.details() or "")
            assert all(not job_id.startswith("after") for job_id in seen), seen

    asyncio.run(main())


def test_a_watch_does_not_authenticate_its_caller_again_for_each_job_it_does_not_send(
        certs: CertsDir, tmp_path: Path) -> None:
    """Every watcher hears every job's change, most of them others'. The stream used to parse and check its
    caller's certificate for each change it heard (a thousand organisations' watches, each for each change);
    now it does so before each job it sends and every WATCH_RECHECK_SECONDS, which revocation still meets."""
    calls: list[str] = []
    user = Authenticator.user

    def counting(self: Authenticator, auth_context: object, metadata: object) -> object:
        got = user(self, auth_context, metadata)  # type: ignore[arg-type]
        calls.append(getattr(got, "name", ""))
        return got

    async def main() -> None:
        async with served(certs, tmp_path) as s, client(s, certs, "alice") as alice, \
                client(s, certs, "bob") as bob:
            watch = alice.Watch(jobs_pb2.WatchJobsRequest())
            mine = (await alice.Submit(spec("mine"))).job
            assert (await watch.read()).job_id == mine.job_id
            Authenticator.user = counting  # type: ignore[method-assign]
            try:
                for i in range(40):
                    await bob.Submit(spec(f"bobs-{i}"))  # nothing alice may see
                last = (await alice.Submit(spec("last"))).job
                assert (await watch.read()).job_id == last.job_id
            finally:
                Authenticator.user = user  # type: ignore[method-assign]
            watch.cancel()
            # bob's 40 submits, alice's one, and alice's watch: once before it sent `last` (and at most a few
            # timed rechecks on a slow machine), not once per change of bob's jobs
            assert calls.count("alice") <= 6, calls.count("alice")

    asyncio.run(main())


def test_a_removal_is_told_only_to_watchers_who_may_see_the_job(certs: CertsDir, tmp_path: Path) -> None:
    """A Watch with revisions hears of removed jobs (portal M2); a removed job is no longer in memory, so who may
    hear of it is decided by the owner recorded on it: bob's removal must not tell alice it existed."""
    from federator.server.retention import forget_job

    async def main() -> None:
        async with served(certs, tmp_path) as s, client(s, certs, "alice") as alice, \
                client(s, certs, "bob") as bob:
            mine = (await alice.Submit(spec("mine"))).job
            bobs = (await bob.Submit(spec("bobs"))).job
            watch = alice.Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True))
            first, mark = await watch.read(), await watch.read()
            assert first.job_id == mine.job_id and mark.bookmark
            for job_id in (bobs.job_id, mine.job_id):  # as retention removes them: cancelled, then forgotten
                await (alice if job_id == mine.job_id else bob).Cancel(jobs_pb2.CancelJobRequest(job_id=job_id))
            for job_id in (bobs.job_id, mine.job_id):
                job = s.fed.jobs[job_id]
                forget_job(s.fed, job)
                s.fed.notify([job])
            got = []
            async with asyncio.timeout(10):
                while not got or not got[-1].removed:
                    got.append(await watch.read())
            assert [(m.job_id, m.removed) for m in got] == [(mine.job_id, False), (mine.job_id, True)]

    asyncio.run(main())


def test_a_bookmark_moves_a_watcher_on_past_changes_it_does_not_see(certs: CertsDir, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A tenant's resume point must not go stale while only other tenants' jobs change: the history would pass
    it, and the resume be refused as too old though nothing of theirs changed. A bookmark carries it on."""
    from federator.server import watch_stream

    monkeypatch.setattr(watch_stream, "BOOKMARK_SECONDS", 0.0)  # 2 s in a server: no waiting in a test

    async def main() -> None:
        async with served(certs, tmp_path) as s, client(s, certs, "alice") as alice, \
                client(s, certs, "bob") as bob:
            watch = alice.Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True))
            first = await watch.read()
            assert first.bookmark and first.job_id == ""  # nothing of hers yet: the snapshot is empty
            for i in range(3):
                await bob.Submit(spec(f"bobs-{i}"))
            newest = s.fed.history.revision
            async with asyncio.timeout(10):
                while True:
                    got = await watch.read()
                    assert got.bookmark, f"alice was sent {got.job_id}"
                    if got.revision == newest:
                        break
            resumed = alice.Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True, since_revision=newest))
            async with asyncio.timeout(10):
                assert (await resumed.read()).revision == newest  # a bookmark: caught up at once, nothing missed
                mine = (await alice.Submit(spec("mine"))).job
                assert (await resumed.read()).job_id == mine.job_id

    asyncio.run(main())
