"""Accelerators on a node without the label naming their model are not offered, and every pool offered is pinned.

Outside provider QA F3: a GPU node before GPU feature discovery labelled it became pool `unknown`; its pod asked
only for `nvidia.com/gpu`, so it landed on an A100 node while the unlabelled node idled. The same for AMD
(`AMD-GPU`) and Ascend (`Ascend910`). The nodes come from tests/testbed/vendors.py, as the test bed's.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from typing import Any

import pytest
import yaml

from federator.agent.metrics import AgentMetrics
from federator.backends.kube import accelerators
from federator.backends.kube.capacity import cluster_capacity
from federator.backends.kube.discovery import Discovery
from federator.backends.kube.unlabelled import UnlabelledAccelerators
from federator.jobfile import JobFileError, parse_job
from federator.model import MILLI, AcceleratorPool, ClusterCapacity
from federator.server.fleet_models import FleetModels

from support import ROOT

sys.path.insert(0, str(ROOT / "tests" / "testbed"))
import vendors  # noqa: E402  (tests/testbed is not a package)

from testbed import NodeSpec  # noqa: E402

DISCOVERY = Discovery.from_catalog()


def _node(spec: NodeSpec, *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    node = spec.manifest()
    node["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    labels = node["metadata"].setdefault("labels", {})
    for key in [k for k in labels if k in drop or any(k.endswith(d) for d in drop if d.startswith("."))]:
        del labels[key]
    return node


def _a100(name: str) -> NodeSpec:
    return NodeSpec(name, vendors.A100, 8, labels=vendors._gfd_labels(vendors.A100, 8, 81920, "ampere"))


UNLABELLED = {
    "nvidia": (lambda: _a100("nolabel-0"), ("nvidia.com/gpu.product",), "nvidia.com/gpu"),
    "amd": (lambda: vendors.amd_nodes("mi", 1)[0], ("amd.com/gpu.product-name",), "amd.com/gpu"),
    "ascend": (lambda: vendors.ascend_nodes("npu", 1)[0],
               ("huawei.com/npu.chip.name", "node.kubernetes.io/npu.chip.name"), "huawei.com/Ascend910"),
    "hami": (lambda: vendors.hami_nodes("h", 1)[0], ("nvidia.com/gpu.product",), "nvidia.com/gpu"),
    "mig": (lambda: vendors.mig_nodes("m", 1, {"3g.40gb": 4})[0], (".product",), "nvidia.com/mig-3g.40gb"),
}


@pytest.mark.parametrize("kind", sorted(UNLABELLED))
def test_a_node_without_its_product_label_is_not_a_pool_but_counted_unlabelled(kind: str) -> None:
    build, drop, resource = UNLABELLED[kind]
    labelled = _node(_a100("a100-0"))
    bare = _node(build(), drop=drop)
    cap = cluster_capacity([labelled, bare], [], discovery=DISCOVERY)
    assert [(p.vendor, p.accelerator_model) for p in cap.accelerator_pools] == [("nvidia", vendors.A100)]
    (found,) = DISCOVERY.unlabelled([labelled, bare])
    assert (found.node, found.resource) == (bare["metadata"]["name"], resource)
    assert found.devices > 0 and found.missing_label


POOLS = {
    "nvidia": lambda: _a100("a100-0"),
    "amd": lambda: vendors.amd_nodes("mi", 1)[0],
    "ascend": lambda: vendors.ascend_nodes("npu", 1)[0],
    "hami": lambda: vendors.hami_nodes("h", 1)[0],
    "mig": lambda: vendors.mig_nodes("m", 1, {"3g.40gb": 4})[0],
    "shared": lambda: vendors.time_sliced_nodes("t", 1)[0],
}


@pytest.mark.parametrize("kind", sorted(POOLS))
def test_every_pool_offered_renders_a_pod_pinned_to_its_model(kind: str) -> None:
    node = _node(POOLS[kind]())
    groups = DISCOVERY.groups([node], [])
    assert groups
    for g in groups:
        whole = g.sharing.serves_whole
        request = accelerators.render(g, MILLI if whole else g.unit_milli or MILLI // 2)
        assert request.node_selector, (kind, g.model)
        labels = node["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in request.node_selector.items())


def test_the_unlabelled_count_is_warned_once_per_node_and_exported(caplog: pytest.LogCaptureFixture) -> None:
    bare = _node(_a100("nolabel-0"), drop=("nvidia.com/gpu.product",))
    watch = UnlabelledAccelerators()
    with caplog.at_level(logging.WARNING, logger="federator.agent.kube"):
        for _ in range(3):
            counts = watch.seen(DISCOVERY.unlabelled([bare]))
    said = [r.getMessage() for r in caplog.records if "nolabel-0" in r.getMessage()]
    assert len(said) == 1 and "nvidia.com/gpu.product" in said[0]
    assert counts == {"nvidia.com/gpu": 8}
    metrics = AgentMetrics(cluster="c", region="r")
    metrics.unlabelled(counts)
    assert metrics.registry.get_sample_value("federator_agent_unlabelled_accelerators",
                                             {"resource": "nvidia.com/gpu"}) == 8
    metrics.unlabelled(watch.seen([]))  # labelled since: the gauge falls to 0
    assert metrics.registry.get_sample_value("federator_agent_unlabelled_accelerators",
                                             {"resource": "nvidia.com/gpu"}) == 0


def _job(models: str) -> Any:
    resources = "{cpu: 1}" if models.startswith("accelerators") else "{nvidia.com/gpu: 8}"
    spec = yaml.safe_load(f"kind: training\nreplicas: 1\nqueue: research\nresources: {resources}\n"
                          f"{models}\ntemplate: {{spec: {{containers: [{{name: t, image: busybox}}]}}}}\n")
    return {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "j"}, "spec": spec}


@pytest.mark.parametrize(("models", "field"), [
    ("acceleratorModels: [unknown]", "spec.acceleratorModels[0]"),
    ("acceleratorModels: [H100, Unknown]", "spec.acceleratorModels[1]"),
    ("accelerators: [{model: Ascend910, vendor: huawei, count: 8}]", "spec.accelerators[0].model"),
    ("accelerators: [{model: Ascend310, count: 8}]", "spec.accelerators[0].model"),
], ids=["unknown", "unknown-second", "ascend-fallback", "ascend310-fallback"])  # MLU, DCU, Gaudi, AMD-GPU: any of
# their vendor's models now (tests/server/test_generic_model_names.py)
def test_a_placeholder_model_name_is_refused_naming_the_field(models: str, field: str) -> None:
    with pytest.raises(JobFileError) as err:
        parse_job(_job(models))
    assert field in str(err.value) and "names no accelerator model" in str(err.value)


def test_a_catalog_model_of_a_vendor_whose_labeller_names_it_is_a_name() -> None:
    """Cambricon, Hygon and Gaudi pools are named by their labellers' labels now (outside QA, V3)."""
    parse_job(_job("accelerators: [{model: MLU370-X8, count: 8}, {model: DCU-K100, count: 8}, "
                   "{model: Gaudi3, count: 8}]"))


def test_the_federator_refuses_a_placeholder_model_a_member_still_reports() -> None:
    """An older agent may still report pool `unknown`; a client that skips the file checks is refused anyway."""
    fleet = FleetModels()
    fleet.reported("old", ClusterCapacity(accelerator_pools=(AcceleratorPool("unknown", (0, 1), 8, 8),)))
    spec = parse_job(_job("acceleratorModels: [H100]"))
    problem = fleet.unknown(replace(spec, accelerator_models=("unknown",)))
    assert problem.startswith("spec.acceleratorModels[0]: ") and "names no accelerator model" in problem


def test_the_agent_exports_its_backends_unlabelled_count_at_each_report() -> None:
    from federator.agent.agent import Agent, AgentConfig
    from federator.backends.kube.backend import KubeBackend
    from federator.backends.kube.informer import ADDED

    backend = KubeBackend(object(), namespace="w")  # type: ignore[arg-type]
    backend.nodes._apply_event(ADDED, _node(_a100("a100-0")))
    backend.nodes._apply_event(ADDED, _node(_a100("nolabel-0"), drop=("nvidia.com/gpu.product",)))
    agent = Agent(AgentConfig(cluster="b", region="us", target="127.0.0.1:1"), backend)
    report = agent._report()
    assert [p.accelerator_model for p in report.capacity.accelerator_pools] == [vendors.A100]
    assert agent.metrics.registry.get_sample_value("federator_agent_unlabelled_accelerators",
                                                   {"resource": "nvidia.com/gpu"}) == 8
