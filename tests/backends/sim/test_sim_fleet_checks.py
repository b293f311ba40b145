"""A fleet file's mistakes are named where they are, and its partition pools are the pools a member reports.

Outside QA, planners: `gpus: -8` was refused as `busy` (P10); a misspelt key listed the known keys without the
spellings the shipped example uses (gpuModel, gpus, busyGpus), and a cluster's `regoin` was "region: must be a
non-empty string" (P10); a misspelt model was taken without a word, its memory unknown, so memory asks never fitted
it (P5); a vNPU pool named as a member names it (Ascend310P3-vNPU-2c) got huawei.com/Ascend910, so a job asking
huawei.com/Ascend310P: 250m never fitted it (P14).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from federator.backends.sim.fleet import ClusterSpec, FleetError, parse_fleet
from federator.backends.sim.nodes import NodeSet
from federator.backends.sim.pool_names import unknown_models
from federator.catalog import builtin_catalog, parse_catalog_text
from federator.jobfile import parse_job
from federator.simulate import SimJob, Simulation

from support import federator_cli


def fleet(*groups: dict[str, Any], **cluster: Any) -> dict[str, Any]:
    return {"clusters": [{"name": "a", "region": "r1", "nodes": list(groups), **cluster}]}


def group(**keys: Any) -> dict[str, Any]:
    return {"count": 4, "gpuModel": "NVIDIA-H100-80GB-HBM3", "gpus": 8, "cpu": 96, "memory": "1Ti", **keys}


def refusal(doc: dict[str, Any]) -> str:
    with pytest.raises(FleetError) as caught:
        parse_fleet(doc, source="f.yaml")
    return str(caught.value)


@pytest.mark.parametrize(("doc", "said"), [
    (fleet(group(gpus=-8)), "f.yaml: clusters[0].nodes[0].gpus: must be 0 or more (accelerators on each node), "
                            "got -8"),
    (fleet({"count": 1, "model": "H800", "accelerators": -1}), "clusters[0].nodes[0].accelerators: must be 0 or more"),
    (fleet(group(busyGpus=9)), "f.yaml: clusters[0].nodes[0].busyGpus: must be between 0 and gpus (8), got 9"),
    (fleet(group(gpuModle="X")), "f.yaml: clusters[0].nodes[0].gpuModle: is not a known field (did you mean "
                                 "gpuModel?) (known: count, vendor, model (or gpuModel), accelerators (or gpus), busy "
                                 "(or busyGpus), cpu, memory, memoryMiB, sharing, unitMilli)"),
    ({"clusters": [{"name": "a", "regoin": "r1", "nodes": [group()]}]},
     "f.yaml: clusters[0].regoin: is not a known field (did you mean region?) (known: name, region, labels, nodes)"),
], ids=["gpus-negative", "accelerators-negative", "busy-above", "typo-key", "typo-cluster-key"])
def test_a_fleet_mistake_is_named_by_the_field_the_file_has(doc: dict[str, Any], said: str) -> None:
    assert said in refusal(doc)


def test_a_misspelt_model_is_said_with_its_field_and_the_nearest_catalog_names() -> None:
    clusters = parse_fleet(fleet(group(gpuModel="NVIDIA-H100-80GB-HBM4"),
                                 {"count": 2, "vendor": "huawei", "model": "Ascend910X", "accelerators": 16}),
                           source="typo.yaml")
    first, second = unknown_models(clusters.values())
    assert first.startswith("typo.yaml: clusters[0].nodes[0].gpuModel: 'NVIDIA-H100-80GB-HBM4' is not a model the "
                            "accelerator catalog knows (did you mean NVIDIA-H100-80GB-HBM3?): its memory is unknown, "
                            "so no minMemoryMiB ask fits its 4 nodes; if it is real, declare it with "
                            "--accelerator-catalog")
    assert second.startswith("typo.yaml: clusters[0].nodes[1].model: 'Ascend910X' is not a model the accelerator "
                             "catalog knows (did you mean Ascend910B")


def test_known_models_partitions_and_a_declared_model_are_not_said() -> None:
    clusters = parse_fleet(fleet(
        group(), {"count": 1, "model": "H800", "accelerators": 8},  # a short name the catalog's words select
        {"count": 1, "vendor": "cambricon", "model": "MLU", "accelerators": 8},  # a vendor's generic name
        {"count": 1, "model": "NVIDIA-A100-80GB-MIG-1g.10gb", "accelerators": 56, "sharing": "MIG",
         "unitMilli": 125},
        {"count": 1, "model": "Ascend310P3-vNPU-2c", "accelerators": 32, "sharing": "MIG", "unitMilli": 250},
        {"count": 1, "model": "GPU-series-1", "accelerators": 8}))
    (said,) = unknown_models(clusters.values())  # only the undisclosed model, with no name close to it
    assert "'GPU-series-1' is not a model the accelerator catalog knows (no catalog name is close)" in said
    base = builtin_catalog()  # a file merged over the built-in one, as --accelerator-catalog reads it
    declared = base.merged(parse_catalog_text(
        "vendors:\n  nvidia:\n    models:\n      - {name: GPU-series-1, memoryMiB: 98304}\n", base=base))
    assert unknown_models(clusters.values(), declared) == []


def test_a_vnpu_pool_named_as_a_member_names_it_has_its_templates_resource() -> None:
    specs = parse_fleet(fleet({"count": 1, "vendor": "huawei", "model": "Ascend310P3-vNPU-2c", "accelerators": 32,
                               "cpu": 64, "memory": "512Gi", "sharing": "MIG", "unitMilli": 250}))["a"].nodes
    (pool,) = NodeSet.of(specs).capacity().accelerator_pools
    # as backends/kube/vnpu.py reports it: the template's resource, cut from its chip's, and the chip's family
    assert (pool.vendor, pool.resource_name, pool.family) == ("huawei", "huawei.com/Ascend310P-2c", "Ascend310P")
    assert pool.of_resource("huawei.com/Ascend310P") and not pool.of_resource("huawei.com/Ascend910")
    job = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "vj"},
                     "spec": {"kind": "inference", "replicas": 32,
                              "resources": {"huawei.com/Ascend310P": "250m", "cpu": "1", "memory": "4Gi"},
                              "template": {"spec": {"containers": [{"name": "t", "image": "x"}]}}}})
    report = Simulation({"a": ClusterSpec("a", "r1", (), specs)}, [SimJob(job, 0.0, None)]).run("fill")
    assert (report.jobs_placed, report.pending_reasons) == (1, {})  # was AcceleratorUnavailable


@pytest.mark.parametrize(("group_keys", "said"), [
    ({"model": "Ascend310X-vNPU-2c", "sharing": "MIG", "unitMilli": 250},
     "clusters[0].nodes[0].model: Ascend310X-vNPU-2c names a vNPU of chip Ascend310X, which the accelerator catalog "
     "does not know"),
    ({"model": "Ascend310P3-vNPU-2c"},
     "clusters[0].nodes[0].sharing: Ascend310P3-vNPU-2c is a vNPU pool, which a member reports as hardware "
     "partitions: give it sharing: MIG and unitMilli: 250 (2 of Ascend310P3's 8 AI cores)"),
    ({"model": "Ascend310P3-vNPU-2c", "sharing": "MIG", "unitMilli": 500},
     "clusters[0].nodes[0].unitMilli: a member reports Ascend310P3-vNPU-2c at 250 (2 of Ascend310P3's 8 AI cores), "
     "got 500"),
], ids=["unknown-chip", "not-a-partition-pool", "not-the-members-worth"])
def test_a_vnpu_pool_a_member_could_not_report_is_refused(group_keys: dict[str, Any], said: str) -> None:
    assert said in refusal(fleet({"count": 1, "vendor": "huawei", "accelerators": 32, **group_keys}))


def test_the_shipped_example_fleet_has_nothing_to_say(examples: Path) -> None:
    from federator.backends.sim.fleet import load_fleet

    assert unknown_models(load_fleet(examples / "fleet.yaml").values()) == []


def test_sim_warns_of_a_misspelt_model_on_stderr_and_still_runs(tmp_path: Path, examples: Path) -> None:
    (tmp_path / "typo.yaml").write_text("clusters:\n  - name: a\n    region: r1\n    nodes:\n"
                                        "      - {count: 4, gpuModel: NVIDIA-H100-80GB-HBM4, gpus: 8, cpu: 96, "
                                        "memory: 1Ti}\n")
    out = federator_cli("sim", "--fleet", str(tmp_path / "typo.yaml"), "--workload",
                        str(examples / "workloads" / "pods-sample.csv"), "-o", "json")
    assert out.returncode == 0
    assert json.loads(out.stdout)["accelerator_capacity"] == 32  # the report is unchanged, on stdout
    (warning,) = out.stderr.splitlines()
    assert warning.startswith(f"federator sim: warning: {tmp_path / 'typo.yaml'}: clusters[0].nodes[0].gpuModel: "
                              "'NVIDIA-H100-80GB-HBM4' is not a model the accelerator catalog knows (did you mean "
                              "NVIDIA-H100-80GB-HBM3?)")


def _live(**cluster: Any) -> dict[str, Any]:
    """A cluster as `get clusters -o yaml` writes it (its capacity, CPU only)."""
    return {"capacity": {"cpu_milli_allocatable": 1000}, **cluster}


@pytest.mark.parametrize(("entries", "said"), [
    ([{"region": "r1"}], "[0].name: must be a non-empty string"),
    ([{"name": "a", "region": ""}], "[0].region: must be a non-empty string"),
    ([{"name": "a", "region": "r1"}, {"name": "a", "region": "r2"}], "[1].name: duplicate cluster 'a'"),
    ([{"name": "a", "region": "r1", "labels": ["tier=gold"]}], "[0].labels: must be a mapping"),
], ids=["no-name", "empty-region", "duplicate", "labels-list"])
def test_a_fleet_file_and_the_live_view_check_a_clusters_name_region_and_labels_alike(
        entries: list[dict[str, Any]], said: str) -> None:
    """One rule (fleet.cluster_identity) for both readers `federator sim --fleet` takes, each with its own error."""
    from federator.simulate.live_fleet import LiveFleetError, fleet_of_cluster_list
    assert f"f.yaml: clusters{said}" in refusal({"clusters": [{**e, "nodes": [group()]} for e in entries]})
    with pytest.raises(LiveFleetError) as caught:
        fleet_of_cluster_list([_live(**e) for e in entries], source="live.yaml")
    assert f"live.yaml: {said}" in str(caught.value)


def test_a_clusters_labels_are_kept_as_sorted_text_pairs_by_both_readers() -> None:
    from federator.simulate.live_fleet import fleet_of_cluster_list
    labels = {"tier": "gold", "federator.io/price-per-accelerator-hour": 4.1}
    want = (("federator.io/price-per-accelerator-hour", "4.1"), ("tier", "gold"))
    assert parse_fleet(fleet(group(), labels=labels))["a"].labels == want
    assert fleet_of_cluster_list([_live(name="a", region="r1", labels=labels)])["a"].labels == want
