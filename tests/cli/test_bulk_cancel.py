"""`federator cancel --queue Q [--phase P] [--owner U] [--yes]` over the real gRPC API with mTLS.

Outside QA, tenants F7: offboarding an organisation was one `federator cancel` per job (2.1 s each: ~2 h for
3,351 jobs). The bulk form asks JobService.CancelJobs: the federator selects the jobs, decides each as a single
Cancel (a job the caller may see but not cancel is skipped and counted) and audits the operation once
(`cancel.bulk`) beside each job's line. Against a federator without CancelJobs (UNIMPLEMENTED) it lists the
queue and cancels each match over one channel, as before.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
import yaml

from federator.api import convert
from federator.api.features import FEATURES, JOBS_CANCEL_BULK_SELECT
from federator.api.v1 import identity_pb2, identity_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from federator.cli import main
from federator.jobfile import parse_job
from federator.model import JobPhase
from federator.scheduler import Scheduler
from federator.scheduler.policy import policy_from_document
from federator.security.audit import AuditLog
from federator.security.auth import Authenticator, RevocationList
from federator.security.authz import Authorizer, tenancy_from_document
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue
from federator.security.tls import server_files, user_files
from federator.server.federator import Federator
from federator.server.identity_service import IdentityService
from federator.server.services import JobService
from federator.store import SqliteJobStore

POLICY = """
tenancy:
  admins: {users: [admin]}
  groups:
    viewers: {users: [dave, alice], jobs: view}
queues:
  org-a: {weight: 1}
  org-b: {weight: 1}
"""


def _submit(user: str, name: str, queue: str) -> tuple[str, jobs_pb2.SubmitRequest]:
    return user, jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
        "spec": {"kind": "training", "queue": queue, "resources": {"cpu": "1"}}})))


class _Before07(JobService):
    """The job API of a federator before 0.7.0: no CancelJobs (the generated base answers UNIMPLEMENTED)."""

    CancelJobs = jobs_pb2_grpc.JobServiceServicer.CancelJobs  # type: ignore[assignment]


class _Listing(IdentityService):
    """WhoAmI as this federator answers it, but listing only `features`: a federator of an older release."""

    def __init__(self, edge: JobService, features: tuple[str, ...]) -> None:
        super().__init__(edge)
        self.features = features

    async def WhoAmI(self, request: identity_pb2.WhoAmIRequest,  # noqa: N802
                     context: grpc.aio.ServicerContext) -> identity_pb2.WhoAmIResponse:
        reply = await super().WhoAmI(request, context)
        del reply.features[:]
        reply.features.extend(self.features)
        return reply


def _session(tmp_path: Path, capsys: pytest.CaptureFixture[str],
             steps: Callable[[Callable[..., tuple[int, str, str]]], None], *,
             service: type[JobService] = JobService, features: tuple[str, ...] | None = None) -> Federator:
    """A federator serving the job API over mTLS; `steps(cli)` runs `federator ...` commands against it (in a
    thread, as a user would from a shell) and gets (exit code, stdout, stderr). With `features`, IdentityService
    too, its WhoAmI listing those (a federator before 0.15.0 lists no "jobs.cancel_bulk_select"); without, none
    (WhoAmI UNIMPLEMENTED: the CLI assumes no feature)."""
    certs = CertsDir(tmp_path / "certs")
    init_ca(certs)
    for user in ("admin", "alice", "dave"):
        issue(certs, Identity(IdentityKind.USER, user))
    fed = Federator(store=SqliteJobStore(Path(":memory:")), report_interval=60.0,
                    scheduler=Scheduler(policy_from_document(yaml.safe_load(POLICY))))

    async def scenario() -> None:
        audit = AuditLog(tmp_path / "audit.jsonl")
        server = grpc.aio.server()
        edge = service(fed, Authenticator(revocations=RevocationList(None, interval=0.0)),
                       authz=Authorizer(tenancy_from_document(yaml.safe_load(POLICY))), audit=audit)
        jobs_pb2_grpc.add_JobServiceServicer_to_server(edge, server)
        if features is not None:
            identity_pb2_grpc.add_IdentityServiceServicer_to_server(_Listing(edge, features), server)
        port = server.add_secure_port("127.0.0.1:0", server_files(certs).server_credentials())
        await server.start()
        try:
            for user, request in (_submit("alice", f"a-{i}", "org-a") for i in range(3)):
                async with grpc.aio.secure_channel(f"127.0.0.1:{port}",
                                                   user_files(certs, user).channel_credentials()) as ch:
                    await jobs_pb2_grpc.JobServiceStub(ch).Submit(request)
            for user, request in (_submit("dave", "d-0", "org-a"), _submit("admin", "b-0", "org-b")):
                async with grpc.aio.secure_channel(f"127.0.0.1:{port}",
                                                   user_files(certs, user).channel_credentials()) as ch:
                    await jobs_pb2_grpc.JobServiceStub(ch).Submit(request)

            def cli(*args: str, user: str) -> tuple[int, str, str]:
                rc = main(["cancel", *args, "--server", f"127.0.0.1:{port}", "--certs-dir", str(certs.root),
                           "--user", user])
                out = capsys.readouterr()
                return rc, out.out.strip(), out.err.strip()

            await asyncio.to_thread(steps, cli)
        finally:
            await server.stop(0)
            audit.close()

    asyncio.run(scenario())
    return fed


def _phases(fed: Federator) -> dict[str, JobPhase]:
    return {j.spec.name: j.phase for j in fed.jobs.values()}


def test_a_queue_is_cancelled_over_one_channel_with_the_authorization_of_single_cancels(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    said: dict[str, tuple[int, str, str]] = {}

    def steps(cli: Callable[..., tuple[int, str, str]]) -> None:
        said["no-yes"] = cli("--queue", "org-a", user="alice")
        said["dave"] = cli("--queue", "org-a", "--yes", user="dave")  # sees alice's (jobs: view), may not cancel
        said["alice-owner"] = cli("--queue", "org-a", "--owner", "alice", "--phase", "Pending", "--yes",
                                  user="alice")
        said["again"] = cli("--queue", "org-a", "--yes", user="admin")
        said["both"] = cli("a-0", "--queue", "org-a", user="admin")

    fed = _session(tmp_path, capsys, steps)
    rc, out, err = said["no-yes"]  # alice sees her 3 and dave's (viewers): refused, counted, nothing done
    assert rc == 2 and out == ""
    assert err == ("federator cancel: 4 jobs you may see match queue 'org-a'; nothing cancelled: pass --yes to "
                   "cancel them (jobs you may see but not cancel will be skipped and counted)")
    rc, out, _ = said["dave"]
    assert rc == 0
    assert out.startswith("cancelled 1 of 4 jobs of queue 'org-a'; 3 skipped: not yours to cancel")
    rc, out, _ = said["alice-owner"]
    assert rc == 0
    said_op = re.fullmatch(r"cancelled 3 of 3 jobs of queue 'org-a', Pending, owner 'alice' "
                           r"\(audit operation (bulk-[0-9a-f]+)\)", out)
    assert said_op is not None, out
    assert said["again"][:2] == (0, "no job you may see matches queue 'org-a'; nothing cancelled")
    assert said["both"][0] == 2 and "jobs named (a-0) and --queue are two ways of choosing" in said["both"][2]
    assert _phases(fed) == {"a-0": JobPhase.CANCELLED, "a-1": JobPhase.CANCELLED, "a-2": JobPhase.CANCELLED,
                            "d-0": JobPhase.CANCELLED, "b-0": JobPhase.PENDING}  # another queue: untouched
    lines = list(map(json.loads, (tmp_path / "audit.jsonl").read_text().splitlines()))
    cancels = [line for line in lines if line["action"] == "cancel"]  # each one audited as a single cancel is
    assert sorted(line["result"] for line in cancels) == ["accepted"] * 4 + ["refused"] * 3, cancels
    bulk = [line for line in lines if line["action"] == "cancel.bulk"]  # and each operation once: who, what, how many
    assert [(b["identity"]["user"], b["object"]["matched"]) for b in bulk] == [("dave", "4"), ("alice", "3"),
                                                                               ("admin", "0")]
    assert {c["operation"] for c in cancels if c["identity"]["user"] == "alice"} == {said_op.group(1)}
    assert bulk[1]["object"] == {"kind": "JobSelection", "queue": "org-a", "phases": "Pending", "owner": "alice",
                                 "matched": "3"}


def test_all_queues_and_a_name_prefix_select_across_queues(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Outside QA HPC H8: "all mine" had to be done once per queue (`cancel --owner alice --yes` was refused), and
    cancel had no --name-prefix although get jobs has one."""
    said: dict[str, tuple[int, str, str]] = {}

    def steps(cli: Callable[..., tuple[int, str, str]]) -> None:
        said["prefix"] = cli("--all-queues", "--name-prefix", "a-", "--yes", user="alice")
        said["rest"] = cli("--all-queues", "--yes", user="admin")

    fed = _session(tmp_path, capsys, steps)
    rc, out, _ = said["prefix"]  # alice also sees dave's d-0 (viewers): not taken, its name does not start a-
    assert (rc, out) == (0, "cancelled 3 of 3 jobs of every queue, names starting 'a-'")
    rc, out, _ = said["rest"]  # what is left: d-0 in org-a, b-0 in org-b: one audited CancelJobs per queue
    assert rc == 0
    lines = out.splitlines()
    assert [line.split(" (audit operation")[0] for line in lines] == ["cancelled 1 of 1 job of queue 'org-a'",
                                                                      "cancelled 1 of 1 job of queue 'org-b'"]
    assert set(_phases(fed).values()) == {JobPhase.CANCELLED}
    audit = list(map(json.loads, (tmp_path / "audit.jsonl").read_text().splitlines()))
    assert [b["object"]["queue"] for b in audit if b["action"] == "cancel.bulk"] == ["org-a", "org-b"]


def test_all_queues_and_a_name_prefix_are_one_audited_operation(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Outside QA HPC (stop 56): `--name-prefix` was one Cancel per job and `--all-queues` one CancelJobs per queue,
    so an auditor saw N `cancel` lines and no `cancel.bulk` saying who chose which jobs. A federator that lists
    "jobs.cancel_bulk_select" selects them itself: one operation, one `cancel.bulk` line, each job's `cancel`
    line carrying its id."""
    said: dict[str, tuple[int, str, str]] = {}

    def steps(cli: Callable[..., tuple[int, str, str]]) -> None:
        said["prefix"] = cli("--all-queues", "--name-prefix", "a-", "--yes", user="alice")
        said["queue-prefix"] = cli("--queue", "org-a", "--name-prefix", "zz", "--yes", user="admin")
        said["rest"] = cli("--all-queues", "--yes", user="admin")

    fed = _session(tmp_path, capsys, steps, features=FEATURES)
    rc, out, _ = said["prefix"]  # alice also sees dave's d-0 (viewers): not taken, its name does not start a-
    first = re.fullmatch(r"cancelled 3 of 3 jobs of every queue, names starting 'a-' \(audit operation "
                         r"(bulk-[0-9a-f]+)\)", out)
    assert rc == 0 and first is not None, out
    assert said["queue-prefix"][:2] == (0, "no job you may see matches queue 'org-a', names starting 'zz'; "
                                           "nothing cancelled")
    rc, out, _ = said["rest"]  # d-0 in org-a and b-0 in org-b: one operation over both queues
    rest = re.fullmatch(r"cancelled 2 of 2 jobs of every queue \(audit operation (bulk-[0-9a-f]+)\)", out)
    assert rc == 0 and rest is not None, out
    assert set(_phases(fed).values()) == {JobPhase.CANCELLED}
    audit = list(map(json.loads, (tmp_path / "audit.jsonl").read_text().splitlines()))
    bulk = [line for line in audit if line["action"] == "cancel.bulk"]
    assert [b["object"] for b in bulk] == [
        {"kind": "JobSelection", "queue": "", "phases": "Pending,Placed,Running", "owner": "", "name_prefix": "a-",
         "all_queues": "true", "matched": "3"},
        {"kind": "JobSelection", "queue": "org-a", "phases": "Pending,Placed,Running", "owner": "",
         "name_prefix": "zz", "matched": "0"},
        {"kind": "JobSelection", "queue": "", "phases": "Pending,Placed,Running", "owner": "", "all_queues": "true",
         "matched": "2"}]
    cancels = [line for line in audit if line["action"] == "cancel"]
    assert [(c["object"]["name"], c["operation"]) for c in cancels] == [
        ("a-0", first.group(1)), ("a-1", first.group(1)), ("a-2", first.group(1)),
        ("d-0", rest.group(1)), ("b-0", rest.group(1))]


def test_a_federator_without_the_selection_feature_gets_no_field_it_would_ignore(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 0.14 federator ignores CancelJobsRequest.name_prefix: sent to it, `--queue org-a --name-prefix a-` would
    cancel dave's d-0 too. Its WhoAmI lists no "jobs.cancel_bulk_select", so the CLI lists and cancels one by
    one, as before."""
    said: dict[str, tuple[int, str, str]] = {}

    def steps(cli: Callable[..., tuple[int, str, str]]) -> None:
        said["prefix"] = cli("--queue", "org-a", "--name-prefix", "a-", "--yes", user="admin")

    older = tuple(f for f in FEATURES if f != JOBS_CANCEL_BULK_SELECT)
    fed = _session(tmp_path, capsys, steps, features=older)
    assert said["prefix"][:2] == (0, "cancelled 3 of 3 jobs of queue 'org-a', names starting 'a-'")
    assert _phases(fed)["d-0"] is JobPhase.PENDING and _phases(fed)["a-0"] is JobPhase.CANCELLED
    audit = list(map(json.loads, (tmp_path / "audit.jsonl").read_text().splitlines()))
    assert [line["action"] for line in audit if line["action"].startswith("cancel")] == ["cancel"] * 3


def test_one_matching_job_needs_no_yes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    said: dict[str, tuple[int, str, str]] = {}

    def steps(cli: Callable[..., tuple[int, str, str]]) -> None:
        said["b"] = cli("--queue", "org-b", user="admin")

    fed = _session(tmp_path, capsys, steps)
    assert said["b"][:2] == (0, "cancelled 1 of 1 job of queue 'org-b'")
    assert _phases(fed)["b-0"] is JobPhase.CANCELLED


def test_against_a_federator_without_cancel_jobs_it_cancels_one_by_one(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """An older federator answers CancelJobs UNIMPLEMENTED: the command falls back to List and one Cancel per job,
    each authorized and audited as a single cancel (no cancel.bulk line: that federator has none)."""
    said: dict[str, tuple[int, str, str]] = {}

    def steps(cli: Callable[..., tuple[int, str, str]]) -> None:
        said["dave"] = cli("--queue", "org-a", "--yes", user="dave")

    fed = _session(tmp_path, capsys, steps, service=_Before07)
    rc, out, _ = said["dave"]
    assert rc == 0 and out.startswith("cancelled 1 of 4 jobs of queue 'org-a'; 3 skipped: not yours to cancel")
    assert "audit operation" not in out
    assert _phases(fed)["d-0"] is JobPhase.CANCELLED and _phases(fed)["a-0"] is JobPhase.PENDING
    lines = list(map(json.loads, (tmp_path / "audit.jsonl").read_text().splitlines()))
    assert sorted(line["action"] for line in lines if line["action"].startswith("cancel")) == ["cancel"] * 4
