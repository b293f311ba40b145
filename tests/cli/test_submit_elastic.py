"""`federator submit` of an elastic gang (spec.minReplicas) against a real JobService (cli/submit.py): the federator
keeps it and `get job -o yaml` gives it back; one that did not keep it (before 0.21.0) has the job taken back,
never left to wait for the whole gang unasked."""

from __future__ import annotations

from pathlib import Path

import cli_support
import grpc
import pytest
import yaml
from cli_support import serving

from federator.api.v1 import jobs_pb2
from federator.cli import main
from federator.model import Job, JobPhase
from federator.server.federator import Federator
from federator.server.services import JobService
from federator.store import SqliteJobStore

JOB_FILE = """apiVersion: federator.io/v1alpha1
kind: FederatedJob
metadata: {name: ft}
spec: {kind: training, replicas: 4, minReplicas: 2, resources: {cpu: "1"}}
"""


def _named(fed: Federator) -> Job:
    (found,) = [j for j in fed.jobs.values() if j.spec.name == "ft"]
    return found


class OlderJobService(JobService):
    """A federator before 0.21.0: JobSpec.min_replicas is a field it does not know, so it drops it."""

    async def Submit(self, request: jobs_pb2.SubmitRequest,  # noqa: N802
                     context: grpc.aio.ServicerContext) -> jobs_pb2.SubmitResponse:
        request.spec.ClearField("min_replicas")
        return await super().Submit(request, context)


def test_the_federator_keeps_the_minimum_and_get_gives_it_back(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    (path := tmp_path / "ft.yaml").write_text(JOB_FILE)
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    with serving(fed) as address:
        flags = ["--server", address, "--insecure"]
        assert main(["submit", "-f", str(path), *flags]) == 0
        assert _named(fed).spec.min_replicas == 2
        capsys.readouterr()
        assert main(["get", "job", "ft", "-o", "yaml", *flags]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["spec"]["minReplicas"] == 2


def test_a_minimum_an_older_federator_did_not_keep_is_taken_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli_support, "JobService", OlderJobService)
    (path := tmp_path / "ft.yaml").write_text(JOB_FILE)
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    with serving(fed) as address:
        assert main(["submit", "-f", str(path), "--server", address, "--insecure"]) == 1
    job = _named(fed)
    assert job.phase is JobPhase.CANCELLED
    assert capsys.readouterr().err.startswith(
        f"error: {path}: job {job.job_id}: the federator did not keep its spec.minReplicas (one older than 0.21.0 "
        "does not know it, and would wait for the whole gang), so it is not kept: cancelled")
