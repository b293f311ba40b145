"""`federator usage --cluster NAME` answers for a name something has: a member now, or usage records kept (a cluster
gone from the federation keeps its history). A name neither has is INVALID_ARGUMENT naming `cluster`, not total 0
(outside billing re-test N4: an admin's typo read as "nothing ran there"). Over real gRPC with mTLS, as an admin
and as a provider with its cluster's certificate (server/usage_names.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from federator.security.pki import CertsDir
from federator.security.tls import TlsFiles, user_files
from tests.security.test_provider_drain import certs  # noqa: F401  (the fixture: a federation CA, two providers' CAs)
from tests.security.test_provider_usage import H100, RECORDS, get, provider_files, record, refused, rows, served


async def invalid(target: str, files: TlsFiles, **asked: object) -> str:
    """The INVALID_ARGUMENT's message; its BadRequest names `cluster` alone."""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await get(target, files, **asked)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    status = rpc_status.from_call(err.value)
    assert status is not None
    (detail,) = status.details
    bad = error_details_pb2.BadRequest()
    assert detail.Unpack(bad)
    assert [v.field for v in bad.field_violations] == ["cluster"]
    return err.value.details() or ""


def test_a_cluster_no_member_and_no_record_has_is_invalid_argument_not_zero(certs: CertsDir,  # noqa: F811
                                                                           tmp_path: Path) -> None:
    async def main() -> None:
        async with served(certs, tmp_path, members=("gpu-9",)) as target:
            admin = user_files(certs, "admin")
            said = await invalid(target, admin, cluster="acme-l")  # a typo of acme-1
            assert "cluster: 'acme-l': no member cluster has that name, and no usage record kept does" in said
            # A provider's own view: a name its binding (acme-*) speaks for that nothing has is the same typo.
            acme = provider_files(certs, "acme", "acme-1")
            assert "no member cluster has that name" in await invalid(target, acme, cluster="acme-7")

    asyncio.run(main())


def test_a_gone_cluster_answers_its_history_and_a_member_that_ran_nothing_answers_zero(
        certs: CertsDir, tmp_path: Path) -> None:  # noqa: F811
    async def main() -> None:
        async with served(certs, tmp_path, members=("gpu-9",)) as target:
            admin = user_files(certs, "admin")
            # acme-1 is no member now (forgotten, say): its records are its history, all time and by window.
            assert rows(await get(target, admin, cluster="acme-1")) == {"TOTAL": 80.0}
            assert rows(await get(target, admin, cluster="acme-1", since=1_500.0)) == {"TOTAL": 0.0}
            assert rows(await get(target, admin, cluster="gpu-9")) == {"TOTAL": 0.0}  # a member: it ran nothing
            acme = provider_files(certs, "acme", "acme-1")
            assert rows(await get(target, acme, cluster="acme-2", since=1_500.0)) == {"TOTAL": 0.0}

    asyncio.run(main())


def test_a_provider_names_a_cluster_moved_away_from_it_for_what_was_billed_to_it_alone(
        certs: CertsDir, tmp_path: Path) -> None:  # noqa: F811
    """Outside billing re-test N1, its last part: beta-7 ran as acme's, and the trust file now binds beta-* to beta.
    acme's `--cluster beta-7` was refused by today's binding, though its payout held beta-7's records; it answers
    those now, and beta's `--cluster beta-7` answers beta's records there alone (none), not acme's."""
    moved = [*RECORDS, record("e", "org-a", "beta-7", "acme", H100, 8_000)]  # 80, billed to acme

    async def main() -> None:
        async with served(certs, tmp_path, records=moved) as target:
            acme = provider_files(certs, "acme", "acme-1")
            assert rows(await get(target, acme, by="cluster", cluster="beta-7")) == {"beta-7": 80.0, "TOTAL": 80.0}
            beta = provider_files(certs, "beta", "beta-1")
            assert rows(await get(target, beta, by="provider", cluster="beta-7")) == {"TOTAL": 0.0}
            # A cluster of another provider's that never billed acme stays refused, naming whose it is.
            await refused(target, acme, "not of 'beta-1': it belongs to provider 'beta' (rule: provider)",
                          cluster="beta-1")

    asyncio.run(main())
