"""A Kueue member whose one flavor (no nodeLabels) runs on two accelerator models (outside tester F4).

member-b's ClusterQueue had 8 GPUs of quota, nothing in use, on A100 and L40S nodes. The agent spent the quota
once over both pools, the freest A100 node first, and reported the L40S pool `0/8 (8 quota held)`: a 2 x 4 L40S
gang waited for ever while the same Job created on member-b was admitted by Kueue at once. Each pool now has the
whole quota left; a gang over it (2 x 8 A100) is still never sent.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from kube_support import (
    JOBS_NAMESPACE,
    WORKLOADS,
    Kube,
    own_bed,
    ready_members,
    service_account_kubeconfig,
    serving,
)
from support import ROOT, eventually

try:
    from tests.testbed.testbed import A100, DELAY_ANNOTATION, L40S, gpu_nodes
except ImportError:  # pytest's "prepend" import mode puts tests/ on sys.path
    sys.path.insert(0, str(ROOT / "tests" / "testbed"))
    from testbed import A100, DELAY_ANNOTATION, L40S, gpu_nodes  # type: ignore[no-redef]

pytestmark = [pytest.mark.kube, pytest.mark.timeout(900)]

QUEUE = "federated"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    """member-b alone: 2 x 8 A100 and 2 x 4 L40S behind Kueue, one flavor without nodeLabels, 8 GPUs of quota."""
    nodes = {"member-b": gpu_nodes("member-b-a100", A100, 2, 8) + gpu_nodes("member-b-l40s", L40S, 2, 4)}
    workdir = tmp_path_factory.mktemp("kueue-pools-federation")
    with own_bed(tmp_path_factory.mktemp("kueue-pools-testbed"), members=("member-b",), nodes=nodes,
                 controllers={"member-b": ("kueue",)}) as tb:
        tb.apply("member-b", [
            {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": "default"}},
            {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": QUEUE},
             "spec": {"namespaceSelector": {}, "resourceGroups": [{
                 "coveredResources": ["cpu", "nvidia.com/gpu"],
                 "flavors": [{"name": "default", "resources": [{"name": "cpu", "nominalQuota": 1000},
                                                               {"name": "nvidia.com/gpu", "nominalQuota": 8}]}]}]}},
            {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue",
             "metadata": {"name": QUEUE, "namespace": WORKLOADS}, "spec": {"clusterQueue": QUEUE}},
        ])
        with serving(tb, workdir) as fed:
            kubeconfig = service_account_kubeconfig(tb, "member-b", "federator-agent", workdir / "member-b.kubeconfig")
            fed.start_kube_agent("member-b", kubeconfig=kubeconfig, region="west", extra_args=["--kueue-queue", QUEUE])
            k = Kube(tb, fed, workdir)
            eventually(lambda: ready_members(k) == ["member-b"], timeout=60, what=lambda: f"member-b Ready\n{k.logs()}")
            yield k


def _gang(name: str, model: str, replicas: int, gpus: int) -> str:
    return yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "namespace": JOBS_NAMESPACE},
        "spec": {"kind": "training", "replicas": replicas, "acceleratorModels": [model],
                 "resources": {"nvidia.com/gpu": gpus, "cpu": "1"},
                 "template": {"metadata": {"annotations": {DELAY_ANNOTATION: "600s"}}}}})


def _status(k: Kube, name: str) -> dict[str, Any]:
    return dict(((k.fj(name) or {}).get("status")) or {})


def test_a_gang_on_either_model_under_one_flavor_is_sent_and_one_over_the_quota_is_not(kube: Kube) -> None:
    kube.kubectl("host", "apply", "-f", "-", input=_gang("a100-over-quota", "A100", 2, 8))
    kube.kubectl("host", "apply", "-f", "-", input=_gang("l40s-in-quota", "L40S", 2, 4))
    try:
        reason = eventually(lambda: (_status(kube, "a100-over-quota").get("pendingReason") or {}).get("message"),
                            timeout=60, what=lambda: f"a100-over-quota pending: {_status(kube, 'a100-over-quota')}")
        assert "held back by the member's own queue quota" in reason, reason
        eventually(lambda: kube.phase("l40s-in-quota") == "Running", timeout=120,
                   what=lambda: f"l40s-in-quota Running: {_status(kube, 'l40s-in-quota')}\n{kube.logs()}")
        status = _status(kube, "a100-over-quota")
        assert status.get("phase") == "Pending" and not status.get("placementId"), status  # never sent to wait
    finally:
        kube.kubectl("host", "delete", "fj", "a100-over-quota", "l40s-in-quota", "--ignore-not-found",
                     "--wait=false")
