"""Rule `undeclared-queue` (security findings M5, M6): under a multi-tenant policy whose defaultQueue has no access
list, a queue nobody declared takes admins' jobs only.

Before, a queue name the policy did not declare was made on first use with defaultQueue's settings (no quota, no
access list, a fair share of its own, and with the agent's namespacePerQueue a member namespace of its own): a
tenant held to 64 H100 in `research` ran 64 more in each name it invented, and another tenant who named the same
invented queue ran in the first one's namespace. Decided here as the pure Authorizer, over real gRPC with user
certificates and tokens (the refusal a remote client gets), across a restart (jobs stored before are kept and
placed), and on the FederatedJob path of Kubernetes mode.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from test_tenancy_api import client, served

from federator.api import convert
from federator.api.v1 import jobs_pb2, types_pb2
from federator.backends.kube.api import FEDERATED_JOBS
from federator.backends.kube.controller import FederatedJobController
from federator.backends.kube.resources import FINALIZER
from federator.backends.kube.store import KubeJobStore
from federator.jobfile import parse_job
from federator.model import JobPhase, JobSpec
from federator.scheduler import Scheduler
from federator.scheduler.policy import policy_from_document
from federator.security.auth import Peer, Token
from federator.security.authz import (
    Allowed,
    Authorizer,
    Denied,
    Principal,
    Rule,
    TenancyError,
    stamp_owner,
    tenancy_from_document,
)
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue
from federator.server.federator import Federator
from federator.store import SqliteJobStore

from builders import cluster, pool
from kube_fakes import FlakyApi

# examples/policy.yaml's queues, with tenancy: org-a may use research, org-m has a queue of its own.
BOB = (Token("t-bob", "bob", groups=frozenset({"org-a"})),)  # a token user of org-a
TENANTS = """
tenancy:
  admins: {users: [admin]}
  groups:
    org-a: {users: [alice]}
    org-m: {users: [mallory]}
queues:
  research:
    quota: {accelerators: {H100: 64}}
    access: {groups: [org-a]}
  m-private:
    access: {groups: [org-m]}
  shared: {weight: 1}
defaultQueue: {weight: 1, maxPendingJobs: 5000, maxPriority: 0}
"""
OPEN_DEFAULT = TENANTS.replace("defaultQueue: {weight: 1,", "defaultQueue: {access: {anyone: true}, weight: 1,")
SINGLE = """
queues:
  research: {quota: {accelerators: {H100: 64}}}
defaultQueue: {weight: 1}
"""


def _authz(policy: str) -> Authorizer:
    return Authorizer(tenancy_from_document(yaml.safe_load(policy)))


def _who(authz: Authorizer, user: str, *groups: str) -> Principal:
    return authz.principal(Peer(None, "certificate", name=user, groups=frozenset(groups)))


@pytest.mark.parametrize(("policy", "user", "queue", "rule"), [
    (TENANTS, "alice", "research", Rule.QUEUE_ACCESS),
    (TENANTS, "alice", "shared", Rule.OPEN_QUEUE),  # declared, no access list: shared by whoever uses it
    (TENANTS, "alice", "research-2", Rule.UNDECLARED_QUEUE),
    (TENANTS, "mallory", "team-a-dev", Rule.UNDECLARED_QUEUE),
    (TENANTS, "alice", "default", Rule.UNDECLARED_QUEUE),  # a job naming no queue
    (TENANTS, "admin", "anything", Rule.ADMIN),
    (OPEN_DEFAULT, "alice", "research-2", Rule.QUEUE_ACCESS),
    (SINGLE, "alice", "anything", Rule.OPEN_QUEUE),
    ("queues: {research: {access: {users: [alice]}}}\n", "bob", "research-2", Rule.UNDECLARED_QUEUE),
], ids=["declared-access", "declared-open", "invented", "another-tenants-invented", "default-queue", "admin",
        "explicitly-open", "single-tenant", "access-lists-without-tenancy"])
def test_who_may_submit_to_a_queue_nobody_declared(policy: str, user: str, queue: str, rule: Rule) -> None:
    authz = _authz(policy)
    decision = authz.submit(_who(authz, user), queue)
    assert decision.rule is rule
    assert isinstance(decision, Denied) is (rule is Rule.UNDECLARED_QUEUE)


def test_the_refusal_names_the_field_and_only_the_queues_the_caller_may_use() -> None:
    authz = _authz(TENANTS)
    decision = authz.submit(_who(authz, "alice"), "research-2")
    assert isinstance(decision, Denied)
    assert decision.message.startswith("spec.queue: undeclared-queue: queue 'research-2' is not declared")
    assert decision.message.endswith("queues user 'alice' may submit to: research, shared")
    assert "m-private" not in decision.message  # another tenant's queue is not theirs to learn of
    stranger = authz.submit(_who(authz, "zed"), "default")
    assert isinstance(stranger, Denied)
    assert "'default' (the queue of a job that names none)" in stranger.message
    assert stranger.message.endswith("queues user 'zed' may submit to: shared")


def test_a_queue_object_declares_its_queue() -> None:
    authz = _authz(TENANTS)
    alice = _who(authz, "alice")
    assert isinstance(authz.submit(alice, "team-a-dev"), Denied)
    authz.set_queues({}, {}, ["team-a-dev"])
    assert authz.submit(alice, "team-a-dev") == Allowed(Rule.OPEN_QUEUE)


def test_an_access_list_on_a_queue_object_makes_the_policy_multi_tenant() -> None:
    authz = _authz(SINGLE)
    assert isinstance(authz.submit(_who(authz, "alice"), "invented"), Allowed)
    authz.set_queues({"research": tenancy_from_document(
        {"queues": {"research": {"access": {"users": ["alice"]}}}}).queue_access["research"]}, {}, ["research"])
    decision = authz.submit(_who(authz, "alice"), "invented")
    assert isinstance(decision, Denied) and decision.message.endswith("may submit to: research")


@pytest.mark.parametrize(("access", "problem"), [
    ({"anyone": "yes"}, "defaultQueue.access.anyone: must be true or false, got 'yes'"),
    ({"anyone": True, "groups": ["org-a"]}, "defaultQueue.access.anyone: true admits every caller"),
    ({"everyone": True}, "defaultQueue.access.everyone: is not a known field (known: anyone, groups, users)"),
], ids=["not-a-bool", "anyone-and-groups", "unknown-field"])
def test_the_open_form_is_checked(access: dict[str, object], problem: str) -> None:
    with pytest.raises(TenancyError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        tenancy_from_document({"tenancy": {}, "defaultQueue": {"access": access}})


# -- over real gRPC, with user certificates and tokens ------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertsDir:
    c = CertsDir(tmp_path_factory.mktemp("certs"))
    init_ca(c)
    for user in ("alice", "mallory"):
        issue(c, Identity(IdentityKind.USER, user))
    return c


def job_spec(name: str, queue: str) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
                      "spec": {"kind": "training", "queue": queue, "resources": {"cpu": "1"}}})


def submit(name: str, queue: str) -> jobs_pb2.SubmitRequest:
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(job_spec(name, queue)))


async def refused(call: object) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, err.value
    return err.value.details() or ""


def test_over_grpc_a_tenant_cannot_invent_a_queue_nor_use_one_another_invented(certs: CertsDir,
                                                                                tmp_path: Path) -> None:
    async def main() -> None:
        async with served(certs, tmp_path, TENANTS, tokens=BOB) as s, client(s, certs, "alice") as alice, \
                client(s, certs, "mallory") as mallory, client(s, certs, token="t-bob") as bob, \
                client(s, certs, "admin") as admin:
            said = await refused(alice.Submit(submit("more-h100", "research-2")))
            assert said.startswith("spec.queue: undeclared-queue: queue 'research-2' is not declared")
            assert said.endswith("queues user 'alice' may submit to: research, shared")
            said = await refused(mallory.Submit(submit("snoop", "team-a-dev")))  # M5: org-a's namespace
            assert said.endswith("queues user 'mallory' may submit to: m-private, shared") and "research" not in said
            said = await refused(bob.Submit(submit("by-token", "anything")))  # a token's groups count too
            assert said.endswith("queues user 'bob' may submit to: research, shared")
            assert not s.fed.jobs
            job = (await admin.Submit(submit("ops", "maintenance"))).job
            assert job.spec.queue == "maintenance"
            assert (await alice.Submit(submit("fine", "research"))).job.spec.queue == "research"
        refusals = [line for line in s.audit() if line["result"] == "refused"]
        assert [line["rule"] for line in refusals] == ["undeclared-queue"] * 3
        assert all(line["code"] == "PERMISSION_DENIED" for line in refusals)

    asyncio.run(main())


@pytest.mark.parametrize(("policy", "user"), [(OPEN_DEFAULT, "alice"), (SINGLE, "alice"), (SINGLE, "mallory")],
                         ids=["explicitly-open", "single-tenant-alice", "single-tenant-mallory"])
def test_over_grpc_invented_queues_stay_open_where_the_policy_says_so(certs: CertsDir, tmp_path: Path,
                                                                       policy: str, user: str) -> None:
    async def main() -> None:
        async with served(certs, tmp_path, policy, tokens=BOB) as s, client(s, certs, user) as who:
            assert (await who.Submit(submit("j", "invented"))).job.spec.queue == "invented"

    asyncio.run(main())


def test_a_job_stored_in_an_undeclared_queue_survives_a_restart_and_is_placed(certs: CertsDir,
                                                                            tmp_path: Path) -> None:
    """Nothing accepted is lost: the rule is Submit's. A job alice put in an invented queue before the upgrade is
    loaded by the federator that now refuses her a new one there, and placed once a cluster has room."""
    db = tmp_path / "fed.db"
    before = Federator(store=SqliteJobStore(db), scheduler=Scheduler(policy_from_document(yaml.safe_load(SINGLE))))
    old = before.submit(stamp_owner(job_spec("old", "team-a-dev"), Principal("alice", claimed=frozenset())))
    before.store.close()

    async def main() -> None:
        async with served(certs, tmp_path, TENANTS, db=db, tokens=BOB) as s, client(s, certs, "alice") as alice:
            got = await alice.Get(jobs_pb2.GetJobRequest(job_id=old.job_id))
            assert (got.spec.queue, got.phase) == ("team-a-dev", types_pb2.JOB_PHASE_PENDING)
            said = await refused(alice.Submit(submit("new", "team-a-dev")))
            assert "'team-a-dev' is not declared" in said
            rec = s.fed.connect(cluster="east-1", region="east", labels={})
            s.fed.report(rec, cluster("east-1", "east", pool("NVIDIA-H100-80GB-HBM3", nodes=2, free=8)).capacity)
            s.fed.schedule_once()
            job = s.fed.jobs[old.job_id]
            assert job.phase is JobPhase.PLACED and [p.cluster for p in job.placements] == ["east-1"]

    asyncio.run(main())


# -- Kubernetes mode: a FederatedJob made with kubectl ------------------------------------------------------------


def test_a_federatedjob_naming_an_undeclared_queue_waits_for_it_and_is_admitted_once_declared() -> None:
    """Refused the same way as over the gRPC API, but not for good: a GitOps tool may apply the job before the
    Queue that declares its queue (outside QA G1), so it waits Pending, QueueNotAllowed, said once, and the same
    object is admitted once a Queue declares the queue."""
    async def main() -> None:
        api = FlakyApi()
        store = KubeJobStore(api)  # type: ignore[arg-type]
        fed = Federator(store=store, scheduler=Scheduler(policy_from_document(yaml.safe_load(TENANTS))))
        authz = _authz(TENANTS)
        ctl = FederatedJobController(fed, api, store, authz=authz)  # type: ignore[arg-type]

        def made(name: str, queue: str) -> dict[str, Any]:
            return api.create(FEDERATED_JOBS, {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                               "metadata": {"name": name, "finalizers": [FINALIZER]},
                                               "spec": {"kind": "training", "queue": queue,
                                                        "resources": {"cpu": "1"}}}, "org-m")

        await ctl.reconcile("ADDED", made("snoop", "team-a-dev"))
        status = api.objects[("org-m", "snoop")]["status"]
        assert status["phase"] == "Pending" and status["pendingReason"]["code"] == "QueueNotAllowed"
        assert status["message"].startswith("spec.queue: undeclared-queue: queue 'team-a-dev' is not declared")
        # a namespace answers to namespaceSelectors, not access lists: every declared queue selects it here
        assert status["message"].endswith("queues namespace 'org-m' may submit to: m-private, research, shared")
        assert not fed.jobs
        writes = api.writes
        await ctl.reconcile("MODIFIED", api.objects[("org-m", "snoop")])  # judged again: still waits, not said again
        assert not fed.jobs and api.writes == writes
        await ctl.reconcile("ADDED", made("fine", "shared"))
        assert [j.spec.name for j in fed.jobs.values()] == ["fine"]
        authz.set_queues({}, {}, ["team-a-dev"])  # a Queue object declares it
        await ctl.reconcile("ADDED", made("declared", "team-a-dev"))
        await ctl.reconcile("MODIFIED", api.objects[("org-m", "snoop")])  # its next judgement
        assert sorted(j.spec.name for j in fed.jobs.values()) == ["declared", "fine", "snoop"]

    asyncio.run(main())
