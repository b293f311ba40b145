"""`federator submit` of a job file with spec.failurePolicy against a real JobService (cli/submit.py): the federator
keeps it, `get job -o yaml` gives it back; a federator that did not keep it (before 0.18.0) has the job taken back,
never left to fail for good at its first failure. `get jobs` RESTARTS says how much of the budget is spent."""

from __future__ import annotations

from pathlib import Path

import cli_support
import grpc
import pytest
import yaml
from cli_support import serving

from federator.api.v1 import jobs_pb2
from federator.cli import main
from federator.cli.output import job_rows
from federator.model import Job, JobPhase
from federator.server.federator import Federator
from federator.server.services import JobService
from federator.store import SqliteJobStore

JOB_FILE = """apiVersion: federator.io/v1alpha1
kind: FederatedJob
metadata: {name: NAME}
spec: {kind: training, resources: {cpu: "1"}, failurePolicy: {maxRestarts: 2}}
"""


def job_file(tmp_path: Path, name: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(JOB_FILE.replace("NAME", name))
    return str(path)


def _named(fed: Federator, name: str) -> Job:
    (found,) = [j for j in fed.jobs.values() if j.spec.name == name]
    return found


class OlderJobService(JobService):
    """A federator before 0.18.0: JobSpec.failure_policy is a field it does not know, so it drops it."""

    async def Submit(self, request: jobs_pb2.SubmitRequest,  # noqa: N802
                     context: grpc.aio.ServicerContext) -> jobs_pb2.SubmitResponse:
        request.spec.ClearField("failure_policy")
        return await super().Submit(request, context)


def test_the_federator_keeps_the_budget_and_get_gives_it_back(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    with serving(fed) as address:
        flags = ["--server", address, "--insecure"]
        assert main(["submit", "-f", job_file(tmp_path, "pretrain"), *flags]) == 0
        job = _named(fed, "pretrain")
        assert job.spec.failure_policy.max_restarts == 2
        capsys.readouterr()
        assert main(["get", "job", "pretrain", "-o", "yaml", *flags]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    assert doc["spec"]["failurePolicy"] == {"maxRestarts": 2} and doc["status"]["failureRestarts"] == 0
    headers, rows = job_rows([job], wide=False)
    assert rows[0][headers.index("RESTARTS")] == "0 (0/2 on failure)"


def test_a_budget_an_older_federator_did_not_keep_is_taken_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli_support, "JobService", OlderJobService)
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    with serving(fed) as address:
        assert main(["submit", "-f", job_file(tmp_path, "pretrain"), "--server", address, "--insecure"]) == 1
    job = _named(fed, "pretrain")
    assert job.phase is JobPhase.CANCELLED  # never left to end for good at its first failure
    assert capsys.readouterr().err.startswith(
        f"error: {tmp_path / 'pretrain.yaml'}: job {job.job_id}: the federator did not keep its spec.failurePolicy "
        "(one older than 0.18.0 does not know it, and would end the job at its first failure), so it is not kept: "
        "cancelled")
