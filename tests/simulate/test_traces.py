"""Fleet and workload files for the simulator: both Alibaba node CSV layouts, pod CSVs, YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from federator.model import JobKind
from federator.simulate import Simulation, TraceError, load_fleet_file, load_workload
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


def test_a_blank_region_is_its_clusters(tmp_path: Path) -> None:
    """A cluster's region said on one row holds for its rows that leave it blank: keyed by (cluster, region), the
    cluster was two, and the one built last replaced the other (its nodes lost without a word)."""
    text = "cluster,region,sn,cpu_milli,memory_mib,gpu,model\nc1,,a,1,1,1,T4\nc1,east,b,1,1,1,T4\nc2,,c,1,1,1,T4\n"
    fleet = load_fleet_file(write(tmp_path, "nodes.csv", text))
    assert {(c.name, c.region, len(c.nodes)) for c in fleet.values()} == {("c1", "east", 2), ("c2", "c2", 1)}


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


# Outside QA, planners P12: a blank, a non-whole value, a short row, a deletion before creation were read silently
# as something else (a node of 0 GPUs, 8 of 8.9, a zero-length job).
@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("gpu_model,gpu_capacity_num,cpu_num,node_name\nH800,,96,n1\n",
         "f.csv:2: column gpu_capacity_num: is blank, but the row names the GPU model H800"),
        ("gpu_model,gpu_capacity_num,cpu_num,node_name\nH800,8.9,96,n1\n",
         "f.csv:2: column gpu_capacity_num: must be a whole number, got '8.9'"),
        ("gpu_model,gpu_capacity_num,cpu_num,node_name\nH800,8,96\n",
         "f.csv:2: column node_name: missing: the row has 3 fields, the header 4"),
        ("gpu_model,gpu_capacity_num,cpu_num,node_name\nH800,8,96,n1,extra\n",
         "f.csv:2: has 5 fields, the header 4"),
        ("gpu_model,gpu_capacity_num,cpu_num,node_name\nH800,8,,n1\n", "f.csv:2: column cpu_num: is blank"),
        ("gpu_model,gpu_capacity_num,cpu_num,node_name\nH800,inf,96,n1\n", "column gpu_capacity_num: must be a whole"),
        ("sn,cpu_milli,memory_mib,gpu,model\nx,96000,,8,T4\n", "f.csv:2: column memory_mib: is blank"),
        ("cluster,region,sn,cpu_milli,memory_mib,gpu,model\nc1,east,a,1,1,1,T4\nc1,west,b,1,1,1,T4\n",
         "f.csv:3: column region: cluster c1 is in region east (line 2), this row says west"),
        ("cluster,region,sn,cpu_milli,memory_mib,gpu,model\n,east,a,1,1,1,T4\n",
         "f.csv:2: column cluster: is blank, but the row names the region east"),
    ],
    ids=["blank-count-with-model", "fraction-of-a-device", "short-row", "long-row", "blank-cpu", "infinite",
         "blank-memory", "two-regions-of-a-cluster", "region-without-cluster"],
)
def test_fleet_csv_values_are_never_read_as_something_else(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(TraceError) as caught:
        load_fleet_file(write(tmp_path, "f.csv", text), clusters=1)
    assert words in str(caught.value)


def test_blanks_keep_their_documented_defaults(tmp_path: Path) -> None:
    fleet = load_fleet_file(write(tmp_path, "f.csv", "gpu_model,gpu_capacity_num,cpu_num,node_name\n"
                                                     ",,32,\nH800,8.0,96,n1\n"), clusters=1)
    assert [(n.accelerator_model, n.accelerators, n.cpu_milli) for c in fleet.values() for n in c.nodes] == [
        ("", 0, 32_000), ("H800", 8, 96_000)]  # a CPU-only row's blank count is 0; 8.0 is whole
    header = PODS.splitlines()[0]
    (pod,) = load_workload(write(tmp_path, "p.csv", f"{header}\n,1000,1024,1,,,,,,,\n"))
    assert pod.spec.resources.accelerator_milli == 1000 and pod.spec.name == "pod-0" and pod.duration is None


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ("p1,1000,1024,1,500,H800,LS,Running,100,50,100", "column deletion_time: 50 is before creation_time 100"),
        ("p1,1000,1024,1,500,H800,LS,Running,100,150,200", "column deletion_time: 150 is before scheduled_time 200"),
        ("p1,1000,1024,,500,H800,LS,Running,0,,0", "column num_gpu: is blank"),
        ("p1,1000,1024,2.5,1000,,LS,Running,0,,0", "column num_gpu: must be a whole number, got '2.5'"),
        ("p1,1000,1024,1,500,H800,LS,Running,0,nan,0", "column deletion_time: must be a number of seconds"),
        ("p1,1000,1024,1,500,H800,LS,Running,0", "column deletion_time: missing"),
    ],
    ids=["deleted-before-created", "deleted-before-scheduled", "blank-gpus", "fraction-of-gpus", "nan-time",
         "short-row"],
)
def test_pod_values_are_never_read_as_something_else(tmp_path: Path, row: str, words: str) -> None:
    header = PODS.splitlines()[0]
    with pytest.raises(TraceError, match=f"p.csv:2: {words}"):
        load_workload(write(tmp_path, "p.csv", f"{header}\n{row}\n"))


# Outside QA, planners P6: a pod CSV could ask NVIDIA only; gpu_spec=Ascend910B waited for ever beside idle Ascends.
def pods_asking(tmp_path: Path, *specs: str) -> Path:
    header = PODS.splitlines()[0]
    rows = [f"p{i},1000,1024,8,1000,{s},LS,Succeeded,{i},,{i}" for i, s in enumerate(specs)]
    return write(tmp_path, "p.csv", "\n".join([header, *rows]) + "\n")


def test_a_pod_csv_asks_for_any_vendor_the_fleet_has(tmp_path: Path, examples: Path) -> None:
    fleet = load_fleet_file(examples / "fleet.yaml")  # central-1 has 10 x 16 Ascend910B, idle
    jobs = load_workload(pods_asking(tmp_path, *["Ascend910B"] * 12, "huawei", ""), fleet=fleet)
    report = Simulation(fleet, jobs).run("fill")
    assert report.jobs_placed == 14 and report.jobs_pending == 0
    asc = jobs[0].spec
    assert [(a.model, a.vendor, a.milli) for a in asc.accelerators] == [("Ascend910B", "", 8000)]
    assert [(a.model, a.vendor) for a in jobs[12].spec.accelerators] == [("", "huawei")]  # a vendor: any model
    assert [(a.model, a.vendor) for a in jobs[13].spec.accelerators] == [("", "")]  # blank: any vendor


def test_nvidia_only_asks_keep_the_one_count_form(tmp_path: Path, examples: Path) -> None:
    """So a trace over an NVIDIA fleet, or asking NVIDIA models, simulates exactly as before 0.14.0."""
    nvidia = load_fleet_file(write(tmp_path, "f.csv", SPOT), clusters=1)
    (blank,) = load_workload(pods_asking(tmp_path, ""), fleet=nvidia)
    assert blank.spec.accelerators == () and blank.spec.resources.accelerator_milli == 8000
    mixed = load_fleet_file(examples / "fleet.yaml")
    (h800,) = load_workload(pods_asking(tmp_path, "H800|A100-SXM4-80GB"), fleet=mixed)
    assert h800.spec.accelerators == () and h800.spec.accelerator_models == ("H800", "A100-SXM4-80GB")
    (any_nvidia,) = load_workload(pods_asking(tmp_path, "nvidia"), fleet=mixed)  # a vendor: any of its models
    assert any_nvidia.spec.accelerators == () and any_nvidia.spec.accelerator_models == ()
    assert Simulation(mixed, [any_nvidia]).run("fill").jobs_placed == 1


def test_a_model_nothing_knows_is_refused_naming_row_and_column(tmp_path: Path, examples: Path) -> None:
    with pytest.raises(TraceError, match=r"p.csv:3: column gpu_spec: 'H80O' is a model no pool of the fleet and no "
                                         r"entry of the accelerator catalog knows \(the fleet has: Ascend910B, "):
        load_workload(pods_asking(tmp_path, "H800", "A10|H80O"), fleet=load_fleet_file(examples / "fleet.yaml"))
    spot = load_fleet_file(write(tmp_path, "f.csv", "gpu_model,gpu_capacity_num,cpu_num,node_name\n"
                                                    "GPU-series-1,8,96,n\n"))
    (pod,) = load_workload(pods_asking(tmp_path, "GPU-series-1"), fleet=spot)  # the fleet's own undisclosed model
    assert pod.spec.accelerator_models == ("GPU-series-1",)
