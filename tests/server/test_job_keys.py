"""A job key names one job: an id, namespace/name, or a name in one namespace the caller may see.

Outside QA: two tenants each ran `dup`; an admin's `federator cancel dup` cancelled team-a's, the newest, with
no word that team-b's existed.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import grpc
import pytest
from server_support import Clock, MemoryStore, job_api, make, spec

from federator.api.v1 import jobs_pb2
from federator.model import Job, JobId, JobPhase
from federator.server.job_keys import Ambiguous, resolve


def _job(name: str, namespace: str, at: float) -> Job:
    return Job(job_id=JobId(f"{name}-{namespace}"), spec=replace(spec(name), namespace=namespace), submitted_at=at)


JOBS = {j.job_id: j for j in (_job("dup", "team-a", 2.0), _job("dup", "team-b", 1.0), _job("solo", "team-a", 1.0))}


def every(named: list[Job]) -> list[Job]:
    return named


def only_team_b(named: list[Job]) -> list[Job]:
    return [j for j in named if j.spec.namespace == "team-b"]


@pytest.mark.parametrize(("key", "visible", "expected"), [
    ("dup-team-b", every, "dup-team-b"),  # an id
    ("team-b/dup", every, "dup-team-b"),
    ("team-a/dup", every, "dup-team-a"),
    ("solo", every, "solo-team-a"),
    ("dup", only_team_b, "dup-team-b"),  # the only one this caller may see
    ("team-c/dup", every, None),
    ("nothing", every, None),
])
def test_what_a_key_names(key: str, visible: object, expected: str | None) -> None:
    got = resolve(JOBS, key, visible)  # type: ignore[arg-type]
    assert (got.job_id if isinstance(got, Job) else got) == expected


def test_a_name_in_two_namespaces_the_caller_sees_is_ambiguous_and_says_where() -> None:
    got = resolve(JOBS, "dup", every)
    assert isinstance(got, Ambiguous)
    assert [j.job_id for j in got.candidates] == ["dup-team-a", "dup-team-b"]
    assert "team-a/dup (dup-team-a, Pending), team-b/dup (dup-team-b, Pending)" in got.message
    assert "give the job id or namespace/name" in got.message


def test_cancel_by_an_ambiguous_name_cancels_nothing_and_namespace_name_picks_one() -> None:
    fed = make(MemoryStore(), Clock())
    a = fed.submit(replace(spec("dup"), namespace="team-a"))
    b = fed.submit(replace(spec("dup"), namespace="team-b"))

    async def main() -> None:
        async with job_api(fed) as api:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await api.Cancel(jobs_pb2.CancelJobRequest(job_id="dup"))
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "team-a/dup" in (err.value.details() or "") and "team-b/dup" in (err.value.details() or "")
            assert (a.phase, b.phase) == (JobPhase.PENDING, JobPhase.PENDING)
            got = await api.Cancel(jobs_pb2.CancelJobRequest(job_id="team-b/dup"))
            assert got.job_id == b.job_id and b.phase is JobPhase.CANCELLED and a.phase is JobPhase.PENDING

    asyncio.run(main())
