"""`federator submit --array`, `get jobs` and `cancel ARRAY_ID` against a real JobService over gRPC
(cli/submit_array.py): one command makes the tasks, running it again makes no more, `get jobs` shows each task's
array and index, `cancel` of the array's id cancels every task and nothing else; a federator before 0.15.0, which
would make one job, has it taken back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cli_support
import grpc
import pytest
import yaml
from cli_support import serving

from federator.api.v1 import jobs_pb2
from federator.cli import main
from federator.cli.exit_codes import Exit
from federator.model import JobPhase
from federator.server.federator import Federator
from federator.server.services import JobService
from federator.store import SqliteJobStore

JOB_FILE = """apiVersion: federator.io/v1alpha1
kind: FederatedJob
metadata: {name: NAME}
spec: {kind: training, resources: {cpu: "1"}}
"""


def job_file(tmp_path: Path, name: str, documents: int = 1) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text("---\n".join(JOB_FILE.replace("NAME", f"{name}{i or ''}") for i in range(documents)))
    return str(path)


@pytest.fixture
def served() -> Iterator[tuple[Federator, list[str]]]:
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    with serving(fed) as address:
        yield fed, ["--server", address, "--insecure"]


def test_submit_array_makes_the_tasks_once_and_cancel_of_its_id_cancels_them(
        served: tuple[Federator, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fed, flags = served
    assert main(["submit", "-f", job_file(tmp_path, "sweep"), "--array", "0-4%2", *flags]) == 0
    out = capsys.readouterr().out
    tasks = sorted(fed.jobs.values(), key=lambda j: j.spec.array.task_id if j.spec.array else -1)
    assert [j.spec.name for j in tasks] == [f"sweep-{i}" for i in range(5)]
    array_id = tasks[0].spec.array.array_id if tasks[0].spec.array else ""
    assert out == (f"array {array_id} submitted: 5 tasks sweep-0 .. sweep-4 (default, queue default), at most 2 "
                   f"running at once; cancel every task: federator cancel {array_id}\n")
    assert [j.throttled for j in tasks] == [False, False, True, True, True]
    assert main(["submit", "-f", job_file(tmp_path, "sweep"), "--array", "0-4%2", *flags]) == 0  # run again
    assert f"array {array_id} unchanged (submitted before): 5 tasks" in capsys.readouterr().out
    assert len(fed.jobs) == 5
    assert main(["submit", "-f", job_file(tmp_path, "lone"), *flags]) == 0
    capsys.readouterr()
    assert main(["get", "jobs", *flags]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:2] == ["JOB", "ARRAY"]
    rows = {line.split()[0]: line.split()[1] for line in table[1:]}
    assert rows[tasks[3].job_id] == f"{array_id}[3]" and rows[_named(fed, "lone")] == "-"
    assert "ArrayThrottle" in next(line for line in table if line.startswith(tasks[3].job_id))
    assert main(["get", "job", "sweep-3", "-o", "yaml", *flags]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    assert doc["status"]["array"] == {"arrayId": array_id, "taskId": 3, "maxRunning": 2}
    assert "annotations" not in doc["metadata"]  # the federator's: a document submitted again is a job of its own
    assert main(["cancel", "sweep-1", *flags]) == 0  # one task by its name (scancel 1234_1)
    assert fed.jobs[tasks[1].job_id].phase is JobPhase.CANCELLED and not fed.jobs[tasks[2].job_id].throttled
    capsys.readouterr()
    assert main(["cancel", array_id, *flags]) == 0  # the whole array (scancel 1234)
    assert capsys.readouterr().out.startswith(f"array {array_id}: cancelled 4 of 4 tasks")
    assert {j.phase for j in tasks} == {JobPhase.CANCELLED}
    assert fed.jobs[_named(fed, "lone")].phase is JobPhase.PENDING
    assert main(["cancel", "no-such-thing", *flags]) == Exit.NOT_FOUND  # neither a job nor an array: as before
    assert "no-such-thing" in capsys.readouterr().err


def _named(fed: Federator, name: str) -> str:
    (found,) = [j.job_id for j in fed.jobs.values() if j.spec.name == name]
    return found


def test_bad_array_flags_send_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    off = ["--server", "127.0.0.1:1", "--insecure"]  # nothing is sent: no federator needed
    assert main(["submit", "-f", job_file(tmp_path, "a"), "--array", "0-x", *off]) == 2
    assert "error: --array: '0-x' is not an index" in capsys.readouterr().err
    assert main(["submit", "-f", job_file(tmp_path, "b", documents=2), "--array", "0-3", *off]) == 2
    assert "error: --array: takes one job document, and these files hold 2" in capsys.readouterr().err
    assert main(["submit", "-f", job_file(tmp_path, "c"), "--array", "0-1000", *off]) == 2
    assert "names more than 1000 tasks" in capsys.readouterr().err
    assert main(["submit", "-f", job_file(tmp_path, "d"), "--array", "", *off]) == 2  # new59 N5: one plain job
    assert "error: --array: must not be empty" in capsys.readouterr().err


class OlderJobService(JobService):
    """A federator before 0.15.0: SubmitRequest.array is a field it does not know, so it makes one job."""

    async def Submit(self, request: jobs_pb2.SubmitRequest,  # noqa: N802
                     context: grpc.aio.ServicerContext) -> jobs_pb2.SubmitResponse:
        request.ClearField("array")
        return await super().Submit(request, context)


def test_an_array_an_older_federator_made_one_job_of_is_taken_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli_support, "JobService", OlderJobService)
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    with serving(fed) as address:
        assert main(["submit", "-f", job_file(tmp_path, "sweep"), "--array", "0-9", "--server", address,
                     "--insecure"]) == 1
    (job,) = fed.jobs.values()
    assert job.phase is JobPhase.CANCELLED
    assert capsys.readouterr().err.startswith(f"error: job {job.job_id}: the federator made one job, not an array")
