"""A job may wait only on jobs its submitter may see: another tenant's job, by id or by name, is answered as no job
(NOT_FOUND, word for word as for a name nobody uses), so a dependency never confirms that another tenant's job
exists, nor tells its phase (server/dependencies.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_tenancy_api import absent, client, served, spec

from federator.api.v1 import jobs_pb2, types_pb2
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertsDir:
    c = CertsDir(tmp_path_factory.mktemp("certs"))
    init_ca(c)
    for user in ("alice", "bob", "carol"):
        issue(c, Identity(IdentityKind.USER, user))
    return c


def after(name: str, *keys: str) -> jobs_pb2.SubmitRequest:
    request = spec(name)
    request.spec.depends_on.CopyFrom(types_pb2.JobDependency(jobs=list(keys)))
    return request


def test_a_dependency_on_a_job_the_submitter_may_not_see_is_not_found(certs: CertsDir, tmp_path: Path) -> None:
    async def main() -> None:
        async with served(certs, tmp_path) as s, client(s, certs, "alice") as alice, \
                client(s, certs, "bob") as bob, client(s, certs, "carol") as carol:
            job = (await alice.Submit(spec("alices"))).job
            for key in (job.job_id, "alices", f"{job.spec.namespace}/alices"):
                said = await absent(bob.Submit(after("bobs", key)))
                assert said == f"spec.dependsOn.jobs: no job or array with id or name {key!r}"
            assert await absent(bob.Submit(after("bobs", "nobody"))) == \
                "spec.dependsOn.jobs: no job or array with id or name 'nobody'"  # the same words: nothing learnt
            assert [j.spec.name for j in s.fed.jobs.values()] == ["alices"]
            mine = (await alice.Submit(after("alices-next", "alices"))).job  # her own: kept as its id
            assert list(mine.spec.depends_on.jobs) == [job.job_id]
            shared = (await carol.Submit(after("carols", job.job_id))).job  # team-a: carol may see alice's job
            assert shared.pending_reason.code == "Dependency"

    asyncio.run(main())
