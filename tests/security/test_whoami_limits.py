"""WhoAmI tells a caller the limits Submit holds it to and its use of each (outside portal QA M5, re-test N6), over
real mTLS: per queue it may submit to, the queue's pending cap and count, maxPriority and maxRunSeconds; over all
queues, the user's pending cap and byte budget; through a delegate, the delegate's budget. A portal shows "3 of 50
pending" without submitting to find out.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from federator.api.v1 import identity_pb2, identity_pb2_grpc, jobs_pb2_grpc
from federator.cli import main as cli_main
from federator.security.pki import CertsDir
from tests.security.test_delegation import as_user, certs, channel, served, spec  # noqa: F401  (certs: the fixture)

POLICY = """
tenancy:
  groups:
    acme: {users: [carol]}
  delegates:
    portal: {users: ["*"], groups: [acme], maxPendingJobs: 7}
queues:
  acme: {access: {groups: [acme]}, namespaces: [acme-jobs], maxPendingJobs: 50, maxPriority: 10,
         maxRunSeconds: 3600}
  open: {weight: 1}
"""


def limit(held: identity_pb2.SubmitLimit) -> tuple[int, int, str]:
    return held.limit, held.used, held.source


def test_whoami_gives_each_limit_and_its_use(certs: CertsDir, tmp_path: Path,  # noqa: F811
                                            capsys: pytest.CaptureFixture[str]) -> None:
    async def main() -> tuple[identity_pb2.WhoAmIResponse, identity_pb2.WhoAmIResponse,
                              identity_pb2.WhoAmIResponse, int]:
        async with served(certs, tmp_path, POLICY) as s, channel(s, certs, "portal") as p, \
                channel(s, certs, "carol") as c:
            for i in range(3):
                await jobs_pb2_grpc.JobServiceStub(p).Submit(spec(f"a-{i}", queue="acme"),
                                                             metadata=as_user("alice", "acme"))
            await jobs_pb2_grpc.JobServiceStub(c).Submit(spec("c-0", queue="acme"))
            via = await identity_pb2_grpc.IdentityServiceStub(p).WhoAmI(identity_pb2.WhoAmIRequest(),
                                                                        metadata=as_user("alice", "acme"))
            own = await identity_pb2_grpc.IdentityServiceStub(c).WhoAmI(identity_pb2.WhoAmIRequest())
            itself = await identity_pb2_grpc.IdentityServiceStub(p).WhoAmI(identity_pb2.WhoAmIRequest())
            code = await asyncio.to_thread(cli_main, ["whoami", "--server", s.target, "--certs-dir",
                                                      str(certs.root), "--user", "portal", "--as", "alice",
                                                      "--as-group", "acme", "-o", "json"])
            return via, own, itself, code
    via, own, itself, code = asyncio.run(main())
    acme = {q.name: q for q in via.queues}["acme"]
    assert limit(acme.pending_jobs) == (50, 4, "queue 'acme' maxPendingJobs")  # every user's jobs of the queue
    assert (acme.max_priority, acme.max_run_seconds) == (10, 3600)
    opened = {q.name: q for q in via.queues}["open"]
    assert (opened.max_priority, opened.max_run_seconds) == (0, 0)  # multi-tenant default; no run-time bound
    assert limit(via.user_pending_jobs) == (125_000, 3, "--max-pending-jobs-per-user, by default half of "
                                                        "--max-pending-jobs")
    assert via.user_unfinished_bytes.limit == 256 << 20 and via.user_unfinished_bytes.used > 0
    assert limit(via.delegate_pending_jobs) == (7, 3, "tenancy.delegates.portal.maxPendingJobs")
    assert via.delegate_unfinished_bytes.used == via.user_unfinished_bytes.used
    assert "unset: one user's" in via.delegate_unfinished_bytes.source
    # carol's own call: her one job, and no delegate's budget
    assert limit(own.user_pending_jobs)[:2] == (125_000, 1)
    assert not own.HasField("delegate_pending_jobs")
    # the portal calling as itself (upgrade QA F3): its own budget and use, no user's name borrowed
    assert itself.actor == "" and itself.user == "portal"
    assert limit(itself.delegate_pending_jobs) == (7, 3, "tenancy.delegates.portal.maxPendingJobs")
    assert itself.delegate_unfinished_bytes.used == via.delegate_unfinished_bytes.used
    assert limit(itself.user_pending_jobs)[:2] == (125_000, 0)  # jobs it submitted for others are theirs
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["limits"]["delegatePendingJobs"] == {"limit": 7, "used": 3,
                                                    "source": "tenancy.delegates.portal.maxPendingJobs"}
    assert [q["pendingJobs"]["used"] for q in doc["queues"] if q["name"] == "acme"] == [4]
