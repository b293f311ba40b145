"""A delegate's budget (portal re-test N2), over real mTLS: the jobs a delegate submits on anyone's behalf count
against a budget of its own, so inventing users no longer gives it fresh per-user caps without end.

The portal may act for "*": before, it was stopped at one user's cap, then submitted freely as erin0..erin9. Now
the refusal is RESOURCE_EXHAUSTED BACK_PRESSURE with ErrorInfo.metadata {"limit": "delegate", "delegate":
"portal"}, counted as `delegate_pending_limit`, while the users' own calls go on; unset, the budget is one user's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
import yaml
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.cli import main as cli_main
from federator.jobfile import parse_job
from federator.metrics import Metrics
from federator.scheduler import Scheduler
from federator.scheduler.policy import policy_from_document
from federator.security.audit import AuditLog
from federator.security.auth import Authenticator
from federator.security.authz import DELEGATE_ANNOTATION, Authorizer, TenancyError, tenancy_from_document
from federator.security.limits import Limits
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue
from federator.security.tls import server_files, user_files
from federator.server.federator import Federator
from federator.server.job_service import JobService
from federator.store import SqliteJobStore

POLICY = """
tenancy:
  delegates:
    portal: {users: ["*"], maxPendingJobs: 3}
    narrow: {users: ["acme-*"]}
    thin: {users: ["*"], maxUnfinishedBytes: 3000}
queues:
  open: {weight: 1}
"""


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertsDir:
    c = CertsDir(tmp_path_factory.mktemp("certs"))
    init_ca(c)
    for user in ("portal", "narrow", "thin", "alice"):
        issue(c, Identity(IdentityKind.USER, user))
    return c


@asynccontextmanager
async def served(certs: CertsDir, tmp_path: Path, db: Path) -> AsyncIterator[tuple[Federator, str]]:
    fed = Federator(store=SqliteJobStore(db), report_interval=60.0, metrics=Metrics(),
                    limits=Limits(max_pending_jobs_per_user=2),
                    scheduler=Scheduler(policy_from_document(yaml.safe_load(POLICY))))
    authz = Authorizer(tenancy_from_document(yaml.safe_load(POLICY)))
    audit = AuditLog(tmp_path / "audit.jsonl")
    server = grpc.aio.server()
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(fed, Authenticator(), authz=authz, audit=audit), server)
    port = server.add_secure_port("127.0.0.1:0", server_files(certs).server_credentials())
    await server.start()
    try:
        yield fed, f"127.0.0.1:{port}"
    finally:
        await server.stop(0)
        audit.close()
        fed.store.close()


def spec(name: str, **annotations: str) -> jobs_pb2.SubmitRequest:
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"kind": "training", "queue": "open", "resources": {"cpu": "1"}}})))


def acting_for(user: str) -> tuple[tuple[str, str], ...]:
    return (("x-federator-on-behalf-of", user),)


async def exhausted(call: object) -> tuple[str, dict[str, str], str]:
    """The ErrorInfo reason and metadata, and the message, of a RESOURCE_EXHAUSTED."""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.value
    status = rpc_status.from_call(err.value)  # type: ignore[arg-type]
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR))
    assert info.domain == "federator.io"
    return info.reason, dict(info.metadata), err.value.details() or ""


def rejected(fed: Federator) -> float:
    return fed.metrics.registry.get_sample_value("federator_messages_rejected_total",
                                                 {"reason": "delegate_pending_limit"}) or 0.0


def test_a_delegate_inventing_users_meets_its_own_budget(certs: CertsDir, tmp_path: Path) -> None:
    async def main() -> None:
        async with served(certs, tmp_path, tmp_path / "jobs.db") as (fed, target), \
                grpc.aio.secure_channel(target, user_files(certs, "portal").channel_credentials()) as p, \
                grpc.aio.secure_channel(target, user_files(certs, "alice").channel_credentials()) as a:
            portal, alice = jobs_pb2_grpc.JobServiceStub(p), jobs_pb2_grpc.JobServiceStub(a)
            for i in range(3):  # three invented users, each far below the per-user cap of 2
                job = (await portal.Submit(spec(f"p-{i}"), metadata=acting_for(f"zed-{i}"))).job
                assert dict(job.spec.annotations)[DELEGATE_ANNOTATION] == "portal"
            reason, metadata, message = await exhausted(portal.Submit(spec("p-3"), metadata=acting_for("zed-3")))
            assert (reason, metadata) == ("BACK_PRESSURE", {"limit": "delegate", "delegate": "portal"})
            assert "delegate 'portal' is at its budget: over every user it acts for, 3 of the jobs it submitted " \
                   "are pending, its budget is 3 (tenancy.delegates.portal.maxPendingJobs)" in message
            assert rejected(fed) == 1
            # the budget is the delegate's: alice's own call passes, and a spec cannot name a delegate to charge
            own = (await alice.Submit(spec("mine", **{DELEGATE_ANNOTATION: "portal"}))).job
            assert DELEGATE_ANNOTATION not in dict(own.spec.annotations)
            assert fed.cycles.by_delegate.count("portal") == 3
            # a job placed, cancelled or finished frees its room
            await portal.Cancel(jobs_pb2.CancelJobRequest(job_id="p-0"), metadata=acting_for("zed-0"))
            await portal.Submit(spec("p-4"), metadata=acting_for("zed-4"))
        # a restart counts the delegate's jobs from the jobs themselves
        async with served(certs, tmp_path, tmp_path / "jobs.db") as (fed, target), \
                grpc.aio.secure_channel(target, user_files(certs, "portal").channel_credentials()) as p:
            assert fed.cycles.by_delegate.count("portal") == 3
            reason, metadata, _ = await exhausted(jobs_pb2_grpc.JobServiceStub(p).Submit(
                spec("p-5"), metadata=acting_for("zed-5")))
            assert metadata["limit"] == "delegate"
    asyncio.run(main())


def test_unset_the_budget_is_one_users_and_bytes_count_too(certs: CertsDir, tmp_path: Path) -> None:
    async def main() -> None:
        async with served(certs, tmp_path, Path(":memory:")) as (fed, target), \
                grpc.aio.secure_channel(target, user_files(certs, "narrow").channel_credentials()) as n, \
                grpc.aio.secure_channel(target, user_files(certs, "thin").channel_credentials()) as t:
            narrow, thin = jobs_pb2_grpc.JobServiceStub(n), jobs_pb2_grpc.JobServiceStub(t)
            await narrow.Submit(spec("n-0"), metadata=acting_for("acme-a"))
            await narrow.Submit(spec("n-1"), metadata=acting_for("acme-b"))
            _, metadata, message = await exhausted(narrow.Submit(spec("n-2"), metadata=acting_for("acme-c")))
            assert metadata == {"limit": "delegate", "delegate": "narrow"}
            assert "tenancy.delegates.narrow.maxPendingJobs unset: one user's, --max-pending-jobs-per-user" in message
            await thin.Submit(spec("t-0"), metadata=acting_for("u-0"))
            _, metadata, message = await exhausted(thin.Submit(spec("t-1", pad="x" * 2500),
                                                               metadata=acting_for("u-1")))
            assert metadata == {"limit": "delegate-bytes", "delegate": "thin"}
            assert "over its budget of 3000 bytes (tenancy.delegates.thin.maxUnfinishedBytes)" in message
            assert rejected(fed) == 2
    asyncio.run(main())


@pytest.mark.parametrize(("field", "value"), [("maxPendingJobs", 0), ("maxPendingJobs", "10"),
                                              ("maxUnfinishedBytes", -1), ("maxUnfinishedBytes", True)],
                         ids=["zero", "text", "negative", "bool"])
def test_a_bad_budget_is_refused_naming_the_field(field: str, value: object) -> None:
    doc = {"tenancy": {"delegates": {"portal": {"users": ["*"], field: value}}}}
    with pytest.raises(TenancyError, match=f"tenancy.delegates.portal.{field}: must be a whole number of at least 1"):
        tenancy_from_document(doc)


def test_policy_check_says_each_delegates_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    assert cli_main(["policy", "check", str(path)]) == 0
    said = capsys.readouterr()
    assert "delegate portal: may act for users *; groups none; admins no; budget over every user it acts for: " \
           "3 pending jobs, 268435456 unfinished bytes (unset: one user's, --max-unfinished-bytes-per-user)" \
           in said.out
    assert "delegate thin: " in said.out and "3000 unfinished bytes" in said.out
    # the number an unset budget stands for, from the federator's flags (outside upgrade QA F3), and a note
    assert cli_main(["policy", "check", str(path), "--max-pending-jobs", "1000", "--max-unfinished-bytes-per-user",
                     "4096"]) == 0
    said = capsys.readouterr()
    assert "4096 unfinished bytes (unset: one user's" in said.out
    assert "thin: " in said.out and "500 pending jobs (unset: one user's, --max-pending-jobs-per-user)" in said.out
    assert "note: narrow, portal, thin leave their budget unset (in part or whole)" in said.err
