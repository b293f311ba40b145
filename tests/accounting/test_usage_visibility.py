"""`federator usage` shows what `get jobs` shows (tenant QA F3): a member of a group with jobs: view or manage sees
the group's usage, not only their own; `--queue Q` narrows it to one queue."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_usage import Clock, ask, join, running, spec, start, table

from federator.accounting import UsageRecord
from federator.model import JobPhase
from federator.security.auth import Peer
from federator.security.authz import Authorizer, tenancy_from_document
from federator.server.usage_service import visible_records

H100 = "NVIDIA-H100-80GB-HBM3"

POLICY = {"tenancy": {"admins": {"users": ["root"]}, "groups": {
    "org-a": {"users": ["alice", "amir"], "jobs": "view"},
    "org-b": {"users": ["bob"], "jobs": "manage"}}}}


def record(job: str, user: str, queue: str) -> UsageRecord:
    return UsageRecord(f"{job}.g1.c", job, queue, user, "default", "c", "p", H100, 1000, 0.0, 10.0)


RECORDS = [record("a1", "alice", "org-a"), record("a2", "amir", "org-a"), record("b1", "bob", "org-b"),
           record("k1", "", "org-a")]  # k1: a FederatedJob no user submitted


@pytest.mark.parametrize(("user", "sees"), [
    pytest.param("alice", {"a1", "a2"}, id="a jobs-view member sees the group's usage"),
    pytest.param("bob", {"b1"}, id="another org's member sees only their own org's"),
    pytest.param("carol", set(), id="a user in no group sees only their own (none)"),
    pytest.param("root", {"a1", "a2", "b1", "k1"}, id="an admin sees every record"),
])
def test_usage_follows_the_job_visibility_rule(user: str, sees: set[str]) -> None:
    authz = Authorizer(tenancy_from_document(POLICY))
    who = authz.principal(Peer(None, "token", name=user))
    assert {r.job_id for r in visible_records(authz, who, RECORDS, {})} == sees


def test_usage_can_be_asked_for_one_queue(tmp_path: Path) -> None:
    clock = Clock(1_000.0)
    fed, _meter, usage = start(tmp_path / "federator.db", clock)
    join(fed, "east-1", H100, "acme")
    a = fed.submit(spec("a", gpus=2, replicas=1, queue="org-a", user="alice"))
    b = fed.submit(spec("b", gpus=4, replicas=1, queue="org-b", user="bob"))
    fed.schedule_once()
    for j in (a, b):
        running(fed, j.job_id, JobPhase.RUNNING)
    clock.now = 1_010.0
    assert table(asyncio.run(ask(fed, usage, by="user", queue="org-a"))) == {"alice": 20.0, "TOTAL": 20.0}
    assert asyncio.run(ask(fed, usage, queue="nobody")).total.accelerator_seconds == 0.0
