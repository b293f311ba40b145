"""What the live federator saw, replayed (outside QA, planners P4): `get clusters -o yaml|json` as a fleet, and a
`get jobs -o yaml|json` list's recorded submit and run times as arrivals and durations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.cli.get import list_clusters, list_jobs
from federator.local import LocalFederation
from federator.model import JobPhase
from federator.simulate import Simulation, TraceError, load_fleet_file, load_workload

from support import eventually, federator_cli

FLEET = """clusters:
  - name: nv
    region: east
    labels: {federator.io/provider: prov-a}
    nodes:
      - {count: 1, model: NVIDIA-H800, accelerators: 8, cpu: 64, memory: 512Gi}
  - name: asc
    region: west
    nodes:
      - {count: 1, vendor: huawei, model: Ascend910B, accelerators: 8, cpu: 192, memory: 1Ti}
"""


def job(name: str, ask: str) -> str:
    return f"""apiVersion: federator.io/v1alpha1
kind: FederatedJob
metadata:
  name: {name}
  annotations: {{federator.io/sim-duration: 2s}}
spec:
  kind: training
  replicas: 1
  resources: {{cpu: "8", memory: 64Gi}}
  accelerators: [{ask}]
  template: {{spec: {{containers: [{{name: t, image: x}}]}}}}
"""


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[LocalFederation]:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=fleet,
                          serve_args=["--report-interval", "0.5", "--cycle-interval", "0.2"])
    fed.start_server()
    for name in ("nv", "asc"):
        fed.start_agent(name)
    try:
        eventually(lambda: sum(c["capacity"] is not None for c in list_clusters(fed.client)) == 2,
                   what="two agents to report")
        yield fed
    finally:
        fed.stop()


def test_the_live_fleet_and_job_list_replay_in_sim(federation: LocalFederation, tmp_path: Path) -> None:
    """Two 8 x H800 gangs on one 8 x H800 node: live, the second waited for the first to end. Replayed from the
    exports (the sim annotations stripped, as real jobs have none), both run, one after the other: on main every
    recorded job arrived at t=0 and never ended, so the second waited for ever; and the fleet was refused."""
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text("---\n".join([job("h1", "{model: H800, count: 8}"), job("h2", "{model: H800, count: 8}"),
                                  job("a1", "{model: Ascend910B, count: 8}")]))
    submitted = federator_cli("submit", "-f", str(jobs), *federation.client_args())
    assert submitted.returncode == 0, submitted.stderr
    eventually(lambda: all(j.phase is JobPhase.SUCCEEDED for j in list_jobs(federation.client)) and
               len(list_jobs(federation.client)) == 3, timeout=60, what="the three jobs to finish")

    clusters = federator_cli("get", "clusters", "-o", "yaml", *federation.client_args())
    listed = federator_cli("get", "jobs", "-o", "json", *federation.client_args())
    assert clusters.returncode == 0 and listed.returncode == 0, clusters.stderr + listed.stderr
    (tmp_path / "clusters.yaml").write_text(clusters.stdout)
    docs: list[dict[str, Any]] = json.loads(listed.stdout)
    for d in docs:
        del d["metadata"]["annotations"]["federator.io/sim-duration"]
    (tmp_path / "recorded.yaml").write_text(yaml.safe_dump_all(docs))

    fleet = load_fleet_file(tmp_path / "clusters.yaml")
    assert {(c.name, c.region) for c in fleet.values()} == {("nv", "east"), ("asc", "west")}
    assert [(n.vendor, n.accelerator_model, n.accelerators) for n in fleet["asc"].nodes] == [
        ("huawei", "Ascend910B", 8)]
    assert ("federator.io/provider", "prov-a") in fleet["nv"].labels
    assert [(n.cpu_milli, n.memory_bytes) for n in fleet["nv"].nodes] == [(64_000, 512 * 2**30)]  # one node: its own

    replay = {j.spec.name: j for j in load_workload(tmp_path / "recorded.yaml")}
    recorded = {d["metadata"]["name"]: d["status"] for d in docs}
    for name, j in replay.items():
        assert j.duration == pytest.approx(recorded[name]["totalRunSeconds"]) and j.duration > 1
    assert min(j.arrival for j in replay.values()) == 0
    report = Simulation(fleet, list(replay.values()), cycle_interval=0.5).run("replay")
    assert report.jobs_placed == 3 and report.jobs_pending == 0


def status_doc(name: str, status: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"kind": "training", "replicas": 1, "resources": {"cpu": "1", "nvidia.com/gpu": 1}},
            "status": status}


def test_recorded_times_are_arrivals_and_run_times(tmp_path: Path) -> None:
    docs = [
        status_doc("done", {"phase": "Succeeded", "submittedAt": "2026-12-06T10:00:10Z",
                            "startedAt": "2026-12-06T10:00:20Z", "totalRunSeconds": 600.5,
                            "finishedAt": "2026-12-06T10:10:20.5Z"}),
        status_doc("first", {"phase": "Failed", "submittedAt": "2026-12-06T10:00:00Z",
                             "startedAt": "2026-12-06T10:00:00Z", "finishedAt": "2026-12-06T10:01:00Z"}),
        status_doc("running", {"phase": "Running", "submittedAt": "2026-12-06T10:05:00Z",
                               "startedAt": "2026-12-06T10:05:00Z", "totalRunSeconds": 99.0}),
        status_doc("waiting", {"phase": "Pending", "submittedAt": "2026-12-06T10:06:00Z"}),
        status_doc("withdrawn", {"phase": "Cancelled", "submittedAt": "2026-12-06T10:07:00Z", "totalRunSeconds": 0}),
        status_doc("edited", {"phase": "Succeeded", "submittedAt": "2026-12-06T10:08:00Z", "totalRunSeconds": 5},
                   {"federator.io/sim-duration": "1h", "federator.io/sim-arrival": "30s"}),
    ]
    path = tmp_path / "jobs.json"  # `get jobs -o json`: a JSON list
    path.write_text(json.dumps(docs))
    notes: list[str] = []
    jobs = {j.spec.name: (j.arrival, j.duration) for j in load_workload(path, note=notes.append)}
    assert jobs == {"first": (0.0, 60.0), "done": (10.0, 600.5), "running": (300.0, None),
                    "waiting": (360.0, None), "edited": (30.0, 3600.0)}  # the planner's annotations win
    assert notes == [f"{path}: 1 recorded job ended without running (cancelled or failed while waiting): left out "
                     "of the replay"]


def test_a_bad_recorded_time_names_the_document_and_field(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(yaml.safe_dump_all([status_doc("a", {"phase": "Succeeded", "submittedAt": "yesterday"})]))
    with pytest.raises(TraceError, match=r"jobs.yaml: document 1: status.submittedAt: must be an RFC 3339 time"):
        load_workload(path)


def cluster_doc(name: str, pools: list[dict[str, Any]], cpu: int = 96_000, memory: int = 2**40) -> dict[str, Any]:
    return {"name": name, "region": "r1", "state": "Ready", "labels": {},
            "capacity": {"accelerator_pools": pools, "cpu_milli_allocatable": cpu, "memory_bytes_allocatable": memory}}


def test_a_live_pool_becomes_nodes_of_its_histogram(tmp_path: Path) -> None:
    path = tmp_path / "clusters.json"
    path.write_text(json.dumps([
        cluster_doc("a", [{"vendor": "nvidia", "accelerator_model": "NVIDIA-H800", "nodes_by_free": [1, 0, 2],
                           "total_accelerators": 20, "memory_mib": 81920},
                          {"vendor": "nvidia", "accelerator_model": "NVIDIA-A100-80GB-MIG-1g.10gb",
                           "nodes_by_free": [0, 1], "total_accelerators": 56, "sharing": "MIG", "unit_milli": 125}],
                    cpu=400_000),
        cluster_doc("cpu-only", []),
    ]))
    fleet = load_fleet_file(path)
    a = fleet["a"].nodes
    assert [(n.accelerator_model, n.accelerators) for n in a] == [
        ("NVIDIA-H800", 7), ("NVIDIA-H800", 7), ("NVIDIA-H800", 6), ("NVIDIA-A100-80GB-MIG-1g.10gb", 56)]
    assert {n.cpu_milli for n in a} == {100_000} and a[0].accelerator_memory_mib == 81920
    assert (a[3].sharing, a[3].unit_milli) == ("MIG", 125)
    assert [(n.accelerators, n.cpu_milli) for n in fleet["cpu-only"].nodes] == [(0, 96_000)]


def test_a_live_pool_of_an_unknown_vendor_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "clusters.yaml"
    path.write_text(yaml.safe_dump([cluster_doc("a", [{"vendor": "metax", "accelerator_model": "C500",
                                                       "nodes_by_free": [1], "total_accelerators": 8}])]))
    with pytest.raises(TraceError, match=r"clusters.yaml: \[0\].capacity.accelerator_pools\[0\].vendor: unknown "
                                         r"vendor 'metax' .*add one with --accelerator-catalog"):
        load_fleet_file(path)
