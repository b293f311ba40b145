"""A workload whose `spec` is not an object, over a real socket (outside fuzz QA F4): INVALID_ARGUMENT with a
BadRequest naming spec.workload_json (the message names spec.workload.spec), for every supported kind (five of
eight answered UNKNOWN with a traceback, which a client following the retry rules retried).
tests/test_workload_shapes.py holds the property over any JSON."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import grpc
import pytest
from server_support import Clock
from test_maintenance_windows_grpc import served
from test_time_bounds_grpc import violations

from federator.api.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2

from workload_objects import ALL, fresh


def test_a_workload_whose_spec_is_not_an_object_is_refused_naming_it(tmp_path: Path) -> None:
    clock = Clock()
    clock.now = time.time()

    async def go() -> None:
        async with served(clock, tmp_path / "fed.db") as (fed, target), grpc.aio.insecure_channel(target) as ch:
            api = jobs_pb2_grpc.JobServiceStub(ch)
            for n, kind in enumerate(sorted(ALL)):
                for value in (5, "x", [{}]):
                    obj = {**fresh(kind), "spec": value}
                    with pytest.raises(grpc.aio.AioRpcError) as err:
                        await api.Submit(jobs_pb2.SubmitRequest(request_id=f"ws-{n}", spec=types_pb2.JobSpec(
                            name=f"ws-{n}", workload_json=json.dumps(obj))), timeout=5)
                    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT, (kind, value, err.value)
                    said = violations(err.value)  # the proto's field; the message names the object's
                    assert "must be a mapping" in said.get("spec.workload_json", ""), (kind, value, said)
                    assert (err.value.details() or "").startswith("spec.workload.spec: must be a mapping"), \
                        (kind, value, err.value.details())
            assert not fed.jobs

    asyncio.run(go())
