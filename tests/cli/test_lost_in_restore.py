"""A client that reconnects to a federator whose store was restored from a backup older than its job is told the
job is lost, plainly (outside operator DR QA D2): `wait` said the job had "finished and its record expired" of a
job last seen Running (exit 1), and `watch` of every job said nothing of the jobs that vanished."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from federator.api import convert
from federator.api.v1 import jobs_pb2_grpc, types_pb2
from federator.cli import main
from federator.cli.exit_codes import Exit
from federator.cli.watch import _lines
from federator.model import Job, JobPhase
from federator.security.auth import Authenticator
from federator.server.federator import Federator
from federator.server.services import JobService
from federator.store import SqliteJobStore

from builders import cluster, job, pool


def _federator() -> Federator:
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    fed.report(fed.connect(cluster="east-1", region="east", labels={}),
               cluster("east-1", "east", pool("NVIDIA-H100", nodes=4)).capacity)
    return fed


def _running(fed: Federator, name: str) -> Job:
    placed = fed.submit(job(name, gpus=8))
    fed.schedule_once()
    (placement,) = placed.placements
    fed.job_update(fed.clusters["east-1"], placement.placement_id, JobPhase.RUNNING, "")
    assert placed.phase is JobPhase.RUNNING
    return placed


@contextmanager
def restored_under(before: Federator, after: Federator) -> Iterator[str]:
    """`before` served; once a Watch is open on it, it stops and `after` (the restored store) serves on its port."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start(fed: Federator, port: int) -> tuple[grpc.aio.Server, int, JobService]:
        server = grpc.aio.server()
        jobs = JobService(fed, Authenticator(insecure=True))
        jobs_pb2_grpc.add_JobServiceServicer_to_server(jobs, server)
        bound = server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        return server, bound, jobs

    first, port, jobs = asyncio.run_coroutine_threadsafe(start(before, 0), loop).result(timeout=10)
    servers = [first]

    async def restore() -> None:
        while jobs.watch_seats.total < 1:
            await asyncio.sleep(0.01)
        await first.stop(0)
        second, _, _ = await start(after, port)
        servers.append(second)

    asyncio.run_coroutine_threadsafe(restore(), loop)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(servers[-1].stop(0), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_a_wait_on_a_job_the_restore_lost_says_so_and_exits_not_found(capsys: pytest.CaptureFixture[str]) -> None:
    before, after = _federator(), _federator()
    lost = _running(before, "train")
    with restored_under(before, after) as address:
        code = main(["wait", lost.job_id, "--for", "Succeeded", "--server", address, "--insecure"])
    assert code == Exit.NOT_FOUND
    err = capsys.readouterr().err
    assert (f"error: job {lost.job_id} (last seen Running) is not known to the federator at {address} since it came "
            "back: it was lost, most likely in a restore") in err, err
    assert "submit it again" in err and "record expired" not in err


def test_a_watch_of_a_job_the_restore_lost_says_so_and_exits_not_found(capsys: pytest.CaptureFixture[str]) -> None:
    before, after = _federator(), _federator()
    lost = _running(before, "train")
    with restored_under(before, after) as address:
        code = main(["watch", lost.job_id, "--server", address, "--insecure"])
    assert code == Exit.NOT_FOUND
    out, err = capsys.readouterr()
    assert out.startswith(f"{lost.job_id} Running east-1")
    assert f"error: job {lost.job_id} (last seen Running) is not known to the federator at {address}" in err


def _pb(fed: Federator, job: Job) -> types_pb2.Job:
    return convert.job_to_pb(fed.jobs[job.job_id])


def test_a_watch_of_every_job_names_each_unfinished_job_the_snapshot_after_a_cut_lacks() -> None:
    fed = _federator()
    kept, lost, done = _running(fed, "kept"), _running(fed, "lost"), _running(fed, "done")
    (placement,) = done.placements
    fed.job_update(fed.clusters["east-1"], placement.placement_id, JobPhase.SUCCEEDED, "")
    last: dict[str, str] = {}
    phases: dict[str, JobPhase] = {}
    before = [_pb(fed, j) for j in (kept, lost, done)]
    assert len(list(_lines(before, last, phases, after_cut=False, server="s:1"))) == 3
    bookmark = types_pb2.Job(bookmark=True, revision=7)
    # the restored federator's snapshot: `kept` only (`done` finished, its record may expire: not a loss)
    again = list(_lines([_pb(fed, kept), bookmark], last, phases, after_cut=True, server="s:1"))
    assert again == [f"{lost.job_id} Gone - job {lost.job_id} (last seen Running) is not known to the federator at "
                     "s:1 since it came back: it was lost, most likely in a restore of the federator's store from a "
                     "backup taken before it was accepted; submit it again (what a member still runs of it is "
                     "cancelled after the federator's --orphan-grace)"]
    assert list(_lines([_pb(fed, kept), bookmark], last, phases, after_cut=True, server="s:1")) == []  # said once
