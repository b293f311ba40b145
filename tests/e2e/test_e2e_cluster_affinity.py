"""spec.clusters through the whole path a user takes: `federator submit -f` (the CLI's job file reader), real gRPC
to a real `federator serve`, Submit's re-read, the store, the scheduler and two simulated agents' Hellos (whose
labels are the clusters' own): a job pinned by a label runs only on the cluster that carries it though the other
has more room and is cheaper, and a job no cluster matches waits, its reason saying so (outside QA, migrate M7)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.cli.get import list_clusters, list_jobs
from federator.local import LocalFederation
from federator.model import Job, JobPhase, ReasonCode

from support import eventually

PROVIDER = "federator.io/provider"
NODE = {"count": 1, "model": "H100", "accelerators": 8, "cpu": 64, "memory": "512Gi"}
FLEET = {"clusters": [
    {"name": "oregon-1", "region": "west", "labels": {PROVIDER: "oregon-dc", "federator.io/price-per-accelerator-hour":
                                                      "9.0"}, "nodes": [NODE]},
    {"name": "gcp-1", "region": "west", "labels": {PROVIDER: "gcp", "federator.io/price-per-accelerator-hour": "1.0"},
     "nodes": [{**NODE, "count": 4}]},
]}


def _free_port() -> int:
    """A port of this suite's range (24000-24999) no one listens on."""
    for port in range(24600, 24700):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 24600-24699")


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[LocalFederation]:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(yaml.safe_dump(FLEET))
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=fleet, grpc_target=f"127.0.0.1:{_free_port()}",
                          serve_args=["--report-interval", "0.5", "--cycle-interval", "0.2"])
    fed.start_server()
    fed.start_agent("oregon-1")
    fed.start_agent("gcp-1")
    try:
        eventually(lambda: len(cs := list_clusters(fed.client)) == 2 and all(c["capacity"] is not None for c in cs),
                   what="both agents to report")
        yield fed
    finally:
        fed.stop()


def _submit(fed: LocalFederation, tmp_path: Path, name: str, clusters: dict[str, Any]) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
        "spec": {"kind": "training", "resources": {"cpu": "1", "memory": "4Gi", "nvidia.com/gpu": 8},
                 "clusters": clusters}}))
    done = subprocess.run([sys.executable, "-m", "federator", "submit", "-f", str(path), *fed.client_args()],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done


def _job(fed: LocalFederation, name: str) -> Job:
    (job,) = [j for j in list_jobs(fed.client) if j.spec.name == name]
    return job


def test_a_job_lands_where_its_clusters_say_and_one_no_cluster_matches_waits_saying_so(
        federation: LocalFederation, tmp_path: Path) -> None:
    _submit(federation, tmp_path, "free", {})
    free = eventually(lambda: (j := _job(federation, "free")).placements and j, what="free to be placed")
    assert [p.cluster for p in free.placements] == ["gcp-1"]  # unbound: the bigger, cheaper cluster

    _submit(federation, tmp_path, "pinned", {"selector": {"matchLabels": {PROVIDER: "oregon-dc"}}})
    pinned = eventually(lambda: (j := _job(federation, "pinned")).phase is JobPhase.RUNNING and j,
                        what="pinned to run")
    assert [p.cluster for p in pinned.placements] == ["oregon-1"]
    assert pinned.spec.clusters.match_labels == ((PROVIDER, "oregon-dc"),)  # kept by the server, sent back

    _submit(federation, tmp_path, "nowhere",
            {"selector": {"matchExpressions": [{"key": PROVIDER, "operator": "In", "values": ["aws"]}]}})
    waiting = eventually(lambda: (j := _job(federation, "nowhere")).pending_reason is not None and j,
                         what="nowhere to be judged")
    assert waiting.placements == [] and waiting.phase is JobPhase.PENDING
    assert waiting.pending_reason is not None and waiting.pending_reason.code is ReasonCode.CLUSTER_AFFINITY
    assert "gcp-1: has federator.io/provider=gcp, spec.clusters.selector.matchExpressions[0] asks " \
           "federator.io/provider In (aws)" in waiting.pending_reason.message
