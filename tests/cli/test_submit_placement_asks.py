"""`federator submit` of a job file with spec.regions.weights and spec.prefer against a real JobService
(cli/submit.py, cli/placement_asks.py): the federator keeps them, `get job -o yaml` gives them back; a federator
that did not keep them (before 0.19.0) has the job taken back, never left to be placed by its policy alone.
`get clusters -o wide` shows the PRICE `spec.prefer: cheapest` orders by."""

from __future__ import annotations

from pathlib import Path

import cli_support
import grpc
import pytest
import yaml
from cli_support import serving

from federator.api.v1 import jobs_pb2
from federator.cli import main
from federator.cli.output import cluster_rows
from federator.model import PRICE_LABEL, ClusterCapacity, Job, JobPhase, Preference
from federator.server.federator import Federator
from federator.server.services import JobService
from federator.store import SqliteJobStore

from builders import cluster, pool

H100 = "NVIDIA-H100-80GB-HBM3"

JOB_FILE = """apiVersion: federator.io/v1alpha1
kind: FederatedJob
metadata: {name: NAME}
spec:
  kind: inference
  replicas: 8
  resources: {cpu: "1"}
  regions: {weights: {east: 3, west: 1}}
  prefer: cheapest
"""


def job_file(tmp_path: Path, name: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(JOB_FILE.replace("NAME", name))
    return str(path)


def _named(fed: Federator, name: str) -> Job:
    (found,) = [j for j in fed.jobs.values() if j.spec.name == name]
    return found


class OlderJobService(JobService):
    """A federator before 0.19.0: JobSpec.region_weights and prefer are fields it does not know, so it drops them."""

    async def Submit(self, request: jobs_pb2.SubmitRequest,  # noqa: N802
                     context: grpc.aio.ServicerContext) -> jobs_pb2.SubmitResponse:
        request.spec.ClearField("region_weights")
        request.spec.ClearField("prefer")
        return await super().Submit(request, context)


def test_the_federator_keeps_the_asks_and_get_gives_them_back(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    with serving(fed) as address:
        flags = ["--server", address, "--insecure"]
        assert main(["submit", "-f", job_file(tmp_path, "web"), *flags]) == 0
        job = _named(fed, "web")
        assert job.spec.region_weights == (("east", 3), ("west", 1)) and job.spec.prefer is Preference.CHEAPEST
        capsys.readouterr()
        assert main(["get", "job", "web", "-o", "yaml", *flags]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    assert doc["spec"]["regions"] == {"weights": {"east": 3, "west": 1}} and doc["spec"]["prefer"] == "cheapest"


def test_asks_an_older_federator_did_not_keep_are_taken_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli_support, "JobService", OlderJobService)
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    with serving(fed) as address:
        assert main(["submit", "-f", job_file(tmp_path, "web"), "--server", address, "--insecure"]) == 1
    job = _named(fed, "web")
    assert job.phase is JobPhase.CANCELLED  # never left to be placed by the policy alone
    assert capsys.readouterr().err.startswith(
        f"error: {tmp_path / 'web.yaml'}: job {job.job_id}: the federator did not keep its spec.regions.weights and "
        "spec.prefer (one older than 0.19.0 does not know it, and would place the job by its policy alone), so it is "
        "not kept: cancelled")


def test_get_clusters_wide_shows_each_members_price() -> None:
    def member(name: str, labels: dict[str, str]) -> dict[str, object]:
        return {"name": name, "region": "r", "state": "Ready", "placements": 0, "last_report_at": 0.0,
                "labels": labels, "capacity": ClusterCapacity()}

    headers, rows = cluster_rows([member("a", {PRICE_LABEL: "2.20"}), member("b", {})], wide=True)
    assert [r[headers.index("PRICE")] for r in rows] == ["2.2/accelerator-hour", "-"]


def test_get_job_says_where_a_job_with_asks_went_and_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    for name, price in (("east-1", "4.1"), ("west-1", "2.2"), ("central-1", "")):
        region = name.split("-")[0]
        rec = fed.connect(cluster=name, region=region, labels={PRICE_LABEL: price} if price else {})
        fed.report(rec, cluster(name, region, pool(H100, nodes=2)).capacity)  # 16 accelerators each
    web = tmp_path / "web.yaml"
    web.write_text(JOB_FILE.replace("NAME", "web").replace('{cpu: "1"}', '{cpu: "1", nvidia.com/gpu: 1}')
                   .replace("  prefer: cheapest\n", ""))
    gang = tmp_path / "gang.yaml"  # 16 on one cluster: east-1 and west-1 keep 10 and 14 free once web runs
    gang.write_text("apiVersion: federator.io/v1alpha1\nkind: FederatedJob\nmetadata: {name: gang}\nspec: "
                    "{kind: training, replicas: 2, resources: {cpu: '1', nvidia.com/gpu: 8}, prefer: cheapest}\n")
    with serving(fed) as address:
        flags = ["--server", address, "--insecure"]
        assert main(["submit", "-f", str(web), *flags]) == 0
        fed.schedule_once()
        assert main(["submit", "-f", str(gang), *flags]) == 0
        fed.schedule_once()
        capsys.readouterr()
        assert main(["get", "job", "web", *flags]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == \
            "spec.regions.weights (east: 3, west: 1): east 6, west 2 of 8 replicas"
        assert main(["get", "job", "gang", *flags]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == (
            "spec.prefer: cheapest: placed on central-1 (no price); cheaper now: west-1 at 2.2/accelerator-hour, "
            "east-1 at 4.1/accelerator-hour (none fit the job when it was placed: room, model or its bounds; or room "
            "came since, and a placed job is not moved)")


def test_submit_prefer_cheapest_asks_it_of_every_job(tmp_path: Path) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text("apiVersion: federator.io/v1alpha1\nkind: FederatedJob\nmetadata: {name: plain}\n"
                    "spec: {kind: training, resources: {cpu: '1'}}\n")
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    with serving(fed) as address:
        assert main(["submit", "-f", str(path), "--prefer", "cheapest", "--server", address, "--insecure"]) == 0
    assert _named(fed, "plain").spec.prefer is Preference.CHEAPEST
