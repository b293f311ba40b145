"""`federator hold JOB...`, `federator release JOB...` and `federator submit --hold` against a real JobService
(cli/hold.py): what each prints, its exit status, and a submit that asked for a hold never leaves a job unheld."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import cli_support
import grpc
import pytest
from cli_support import serving

from federator.api.v1 import jobs_pb2
from federator.cli import main
from federator.model import Job, JobPhase, ReasonCode
from federator.server.federator import Federator
from federator.server.services import JobService
from federator.store import SqliteJobStore

from builders import job

JOB_FILE = """apiVersion: federator.io/v1alpha1
kind: FederatedJob
metadata: {name: NAME}
spec: {kind: training, resources: {cpu: "1"}HELD}
"""


def job_file(tmp_path: Path, name: str, *, held: bool = False) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(JOB_FILE.replace("NAME", name).replace("HELD", ", held: true" if held else ""))
    return str(path)


@pytest.fixture
def served() -> Iterator[tuple[Federator, list[str]]]:
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    with serving(fed) as address:
        yield fed, ["--server", address, "--insecure"]


def _named(fed: Federator, name: str) -> Job:
    (found,) = [j for j in fed.jobs.values() if j.spec.name == name]
    return found


def test_submit_hold_and_a_files_spec_held_submit_held_jobs(served: tuple[Federator, list[str]], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    fed, flags = served
    assert main(["submit", "-f", job_file(tmp_path, "by-flag"), "--hold", *flags]) == 0
    assert main(["submit", "-f", job_file(tmp_path, "by-file", held=True), *flags]) == 0
    assert main(["submit", "-f", job_file(tmp_path, "not-held"), *flags]) == 0
    out = capsys.readouterr().out.splitlines()
    by_flag, by_file, plain = _named(fed, "by-flag"), _named(fed, "by-file"), _named(fed, "not-held")
    assert out == [f"job {by_flag.job_id} submitted held (default/by-flag, queue default)",
                   f"job {by_file.job_id} submitted held (default/by-file, queue default)",
                   f"job {plain.job_id} submitted (default/not-held, queue default)"]
    assert by_flag.hold is not None and by_file.hold is not None and plain.hold is None
    assert main(["get", "job", "by-flag", "-o", "json", *flags]) == 0
    status = json.loads(capsys.readouterr().out)["status"]
    assert status["hold"]["by"] == "anonymous" and status["hold"]["admin"] is False
    assert status["pendingReason"]["code"] == "Held"
    assert main(["get", "jobs", *flags]) == 0  # held at a glance: PHASE, not only the REASON at the end
    phases = {line.split()[0]: line.split()[3] for line in capsys.readouterr().out.splitlines()[1:]}
    assert phases == {by_flag.job_id: "Pending(Held)", by_file.job_id: "Pending(Held)", plain.job_id: "Pending"}
    assert main(["release", "by-flag", *flags]) == 0
    assert main(["get", "jobs", "--phase", "Pending", *flags]) == 0
    phases = {line.split()[0]: line.split()[3] for line in capsys.readouterr().out.splitlines()[2:]}
    assert phases == {by_flag.job_id: "Pending", by_file.job_id: "Pending(Held)", plain.job_id: "Pending"}


def test_hold_and_release_say_what_became_of_each_job_and_exit_with_the_first_failure(
        served: tuple[Federator, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    fed, flags = served
    a, b = fed.submit(job("a", gpus=1)), fed.submit(job("b", gpus=1))
    assert main(["hold", "a", "nobody", "b", *flags]) == 3  # NOT_FOUND (cli/exit_codes.py); the others held
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    # the insecure caller is an admin, and these jobs no user submitted: an admin's hold
    assert [line.split(" at ")[0] for line in lines] == [f"job {a.job_id} Pending, held by admin anonymous",
                                                       f"job {b.job_id} Pending, held by admin anonymous"]
    assert captured.err == "error: nobody: no job with id or name 'nobody' (NOT_FOUND)\n"
    assert fed.jobs[a.job_id].pending_reason.code is ReasonCode.HELD  # type: ignore[union-attr]
    assert main(["release", a.job_id, "b", *flags]) == 0
    assert capsys.readouterr().out == f"job {a.job_id} Pending, released\njob {b.job_id} Pending, released\n"
    assert fed.jobs[a.job_id].hold is None and fed.jobs[b.job_id].hold is None


def test_holding_a_running_job_is_refused_naming_its_phase(served: tuple[Federator, list[str]],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    fed, flags = served
    running = fed.submit(job("running", gpus=1))
    running.phase = JobPhase.RUNNING  # as its agent would have said
    assert main(["hold", "running", *flags]) == 1
    assert capsys.readouterr().err == (f"error: running: job {running.job_id} is Running: only a Pending job may be "
                                       "held; it holds room in a member cluster and keeps it (cancel it to stop it; "
                                       "a hold never stops work that runs) (FAILED_PRECONDITION)\n")


class OlderJobService(JobService):
    """A federator before 0.14.0: SubmitRequest.hold is a field it does not know, so the job is placed."""

    async def Submit(self, request: jobs_pb2.SubmitRequest,  # noqa: N802
                     context: grpc.aio.ServicerContext) -> jobs_pb2.SubmitResponse:
        request.hold = False
        return await super().Submit(request, context)


def test_a_submit_hold_an_older_federator_did_not_hold_is_cancelled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli_support, "JobService", OlderJobService)
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    with serving(fed) as address:
        assert main(["submit", "-f", job_file(tmp_path, "asked"), "--hold", "--server", address, "--insecure"]) == 1
    asked = _named(fed, "asked")
    assert asked.phase is JobPhase.CANCELLED  # it never runs unheld
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'asked.yaml'}: job {asked.job_id}: the federator "
                                              "did not hold it (one older than 0.14.0 does not know holds), so it "
                                              "is not kept: cancelled")


def test_a_spec_held_that_is_not_true_or_false_is_refused_naming_it(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(JOB_FILE.replace("NAME", "bad").replace("HELD", ", held: \"yes\""))
    assert main(["submit", "-f", str(path), "--server", "127.0.0.1:1", "--insecure"]) == 2  # nothing sent
    assert "spec.held: must be true or false, got 'yes'" in capsys.readouterr().err


def test_release_says_released_only_when_it_let_go_of_a_hold_and_an_ended_job_shows_no_hold(
        served: tuple[Federator, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    """QA new56 N6: `release` of a job never held, or ended, says it changed nothing (users.md: "changes nothing");
    a job cancelled while held is `Cancelled` in `get jobs`, not `Cancelled(Held)`: a hold is of a waiting job."""
    fed, flags = served
    held, plain, done = fed.submit(job("held", gpus=1)), fed.submit(job("plain", gpus=1)), fed.submit(job("done"))
    done.phase = JobPhase.SUCCEEDED  # as its agent would have said
    assert main(["hold", "held", *flags]) == 0
    capsys.readouterr()
    assert main(["release", "held", "plain", "done", *flags]) == 0
    assert capsys.readouterr().out.splitlines() == [f"job {held.job_id} Pending, released",
                                                    f"job {plain.job_id} Pending, not held, unchanged",
                                                    f"job {done.job_id} Succeeded, not held (it has ended), unchanged"]
    assert main(["hold", "held", *flags]) == 0
    assert main(["cancel", "held", *flags]) == 0
    capsys.readouterr()
    assert fed.jobs[held.job_id].hold is not None  # the record of who held it stays (-o yaml status.hold)
    assert main(["get", "job", "held", "-o", "json", *flags]) == 0  # though a FederatedJob's status drops it
    assert json.loads(capsys.readouterr().out)["status"]["hold"]["by"] == fed.jobs[held.job_id].hold.by
    assert main(["get", "jobs", *flags]) == 0
    phases = {line.split()[0]: line.split()[3] for line in capsys.readouterr().out.splitlines()[1:]}
    assert phases[held.job_id] == "Cancelled"
    assert main(["release", "held", *flags]) == 0
    assert capsys.readouterr().out == f"job {held.job_id} Cancelled, not held (it has ended), unchanged\n"
    assert main(["release", "nobody", *flags]) == 3  # the Release's own refusal, said once (and audited as one)
    assert capsys.readouterr().err == "error: nobody: no job with id or name 'nobody' (NOT_FOUND)\n"


def test_hold_and_release_of_an_array_id_take_its_pending_tasks(served: tuple[Federator, list[str]], tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`federator hold ARRAY_ID` (Slurm's `scontrol hold 1234` of an array): no job has the id, so every Pending task
    of the array is held, each by its own Hold; an ended one is passed over, and `release` lets them go again."""
    fed, flags = served
    assert main(["submit", "-f", job_file(tmp_path, "sweep"), "--array", "0-4%2", *flags]) == 0
    array_id = capsys.readouterr().out.split()[1]
    fed.cancel(_named(fed, "sweep-4").job_id)
    assert main(["hold", array_id, *flags]) == 0
    assert capsys.readouterr().out == f"array {array_id}: held 4 of 5 tasks (passed over: 1 ended)\n"
    assert sorted(j.spec.name for j in fed.jobs.values() if j.hold is not None) == [f"sweep-{i}" for i in range(4)]
    assert main(["hold", array_id, *flags]) == 0  # again: nothing to do, said so
    assert capsys.readouterr().out.endswith("held 0 of 5 tasks (passed over: 1 ended, 4 held already)\n")
    assert main(["release", array_id, *flags]) == 0
    assert capsys.readouterr().out == f"array {array_id}: released 4 of 5 tasks (passed over: 1 ended)\n"
    assert not [j for j in fed.jobs.values() if j.hold is not None and not j.phase.is_terminal]
    assert main(["hold", "sweep-000000", *flags]) == 3  # no job, no array: the Hold's own NOT_FOUND
    assert "no job with id or name 'sweep-000000'" in capsys.readouterr().err


def test_a_failure_to_list_an_array_id_is_said_not_a_traceback(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`hold KEY` where no job has the key lists the array the key may name: a List that fails then (the federator
    stopping between the two calls) is said as an error naming the key, and the next key is still tried."""
    async def unavailable(self: JobService, request: jobs_pb2.ListJobsRequest,
                          context: grpc.aio.ServicerContext) -> jobs_pb2.ListJobsResponse:
        await context.abort(grpc.StatusCode.UNAVAILABLE, "the store is unavailable")
        raise AssertionError("unreachable")

    monkeypatch.setattr(JobService, "List", unavailable)
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    fed.submit(job("plain"))
    with serving(fed) as address:
        rc = main(["hold", "sweep-3f9a1c", "plain", "--server", address, "--insecure"])
    out = capsys.readouterr()
    assert rc != 0
    assert "error: sweep-3f9a1c: the store is unavailable" in out.err
    assert re.match(r"job plain-[0-9a-f]+ Pending, held", out.out), out.out  # the next key still tried
