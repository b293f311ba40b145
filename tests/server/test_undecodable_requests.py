"""An undecodable request answers INVALID_ARGUMENT with the BadRequest every INVALID_ARGUMENT carries (outside fuzz
QA F5: it had no grpc-status-details-bin at all, so a client branching on field_violations found none). Its one
violation's field is "": the whole request (the decoder does not say which field held the bad bytes)."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from test_services_edge import channel, run, served

BAD_UTF8_NAME = b"\x12\x06\x0a\x04x\xc0\xafy"  # SubmitRequest.spec (2) { name (1): "x\xc0\xafy" }


def violations(err: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(err)
    assert status is not None, f"no google.rpc.Status: {err}"
    detail = error_details_pb2.BadRequest()
    assert status.details and status.details[0].Unpack(detail), status
    return [(v.field, v.description) for v in detail.field_violations]


@pytest.mark.parametrize(("method", "stream", "data", "what"), [
    ("/federator.v1.JobService/Get", False, b"\xff\xff", "GetJobRequest"),
    ("/federator.v1.JobService/Submit", False, BAD_UTF8_NAME, "bad UTF-8"),
    ("/federator.v1.JobService/Watch", True, b"\xff\xff", "WatchJobsRequest"),
])
def test_an_undecodable_request_gets_a_bad_request_naming_the_whole_request(
        method: str, stream: bool, data: bytes, what: str) -> None:
    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                if stream:
                    call = ch.unary_stream(method, request_serializer=lambda b: b,
                                           response_deserializer=lambda b: b)
                    async for _ in call(data, timeout=5):
                        pass
                else:
                    await ch.unary_unary(method, request_serializer=lambda b: b,
                                         response_deserializer=lambda b: b)(data, timeout=5)
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT, err.value
            [(field, description)] = violations(err.value)
            assert field == ""
            assert "the request cannot be decoded" in description and what in description, description
            assert s.rejected("malformed") == 1

    run(go)
