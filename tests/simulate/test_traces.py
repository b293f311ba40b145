"""Fleet and workload files for the simulator: both Alibaba node CSV layouts, pod CSVs, YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from federator.model import JobKind
from federator.simulate import TraceError, load_fleet_file, load_workload
from federator.simulate.synth import generate_pods, write_pods

OPENB = """sn,cpu_milli,memory_mib,gpu,model
openb-node-0001,96000,786432,8,V100M32
openb-node-0002,96000,786432,8,V100M16
openb-node-0003,64000,262144,2,T4
openb-node-0004,32000,131072,0,
"""
SPOT = """gpu_model,gpu_capacity_num,cpu_num,node_name
A10,1,128,0
A100-SXM4-80GB,8,128,1
H800,8,192,2
"""
PODS = """name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time
p-frac,4000,8192,1,250,,LS,Running,10,,10
p-two,16000,65536,2,1000,V100M16|V100M32,BE,Succeeded,0,3600,5
p-cpu,2000,4096,0,0,,Burstable,Succeeded,20,40,20
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_openb_nodes_are_dealt_into_clusters_and_regions(tmp_path: Path) -> None:
    fleet = load_fleet_file(write(tmp_path, "nodes.csv", OPENB), clusters=2)
    assert sorted(fleet) == ["cluster-000", "cluster-001"]
    assert {c.region for c in fleet.values()} == {"region-000", "region-001"}
    nodes = [n for c in fleet.values() for n in c.nodes]
    assert sorted((n.accelerator_model, n.accelerators) for n in nodes) == [
        ("", 0),
        ("T4", 2),
        ("V100M16", 8),
        ("V100M32", 8),
    ]
    v100 = next(n for n in nodes if n.accelerator_model == "V100M32")
    assert v100.cpu_milli == 96_000 and v100.memory_bytes == 786432 * 2**20


def test_spot_fleet_layout_in_any_column_order(tmp_path: Path) -> None:
    fleet = load_fleet_file(write(tmp_path, "spot.csv", SPOT), clusters=1)
    (cluster,) = fleet.values()
    assert [(n.accelerator_model, n.accelerators, n.cpu_milli) for n in cluster.nodes] == [
        ("A10", 1, 128_000), ("A100-SXM4-80GB", 8, 128_000), ("H800", 8, 192_000)]
    assert cluster.nodes[0].memory_bytes == 128 * 8 * 2**30  # memory per vCPU when the layout has none


def test_a_cluster_column_wins_over_dealing(tmp_path: Path) -> None:
    text = "cluster,region,sn,cpu_milli,memory_mib,gpu,model\nc1,east,a,1000,1024,1,T4\nc2,west,b,1000,1024,1,T4\n"
    fleet = load_fleet_file(write(tmp_path, "nodes.csv", text))
    assert {(c.name, c.region) for c in fleet.values()} == {("c1", "east"), ("c2", "west")}


def test_the_real_fleet_loads() -> None:
    path = Path(__file__).resolve().parents[3] / "shared" / "data" / "alibaba-spot-gpu-fleet-2026.csv"
    if not path.exists():
        pytest.skip("the shared data directory is not next to this checkout")
    fleet = load_fleet_file(path, clusters=8)
    assert sum(len(c.nodes) for c in fleet.values()) == 4278
    assert sum(n.accelerators for c in fleet.values() for n in c.nodes) == 10412


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("bad.csv", "a,b\n1,2\n", "header: expected columns"),
        ("bad.csv", "sn,cpu_milli,memory_mib,gpu,model\nx,lots,1,1,T4\n", "bad.csv:2: column cpu_milli"),
        ("bad.csv", "sn,cpu_milli,memory_mib,gpu,model\nx,1,1,8,\n", "bad.csv:2: column model"),
        ("bad.csv", "gpu_model,gpu_capacity_num,cpu_num,node_name\nA10,-1,8,n\n", "column gpu_capacity_num"),
        ("fleet.yaml", "clusters: [{name: a}]", "clusters[0].region"),
    ],
    ids=["unknown-layout", "not-a-number", "gpus-without-model", "negative-gpus", "yaml-field"],
)
def test_bad_fleets_name_row_and_column(tmp_path: Path, name: str, text: str, words: str) -> None:
    with pytest.raises(TraceError, match=words.replace("[", r"\[").replace("]", r"\]")):
        load_fleet_file(write(tmp_path, name, text), clusters=None)


def test_clusters_flag_is_for_csv_fleets_only(examples: Path) -> None:
    with pytest.raises(TraceError, match="--clusters"):
        load_fleet_file(examples / "fleet.yaml", clusters=3)


def test_pods_become_one_replica_jobs(tmp_path: Path) -> None:
    jobs = {j.spec.name: j for j in load_workload(write(tmp_path, "pods.csv", PODS))}
    assert [j.spec.name for j in load_workload(write(tmp_path, "pods.csv", PODS))] == ["p-two", "p-frac", "p-cpu"]
    frac, two, cpu = jobs["p-frac"], jobs["p-two"], jobs["p-cpu"]
    assert (
        frac.spec.resources.accelerator_milli == 250 and frac.spec.kind is JobKind.INFERENCE and frac.duration is None
    )
    assert two.spec.resources.accelerator_milli == 2000 and two.spec.accelerator_models == ("V100M16", "V100M32")
    assert two.spec.preemptible and two.duration == 3595 and two.arrival == 0
    assert cpu.spec.resources.accelerator_milli == 0 and cpu.spec.resources.cpu_milli == 2000 and cpu.duration == 20


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ("p,1000,1024,2,500,,LS,Running,0,,0", "column gpu_milli: a pod with 2 GPUs"),
        ("p,1000,1024,1,0,,LS,Running,0,,0", "column gpu_milli: must be 1..1000"),
        ("p,1000,1024,1,500,V100 M16,LS,Running,0,,0", "column gpu_spec"),
        ("p,1000,1024,1,500,,LS,Running,soon,,0", "column creation_time"),
        ("p,0,0,0,0,,LS,Running,0,,0", "asks for nothing"),
    ],
    ids=["split-gpus", "zero-fraction", "bad-model", "bad-time", "empty-pod"],
)
def test_bad_pods_name_row_and_column(tmp_path: Path, row: str, words: str) -> None:
    header = PODS.splitlines()[0]
    with pytest.raises(TraceError, match=f"pods.csv:2: .*{words}"):
        load_workload(write(tmp_path, "pods.csv", f"{header}\n{row}\n"))


def test_job_yaml_workloads_use_the_sim_annotations(examples: Path) -> None:
    jobs = load_workload(examples / "jobs" / "llm-pretrain.yaml")
    assert jobs[0].duration == 4.0


def test_the_generator_is_seeded_and_its_output_loads(tmp_path: Path) -> None:
    a, b = generate_pods(300, seed=3), generate_pods(300, seed=3)
    assert a == b and a != generate_pods(300, seed=4)
    path = tmp_path / "pods.csv"
    with path.open("w") as f:
        write_pods(a, f)
    jobs = load_workload(path)
    assert len(jobs) == 300
    shapes = {(j.spec.resources.accelerator_milli > 0, j.spec.resources.accelerator_milli % 1000 != 0) for j in jobs}
    assert shapes == {(False, False), (True, False), (True, True)}  # CPU-only, whole and fractional GPUs


def test_the_committed_sample_loads(examples: Path) -> None:
    assert len(load_workload(examples / "workloads" / "pods-sample.csv")) == 500


@pytest.mark.parametrize("name", ["nodes.csv", "fleet.yaml"])
def test_a_binary_fleet_names_the_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\xf7\x00\x81binary")
    with pytest.raises(TraceError, match=f"{name}: is not UTF-8 text"):
        load_fleet_file(path, clusters=None)


def test_a_binary_pod_trace_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "pods.csv"
    path.write_bytes(b"\xf7\x00\x81binary")
    with pytest.raises(TraceError, match="pods.csv: is not UTF-8 text"):
        load_workload(path)
