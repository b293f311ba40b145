"""`federator submit --strict` asks the federator to check every job first (SubmitRequest.validate_only), over
real gRPC on loopback.

Outside QA HPC (stop 56): --strict submitted the job and cancelled it at a warning, so a watcher or an auditor saw
a job accepted then cancelled, and a cycle could place it in between. Now a job that draws a warning is never
made: no job, no `submit` line, only `submit.check` lines; the jobs are submitted once every check passed.
"""

from __future__ import annotations

import json
from pathlib import Path
from unittest.mock import patch

import grpc
import pytest
from cli_support import served, serving
from google.rpc import error_details_pb2, status_pb2
from test_jobfile import GOOD  # type: ignore[import-not-found]

from federator.api import convert
from federator.api.features import FEATURES, JOBS_SUBMIT_VALIDATE_ONLY_ARRAY
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.cli import main
from federator.cli.exit_codes import Exit
from federator.jobfile import parse_job
from federator.model import JobPhase
from federator.security.audit import AuditLog
from federator.server.federator import Federator
from federator.store import SqliteJobStore

from builders import cluster, pool


def _doc(name: str, model: str) -> dict[str, object]:
    doc: dict[str, object] = json.loads(json.dumps(GOOD))
    doc["metadata"]["name"] = name  # type: ignore[index]
    doc["spec"].update(replicas=1, resources={"nvidia.com/gpu": 8}, acceleratorModels=[model])  # type: ignore[attr-defined]
    return doc


def _federator() -> Federator:
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    fed.report(fed.connect(cluster="east-1", region="west", labels={}),
               cluster("east-1", "west", pool("NVIDIA-H100", nodes=4)).capacity)
    return fed


def _audit(path: Path) -> list[tuple[str, str]]:
    return [(line["action"], line["result"]) for line in map(json.loads, path.read_text().splitlines())
            if line["action"].startswith("submit")]


def test_a_strict_submit_of_a_never_runnable_job_makes_no_job_and_no_submit_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fed = _federator()
    stream = tmp_path / "three.yaml"
    stream.write_text("\n---\n".join(json.dumps(_doc(n, m)) for n, m in
                                     (("fits", "H100"), ("never", "A100"), ("after", "H100"))))
    audit = AuditLog(tmp_path / "audit.jsonl")
    with serving(fed, identity=True, audit=audit) as address:
        assert main(["submit", "-f", str(stream), "--strict", "--server", address, "--insecure"]) == Exit.FAILED
        err = capsys.readouterr().err
        assert not list(fed.jobs.values())  # none made: not even the two that passed
        assert "document 2 (never): spec.acceleratorModels: no member cluster has A100 now" in err, err
        assert "error: --strict: 1 of 3 job(s) drew warnings (above)" in err and "nothing submitted" in err, err
        assert "cannot check a job without submitting it" not in err and "cancelled" not in err, err
        fits = tmp_path / "fits.yaml"
        fits.write_text(json.dumps(_doc("fits", "H100")))
        assert main(["submit", "-f", str(fits), "--strict", "--server", address, "--insecure"]) == Exit.OK
    audit.close()
    assert {j.spec.name: j.phase for j in fed.jobs.values()} == {"fits": JobPhase.PENDING}
    assert _audit(tmp_path / "audit.jsonl") == [("submit.check", "accepted")] * 4 + [("submit", "accepted")]


def test_a_check_answers_warnings_and_refusals_as_a_submit_and_keeps_nothing(tmp_path: Path) -> None:
    """The contract a portal uses: job_id empty, the Submit's warnings; a refusal with the Submit's code and field
    violations; an array's own fields are checked too."""
    fed = _federator()

    def request(name: str, model: str, **fields: object) -> jobs_pb2.SubmitRequest:
        return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job(_doc(name, model))), validate_only=True,
                                      **fields)  # type: ignore[arg-type]

    with served(fed) as there, grpc.insecure_channel(there.address) as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        reply = stub.Submit(request("never", "A100"))
        assert reply.job.job_id == "" and reply.job.spec.name == "never" and not reply.replayed
        assert [w.split(":")[0] for w in reply.warnings] == ["spec.acceleratorModels"], reply.warnings
        with pytest.raises(grpc.RpcError) as err:
            stub.Submit(request("big", "H100", array=jobs_pb2.JobArray(indices="0-1%2", max_running=3)))
        assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT  # an array's own check (0.15.0 refused any array)
        status = status_pb2.Status.FromString(dict(err.value.trailing_metadata())["grpc-status-details-bin"])
        detail = error_details_pb2.BadRequest()
        status.details[0].Unpack(detail)
        assert [v.field for v in detail.field_violations] == ["array.max_running"]
        stub.Submit(jobs_pb2.SubmitRequest(spec=request("taken", "H100").spec))  # a real one
        with pytest.raises(grpc.RpcError) as err:
            stub.Submit(request("taken", "H100"))
        assert err.value.code() is grpc.StatusCode.ALREADY_EXISTS
    assert [j.spec.name for j in fed.jobs.values()] == ["taken"]


def test_a_strict_array_is_checked_first_and_a_warning_refuses_every_task(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`submit --strict --array` (0.16.0): the federator checks the array, its first task standing for all; a
    warning refuses the whole array before any task is made (0.15.0 skipped the check: the warning was advice)."""
    fed = _federator()
    never, fits = tmp_path / "never.yaml", tmp_path / "fits.yaml"
    never.write_text(json.dumps(_doc("never", "A100")))
    fits.write_text(json.dumps(_doc("fits", "H100")))
    audit = AuditLog(tmp_path / "audit.jsonl")
    with serving(fed, identity=True, audit=audit) as address:
        args = ["--array", "0-9%2", "--strict", "--server", address, "--insecure"]
        assert main(["submit", "-f", str(never), *args]) == Exit.FAILED
        err = capsys.readouterr().err
        assert not list(fed.jobs.values())  # no task made, none to cancel
        assert "spec.acceleratorModels: no member cluster has A100 now" in err, err
        assert "error: --strict: the array drew warnings (above" in err and "no task submitted" in err, err
        assert "cannot check" not in err and "cancelled" not in err, err
        assert main(["submit", "-f", str(fits), *args]) == Exit.OK
        assert "array fits-" in capsys.readouterr().out
    audit.close()
    assert sorted(j.spec.name for j in fed.jobs.values()) == sorted(f"fits-{i}" for i in range(10))
    assert _audit(tmp_path / "audit.jsonl") == [("submit.check", "accepted")] * 2 + [("submit", "accepted")]


def test_an_array_check_refuses_a_taken_task_name_naming_the_task_and_keeps_nothing(tmp_path: Path) -> None:
    """Every task's name is checked, not only the first's; a refusal names the task, as the array Submit's does."""
    fed = _federator()
    pb = convert.spec_to_pb(parse_job(_doc("sweep", "H100")))
    with served(fed, identity=True) as there, grpc.insecure_channel(there.address) as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        stub.Submit(jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job(_doc("sweep-3", "H100")))))
        with pytest.raises(grpc.RpcError) as err:
            stub.Submit(jobs_pb2.SubmitRequest(spec=pb, validate_only=True, array=jobs_pb2.JobArray(indices="0-4")))
        assert err.value.code() is grpc.StatusCode.ALREADY_EXISTS
        assert "sweep-3" in (err.value.details() or "")
        reply = stub.Submit(jobs_pb2.SubmitRequest(spec=pb, validate_only=True, array=jobs_pb2.JobArray(indices="4-5")))
        assert reply.job.job_id == "" and reply.job.spec.name == "sweep-4" and not reply.array_jobs
        assert reply.job.spec.array.task_id == 4
    assert [j.spec.name for j in fed.jobs.values()] == ["sweep-3"]


def test_strict_array_against_a_0_15_federator_submits_then_cancels_every_task(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A federator whose WhoAmI lists no jobs.submit_validate_only_array cannot check an array: the CLI says so
    once, submits, and at a warning cancels every task and exits 1."""
    fed = _federator()
    never = tmp_path / "never.yaml"
    never.write_text(json.dumps(_doc("never", "A100")))
    older = tuple(f for f in FEATURES if f != JOBS_SUBMIT_VALIDATE_ONLY_ARRAY)
    with serving(fed, identity=True) as address, patch("federator.server.identity_service.FEATURES", older):
        assert main(["submit", "-f", str(never), "--array", "0-2", "--strict", "--server", address,
                     "--insecure"]) == Exit.FAILED
    err = capsys.readouterr().err
    assert err.count("cannot check an array without submitting it") == 1, err
    assert "error: --strict: array never-" in err and "3 task(s) cancelled" in err, err
    assert sorted((j.spec.name, j.phase) for j in fed.jobs.values()) == [
        (f"never-{i}", JobPhase.CANCELLED) for i in range(3)]
