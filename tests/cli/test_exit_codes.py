"""One table of exit statuses for every command (cli/exit_codes.py), so a `set -e` script tells "retry later" (4)
from "fix your input" (1, 2) and "not there" (3) without reading stderr (outside QA, HPC H10: all were 1)."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from cli_support import serving
from test_jobfile import GOOD  # type: ignore[import-not-found]

from federator.cli import main
from federator.cli.exit_codes import Exit, for_rpc
from federator.model import JobPhase
from federator.server.errors import Exhausted, exhausted
from federator.server.federator import Federator
from federator.store import SqliteJobStore

from builders import cluster, pool


class _Failed(grpc.RpcError):
    """A failed call as grpc raises it: a code, details and the trailing metadata that carry the status details."""

    def __init__(self, status: grpc.Status) -> None:
        self.status = status

    def code(self) -> grpc.StatusCode:
        return self.status.code  # type: ignore[no-any-return]

    def details(self) -> str:
        return self.status.details  # type: ignore[no-any-return]

    def trailing_metadata(self) -> object:
        return self.status.trailing_metadata


class _Plain(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "said"

    def trailing_metadata(self) -> object:
        return ()


@pytest.mark.parametrize(("code", "exit"), [
    (grpc.StatusCode.UNAVAILABLE, Exit.UNAVAILABLE), (grpc.StatusCode.DEADLINE_EXCEEDED, Exit.UNAVAILABLE),
    (grpc.StatusCode.NOT_FOUND, Exit.NOT_FOUND), (grpc.StatusCode.ALREADY_EXISTS, Exit.FAILED),
    (grpc.StatusCode.INVALID_ARGUMENT, Exit.FAILED), (grpc.StatusCode.PERMISSION_DENIED, Exit.FAILED),
    (grpc.StatusCode.FAILED_PRECONDITION, Exit.FAILED), (grpc.StatusCode.RESOURCE_EXHAUSTED, Exit.FAILED),
], ids=lambda v: v.name)
def test_a_status_code_has_one_exit_status(code: grpc.StatusCode, exit: Exit) -> None:
    assert for_rpc(_Plain(code)) is exit


@pytest.mark.parametrize(("reason", "exit"), [
    (Exhausted.BACK_PRESSURE, Exit.UNAVAILABLE), (Exhausted.WATCHES_FULL, Exit.UNAVAILABLE),
    (Exhausted.WATCH_FELL_BEHIND, Exit.UNAVAILABLE), (Exhausted.MESSAGE_TOO_LARGE, Exit.FAILED),
    (Exhausted.WATCH_LIMIT, Exit.FAILED), (Exhausted.LOGS_RATE, Exit.UNAVAILABLE),
    (Exhausted.LOG_FOLLOWS_FULL, Exit.UNAVAILABLE), (Exhausted.BUSY, Exit.UNAVAILABLE),
], ids=lambda v: v.value if isinstance(v, Exhausted) else v.name)
def test_resource_exhausted_is_later_only_for_the_reasons_a_later_try_gets_past(reason: Exhausted, exit: Exit) -> None:
    assert for_rpc(_Failed(exhausted("full", reason))) is exit


def _file(tmp_path: Path, name: str, **spec: object) -> str:
    doc = json.loads(json.dumps(GOOD))
    doc["metadata"]["name"] = name
    doc["spec"].update(spec)
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps(doc))
    return str(path)


def test_each_kind_of_failure_exits_as_the_table_says(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    fed.report(fed.connect(cluster="east-1", region="west", labels={}),
               cluster("east-1", "west", pool("NVIDIA-H100", nodes=4)).capacity)
    with serving(fed) as address:
        server = ["--server", address, "--insecure"]
        assert main(["submit", "-f", _file(tmp_path, "llm"), *server]) == Exit.OK
        assert main(["submit", "-f", _file(tmp_path, "llm", priority=11), *server]) == Exit.FAILED  # ALREADY_EXISTS
        assert main(["get", "job", "nosuch", *server]) == Exit.NOT_FOUND
        assert main(["cancel", "nosuch", *server]) == Exit.NOT_FOUND
        assert main(["submit", "-f", str(tmp_path / "missing.yaml"), *server]) == Exit.USAGE
    assert main(["get", "jobs", "--server", "127.0.0.1:1", "--insecure"]) == Exit.UNAVAILABLE
    assert "(UNAVAILABLE)" in capsys.readouterr().err


def test_strict_takes_back_a_job_it_was_warned_of_and_stops_there(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A job the federator warns of (a model no member has now: it waits) is accepted with a warning; under
    --strict it is cancelled at once and the jobs after it are not sent, as after a refusal."""
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    fed.report(fed.connect(cluster="east-1", region="west", labels={}),
               cluster("east-1", "west", pool("NVIDIA-H100", nodes=4)).capacity)
    fits = Path(_file(tmp_path, "fits", replicas=1, resources={"nvidia.com/gpu": 8}, acceleratorModels=["H100"]))
    never = Path(_file(tmp_path, "never", replicas=1, resources={"nvidia.com/gpu": 8}, acceleratorModels=["A100"]))
    after = Path(_file(tmp_path, "after", replicas=1, resources={"nvidia.com/gpu": 8}, acceleratorModels=["H100"]))
    stream = tmp_path / "three.yaml"
    stream.write_text("\n---\n".join(p.read_text() for p in (fits, never, after)))
    with serving(fed) as address:
        assert main(["submit", "-f", str(stream), "--strict", "--server", address, "--insecure"]) == Exit.FAILED
    err = capsys.readouterr().err
    assert err.count("cannot check a job without submitting it") == 1, err  # no WhoAmI here: an older federator
    assert "warning: job never-" in err and "--strict: job never-" in err and "cancelled" in err, err
    assert "1 of 3 jobs submitted (those before it); 1 after it not submitted" in err
    phases = {j.spec.name: j.phase for j in fed.jobs.values()}
    assert phases == {"fits": JobPhase.PENDING, "never": JobPhase.CANCELLED}
