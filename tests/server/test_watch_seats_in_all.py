"""--max-watches: the Watch streams the federator holds open in all, every user's, fairly shared (watch_seats.py).

The per-user cap (32) bounded one user, nothing bounded the users together: a thousand organisations' users at 32
each are 32,000 streams, each costing memory and a read of every change. Real gRPC over loopback TLS, callers
known by bearer token (three users), as a client meets the cap.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from server_support import job_api_by_token, read_watch, submit_request

from federator.api.v1 import jobs_pb2
from federator.security.auth import Authenticator, Token
from federator.security.limits import Limits
from federator.server.federator import Federator
from federator.server.watch_seats import WATCHES_FULL_RETRY_SECONDS, Seats
from federator.store import SqliteJobStore

AUTH = Authenticator(tokens=(Token("a-secret", "alice"), Token("b-secret", "bob"), Token("c-secret", "carol")))


def _streams(fed: Federator) -> float | None:
    return fed.metrics.registry.get_sample_value("federator_watch_streams")


async def _refused(stub: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await read_watch(stub.Watch(jobs_pb2.WatchJobsRequest()), 1)  # type: ignore[attr-defined]
    return err.value


def test_the_cap_refuses_the_next_stream_naming_it_and_a_closed_stream_frees_its_place(tmp_path: Path) -> None:
    fed = Federator(store=SqliteJobStore(tmp_path / "f.db"), limits=Limits(max_watches=2, max_watches_per_user=0))

    async def main() -> tuple[grpc.aio.AioRpcError, list[float | None]]:
        seen = [_streams(fed)]
        async with job_api_by_token(fed, AUTH, tmp_path / "certs") as stub:
            alice, bob = stub("a-secret"), stub("b-secret")
            await alice.Submit(submit_request("a"), timeout=10)
            one = alice.Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True))
            two = bob.Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True))
            await read_watch(one, 2)  # its job and the bookmark: the stream is open
            await read_watch(two, 1)  # bob sees no job of alice's: the bookmark
            seen.append(_streams(fed))
            refused = await _refused(stub("c-secret"))  # carol holds none, but the federator holds its 2
            one.cancel()
            async with asyncio.timeout(10):
                while True:  # the server hears of the cancel a moment later
                    try:
                        await read_watch(stub("c-secret").Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True)), 1)
                        break
                    except grpc.aio.AioRpcError as exc:
                        assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                        await asyncio.sleep(0.05)
            seen.append(_streams(fed))
        return refused, seen

    try:
        refused, seen = asyncio.run(main())
    finally:
        fed.store.close()
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert refused.details() == ("watch: the federator holds 2 Watch streams open, its limit is 2 (--max-watches); "
                                 f"retry after {WATCHES_FULL_RETRY_SECONDS:g}s")
    status = rpc_status.from_call(refused)
    assert status is not None
    info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info) and status.details[1].Unpack(retry)
    assert (info.reason, info.domain) == ("WATCHES_FULL", "federator.io")
    assert retry.retry_delay.seconds == int(WATCHES_FULL_RETRY_SECONDS)
    assert dict(refused.trailing_metadata() or ())["retry-after"] == f"{WATCHES_FULL_RETRY_SECONDS:g}"
    assert seen[:2] == [0.0, 2.0] and seen[2] == 2.0  # alice's one freed, carol's took it


def test_the_last_tenth_is_kept_for_users_holding_none() -> None:
    """One user with no per-user cap (or a few at theirs) cannot take the whole allowance: the last tenth goes one
    stream per user who holds none."""
    seats = Seats(per_user=0, in_all=20)
    assert all(seats.take("alice") is None for _ in range(18))
    refused = seats.take("alice")  # 18 of 20: the last 2 are kept for users holding none
    assert refused is not None and refused.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert ("the federator holds 18 Watch streams open, its limit is 20 (--max-watches), and the last 2 are kept "
            "for users holding none; this user holds 18") in refused.details
    assert seats.take("bob") is None and seats.take("carol") is None
    assert seats.take("dave") is not None and seats.total == 20  # full: even a user holding none waits
    seats.give_back("bob")
    assert seats.take("alice") is not None  # 19 of 20: the freed seat is in the kept tenth, not alice's
    assert seats.take("dave") is None


def test_the_per_user_cap_still_says_end_one_first_and_0_is_no_cap() -> None:
    seats = Seats(per_user=1, in_all=100)
    assert seats.take("alice") is None
    refused = seats.take("alice")
    assert refused is not None and "the most one user may hold (1, --max-watches-per-user)" in refused.details
    assert ("retry-after", f"{WATCHES_FULL_RETRY_SECONDS:g}") not in refused.trailing_metadata  # ending one frees it
    unbounded = Seats(per_user=0, in_all=0)
    assert all(unbounded.take("alice") is None for _ in range(2_000))
    unbounded.give_back("nobody")  # a seat never taken frees nothing
    assert unbounded.total == 2_000
    with pytest.raises(ValueError, match="^limits.max_watches: must be 0 .no cap. or more, got -1$"):
        Limits(max_watches=-1)
