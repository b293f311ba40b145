"""`federator hold ARRAY_ID` by a user who may see an array but not manage it (a group's, `jobs: view`): refused
once for the array's owner, the other tasks not asked (cli/array_holds.py). Over mTLS on loopback, with the
tenancy policy's authorization and a real audit log."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest
import yaml

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.cli import main
from federator.jobfile import parse_job
from federator.scheduler import Scheduler
from federator.scheduler.policy import policy_from_document
from federator.security.audit import AuditLog
from federator.security.auth import Authenticator, RevocationList
from federator.security.authz import Authorizer, tenancy_from_document
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue
from federator.security.tls import server_files, user_files
from federator.server.federator import Federator
from federator.server.services import JobService
from federator.store import SqliteJobStore

POLICY = """
tenancy:
  admins: {users: [admin]}
  groups:
    viewers: {users: [dave, alice], jobs: view}
queues:
  org-a: {weight: 1}
"""


def test_an_array_one_may_only_see_is_refused_once_not_once_per_task(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    certs = CertsDir(tmp_path / "certs")
    init_ca(certs)
    for user in ("alice", "dave"):
        issue(certs, Identity(IdentityKind.USER, user))
    fed = Federator(store=SqliteJobStore(Path(":memory:")), report_interval=60.0,
                    scheduler=Scheduler(policy_from_document(yaml.safe_load(POLICY))))
    said: dict[str, tuple[int, str, str]] = {}

    async def scenario() -> None:
        audit = AuditLog(tmp_path / "audit.jsonl")
        server = grpc.aio.server()
        edge = JobService(fed, Authenticator(revocations=RevocationList(None, interval=0.0)),
                          authz=Authorizer(tenancy_from_document(yaml.safe_load(POLICY))), audit=audit)
        jobs_pb2_grpc.add_JobServiceServicer_to_server(edge, server)
        port = server.add_secure_port("127.0.0.1:0", server_files(certs).server_credentials())
        await server.start()
        try:
            spec = convert.spec_to_pb(parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                                 "metadata": {"name": "sweep"},
                                                 "spec": {"kind": "training", "queue": "org-a",
                                                          "resources": {"cpu": "1"}}}))
            async with grpc.aio.secure_channel(f"127.0.0.1:{port}",
                                               user_files(certs, "alice").channel_credentials()) as ch:
                reply = await jobs_pb2_grpc.JobServiceStub(ch).Submit(
                    jobs_pb2.SubmitRequest(spec=spec, array=jobs_pb2.JobArray(indices="0-5")))

            def cli(*args: str, user: str) -> tuple[int, str, str]:
                rc = main([*args, "--server", f"127.0.0.1:{port}", "--certs-dir", str(certs.root), "--user", user])
                out = capsys.readouterr()
                return rc, out.out.strip(), out.err.strip()

            said["dave"] = await asyncio.to_thread(cli, "hold", reply.array_id, user="dave")
            said["alice"] = await asyncio.to_thread(cli, "hold", reply.array_id, user="alice")
            said["array"] = (0, reply.array_id, "")
        finally:
            await server.stop(0)
            audit.close()

    asyncio.run(scenario())
    array_id = said["array"][1]
    rc, out, err = said["dave"]
    assert rc != 0
    assert out == f"array {array_id}: held 0 of 6 tasks (passed over: 6 not yours to hold)"
    assert len(err.splitlines()) == 1 and "may not" in err, err  # said once, not once per task
    assert said["alice"][:2] == (0, f"array {array_id}: held 6 of 6 tasks")  # the owner's own: every task
    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    holds = [(line["identity"]["user"], line["result"]) for line in lines
             if line["action"] == "hold" and line["object"].get("kind") == "Job" and line["result"] != "failed"]
    assert holds == [("dave", "refused")] + [("alice", "accepted")] * 6, holds  # one refusal asked, not six
