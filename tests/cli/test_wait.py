"""`federator wait JOB... --for ... --timeout ...` against a real JobService: the exit status is the answer.

Outside QA (HPC centre, H3): a script could not wait for a job in standalone mode; `federator watch JOB` never
exits, even on a finished job. These follow the job's Watch stream as the command does: a job already in the state
answers at once, a change on the stream ends the wait, a job that can no longer be in the state ends it with its
phase and message, and the first of several jobs that fails ends the wait for all."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cli_support import Served, served

from federator.api.v1 import jobs_pb2_grpc
from federator.cli import main
from federator.cli.wait import Condition, judge, timeout_of
from federator.model import Job, JobId, JobPhase
from federator.security.auth import Authenticator
from federator.server.early_failures import EarlyFailurePolicy
from federator.server.federator import Federator
from federator.server.services import JobService
from federator.store import SqliteJobStore

from builders import cluster, job, pool


@pytest.fixture
def fed() -> Federator:
    # a failure is a failure here: not placed once more as an early one (server/early_failures.py)
    fed = Federator(store=SqliteJobStore(Path(":memory:")), early_failures=EarlyFailurePolicy(seconds=0))
    fed.report(fed.connect(cluster="east-1", region="east", labels={}),
               cluster("east-1", "east", pool("NVIDIA-H100", nodes=4)).capacity)
    return fed


@pytest.fixture
def there(fed: Federator) -> Iterator[Served]:
    with served(fed) as it:
        yield it


def _placed(fed: Federator, name: str) -> Job:
    placed = fed.submit(job(name, gpus=8))
    fed.schedule_once()
    assert placed.phase is JobPhase.PLACED
    return placed


def _end(fed: Federator, placed: Job, phase: JobPhase, message: str) -> None:
    (placement,) = placed.placements
    fed.job_update(fed.clusters["east-1"], placement.placement_id, phase, message)


def _when_watched(there: Served, streams: int, change: threading.Event, then: list[tuple[Job, JobPhase, str]],
                  fed: Federator) -> None:
    """On the federator's loop: once `streams` Watch streams are open, end each job of `then` as told."""
    async def later(jobs: JobService) -> None:
        while jobs.watch_seats.total < streams:
            await asyncio.sleep(0.01)
        for placed, phase, message in then:
            _end(fed, placed, phase, message)
        change.set()
    asyncio.run_coroutine_threadsafe(later(there.jobs), there.loop)


def test_a_job_that_finished_already_answers_at_once(fed: Federator, there: Served,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    done = _placed(fed, "prep")
    _end(fed, done, JobPhase.SUCCEEDED, "all placements succeeded")
    assert main(["wait", "prep", "--server", there.address, "--insecure"]) == 0
    assert capsys.readouterr().out == f"job {done.job_id} (default/prep) Succeeded\n"


def test_the_wait_ends_when_the_stream_says_the_job_succeeded(fed: Federator, there: Served,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    train = _placed(fed, "train")
    changed = threading.Event()
    _when_watched(there, 1, changed, [(train, JobPhase.SUCCEEDED, "all placements succeeded")], fed)
    assert main(["wait", "train", "--for", "Succeeded", "--server", there.address, "--insecure"]) == 0
    assert changed.is_set()  # it was Placed when the wait began: the stream's change ended it
    assert capsys.readouterr().out == f"job {train.job_id} (default/train) Succeeded\n"


def test_a_failed_job_ends_a_wait_for_succeeded_with_its_phase_and_message(
        fed: Federator, there: Served, capsys: pytest.CaptureFixture[str]) -> None:
    train = _placed(fed, "train")
    _end(fed, train, JobPhase.FAILED, "failed after 3s (exit code 1)")
    assert main(["wait", "train", "--for", "Succeeded", "--server", there.address, "--insecure"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: job {train.job_id} (default/train) Failed: ")
    assert "failed after 3s (exit code 1)" in err and err.rstrip().endswith("it will not succeed: it has ended")
    assert main(["wait", "train", "--for", "Finished", "--server", there.address, "--insecure"]) == 0


def test_the_first_of_several_jobs_to_fail_ends_the_wait_for_all(fed: Federator, there: Served,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    slow, bad = _placed(fed, "slow"), _placed(fed, "bad")
    changed = threading.Event()
    _when_watched(there, 2, changed, [(bad, JobPhase.FAILED, "failed after 1s (exit code 2)")], fed)
    assert main(["wait", "slow", "bad", "--for", "Succeeded", "--server", there.address, "--insecure"]) == 1
    assert slow.phase is JobPhase.PLACED  # it still runs: the wait did not wait for it
    assert capsys.readouterr().err.startswith(f"error: job {bad.job_id} (default/bad) Failed: ")


def test_all_jobs_must_hold(fed: Federator, there: Served, capsys: pytest.CaptureFixture[str]) -> None:
    one, two = _placed(fed, "one"), _placed(fed, "two")
    _end(fed, one, JobPhase.SUCCEEDED, "")
    changed = threading.Event()
    _when_watched(there, 1, changed, [(two, JobPhase.SUCCEEDED, "")], fed)
    assert main(["wait", "one", "two", "--for", "Succeeded", "--server", there.address, "--insecure"]) == 0
    assert sorted(capsys.readouterr().out.splitlines()) == [f"job {one.job_id} (default/one) Succeeded",
                                                            f"job {two.job_id} (default/two) Succeeded"]


def test_a_timeout_says_what_the_job_is(fed: Federator, there: Served, capsys: pytest.CaptureFixture[str]) -> None:
    waiting = fed.submit(job("big", gpus=64))
    fed.schedule_once()
    assert main(["wait", "big", "--timeout", "0", "--server", there.address, "--insecure"]) == 5
    err = capsys.readouterr().err
    assert err.startswith(f"error: timed out waiting for job {waiting.job_id} (big) to be Finished: it is Pending (")


def test_an_unknown_job_is_said(there: Served, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["wait", "nosuch", "--server", there.address, "--insecure"]) == 3
    assert capsys.readouterr().err.startswith("error: nosuch: no job with id or name 'nosuch' (NOT_FOUND)")


_SPEC = job("t")


@pytest.mark.parametrize(("phase", "started", "condition", "holds"), [
    (JobPhase.PENDING, False, Condition.FINISHED, None),
    (JobPhase.CANCELLED, False, Condition.FINISHED, True),
    (JobPhase.FAILED, True, Condition.SUCCEEDED, False),
    (JobPhase.RUNNING, True, Condition.SUCCEEDED, None),
    (JobPhase.PLACED, False, Condition.RUNNING, None),
    (JobPhase.RUNNING, True, Condition.RUNNING, True),
    (JobPhase.SUCCEEDED, True, Condition.RUNNING, True),
    (JobPhase.CANCELLED, False, Condition.RUNNING, False),
], ids=["pending-not-finished", "cancelled-finished", "failed-never-succeeds", "running-may-succeed",
        "placed-not-running-yet", "running", "ran-and-ended", "cancelled-before-running"])
def test_judge(phase: JobPhase, started: bool, condition: Condition, holds: bool | None) -> None:
    verdict = judge(Job(job_id=JobId("t-1"), spec=_SPEC, submitted_at=1.0, phase=phase,
                       started_at=5.0 if started else 0.0), condition)
    assert (None if verdict is None else verdict.holds) == holds


@pytest.mark.parametrize(("text", "seconds"), [("90", 90.0), ("90s", 90.0), ("30m", 1800.0), ("1h30m", 5400.0),
                                               ("0s", 0.0), ("500ms", 0.5)])
def test_timeout_of(text: str, seconds: float) -> None:
    assert timeout_of(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "1x", "-5", "1h 30m", "inf"])
def test_a_bad_timeout_is_refused(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["wait", "j", "--timeout", text])
    assert stopped.value.code == 2 and "--timeout: expected a duration" in capsys.readouterr().err



def test_a_wait_goes_on_across_a_federator_restart(fed: Federator, capsys: pytest.CaptureFixture[str]) -> None:
    """The stream breaking (the federator stopped) is retried as `federator watch` retries it, and the job's end
    heard from the federator that came back ends the wait."""
    train = _placed(fed, "train")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start(port: int) -> tuple[grpc.aio.Server, int, JobService]:
        server = grpc.aio.server()
        jobs = JobService(fed, Authenticator(insecure=True))
        jobs_pb2_grpc.add_JobServiceServicer_to_server(jobs, server)
        bound = server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        return server, bound, jobs

    first, port, jobs = asyncio.run_coroutine_threadsafe(start(0), loop).result(timeout=10)
    servers = [first]

    async def restart() -> None:
        while jobs.watch_seats.total < 1:
            await asyncio.sleep(0.01)
        await first.stop(0)
        second, _, again = await start(port)
        servers.append(second)
        while again.watch_seats.total < 1:
            await asyncio.sleep(0.01)
        _end(fed, train, JobPhase.SUCCEEDED, "all placements succeeded")

    asyncio.run_coroutine_threadsafe(restart(), loop)
    try:
        assert main(["wait", "train", "--for", "Succeeded", "--server", f"127.0.0.1:{port}", "--insecure"]) == 0
    finally:
        asyncio.run_coroutine_threadsafe(servers[-1].stop(0), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
    out, err = capsys.readouterr()
    assert out == f"job {train.job_id} (default/train) Succeeded\n"
    assert err.startswith(f"wait: lost the federator at 127.0.0.1:{port} (") and \
        f"wait: the federator at 127.0.0.1:{port} is back after " in err, err
