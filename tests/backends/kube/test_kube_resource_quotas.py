"""A provider's ResourceQuota in the namespaces the agent places work in is held against its report.

Outside provider QA F6: `requests.nvidia.com/gpu: 4` in the workload namespace, yet `get clusters` kept
offering 16 A100s; a 2 x 8 gang was sent and every pod refused by the quota.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from federator.backends.kube.api import ForbiddenError
from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.informer import ADDED
from federator.backends.kube.resource_quotas import ResourceQuotas, quota_room

GPU = "nvidia.com/gpu"
A100 = "NVIDIA-A100-SXM4-80GB"


def _quota(namespace: str, hard: dict[str, str], used: dict[str, str] | None = None, *,
           name: str = "provider-cap", synced: bool = True) -> dict[str, Any]:
    status = {"hard": dict(hard), "used": dict(used or {})} if synced else {}
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {"hard": dict(hard)}, "status": status}


def _node(name: str, gpus: int = 8) -> dict[str, Any]:
    amounts = {"cpu": "64", "memory": "512Gi", "pods": "110", GPU: str(gpus)}
    return {"metadata": {"name": name, "labels": {"nvidia.com/gpu.product": A100}}, "spec": {},
            "status": {"capacity": dict(amounts), "allocatable": dict(amounts),
                       "conditions": [{"type": "Ready", "status": "True"}]}}


@pytest.mark.parametrize(("quotas", "room"), [
    ([_quota("w", {f"requests.{GPU}": "4"})], {GPU: 4}),
    ([_quota("w", {f"requests.{GPU}": "16"}, {f"requests.{GPU}": "10"})], {GPU: 6}),
    ([_quota("w", {f"limits.{GPU}": "3"}), _quota("w", {GPU: "5"}, name="other")], {GPU: 3}),
    ([_quota("w", {f"requests.{GPU}": "4"}, {f"requests.{GPU}": "9"})], {GPU: 0}),
    ([_quota("w", {"requests.cpu": "100"})], {}),
    ([_quota("elsewhere", {f"requests.{GPU}": "1"})], {}),
    ([_quota("w", {f"requests.{GPU}": "2"}, synced=False)], {GPU: 2}),
], ids=["requests", "hard-minus-used", "tightest-key", "over-used", "not-accelerators", "other-namespace",
        "not-synced-yet"])
def test_the_room_a_quota_leaves_in_the_workload_namespace(quotas: list[dict[str, Any]],
                                                           room: dict[str, int]) -> None:
    assert quota_room(quotas, [GPU], base="w") == room


def test_per_queue_the_tightest_quota_of_the_agents_namespaces_counts() -> None:
    quotas = [_quota("w-research", {f"requests.{GPU}": "4"}), _quota("w-vision", {f"requests.{GPU}": "12"}),
              _quota("kube-system", {f"requests.{GPU}": "0"})]
    assert quota_room(quotas, [GPU], base="w", per_queue=True) == {GPU: 4}
    assert quota_room(quotas, [GPU], base="w") == {}  # one namespace: only its own quotas


def _backend(quotas: list[dict[str, Any]], *, per_queue: bool = False) -> KubeBackend:
    b = KubeBackend(object(), namespace="w", namespace_per_queue=per_queue)  # type: ignore[arg-type]
    for n in ("n1", "n2"):
        b.nodes._apply_event(ADDED, _node(n))
    for q in quotas:
        b.quotas.informer._apply_event(ADDED, q)
    b.quotas.informer._thread = threading.Thread(target=lambda: None)  # as if started (Informer.started)
    return b


@pytest.mark.parametrize("per_queue", [False, True], ids=["one-namespace", "namespace-per-queue"])
def test_the_report_holds_back_what_the_quota_does_not_leave(per_queue: bool) -> None:
    namespace = "w-research" if per_queue else "w"
    [pool] = _backend([_quota(namespace, {f"requests.{GPU}": "4"})], per_queue=per_queue).capacity().accelerator_pools
    assert (pool.free_accelerators, pool.quota_held_accelerators, pool.allocatable_accelerators) == (4, 12, 16)
    assert pool.gang_capacity(8) == 0  # the 2 x 8 gang the member would refuse is not sent here


def test_without_a_quota_on_accelerators_nothing_is_held() -> None:
    [pool] = _backend([_quota("w", {"pods": "10"})]).capacity().accelerator_pools
    assert (pool.free_accelerators, pool.quota_held_accelerators) == (16, 0)


class _NoQuotas:
    server = "https://member"

    def list(self, res: Any, namespace: str | None = None, **_: Any) -> dict[str, Any]:
        raise ForbiddenError(403, 'resourcequotas is forbidden: User "system:serviceaccount:..." cannot list')


def test_without_rbac_for_resource_quotas_the_agent_says_so(caplog: pytest.LogCaptureFixture) -> None:
    quotas = ResourceQuotas(_NoQuotas(), base="w", per_queue=False)  # type: ignore[arg-type]
    assert not quotas.readable()
    assert "may not list resourcequotas" in caplog.text and "rbac-agent.yaml" in caplog.text
    assert quotas.room([GPU]) == {}
