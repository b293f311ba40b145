"""`federator get jobs --array ARRAY_ID`: one array's tasks and a line counting them by state (Slurm's
`squeue -r -j ARRAY`). The federator filters (ListJobsFilter.array_id, since 0.16.0); against one that does not
(it ignores the field and leaves it out of applied_filter), the CLI keeps the array's tasks itself. Over real gRPC on
loopback."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.cli import main
from tests.cli.test_get_jobs_filters import old_federator
from tests.server.test_services_edge import channel, good_spec, served


async def _get(target: str, *flags: str) -> int:
    return await asyncio.to_thread(main, ["get", "jobs", *flags, "--insecure", "--server", target])


def test_get_jobs_array_lists_one_arrays_tasks_and_counts_them(capsys: pytest.CaptureFixture[str]) -> None:
    async def main_() -> None:
        async with served() as s, channel(s.target) as ch:
            jobs = jobs_pb2_grpc.JobServiceStub(ch)
            sweep = await jobs.Submit(jobs_pb2.SubmitRequest(spec=good_spec("sweep").spec,
                                                             array=jobs_pb2.JobArray(indices="0-4%2")))
            other = await jobs.Submit(jobs_pb2.SubmitRequest(spec=good_spec("sweep").spec, request_id="other",
                                                             array=jobs_pb2.JobArray(indices="10-11")))
            await jobs.Submit(jobs_pb2.SubmitRequest(spec=good_spec("sweep-x").spec))  # a job named like a task
            await jobs.Hold(jobs_pb2.HoldJobRequest(job_id="sweep-4"))
            await jobs.Cancel(jobs_pb2.CancelJobRequest(job_id="sweep-3"))
            listed = await jobs.List(jobs_pb2.ListJobsRequest(filter=jobs_pb2.ListJobsFilter(array_id=sweep.array_id)))
            assert [j.spec.name for j in listed.jobs] == [f"sweep-{i}" for i in range(5)]
            assert listed.applied_filter.array_id == sweep.array_id  # the federator filtered
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await jobs.List(jobs_pb2.ListJobsRequest(filter=jobs_pb2.ListJobsFilter(array_id="Sweep_1")))
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "filter.array_id" in (err.value.details() or "")
            capsys.readouterr()

            line = (f"array {sweep.array_id}: 5 tasks: 2 pending, 1 throttled, 1 held, 0 running, 0 succeeded, "
                    "0 failed, 1 cancelled")
            assert await _get(s.target, "--array", sweep.array_id) == 0
            out = capsys.readouterr().out.splitlines()
            assert out[-1] == line
            rows = [r.split()[1] for r in out[1:-1]]  # the ARRAY column: Slurm's 1234_7
            assert rows == [f"{sweep.array_id}[{i}]" for i in range(5)], out
            assert await _get(s.target, "--array", other.array_id, "-o", "wide") == 0
            assert capsys.readouterr().out.splitlines()[-1].startswith(f"array {other.array_id}: 2 tasks: 2 pending")
            assert await _get(s.target, "--array", sweep.array_id, "--phase", "Cancelled") == 0
            assert capsys.readouterr().out.splitlines()[-1].startswith(f"array {sweep.array_id}: 1 task listed: ")

            async with old_federator(list(s.fed.jobs.values())) as (target, old):  # 0.15.0 knows no filter.array_id
                assert await _get(target, "--array", sweep.array_id) == 0
                assert capsys.readouterr().out.splitlines()[-1] == line  # the CLI kept the array's tasks itself
                assert old.requests[0].filter.array_id == sweep.array_id  # asked; not applied

            assert await _get(s.target, "--array", "sweep-000000") == 3  # no such array: Exit.NOT_FOUND
            assert "no task of array 'sweep-000000'" in capsys.readouterr().err

    asyncio.run(main_())


def test_a_malformed_array_id_is_refused_before_anything_is_sent(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["get", "jobs", "--array", "Sweep_1", "--insecure", "--server", "127.0.0.1:1"])
    assert exit_.value.code == 2
    assert "--array" in capsys.readouterr().err
