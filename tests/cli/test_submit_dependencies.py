"""`federator submit --after JOB`, `--after-any JOB` and a job file's spec.dependsOn against a real JobService
(cli/job_files.py, cli/submit.py): the federator keeps the chain; `get job -o yaml` gives it back as the field; a
federator that did not keep it (before 0.14.0) has the job taken back, never left to run at once."""

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
from federator.model import Condition, Job, JobPhase, ReasonCode
from federator.server.federator import Federator
from federator.server.services import JobService
from federator.store import SqliteJobStore

JOB_FILE = """apiVersion: federator.io/v1alpha1
kind: FederatedJob
metadata: {name: NAME}
spec: {kind: training, resources: {cpu: "1"}EXTRA}
"""


def job_file(tmp_path: Path, name: str, extra: str = "") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(JOB_FILE.replace("NAME", name).replace("EXTRA", extra))
    return str(path)


@pytest.fixture
def served() -> Iterator[tuple[Federator, list[str]]]:
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    with serving(fed) as address:
        yield fed, ["--server", address, "--insecure"]


def _named(fed: Federator, name: str) -> Job:
    (found,) = [j for j in fed.jobs.values() if j.spec.name == name]
    return found


def test_after_flags_and_a_files_depends_on_make_jobs_wait(served: tuple[Federator, list[str]], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    fed, flags = served
    assert main(["submit", "-f", job_file(tmp_path, "prep"), *flags]) == 0
    assert main(["submit", "-f", job_file(tmp_path, "train"), "--after", "prep", *flags]) == 0
    assert main(["submit", "-f", job_file(tmp_path, "report", ", dependsOn: {condition: afterany, jobs: [train]}"),
                 *flags]) == 0
    prep, train, report = _named(fed, "prep"), _named(fed, "train"), _named(fed, "report")
    assert train.spec.depends_on is not None and train.spec.depends_on.jobs == (prep.job_id,)
    assert report.spec.depends_on is not None and report.spec.depends_on.condition is Condition.AFTER_ANY
    assert train.waiting_on == (prep.job_id,) and report.waiting_on == (train.job_id,)
    assert train.pending_reason is not None and train.pending_reason.code is ReasonCode.DEPENDENCY
    capsys.readouterr()
    assert main(["get", "job", "train", "-o", "yaml", *flags]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    assert doc["spec"]["dependsOn"] == {"condition": "afterok", "jobs": [prep.job_id]}
    assert "federator.io/depends-on" not in doc["metadata"].get("annotations", {})
    assert doc["status"]["pendingReason"]["code"] == "Dependency"


def test_bad_after_flags_send_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    off = ["--server", "127.0.0.1:1", "--insecure"]  # nothing is sent: no federator needed
    assert main(["submit", "-f", job_file(tmp_path, "a"), "--after", "x", "--after-any", "y", *off]) == 2
    assert "--after: --after and --after-any may not be given together" in capsys.readouterr().err
    assert main(["submit", "-f", job_file(tmp_path, "b", ", dependsOn: {jobs: [x]}"), "--after", "y", *off]) == 2
    assert "spec.dependsOn: --after was given too; give one or the other" in capsys.readouterr().err
    assert main(["submit", "-f", job_file(tmp_path, "c", ", dependsOn: {jobs: x}"), *off]) == 2
    assert "spec.dependsOn.jobs: must be a list of job ids or names, got 'x'" in capsys.readouterr().err
    assert main(["submit", "-f", job_file(tmp_path, "d"), *[f for i in range(17) for f in ("--after", f"j{i}")],
                 *off]) == 2
    assert "--after: names 17 jobs; at most 16" in capsys.readouterr().err


class OlderJobService(JobService):
    """A federator before 0.14.0: JobSpec.depends_on is a field it does not know, so the job would run at once."""

    async def Submit(self, request: jobs_pb2.SubmitRequest,  # noqa: N802
                     context: grpc.aio.ServicerContext) -> jobs_pb2.SubmitResponse:
        request.spec.ClearField("depends_on")
        return await super().Submit(request, context)


def test_a_dependency_an_older_federator_did_not_keep_is_taken_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli_support, "JobService", OlderJobService)
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    with serving(fed) as address:
        flags = ["--server", address, "--insecure"]
        assert main(["submit", "-f", job_file(tmp_path, "prep"), *flags]) == 0
        assert main(["submit", "-f", job_file(tmp_path, "train"), "--after", "prep", *flags]) == 1
    train = _named(fed, "train")
    assert train.phase is JobPhase.CANCELLED  # it never runs before what it waits on
    assert capsys.readouterr().err.startswith(
        f"error: {tmp_path / 'train.yaml'}: job {train.job_id}: the federator did not keep its dependency (one older "
        "than 0.14.0 does not know spec.dependsOn), so it is not kept: cancelled")


class MisreadingJobService(JobService):
    """A federator that would read a condition it does not know as afterok: a job after-not-ok would run once what
    it waits on succeeded, the opposite of what was asked. (0.14.0 refuses it instead: INVALID_ARGUMENT naming
    spec.dependsOn.condition; this stands for any that does not.)"""

    async def Submit(self, request: jobs_pb2.SubmitRequest,  # noqa: N802
                     context: grpc.aio.ServicerContext) -> jobs_pb2.SubmitResponse:
        if request.spec.HasField("depends_on"):
            request.spec.depends_on.condition = "afterok"
        return await super().Submit(request, context)


def test_a_condition_the_federator_did_not_keep_as_sent_has_the_job_taken_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli_support, "JobService", MisreadingJobService)
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    with serving(fed) as address:
        flags = ["--server", address, "--insecure"]
        assert main(["submit", "-f", job_file(tmp_path, "prep"), *flags]) == 0
        assert main(["submit", "-f", job_file(tmp_path, "cleanup"), "--after-not-ok", "prep", *flags]) == 1
    cleanup = _named(fed, "cleanup")
    assert cleanup.phase is JobPhase.CANCELLED
    assert f"job {cleanup.job_id}: the federator did not keep its dependency" in capsys.readouterr().err


def test_after_not_ok_makes_a_job_wait_for_a_failure(served: tuple[Federator, list[str]], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    fed, flags = served
    assert main(["submit", "-f", job_file(tmp_path, "prep"), *flags]) == 0
    assert main(["submit", "-f", job_file(tmp_path, "rescue"), "--after-not-ok", "prep", *flags]) == 0
    rescue = _named(fed, "rescue")
    assert rescue.spec.depends_on is not None and rescue.spec.depends_on.condition is Condition.AFTER_NOT_OK
    assert rescue.waiting_on == (_named(fed, "prep").job_id,)
    assert main(["submit", "-f", job_file(tmp_path, "x"), "--after-not-ok", "prep", "--after", "prep", *flags]) == 2
    assert "--after and --after-not-ok may not be given together" in capsys.readouterr().err


def test_after_start_makes_a_job_wait_for_a_start(served: tuple[Federator, list[str]], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    fed, flags = served
    assert main(["submit", "-f", job_file(tmp_path, "learner"), *flags]) == 0
    assert main(["submit", "-f", job_file(tmp_path, "rollout", ", clusters: {sameAs: [learner]}"), "--after-start",
                 "learner", *flags]) == 0
    learner, rollout = _named(fed, "learner"), _named(fed, "rollout")
    assert rollout.spec.depends_on is not None and rollout.spec.depends_on.condition is Condition.AFTER_START
    assert rollout.waiting_on == (learner.job_id,) and rollout.spec.clusters.same_as == (learner.job_id,)
    assert main(["submit", "-f", job_file(tmp_path, "x"), "--after-start", "learner", "--after", "learner",
                 *flags]) == 2
    assert "--after and --after-start may not be given together" in capsys.readouterr().err


class SameAsDroppingJobService(JobService):
    """A federator before 0.19.0: it does not know ClusterAffinity.same_as, so it drops the field."""

    async def Submit(self, request: jobs_pb2.SubmitRequest,  # noqa: N802
                     context: grpc.aio.ServicerContext) -> jobs_pb2.SubmitResponse:
        del request.spec.clusters.same_as[:]
        return await super().Submit(request, context)


def test_a_same_as_the_federator_did_not_keep_has_the_job_taken_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli_support, "JobService", SameAsDroppingJobService)
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    with serving(fed) as address:
        flags = ["--server", address, "--insecure"]
        assert main(["submit", "-f", job_file(tmp_path, "learner"), *flags]) == 0
        assert main(["submit", "-f", job_file(tmp_path, "rollout", ", clusters: {sameAs: [learner]}"), *flags]) == 1
    rollout = _named(fed, "rollout")
    assert rollout.phase is JobPhase.CANCELLED  # it would have run on any cluster
    assert f"job {rollout.job_id}: the federator did not keep its spec.clusters.sameAs" in capsys.readouterr().err
