"""A portal acting on behalf of its users (tenancy.delegates, x-federator-on-behalf-of) and WhoAmI, over real mTLS.

An in-process `grpc.aio` server with the real JobService, UsageService and IdentityService and real user
certificates, so each decision is the one a remote portal gets: the job it submits for alice is alice's in
every respect (owner, visibility, usage), a caller the policy does not name is refused naming the rule, the
audit line names both the portal and alice, and a reloaded policy file changes who may delegate.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import yaml

from federator import __version__
from federator.accounting import SqliteUsageStore, UsageRecord
from federator.api import convert
from federator.api.features import FEATURES, IDENTITY_DELEGATION, IDENTITY_WHOAMI, JOBS_LIST_FILTERS, JOBS_WATCH_RESUME
from federator.api.v1 import identity_pb2, identity_pb2_grpc, jobs_pb2, jobs_pb2_grpc, usage_pb2, usage_pb2_grpc
from federator.cli import main as cli_main
from federator.jobfile import parse_job
from federator.scheduler import Scheduler
from federator.scheduler.policy import policy_from_document
from federator.security.audit import AuditLog
from federator.security.auth import Authenticator, RevocationList, Token
from federator.security.authz import GROUPS_ANNOTATION, USER_ANNOTATION, Authorizer, TenancyError, tenancy_from_document
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue
from federator.security.tls import TlsFiles, cluster_files, server_files, user_files
from federator.security.trust_reload import ReloadResult
from federator.server.federator import Federator
from federator.server.identity_service import IdentityService
from federator.server.policy_file import PolicyFile
from federator.server.policy_use import use_policy
from federator.server.services import ClusterService, JobService
from federator.server.usage_service import UsageService
from federator.store import SqliteJobStore

POLICY = """
tenancy:
  admins: {users: [admin]}
  groups:
    acme: {users: [carol]}
  delegates:
    portal: {users: ["*"], groups: [acme, "org-*"]}
    narrow: {users: ["acme-*"]}
queues:
  acme: {access: {groups: [acme]}, namespaces: [acme-jobs]}
  open: {weight: 1}
"""

Meta = Sequence[tuple[str, str]]


def as_user(user: str, groups: str = "") -> Meta:
    return (("x-federator-on-behalf-of", user),) + ((("x-federator-on-behalf-of-groups", groups),) if groups else ())


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertsDir:
    c = CertsDir(tmp_path_factory.mktemp("certs"))
    init_ca(c)
    for user in ("portal", "narrow", "alice", "bob", "carol", "mallory"):
        issue(c, Identity(IdentityKind.USER, user))
    issue(c, Identity(IdentityKind.CLUSTER, "east-1"))
    return c


@dataclass
class Served:
    fed: Federator
    authz: Authorizer
    target: str
    token_target: str
    audit_path: Path
    usage: SqliteUsageStore

    def audit(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.audit_path.read_text().splitlines()]


@asynccontextmanager
async def served(certs: CertsDir, tmp_path: Path, policy: str = POLICY, *,
                 revoked: Path | None = None) -> AsyncIterator[Served]:
    fed = Federator(store=SqliteJobStore(Path(":memory:")), report_interval=60.0,
                    scheduler=Scheduler(policy_from_document(yaml.safe_load(policy))))
    auth = Authenticator(tokens=[Token("t-portal", "portal"), Token("t-bob", "bob")],
                         revocations=RevocationList(revoked, interval=0.0))
    authz = Authorizer(tenancy_from_document(yaml.safe_load(policy)))
    audit = AuditLog(tmp_path / "audit.jsonl")
    usage = SqliteUsageStore(Path(":memory:"))
    server = grpc.aio.server()
    clusters = ClusterService(fed, auth, authz=authz, audit=audit)
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(fed, auth, authz=authz, audit=audit), server)
    usage_pb2_grpc.add_UsageServiceServicer_to_server(UsageService(clusters, usage), server)
    identity_pb2_grpc.add_IdentityServiceServicer_to_server(IdentityService(clusters), server)
    port = server.add_secure_port("127.0.0.1:0", server_files(certs).server_credentials())
    token_port = server.add_secure_port("127.0.0.1:0",
                                        server_files(certs).server_credentials(require_client_auth=False))
    await server.start()
    try:
        yield Served(fed, authz, f"127.0.0.1:{port}", f"127.0.0.1:{token_port}", tmp_path / "audit.jsonl", usage)
    finally:
        await server.stop(0)
        audit.close()
        fed.store.close()


@asynccontextmanager
async def channel(s: Served, certs: CertsDir, user: str = "", *, token: str = "",
                  cluster: str = "") -> AsyncIterator[grpc.aio.Channel]:
    if token:
        creds = grpc.composite_channel_credentials(TlsFiles(certs.ca_cert).channel_credentials(),
                                                   grpc.access_token_call_credentials(token))
        ch = grpc.aio.secure_channel(s.token_target, creds)
    else:
        files = cluster_files(certs, cluster) if cluster else user_files(certs, user)
        ch = grpc.aio.secure_channel(s.target, files.channel_credentials())
    async with ch:
        yield ch


def spec(name: str, queue: str = "open") -> jobs_pb2.SubmitRequest:
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
        "spec": {"kind": "training", "queue": queue, "resources": {"cpu": "1"}}})))


async def refused(call: object, code: grpc.StatusCode = grpc.StatusCode.PERMISSION_DENIED) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    assert err.value.code() == code, err.value
    return err.value.details() or ""


def test_a_portal_submits_for_alice_and_the_job_is_alices_in_every_respect(certs: CertsDir, tmp_path: Path) -> None:
    """Owner, groups, namespace, visibility and usage are alice's; bob and the portal itself see nothing; the
    audit line names the portal as actor and alice as the user it acted for."""
    async def main() -> None:
        async with served(certs, tmp_path) as s, channel(s, certs, "portal") as p, \
                channel(s, certs, "alice") as a, channel(s, certs, "bob") as b:
            portal, alice, bob = (jobs_pb2_grpc.JobServiceStub(c) for c in (p, a, b))
            sent = await portal.Submit(spec("report", queue="acme"), metadata=as_user("alice", "acme"))
            job = sent.job
            annotations = dict(job.spec.annotations)
            assert annotations[USER_ANNOTATION] == "alice"
            assert annotations[GROUPS_ANNOTATION] == "acme"
            assert job.spec.namespace == "acme-jobs"  # the queue's namespace, bound as for alice's own submit
            assert (await alice.Get(jobs_pb2.GetJobRequest(job_id=job.job_id))).job_id == job.job_id
            assert [j.job_id for j in (await alice.List(jobs_pb2.ListJobsRequest())).jobs] == [job.job_id]
            await refused(bob.Get(jobs_pb2.GetJobRequest(job_id=job.job_id)), grpc.StatusCode.NOT_FOUND)
            assert not (await bob.List(jobs_pb2.ListJobsRequest())).jobs
            # the portal as itself owns nothing; acting for alice it sees (and may cancel) alice's job
            assert not (await portal.List(jobs_pb2.ListJobsRequest())).jobs
            listed = await portal.List(jobs_pb2.ListJobsRequest(), metadata=as_user("alice"))
            assert [j.job_id for j in listed.jobs] == [job.job_id]
            # acting for bob, the portal sees bob's jobs only: the request runs exactly as bob
            assert not (await portal.List(jobs_pb2.ListJobsRequest(), metadata=as_user("bob"))).jobs
            # usage of alice's job is alice's to read, through the portal too, and not bob's
            s.usage.put([UsageRecord("p1", job.job_id, "acme", "alice", "acme-jobs", "east-1", "", "H100", 1000,
                                     0.0, 100.0)])
            usage = usage_pb2_grpc.UsageServiceStub(p)
            mine = await usage.Get(usage_pb2.UsageRequest(until=200.0), metadata=as_user("alice"))
            assert mine.total.accelerator_seconds == pytest.approx(100.0)
            theirs = await usage.Get(usage_pb2.UsageRequest(until=200.0), metadata=as_user("bob"))
            assert theirs.total.accelerator_seconds == 0
            cancelled = await portal.Cancel(jobs_pb2.CancelJobRequest(job_id=job.job_id), metadata=as_user("alice"))
            assert cancelled.job_id == job.job_id
        lines = [line for line in s.audit() if line["action"] in ("submit", "cancel")]
        assert [line["action"] for line in lines] == ["submit", "cancel"]
        for line in lines:
            assert line["result"] == "accepted"
            assert line["identity"]["user"] == "alice"  # type: ignore[index]
            assert line["identity"]["via"] == "delegation"  # type: ignore[index]
            assert line["actor"] == {"user": "portal", "groups": [], "via": "certificate", "admin": False}
            assert line["on_behalf_of"] == "alice"
    asyncio.run(main())


def test_delegation_is_refused_naming_the_rule_and_audited(certs: CertsDir, tmp_path: Path) -> None:
    """A caller tenancy.delegates does not name, a user or group its rule does not admit, an admin without
    `admins: true`, and malformed metadata: PERMISSION_DENIED naming rule `delegate` and the field; nothing
    is submitted, and each refusal is an audit line naming the caller."""
    async def main() -> None:
        async with served(certs, tmp_path) as s, channel(s, certs, "mallory") as m, \
                channel(s, certs, "portal") as p, channel(s, certs, "narrow") as n:
            mallory, portal, narrow = (jobs_pb2_grpc.JobServiceStub(c) for c in (m, p, n))
            said = await refused(mallory.Submit(spec("x"), metadata=as_user("alice")))
            assert "x-federator-on-behalf-of: delegate:" in said and "tenancy.delegates has no entry 'mallory'" in said
            said = await refused(mallory.List(jobs_pb2.ListJobsRequest(), metadata=as_user("alice")))
            assert "delegate" in said
            said = await refused(portal.Submit(spec("x"), metadata=as_user("admin")))
            assert "'admin' is an admin" in said and "tenancy.delegates.portal.admins" in said
            said = await refused(portal.Submit(spec("x"), metadata=as_user("alice", "acme,globex")))
            assert said.startswith("x-federator-on-behalf-of-groups: delegate:") and "globex" in said
            assert "tenancy.delegates.portal.groups admits acme, org-*" in said
            said = await refused(narrow.Submit(spec("x"), metadata=as_user("bob")))
            assert "tenancy.delegates.narrow.users admits acme-*" in said
            said = await refused(portal.Submit(spec("x"), metadata=(("x-federator-on-behalf-of-groups", "acme"),)))
            assert "x-federator-on-behalf-of: delegate: required exactly once" in said
            # a groups key that names nothing is still a request: refused, never run as the portal (0.7.0 review)
            said = await refused(portal.Submit(spec("x"), metadata=(("x-federator-on-behalf-of-groups", " , "),)))
            assert "x-federator-on-behalf-of: delegate: required exactly once" in said
            said = await refused(portal.Submit(spec("x"), metadata=as_user("Alice Smith")))
            assert "is not a user name" in said
            # the rule's patterns admit: narrow acts for acme-ops
            ok = await narrow.Submit(spec("y"), metadata=as_user("acme-ops"))
            assert dict(ok.job.spec.annotations)[USER_ANNOTATION] == "acme-ops"
        assert list(s.fed.jobs) == [ok.job.job_id]
        refusals = [line for line in s.audit() if line["action"] == "delegate"]
        assert len(refusals) == 8
        assert refusals[0]["identity"]["user"] == "mallory"  # type: ignore[index]
        assert refusals[0]["object"] == {"on_behalf_of": "alice"}
        assert {line["rule"] for line in refusals} == {"delegate"}
    asyncio.run(main())


def test_a_portal_with_a_bearer_token_delegates_too(certs: CertsDir, tmp_path: Path) -> None:
    async def main() -> None:
        async with served(certs, tmp_path) as s, channel(s, certs, token="t-portal") as p, \
                channel(s, certs, token="t-bob") as b:
            job = (await jobs_pb2_grpc.JobServiceStub(p).Submit(spec("z"), metadata=as_user("alice"))).job
            assert dict(job.spec.annotations)[USER_ANNOTATION] == "alice"
            said = await refused(jobs_pb2_grpc.JobServiceStub(b).Submit(spec("w"), metadata=as_user("alice")))
            assert "tenancy.delegates has no entry 'bob'" in said
        actor = [line for line in s.audit() if line["action"] == "submit"][0]["actor"]
        assert actor == {"user": "portal", "groups": [], "via": "token", "admin": False}
    asyncio.run(main())


def test_a_reloaded_policy_file_changes_who_may_delegate(certs: CertsDir, tmp_path: Path) -> None:
    """tenancy.delegates is part of the policy file and reloads with it (as app.py wires use_policy)."""
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    policy = PolicyFile(path)

    async def main() -> None:
        async with served(certs, tmp_path) as s, channel(s, certs, "mallory") as m:
            policy.subscribe(lambda old, new: use_policy(old, new, fed=s.fed, authz=s.authz, kube=None))
            mallory = jobs_pb2_grpc.JobServiceStub(m)
            await refused(mallory.Submit(spec("a"), metadata=as_user("alice")))
            path.write_text(POLICY.replace("    narrow:", "    mallory: {users: [alice]}\n    narrow:"))
            assert policy.reload() is ReloadResult.OK
            job = (await mallory.Submit(spec("a"), metadata=as_user("alice"))).job
            assert dict(job.spec.annotations)[USER_ANNOTATION] == "alice"
    asyncio.run(main())


@pytest.mark.parametrize(("delegates", "problem"), [
    ("[portal]", "tenancy.delegates: must map identity names to {users, groups, admins}"),
    ("{portal: {groups: [acme]}}", "tenancy.delegates.portal.users: must name at least one user"),
    ("{portal: {users: '*'}}", "tenancy.delegates.portal.users: must be a list of names or patterns"),
    ("{portal: {users: ['*'], admins: yes-please}}", "tenancy.delegates.portal.admins: must be true or false"),
    ("{portal: {users: ['*'], mayActFor: [a]}}", "tenancy.delegates.portal.mayActFor: is not a known field"),
    ("{portal: {users: ['Bad Name']}}", "tenancy.delegates.portal.users: 'Bad Name' is not a name or pattern"),
], ids=["not-a-mapping", "no-users", "users-not-a-list", "admins-not-bool", "unknown-field", "bad-name"])
def test_a_bad_delegates_rule_is_refused_naming_the_field(delegates: str, problem: str) -> None:
    with pytest.raises(TenancyError) as err:
        tenancy_from_document(yaml.safe_load(f"tenancy: {{delegates: {delegates}}}"))
    assert any(p.startswith(problem) for p in err.value.problems), err.value.problems


def test_whoami_says_who_the_caller_is_what_it_may_use_and_what_the_server_serves(certs: CertsDir,
                                                                                  tmp_path: Path) -> None:
    async def main() -> None:
        async with served(certs, tmp_path) as s, channel(s, certs, "alice") as a, \
                channel(s, certs, "portal") as p, channel(s, certs, "carol") as c, \
                channel(s, certs, "admin") as ad, channel(s, certs, cluster="east-1") as e, \
                channel(s, certs, token="t-bob") as b:
            ask = identity_pb2.WhoAmIRequest()
            me = await identity_pb2_grpc.IdentityServiceStub(a).WhoAmI(ask)
            assert (me.user, list(me.groups), me.via, me.role, me.actor) == \
                ("alice", [], "certificate", identity_pb2.ROLE_USER, "")
            assert [(q.name, list(q.namespaces)) for q in me.queues] == [("open", ["open"])]
            assert not me.any_queue  # a multi-tenant policy closes undeclared queues to all but admins
            assert me.version == __version__
            assert list(me.features) == list(FEATURES)
            assert {IDENTITY_WHOAMI, IDENTITY_DELEGATION, JOBS_WATCH_RESUME, JOBS_LIST_FILTERS} <= set(me.features)
            # carol is in the policy's group acme: its queue and namespace are hers
            carol = await identity_pb2_grpc.IdentityServiceStub(c).WhoAmI(ask)
            assert list(carol.groups) == ["acme"]
            assert [(q.name, list(q.namespaces)) for q in carol.queues] == [("acme", ["acme-jobs"]),
                                                                           ("open", ["open"])]
            # through the portal, alice with the group acme: as the call runs, with the portal named
            via = await identity_pb2_grpc.IdentityServiceStub(p).WhoAmI(ask, metadata=as_user("alice", "acme"))
            assert (via.user, list(via.groups), via.via, via.actor) == ("alice", ["acme"], "delegation", "portal")
            assert [q.name for q in via.queues] == ["acme", "open"]
            admin = await identity_pb2_grpc.IdentityServiceStub(ad).WhoAmI(ask)
            assert admin.role == identity_pb2.ROLE_ADMIN and admin.any_queue
            assert [(q.name, list(q.namespaces)) for q in admin.queues] == [("acme", []), ("open", [])]
            cluster = await identity_pb2_grpc.IdentityServiceStub(e).WhoAmI(ask)
            assert (cluster.user, cluster.role, cluster.via) == ("east-1", identity_pb2.ROLE_PROVIDER,
                                                                 "cluster-certificate")
            assert not cluster.queues and cluster.version == __version__
            bob = await identity_pb2_grpc.IdentityServiceStub(b).WhoAmI(ask)
            assert (bob.user, bob.via) == ("bob", "token")
            said = await refused(identity_pb2_grpc.IdentityServiceStub(a).WhoAmI(ask, metadata=as_user("bob")))
            assert "tenancy.delegates has no entry 'alice'" in said
            async with grpc.aio.secure_channel(s.token_target, TlsFiles(certs.ca_cert).channel_credentials()) as anon:
                await refused(identity_pb2_grpc.IdentityServiceStub(anon).WhoAmI(ask),
                              grpc.StatusCode.UNAUTHENTICATED)
    asyncio.run(main())


def test_federator_whoami_prints_the_answer_and_sends_the_delegation_flags(
        certs: CertsDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def main() -> list[int]:
        async with served(certs, tmp_path) as s:
            base = ["whoami", "--server", s.target, "--certs-dir", str(certs.root)]
            return [await asyncio.to_thread(cli_main, [*base, "--user", "carol"]),
                    await asyncio.to_thread(cli_main, [*base, "--user", "portal", "--as", "alice", "--as-group",
                                                       "acme", "-o", "json"]),
                    await asyncio.to_thread(cli_main, [*base, "--user", "mallory", "--as", "alice"])]
    codes = asyncio.run(main())
    out, err = capsys.readouterr()
    assert codes == [0, 0, 1]
    text, _, rest = out.partition("{")
    assert "user:     carol" in text and "groups:   acme" in text and "role:     user (via certificate)" in text
    assert "queues:   acme (acme-jobs), open (open)" in text and f"federator {__version__}" in text
    doc = json.loads("{" + rest)
    assert (doc["user"], doc["actor"], doc["groups"], doc["role"]) == ("alice", "portal", ["acme"], "user")
    assert "tenancy.delegates has no entry 'mallory'" in err


def test_a_revoked_user_is_refused_through_a_delegate_too(certs: CertsDir, tmp_path: Path) -> None:
    """Revoking `user alice` refuses alice's own certificates; a portal acting for her must not undo that."""
    revoked = tmp_path / "revoked.txt"
    revoked.write_text("user alice\n")

    async def main() -> None:
        async with served(certs, tmp_path, revoked=revoked) as s, channel(s, certs, "portal") as p:
            portal = jobs_pb2_grpc.JobServiceStub(p)
            said = await refused(portal.Submit(spec("r"), metadata=as_user("alice")))
            assert "user 'alice' is revoked" in said
            job = (await portal.Submit(spec("r"), metadata=as_user("bob"))).job  # others are not
            assert dict(job.spec.annotations)[USER_ANNOTATION] == "bob"
    asyncio.run(main())


def test_policy_check_lists_the_delegates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    assert cli_main(["policy", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "delegate portal: may act for users *; groups acme, org-*; admins no" in out
    assert "delegate narrow: may act for users acme-*; groups none; admins no" in out


def test_request_ids_are_scoped_to_the_user_acted_for_not_to_the_portal(certs: CertsDir, tmp_path: Path) -> None:
    """One portal, one request id, two users: two jobs (each user's own id space), and alice's retry replays
    hers. Scoped to the portal, bob's Submit would have answered alice's job."""
    async def main() -> None:
        async with served(certs, tmp_path) as s, channel(s, certs, "portal") as p:
            portal = jobs_pb2_grpc.JobServiceStub(p)

            def req(name: str) -> jobs_pb2.SubmitRequest:
                r = spec(name)
                r.request_id = "form-42"
                return r
            a1 = await portal.Submit(req("a"), metadata=as_user("alice"))
            b1 = await portal.Submit(req("b"), metadata=as_user("bob"))
            a2 = await portal.Submit(req("a"), metadata=as_user("alice"))
            assert a1.job.job_id != b1.job.job_id and not b1.replayed
            assert a2.replayed and a2.job.job_id == a1.job.job_id
            assert len(s.fed.jobs) == 2
    asyncio.run(main())
