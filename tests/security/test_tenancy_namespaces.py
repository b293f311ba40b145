"""Rule `queue-namespaces` (outside QA, tenants round F1; red team m1): one organisation's job names neither block
nor reveal another's, standalone.

Before, every job naming no namespace was in `default`, and any user could submit into any namespace: org-0003's
`long-0` refused seven other organisations' `long-0` ("a job default/long-0 already exists"), org-0005 took
`pretrain` in org-0004's namespace before org-0004 did, and each refusal (and Get's "may not see this job ... it
is not yours") confirmed that a guessed name was in use. Over the real gRPC API with user certificates (the
in-process server of `test_tenancy_api.py`), as a remote client gets it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
import yaml
from test_tenancy_api import client, served, spec

from federator.api.v1 import jobs_pb2
from federator.scheduler.policy import policy_from_document
from federator.security.authz import TenancyError, tenancy_from_document
from federator.security.pki import CertsDir, Identity, IdentityKind, issue

POLICY = """
tenancy:
  admins: {users: [admin]}
  groups:
    org-a: {users: [alice]}
    org-b: {users: [bob]}
queues:
  org-a: {access: {groups: [org-a]}}
  org-b: {access: {groups: [org-b]}}
  lab: {access: {groups: [org-a]}, namespaces: [lab, lab-dev]}
  shared: {weight: 1}
"""


@pytest.fixture(scope="module")
def org_certs(certs: CertsDir) -> CertsDir:
    for user in ("admin", "alice", "bob"):
        issue(certs, Identity(IdentityKind.USER, user))
    return certs


async def refused(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    return err.value.code(), err.value.details() or ""


def test_two_organisations_submitting_the_same_name_with_no_namespace_both_get_it(org_certs: CertsDir,
                                                                                   tmp_path: Path) -> None:
    async def main() -> None:
        async with served(org_certs, tmp_path, POLICY) as s, client(s, org_certs, "alice") as alice, \
                client(s, org_certs, "bob") as bob:
            a = (await alice.Submit(spec("long-0", queue="org-a"))).job  # the job file names no namespace
            b = (await bob.Submit(spec("long-0", queue="org-b"))).job
            assert (a.spec.namespace, b.spec.namespace) == ("org-a", "org-b")
            assert s.fed.jobs[a.job_id].spec.namespace == "org-a"  # stored so, not only said so
            assert (await alice.Submit(spec("p", queue="lab"))).job.spec.namespace == "lab"  # its list's first
            assert (await alice.Submit(spec("p", queue="lab", namespace="lab-dev"))).job.spec.namespace == "lab-dev"
            assert (await alice.Get(jobs_pb2.GetJobRequest(job_id="long-0"))).job_id == a.job_id
            assert (await bob.Get(jobs_pb2.GetJobRequest(job_id="org-b/long-0"))).job_id == b.job_id

    asyncio.run(main())


def test_a_submit_into_another_organisations_namespace_is_refused_naming_the_field(org_certs: CertsDir,
                                                                                   tmp_path: Path) -> None:
    async def main() -> None:
        async with served(org_certs, tmp_path, POLICY) as s, client(s, org_certs, "alice") as alice, \
                client(s, org_certs, "bob") as bob:
            code, said = await refused(bob.Submit(spec("pretrain", queue="org-b", namespace="org-a")))
            assert code == grpc.StatusCode.PERMISSION_DENIED, said
            assert said.startswith("metadata.namespace: queue-namespaces: namespace 'org-a'"), said
            assert said.endswith("namespaces you may use: org-b, shared"), said  # bob's, never alice's lab
            assert "lab" not in said, said
            # org-a's own `pretrain` is still org-a's to take
            assert (await alice.Submit(spec("pretrain", queue="org-a"))).job.spec.namespace == "org-a"
            code, said = await refused(alice.Submit(spec("x", queue="org-a", namespace="org-b")))
            assert said.endswith("namespaces you may use: lab, lab-dev, org-a, shared"), said
            async with client(s, org_certs, "admin") as admin:  # admins may name any namespace
                job = (await admin.Submit(spec("ops", queue="org-b", namespace="org-a"))).job
                assert job.spec.namespace == "org-a"
                assert (await admin.Submit(spec("ops", queue="org-b"))).job.spec.namespace == "org-b"
            audit = [x for x in s.audit() if x["result"] == "refused"]
            assert audit[0]["rule"] == "queue-namespaces" and audit[0]["code"] == "PERMISSION_DENIED"

    asyncio.run(main())


def test_probing_another_organisations_names_tells_nothing(org_certs: CertsDir, tmp_path: Path) -> None:
    """Get and Cancel answer a name in use as one nobody uses, word for word; a Submit into the namespace gets the
    same refusal whether the name is taken or not (the policy decides, not the jobs); and in a namespace two
    organisations share (a queue open to both), a name taken by the other's job is refused without that job."""
    async def main() -> None:
        async with served(org_certs, tmp_path, POLICY) as s, client(s, org_certs, "alice") as alice, \
                client(s, org_certs, "bob") as bob:
            mine = (await alice.Submit(spec("pretrain", queue="org-a"))).job
            for used, unused in (("org-a/pretrain", "org-a/nothing"), ("pretrain", "nothing"),
                                 (mine.job_id, "pretrain-000000")):
                for verb in ("get", "cancel"):
                    def call(key: str, verb: str = verb) -> object:
                        return bob.Get(jobs_pb2.GetJobRequest(job_id=key)) if verb == "get" else \
                            bob.Cancel(jobs_pb2.CancelJobRequest(job_id=key))
                    code, said = await refused(call(used))
                    assert code == grpc.StatusCode.NOT_FOUND, said
                    assert (code, said.replace(used, "K")) == \
                        tuple(x.replace(unused, "K") if isinstance(x, str) else x for x in await refused(call(unused)))
            taken = await refused(bob.Submit(spec("pretrain", queue="org-b", namespace="org-a")))
            free = await refused(bob.Submit(spec("nothing", queue="org-b", namespace="org-a")))
            assert taken[0] == free[0] == grpc.StatusCode.PERMISSION_DENIED and taken[1] == free[1]
            # a namespace both may use: the conflict names no job; the owner still hears which job holds the name
            held = (await alice.Submit(spec("chat", queue="shared"))).job
            code, said = await refused(bob.Submit(spec("chat", queue="shared")))
            assert code == grpc.StatusCode.ALREADY_EXISTS, said
            assert said == "metadata.name: the name 'chat' is not available in namespace 'shared'; choose another name"
            code, said = await refused(alice.Submit(spec("chat", queue="shared")))
            assert code == grpc.StatusCode.ALREADY_EXISTS and held.job_id in said, said
            assert s.fed.jobs[mine.job_id].phase.value == "Pending"  # bob's cancels did nothing

    asyncio.run(main())


def test_a_single_tenant_policy_keeps_every_namespace_open_and_default_the_default(org_certs: CertsDir,
                                                                                    tmp_path: Path) -> None:
    async def main() -> None:
        async with served(org_certs, tmp_path, "queues: {org-a: {weight: 2}}") as s, \
                client(s, org_certs, "alice") as alice, client(s, org_certs, "bob") as bob:
            assert (await alice.Submit(spec("j", queue="org-a"))).job.spec.namespace == "default"
            assert (await bob.Submit(spec("j", queue="org-a", namespace="org-a"))).job.spec.namespace == "org-a"
            assert (await bob.Submit(spec("k", queue="org-a", namespace="lab"))).job.spec.namespace == "lab"
            assert len(s.fed.jobs) == 3

    asyncio.run(main())


@pytest.mark.parametrize(("namespaces", "problem"), [
    ("org-a", "queues.q.namespaces: must be a non-empty list of namespace names, got 'org-a'"),
    ("[]", "queues.q.namespaces: must be a non-empty list of namespace names, got []"),
    ("[Org_A]", "queues.q.namespaces[0]: must be a namespace name (a lower-case DNS label), got 'Org_A'"),
    ("[a, a]", "queues.q.namespaces[1]: 'a' is listed twice"),
], ids=["not-a-list", "empty", "bad-name", "twice"])
def test_a_bad_namespaces_list_is_refused_naming_the_field(namespaces: str, problem: str) -> None:
    doc = yaml.safe_load(f"queues: {{q: {{access: {{users: [a]}}, namespaces: {namespaces}}}}}")
    with pytest.raises(TenancyError) as err:
        tenancy_from_document(doc)
    assert err.value.problems == [problem]


def test_the_scheduler_takes_a_policy_with_namespaces() -> None:
    doc = yaml.safe_load(POLICY)
    assert "lab" in {q for q in policy_from_document(doc).queues}
    assert tenancy_from_document(doc).namespace_lists == {"lab": ("lab", "lab-dev")}


def test_a_queue_invented_under_an_open_default_queue_gets_no_namespace_another_queue_lists(
        org_certs: CertsDir, tmp_path: Path) -> None:
    """With `defaultQueue: {access: {anyone: true}}` any caller may invent a queue, whose namespace is its name:
    named `lab-dev`, it would have put bob in the namespace queue lab lists for org-a."""
    async def main() -> None:
        async with served(org_certs, tmp_path, POLICY + "defaultQueue: {access: {anyone: true}}\n") as s, \
                client(s, org_certs, "bob") as bob:
            code, said = await refused(bob.Submit(spec("x", queue="lab-dev")))
            assert code == grpc.StatusCode.PERMISSION_DENIED, said
            assert said.startswith("metadata.namespace: queue-namespaces: queue 'lab-dev' has no namespace"), said
            assert (await bob.Submit(spec("x", queue="invented"))).job.spec.namespace == "invented"
            assert len(s.fed.jobs) == 1

    asyncio.run(main())


def test_defaultqueue_namespaces_bind_undeclared_queues_only_so_organisations_never_share_one(
        org_certs: CertsDir, tmp_path: Path) -> None:
    """The docs' own example (outside re-test N1): `defaultQueue: {namespaces: [sandbox]}` beside organisations'
    queues without lists of their own. When declared queues took defaultQueue's list, both organisations' jobs went
    in `sandbox`, and bob's `chat` was refused because alice's held the name: F1 again. A declared queue without a
    list keeps the namespace named after it; only queues nobody declared take defaultQueue's."""
    policy = POLICY + "defaultQueue: {access: {anyone: true}, namespaces: [sandbox]}\n"

    async def main() -> None:
        async with served(org_certs, tmp_path, policy) as s, client(s, org_certs, "alice") as alice, \
                client(s, org_certs, "bob") as bob:
            a = (await alice.Submit(spec("chat", queue="org-a"))).job
            b = (await bob.Submit(spec("chat", queue="org-b"))).job
            assert (a.spec.namespace, b.spec.namespace) == ("org-a", "org-b")
            assert (await bob.Submit(spec("chat", queue="invented"))).job.spec.namespace == "sandbox"

    asyncio.run(main())
