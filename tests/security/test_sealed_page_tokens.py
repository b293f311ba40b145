"""Page tokens over real mTLS (portal re-test N3): List's token is sealed as CancelJobs' is, one scheme; it names no
job, serves only the caller it was made for, and outlives a federator restart that derives its key from the same
TLS serving key (a portal paging through a failover), while a token of another key is refused saying to start
again from the first page.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from test_tenancy_api import POLICY, certs, client, served, spec  # noqa: F401  (certs: the fixture)

from federator.api.v1 import jobs_pb2
from federator.security.pki import CertsDir
from federator.security.seal_keys import parse_seal_keys
from federator.server import seals
from federator.server.paging import STALE, use_seal, use_secret


@pytest.fixture(autouse=True)
def keep_the_process_seal() -> Iterator[None]:
    before = use_secret(b"the serving key")
    yield
    use_seal(before)


async def refused_field(call: object) -> tuple[list[str], str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value
    status = rpc_status.from_call(err.value)  # type: ignore[arg-type]
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details if d.Is(error_details_pb2.BadRequest.DESCRIPTOR))
    return [v.field for v in bad.field_violations], err.value.details() or ""


def test_a_list_token_is_sealed_bound_to_its_caller_and_outlives_a_restart(certs: CertsDir,  # noqa: F811
                                                                           tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"

    async def main() -> None:
        async with served(certs, tmp_path, POLICY, db=db) as s, client(s, certs, "alice") as alice, \
                client(s, certs, "bob") as bob:
            for name in ("secret-merger-1", "secret-merger-2", "secret-merger-3"):
                await alice.Submit(spec(name))
            first = await alice.List(jobs_pb2.ListJobsRequest(page_size=1))
            token = first.next_page_token
            raw = base64.urlsafe_b64decode(token + "===")
            assert b"secret-merger" not in raw and first.jobs[0].spec.name.encode() not in raw
            fields, said = await refused_field(bob.List(jobs_pb2.ListJobsRequest(page_size=1, page_token=token)))
            assert fields == ["page_token"] and "not a token this server made for this caller" in said
            cancel_page = await alice.CancelJobs(jobs_pb2.CancelJobsRequest(queue="open", max_jobs=1))
            assert base64.urlsafe_b64decode(cancel_page.next_page_token + "===")[:5] == raw[:5]  # version, key id
        # a restart (the same store, the key derived from the same serving key): the page goes on
        use_secret(b"the serving key")
        async with served(certs, tmp_path, POLICY, db=db) as s, client(s, certs, "alice") as alice:
            second = await alice.List(jobs_pb2.ListJobsRequest(page_size=1, page_token=token))
            assert [j.spec.name for j in second.jobs] == ["secret-merger-2"]
        # a new serving key: the token is stale, and says to start again
        use_secret(b"a renewed serving key")
        async with served(certs, tmp_path, POLICY, db=db) as s, client(s, certs, "alice") as alice:
            fields, said = await refused_field(alice.List(jobs_pb2.ListJobsRequest(page_size=1, page_token=token)))
            assert fields == ["page_token"] and STALE.removeprefix("page_token: ") in said
    asyncio.run(main())


def test_with_a_seal_key_file_a_token_outlives_a_renewed_serving_key(certs: CertsDir,  # noqa: F811
                                                                    tmp_path: Path) -> None:
    """--seal-key-file (security/seal_keys.py): the restart after a cert-manager renewal (a new serving key) keeps a
    portal's page token good, as it keeps the seals agents hold; what server/app.py does at start."""
    db = tmp_path / "jobs.db"
    keys = parse_seal_keys(base64.b64encode(bytes(range(32))).decode())
    before = seals.current()

    async def main() -> None:
        seals.use_keys(keys, b"the serving key", required=False)
        async with served(certs, tmp_path, POLICY, db=db) as s, client(s, certs, "alice") as alice:
            for name in ("merger-1", "merger-2"):
                await alice.Submit(spec(name))
            token = (await alice.List(jobs_pb2.ListJobsRequest(page_size=1))).next_page_token
        seals.use_keys(keys, b"a renewed serving key", required=False)
        async with served(certs, tmp_path, POLICY, db=db) as s, client(s, certs, "alice") as alice:
            second = await alice.List(jobs_pb2.ListJobsRequest(page_size=1, page_token=token))
            assert [j.spec.name for j in second.jobs] == ["merger-2"]
    try:
        asyncio.run(main())
    finally:
        seals.use_seals(before)
