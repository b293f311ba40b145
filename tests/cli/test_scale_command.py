"""`federator scale NAME --replicas N` against a real JobService: the new count, or the refusal naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from cli_support import serving

from federator.cli import main
from federator.jobfile import parse_job
from federator.model import AgentFeature, JobPhase, JobSpec
from federator.server.federator import Federator
from federator.store import SqliteJobStore

from builders import cluster, pool


def job(name: str, kind: str) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
                      "spec": {"kind": kind, "replicas": 2, "resources": {"cpu": "1"}}})


@pytest.fixture
def served() -> Iterator[tuple[Federator, str]]:
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    with serving(fed) as address:
        yield fed, address


def test_scale_sets_the_new_count_and_says_so(served: tuple[Federator, str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    fed, address = served
    serve = fed.submit(job("serve", "inference"))
    assert main(["scale", "serve", "--replicas", "5", "--server", address, "--insecure"]) == 0
    assert capsys.readouterr().out == f"job {serve.job_id} Pending, 5 replicas\n"
    assert fed.jobs[serve.job_id].spec.replicas == 5


def test_a_refused_scale_names_the_field(served: tuple[Federator, str], capsys: pytest.CaptureFixture[str]) -> None:
    fed, address = served
    train = fed.submit(job("train", "training"))
    assert main(["scale", "train", "--replicas", "5", "--server", address, "--insecure"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: spec.kind: ") and "gang size is fixed" in err and "(FAILED_PRECONDITION)" in err
    assert fed.jobs[train.job_id].spec.replicas == 2


def test_replicas_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["scale", "serve"])
    assert "--replicas" in capsys.readouterr().err


def test_scaling_to_one_says_one_replica(served: tuple[Federator, str], capsys: pytest.CaptureFixture[str]) -> None:
    fed, address = served
    serve = fed.submit(job("one", "inference"))
    assert main(["scale", "one", "--replicas", "1", "--server", address, "--insecure"]) == 0
    assert capsys.readouterr().out == f"job {serve.job_id} Pending, 1 replica\n"


def test_a_scale_down_in_place_says_which_parts_shrank(served: tuple[Federator, str],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    fed, address = served
    rec = fed.connect(cluster="east-1", region="east", labels={})
    rec.features = frozenset({AgentFeature.RESIZE})
    fed.report(rec, cluster("east-1", "east", pool("H100", nodes=1)).capacity)
    serve = fed.submit(replace(job("chat", "inference"), replicas=6))
    fed.schedule_once()
    (placed,) = serve.placements
    fed.job_update(rec, placed.placement_id, JobPhase.RUNNING, "6 replicas running on east-1")
    assert main(["scale", "chat", "--replicas", "4", "--server", address, "--insecure"]) == 0
    assert capsys.readouterr().out == f"job {serve.job_id} Running, 4 replicas: scaled from 6 to 4: east-1 shrank " \
                                      "6 → 4 in place\n"
