"""`federator get job NAME` asks the federator for that one job (JobService.Get), never for every job.

Found at national scale: the CLI listed the whole job store a page at a time and filtered it, 63 pages
and seconds at 31k jobs (~400 MB at the 250k pending limit) to print one line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import pytest

from federator.api import convert
from federator.api.v1 import jobs_pb2
from federator.cli import calls, main
from federator.model import Job, JobId

from builders import job as job_spec


class _NotFound(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.NOT_FOUND

    def details(self) -> str:
        return "no job with id or name 'nope'"


class _Jobs:
    """A JobService stub over a few jobs that records which calls the CLI made."""

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = jobs
        self.calls: list[str] = []

    def Get(self, request: jobs_pb2.GetJobRequest, timeout: float) -> Any:  # noqa: N802
        self.calls.append("Get")
        named = [j for j in self.jobs if request.job_id in (j.job_id, j.spec.name)]
        if not named:
            raise _NotFound()
        return convert.job_to_pb(max(named, key=lambda j: j.submitted_at))

    def List(self, request: jobs_pb2.ListJobsRequest, timeout: float) -> Any:  # noqa: N802
        self.calls.append("List")
        return jobs_pb2.ListJobsResponse(jobs=[convert.job_to_pb(j) for j in self.jobs])


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> _Jobs:
    jobs = _Jobs([Job(job_id=JobId(f"train-{i}-abc123"), spec=job_spec(f"train-{i}"), submitted_at=float(i))
                  for i in range(3)])

    @contextmanager
    def connect(target: object) -> Iterator[tuple[_Jobs, None]]:
        yield jobs, None

    monkeypatch.setattr(calls, "connect", connect)
    return jobs


@pytest.mark.parametrize("key", ["train-1", "train-1-abc123"], ids=["by-name", "by-id"])
def test_get_job_is_one_get_and_no_list(stub: _Jobs, key: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["get", "job", key, "--insecure", "--server", "127.0.0.1:1"]) == 0
    assert stub.calls == ["Get"]
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("train-1-abc123")


def test_get_job_unknown_says_so(stub: _Jobs, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["get", "job", "nope", "--insecure", "--server", "127.0.0.1:1"]) == 3  # cli/exit_codes.py
    assert stub.calls == ["Get"]
    assert capsys.readouterr().err.strip() == "error: no job 'nope'"


def test_get_job_of_another_queue_than_asked_is_not_shown(stub: _Jobs, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["get", "job", "train-1", "--queue", "elsewhere", "--insecure", "--server", "127.0.0.1:1"]) == 3
    assert capsys.readouterr().err.strip() == "error: no job 'train-1' in queue 'elsewhere'"


def test_get_jobs_without_a_name_still_lists(stub: _Jobs, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["get", "jobs", "--insecure", "--server", "127.0.0.1:1"]) == 0
    assert stub.calls == ["List"]


def test_wide_output_and_watch_lines_show_control_characters_as_escapes() -> None:
    """Defence in depth: a job stored before the federator cleaned agents' messages (or by a federator of another
    version) still reaches no terminal raw."""
    from federator.cli.output import job_rows, table
    from federator.cli.watch import watch_lines

    raw = Job(job_id=JobId("train-0-abc123"), spec=job_spec("train-0"), submitted_at=0.0,
              message="\x1b[2J\x1b[31mfailed\x07\x9b ✓")
    out = table(*job_rows([raw], wide=True))
    assert "\\x1b[2J\\x1b[31mfailed\\x07\\x9b ✓" in out
    assert not any(c in out for c in "\x1b\x07\x9b") and len(out.splitlines()) == 2
    (line,) = watch_lines([raw])
    assert "\\x1b[2J" in line and "\x1b" not in line


def test_wide_output_and_watch_lines_show_bidi_and_zero_width_characters_as_escapes() -> None:
    """A provider's message with a right-to-left override and zero-width characters read backwards on a terminal
    that honours bidi ("Trojan Source", outside red team F08); a line separator ended the table row. Tables and
    watch lines now show them as escapes; ordinary non-ASCII text is kept."""
    from federator.cli.output import job_rows, table
    from federator.cli.watch import watch_lines

    raw = Job(job_id=JobId("train-0-abc123"), spec=job_spec("train-0"), submitted_at=0.0,
              message="ok \u202e\u2066 deliiaf \u2069 \u200b\u2028 é 中文")
    out = table(*job_rows([raw], wide=True))
    assert "ok \\u202e\\u2066 deliiaf \\u2069 \\u200b\\u2028 é 中文" in out
    assert not any(c in out for c in "\u202e\u2066\u2069\u200b\u2028") and len(out.splitlines()) == 2
    (line,) = watch_lines([raw])
    assert "\\u202e" in line and "\u202e" not in line
