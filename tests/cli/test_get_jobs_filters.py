"""`federator get jobs --phase --owner --namespace --name-prefix --since --sort`: the federator filters and orders,
and against a federator before 0.7.0 (which ignores the fields it does not know) the CLI does it itself, so the
same command prints the same jobs from either. Over real gRPC on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import pytest

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.cli import main
from federator.model import Job
from tests.server.test_services_edge import good_spec, served


class _OldFederator(jobs_pb2_grpc.JobServiceServicer):
    """List as a federator before 0.7.0 answers it: oldest first, queue filter only, nothing echoed."""

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = sorted(jobs, key=lambda j: (j.submitted_at, j.job_id))
        self.requests: list[jobs_pb2.ListJobsRequest] = []

    async def List(self, request: jobs_pb2.ListJobsRequest,  # noqa: N802
                   context: grpc.aio.ServicerContext) -> jobs_pb2.ListJobsResponse:
        self.requests.append(request)
        start = int(request.page_token or 0)
        chosen = [j for j in self.jobs if not request.queue or j.spec.queue == request.queue]
        nxt = str(start + 2) if start + 2 < len(chosen) else ""
        return jobs_pb2.ListJobsResponse(jobs=[convert.job_to_pb(j) for j in chosen[start:start + 2]],
                                         next_page_token=nxt)


@asynccontextmanager
async def old_federator(jobs: list[Job]) -> AsyncIterator[tuple[str, _OldFederator]]:
    server = grpc.aio.server()
    old = _OldFederator(jobs)
    jobs_pb2_grpc.add_JobServiceServicer_to_server(old, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", old
    finally:
        await server.stop(0)


FLAGS = ["--phase", "Cancelled", "--phase", "Failed", "--name-prefix", "keep", "--sort", "newest", "-o", "json"]


async def _names(target: str, capsys: pytest.CaptureFixture[str], *flags: str) -> list[str]:
    assert await asyncio.to_thread(main, ["get", "jobs", *flags, "--insecure", "--server", target]) == 0
    return [doc["metadata"]["name"] for doc in json.loads(capsys.readouterr().out)]


def test_get_jobs_filters_and_sorts_the_same_on_a_new_and_an_old_federator(capsys: pytest.CaptureFixture[str]) -> None:
    async def main_() -> None:
        async with served() as s:
            for name in ("keep-0", "drop-1", "keep-2", "keep-3", "keep-4", "keep-5"):
                s.fed.submit(convert.spec_from_pb(good_spec(name).spec))
            for name in ("keep-0", "drop-1", "keep-3", "keep-5"):
                s.fed.cancel(name)
            want = ["keep-5", "keep-3", "keep-0"]
            assert await _names(s.target, capsys, *FLAGS) == want
            assert await _names(s.target, capsys, "--sort", "newest", "--page-size", "1", "-o", "json") == \
                ["keep-5", "keep-4", "keep-3", "keep-2", "drop-1", "keep-0"]
            async with old_federator(list(s.fed.jobs.values())) as (target, old):
                assert await _names(target, capsys, *FLAGS) == want
                assert old.requests[0].filter.name_prefix == "keep"  # it was asked; it did not apply it
                assert len(old.requests) == 3  # every page of every job: the fallback's cost

    asyncio.run(main_())


def test_filters_with_clusters_or_one_job_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["get", "clusters", "--phase", "Running", "--insecure", "--server", "127.0.0.1:1"]) == 2
    assert "go with `get jobs`" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["get", "jobs", "--phase", "Runing", "--insecure", "--server", "127.0.0.1:1"])
    assert "invalid choice: 'Runing'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["get", "jobs", "--since", "yesterday", "--insecure", "--server", "127.0.0.1:1"])
    assert "ISO 8601" in capsys.readouterr().err


def test_bulk_cancel_asks_the_federator_for_its_selection() -> None:
    """`cancel --queue Q --phase P --owner U` listed the whole queue and filtered here: the federator filters now,
    and the CLI still checks each job (a federator before 0.7.0 filters by queue only)."""
    from federator.cli.bulk_cancel import Selection, matching
    from federator.model import JobPhase

    class Stub:
        requests: list[jobs_pb2.ListJobsRequest] = []

        def List(self, request: jobs_pb2.ListJobsRequest, timeout: float) -> jobs_pb2.ListJobsResponse:  # noqa: N802
            self.requests.append(request)
            return jobs_pb2.ListJobsResponse()

    stub = Stub()
    matching(stub, Selection("q", frozenset({JobPhase.PENDING}), user="bob"), timeout=1.0)  # type: ignore[arg-type]
    (request,) = stub.requests
    assert (request.queue, request.filter.owner, list(request.filter.phases)) == ("q", "bob", [1])
