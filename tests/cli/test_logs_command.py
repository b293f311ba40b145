"""`federator logs JOB` against a real federator and a real simulated agent over loopback gRPC: a header per
replica as `tail` writes for several files, one replica's lines bare, each cluster that said nothing on stderr,
exit 1 when nothing could be read, and an agent's control characters never reaching the terminal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import pytest

from federator.agent.agent import Agent, AgentConfig
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.backends.sim.fleet import parse_fleet
from federator.backends.sim.runtime import SimBackend
from federator.cli import main
from federator.cli.job_logs import print_logs
from federator.jobfile import parse_job
from federator.model import Job, JobPhase, JobSpec
from tests.server.test_services_edge import Served, run, served

FLEET = parse_fleet({"clusters": [{"name": "east-1", "region": "east", "nodes": [
    {"count": 1, "gpuModel": "H100", "gpus": 8, "cpu": 64, "memory": "256Gi"}]}]})
JOB = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                 "metadata": {"name": "t", "annotations": {"federator.io/sim-startup": "0s"}},
                 "spec": {"kind": "training", "replicas": 2, "resources": {"cpu": "1", "nvidia.com/gpu": 1}}})


async def _until(cond: object) -> None:
    async def wait() -> None:
        while not cond():  # type: ignore[operator]
            await asyncio.sleep(0.02)

    await asyncio.wait_for(wait(), 20.0)


def talker(duration: str, replicas: int) -> JobSpec:
    """A job whose simulated replicas print a line every 50 ms (federator.io/sim-output-every) for `duration`."""
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": "t", "annotations": {"federator.io/sim-startup": "0s",
                                                                "federator.io/sim-duration": duration,
                                                                "federator.io/sim-output-every": "50ms"}},
                      "spec": {"kind": "training", "replicas": replicas,
                               "resources": {"cpu": "1", "nvidia.com/gpu": 1}}})


@asynccontextmanager
async def running_on_east(s: Served, spec: JobSpec) -> AsyncIterator[Job]:
    """A real simulated agent of east-1 connected to the served federator, and `spec` submitted, placed there and
    Running; the agent stopped on the way out."""
    backend = SimBackend(FLEET["east-1"])
    task = asyncio.create_task(Agent(AgentConfig(cluster="east-1", region="east", target=s.target,
                                                 max_backoff=0.2), backend).run())
    try:
        await _until(lambda: (rec := s.fed.clusters.get("east-1")) is not None and rec.resynced)
        job = s.fed.submit(spec)
        s.fed.schedule_once()
        await _until(lambda: job.phase is JobPhase.RUNNING)
        yield job
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await backend.stop()


def test_logs_prints_a_header_per_replica_then_one_replica_bare(capsys: pytest.CaptureFixture[str]) -> None:
    codes: list[int] = []
    outs: list[str] = []
    pid = ""

    async def go() -> None:
        nonlocal pid
        async with served() as s:
            async with running_on_east(s, JOB) as job:
                codes.append(await asyncio.to_thread(main, ["logs", "t", "--server", s.target, "--insecure"]))
                outs.append(capsys.readouterr().out)
                codes.append(await asyncio.to_thread(main, ["logs", "t", "--replica", "1", "--tail", "1",
                                                            "--server", s.target, "--insecure"]))
                outs.append(capsys.readouterr().out)
                pid = job.placements[0].placement_id

    run(go)
    assert codes == [0, 0]
    every, one = (o.splitlines() for o in outs)
    assert every[0] == f"==> east-1/{pid} (replica 0) <=="  # no pod on a simulated cluster: the placement
    assert "launched on simulated cluster east-1" in every[1] and every[2].endswith("federator sim: running")
    assert every[3:] == ["", f"==> east-1/{pid} (replica 1) <==", every[1], every[2]]
    assert len(one) == 1 and one[0].endswith("federator sim: running")  # one replica's last line, no header


def test_nothing_read_exits_1_with_each_cluster_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    got = jobs_pb2.JobLogsResponse(errors=[jobs_pb2.JobLogsError(
        cluster="east-1", placement_id="t.g1.east-1", message="cluster east-1 did not answer within 10s")])
    assert print_logs(got) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: cluster east-1 did not answer within 10s (placement t.g1.east-1)\n"


def test_an_agents_control_characters_are_escaped_but_lines_and_tabs_kept(capsys: pytest.CaptureFixture[str]) -> None:
    got = jobs_pb2.JobLogsResponse(logs=[jobs_pb2.JobLog(cluster="c", placement_id="p", pod="p-0",
                                                         text="step\t1\n\x1b[2Jcleared\x07\n")])
    assert print_logs(got) == 0
    assert capsys.readouterr().out == "step\t1\n\\x1b[2Jcleared\\x07\n"


def test_bad_bounds_are_refused_by_the_cli_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["logs", "t", "--tail", "0"])
    assert "--tail: must be a number of lines from 1 to 10000, got 0" in capsys.readouterr().err


def test_a_federator_older_than_the_logs_call_is_said_so(capsys: pytest.CaptureFixture[str]) -> None:
    """A federator without JobService.Logs (older than 0.13.0) answers UNIMPLEMENTED: said in words, not as gRPC's
    "Method not found!". Played by a server that serves no JobService at all."""
    async def go() -> int:
        server = grpc.aio.server()
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            return await asyncio.to_thread(main, ["logs", "t", "--server", f"127.0.0.1:{port}", "--insecure"])
        finally:
            await server.stop(0)

    assert asyncio.run(go()) == 1
    assert capsys.readouterr().err.startswith("error: the federator at 127.0.0.1:")


def test_follow_prints_each_new_line_once_prefixed_and_exits_0_when_the_job_ends(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from federator.server import log_follow
    monkeypatch.setattr(log_follow, "FOLLOW_POLL_SECONDS", 0.02)
    spec = talker("0.5s", 2)
    codes: list[int] = []
    pid = ""

    async def go() -> None:
        nonlocal pid
        async with served() as s:
            async with running_on_east(s, spec) as job:
                pid = job.placements[0].placement_id
                codes.append(await asyncio.to_thread(main, ["logs", "t", "-f", "--server", s.target, "--insecure"]))

    run(go)
    captured = capsys.readouterr()
    assert codes == [0]
    said = [line for line in captured.err.splitlines() if line.startswith("logs: ")]  # the CLI's own (the
    # in-process server's grpc may log its streams' ends to the same stderr as it stops)
    assert said and said[-1].startswith("logs: job ") and said[-1].endswith(" Succeeded")  # the phase, last
    lines = captured.out.splitlines()
    for replica in (0, 1):
        prefix = f"[east-1/{pid} replica {replica}] "
        mine = [line.removeprefix(prefix) for line in lines if line.startswith(prefix)]
        assert "launched on simulated cluster east-1" in mine[0]
        assert mine[-1].endswith("federator sim: Succeeded: finished after 0.5s")
        assert len(mine) == len(set(mine))  # each line once
    assert all(line.startswith("[east-1/") for line in lines)


def test_follow_refuses_limit_bytes_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "t", "-f", "--limit-bytes", "10", "--server", "127.0.0.1:1", "--insecure"]) == 2
    assert capsys.readouterr().err.startswith("error: --limit-bytes: not with --follow")


def test_ctrl_c_ends_a_follow_with_exit_130_and_frees_its_seat(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's own Ctrl-C, as a terminal sends it: SIGINT to a real `federator logs -f` process."""
    import os
    import signal
    import sys
    from pathlib import Path

    from federator.server import log_follow
    monkeypatch.setattr(log_follow, "FOLLOW_POLL_SECONDS", 0.05)
    spec = talker("1h", 1)
    src = str(Path(__file__).resolve().parents[2] / "src")
    got: list[object] = []

    async def go() -> None:
        async with served() as s:
            async with running_on_east(s, spec):
                proc = await asyncio.create_subprocess_exec(
                    # `python -m federator`, with SIGINT taken as a terminal's foreground job takes it: a test run
                    # started in the background (`&` in a script: CI) passes it on ignored, and Python then never
                    # raises KeyboardInterrupt (no preexec_fn: a fork of this threaded process may not run Python)
                    sys.executable, "-c", "import runpy, signal; signal.signal(signal.SIGINT, "
                    "signal.default_int_handler); runpy.run_module('federator', run_name='__main__', alter_sys=True)",
                    "logs", "t", "-f", "--server", s.target, "--insecure",
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                    env={**os.environ, "PYTHONPATH": src})
                try:
                    assert proc.stdout is not None
                    first = await asyncio.wait_for(proc.stdout.readline(), 30.0)
                    while b"step " not in first:  # a line written after the follow began
                        first = await asyncio.wait_for(proc.stdout.readline(), 30.0)
                    got.append(first.decode())
                    following = s.fed.metrics.registry.get_sample_value("federator_log_follows")
                    proc.send_signal(signal.SIGINT)
                    got.append(await asyncio.wait_for(proc.wait(), 30.0))
                    got.append(following)
                    await _until(lambda: s.fed.metrics.registry.get_sample_value("federator_log_follows") == 0.0)
                finally:
                    if proc.returncode is None:
                        proc.kill()
                        await proc.wait()

    run(go)
    line, code, following = got
    assert isinstance(line, str) and "federator sim: step " in line and "Traceback" not in line
    assert (code, following) == (130, 1.0)


@pytest.mark.parametrize(("how", "code", "said"), [
    ("stop", 4, "logs: the federator is stopping; follow again"),
    ("bound", 5, "logs: the follow's bound of 0s passed: follow again to go on"),
])
def test_a_follow_that_ends_before_the_job_does_not_exit_0(
        how: str, code: int, said: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """QA new56 N4: `logs -f JOB > out && next` must not run `next` when the federator stopped (4: try again) or
    the follow's 24 h passed (5: as `wait --timeout`) while the job runs on; the server says which in `end`."""
    from federator.server import log_follow
    monkeypatch.setattr(log_follow, "FOLLOW_POLL_SECONDS", 0.02)
    if how == "bound":
        monkeypatch.setattr(log_follow, "FOLLOW_BOUND_SECONDS", 0.0)
    spec = talker("1h", 1)
    codes: list[int] = []
    ends: list[int] = []

    async def go() -> None:
        async with served() as s:
            async with running_on_east(s, spec) as job:
                following = asyncio.create_task(asyncio.to_thread(
                    main, ["logs", "t", "-f", "--server", s.target, "--insecure"]))
                async with grpc.aio.insecure_channel(s.target) as ch:  # a program's view: the same end, as an enum
                    stream = jobs_pb2_grpc.JobServiceStub(ch).FollowLogs(jobs_pb2.FollowLogsRequest(job_id="t"),
                                                                         timeout=20.0)
                    if how == "stop":
                        await _until(lambda: s.fed.metrics.registry.get_sample_value("federator_log_follows") == 2.0)
                        s.fed.history.end()  # as `serve` does on SIGTERM
                    ends.extend([m.end async for m in stream if m.ended])
                codes.append(await asyncio.wait_for(following, 20.0))
                assert job.phase is JobPhase.RUNNING  # the job runs on: only the follow ended

    run(go)
    assert codes == [code]
    assert said in capsys.readouterr().err
    assert ends == [jobs_pb2.FOLLOW_END_FEDERATOR_STOPPING if how == "stop"
                    else jobs_pb2.FOLLOW_END_BOUND]


def test_each_end_of_a_follow_has_its_documented_exit_status() -> None:
    from federator.cli.job_logs import FOLLOW_EXIT, follow_exit
    last = jobs_pb2.FollowLogsMessage
    assert set(FOLLOW_EXIT) == set(jobs_pb2.FollowEnd.keys())  # every end the proto names has its status
    said = {name: follow_exit(last(ended="x", end=value)) for name, value in jobs_pb2.FollowEnd.items()}
    assert said == {"FOLLOW_END_UNSPECIFIED": 0, "FOLLOW_END_JOB_ENDED": 0, "FOLLOW_END_BOUND": 5,
                    "FOLLOW_END_FEDERATOR_STOPPING": 4, "FOLLOW_END_JOB_REMOVED": 3}
    assert follow_exit(last(ended="x", end=99)) == 4  # type: ignore[arg-type]  # a newer federator's end


def test_a_follow_of_a_job_not_placed_yet_waits_for_it_then_follows(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside QA, teams from SkyPilot, M13: `federator submit -f task.yaml && federator logs task -f` (what `sky
    launch` does in one) failed at once, exit 1, "has never been placed: no logs yet": a job just submitted is
    Pending. The follow now waits on the job's Watch until it runs, then follows it to its end."""
    from federator.server import log_follow
    monkeypatch.setattr(log_follow, "FOLLOW_POLL_SECONDS", 0.02)
    codes: list[int] = []

    async def go() -> None:
        async with served() as s:
            backend = SimBackend(FLEET["east-1"])
            agent = asyncio.create_task(Agent(AgentConfig(cluster="east-1", region="east", target=s.target,
                                                          max_backoff=0.2), backend).run())
            try:
                await _until(lambda: (rec := s.fed.clusters.get("east-1")) is not None and rec.resynced)
                job = s.fed.submit(talker("0.3s", 1))  # Pending: no cycle has run
                follow = asyncio.create_task(asyncio.to_thread(
                    main, ["logs", "t", "-f", "--server", s.target, "--insecure"]))
                await _until(lambda: (s.fed.metrics.registry.get_sample_value("federator_watch_streams") or 0) >= 1)
                assert job.phase is JobPhase.PENDING and not follow.done()  # refused before: it waits on the Watch
                s.fed.schedule_once()
                codes.append(await asyncio.wait_for(follow, 30.0))
            finally:
                agent.cancel()
                await asyncio.gather(agent, return_exceptions=True)
                await backend.stop()

    run(go)
    captured = capsys.readouterr()
    assert codes == [0]
    said = [line for line in captured.err.splitlines() if line.startswith("logs: ")]
    assert said[0] == "logs: job t is not placed now; waiting for it to run (Ctrl-C to stop)"
    assert said[-1].startswith("logs: job ") and said[-1].endswith(" Succeeded")
    assert any("federator sim: Succeeded: finished after 0.3s" in line for line in captured.out.splitlines())


def test_a_follow_of_a_job_that_ends_without_running_says_so_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    codes: list[int] = []

    async def go() -> None:
        async with served() as s:
            job = s.fed.submit(JOB)  # no cluster: it stays Pending
            follow = asyncio.create_task(asyncio.to_thread(
                main, ["logs", "t", "-f", "--server", s.target, "--insecure"]))
            await _until(lambda: (s.fed.metrics.registry.get_sample_value("federator_watch_streams") or 0) >= 1)
            s.fed.cancel(job.job_id)
            codes.append(await asyncio.wait_for(follow, 30.0))

    run(go)
    assert codes == [1]
    assert "Cancelled" in capsys.readouterr().err
