"""A spread inference job loses one cluster, over real gRPC with simulated agents: only that part moves.

The job runs 2 replicas on a-1 and 2 on b-1 (each full). a-1's agent is killed; once a-1 is Lost, the
job keeps Running on b-1 with the same placement (b-1 never launches again), says it waits for 2, and
gets them on c-1 when that cluster's agent joins (server/partial.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from reliability_support import cluster_state, jobs_by_name, launches, metric

from federator.cli.submit_calls import submit_specs
from federator.jobfile import parse_job
from federator.local import LocalFederation
from federator.model import JobPhase, JobSpec

from support import eventually

TRIPLET = {"clusters": [
    {"name": name, "region": region, "nodes": [
        {"count": 2, "gpuModel": "NVIDIA-H100-80GB-HBM3", "gpus": 8, "cpu": 96, "memory": "1Ti"}]}
    for name, region in (("a-1", "a"), ("b-1", "b"), ("c-1", "c"))
]}


def serving(name: str) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": name, "annotations": {"federator.io/sim-duration": "600s",
                                                                 "federator.io/sim-startup": "0.1s"}},
                      "spec": {"kind": "inference", "replicas": 4, "regions": {"minRegions": 2},
                               "resources": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": 8}}})


@pytest.fixture
def triplet(tmp_path: Path) -> Path:
    path = tmp_path / "triplet.yaml"
    path.write_text(yaml.safe_dump(TRIPLET))
    return path


def test_a_lost_cluster_moves_only_its_part_of_a_spread_job(
        federation_factory: Callable[..., LocalFederation], triplet: Path) -> None:
    fed = federation_factory("--lease-seconds", "1", "--lost-after", "3", fleet=triplet)
    submit_specs(fed.client, [serving("chat")])
    first = eventually(lambda: (j := jobs_by_name(fed)["chat"]).phase is JobPhase.RUNNING and j,
                       what="the job to run on a-1 and b-1")
    assert sorted((p.cluster, p.replicas) for p in first.placements) == [("a-1", 2), ("b-1", 2)]
    kept = next(p for p in first.placements if p.cluster == "b-1")
    fed.agents["a-1"].kill()

    eventually(lambda: cluster_state(fed, "a-1") == "Lost", what="a-1 to be Lost")
    short = eventually(lambda: (j := jobs_by_name(fed)["chat"]).message.startswith("2 of 4 replicas placed") and j,
                       what="the job to say it waits for 2 replicas")
    assert short.phase is JobPhase.RUNNING and [p.placement_id for p in short.placements] == [kept.placement_id]
    assert short.placements[0].generation == kept.generation
    assert metric(fed, "federator_placement_retries_total", reason="ClusterNotReady") == 1.0

    fed.start_agent("c-1")  # room in a third region
    whole = eventually(lambda: (j := jobs_by_name(fed)["chat"]).phase is JobPhase.RUNNING
                       and len(j.placements) == 2 and j, what="the rest to run on c-1")
    by_cluster = {p.cluster: p for p in whole.placements}
    assert set(by_cluster) == {"b-1", "c-1"} and by_cluster["c-1"].replicas == 2
    assert by_cluster["b-1"].placement_id == kept.placement_id
    assert by_cluster["c-1"].generation == kept.generation + 1
    # c-1's agent logs its launch after the launch returns, and its Running may reach the federator first (a CI
    # run read the log between the two): wait for the line, then b-1 never restarted its replicas
    eventually(lambda: launches(fed)["c-1"] == [by_cluster["c-1"].placement_id], what="c-1's launch in its log")
    assert launches(fed)["b-1"] == [kept.placement_id]
