"""Kueue mode: the ClusterQueue's quota left, held against the accelerators an agent reports (kueue_quota.py).

Found on the test bed with the real Kueue: a member with 24 free GPUs behind a ClusterQueue of 8 looked to the
federator like room for a 2 x 8 gang, which Kueue then held for ever ("> maximum capacity (8)").
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from federator.api.convert import capacity_from_pb, capacity_to_pb
from federator.backends.kube.api import ForbiddenError
from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.devices import DeviceGroup, Sharing
from federator.backends.kube.gang import GangGuard
from federator.backends.kube.informer import ADDED
from federator.backends.kube.kueue_quota import flavor_nodes, flavor_quota, headroom, within_quota
from federator.backends.kube.pools import pools

GPU = "nvidia.com/gpu"
LQ = {"metadata": {"name": "lq", "namespace": "w"}, "spec": {"clusterQueue": "cq"}}


def _cq(gpus: Any, reserved: Any = "0", *, cohort: str = "", borrowing: Any = None,
        covered: tuple[str, ...] = (GPU, "cpu")) -> dict[str, Any]:
    gpu: dict[str, Any] = {"name": GPU, "nominalQuota": gpus}
    if borrowing is not None:
        gpu["borrowingLimit"] = borrowing
    spec: dict[str, Any] = {"resourceGroups": [
        {"coveredResources": list(covered),
         "flavors": [{"name": "a100", "resources": [gpu, {"name": "cpu", "nominalQuota": "1k"}]}]}]}
    if cohort:
        spec["cohortName"] = cohort
    return {"metadata": {"name": "cq"}, "spec": spec,
            "status": {"flavorsReservation": [{"name": "a100", "resources": [{"name": GPU, "total": reserved}]}]}}


def test_the_quota_left_is_nominal_less_reserved_and_none_for_what_kueue_never_admits() -> None:
    assert headroom(LQ, _cq(8), [GPU]) == {GPU: 8}
    assert headroom(LQ, _cq("24", reserved="16"), [GPU]) == {GPU: 8}
    assert headroom(LQ, _cq(8, reserved="16"), [GPU]) == {GPU: 0}  # over its quota after a change: none left
    assert headroom(LQ, _cq(8), [GPU, "amd.com/gpu"]) == {GPU: 8, "amd.com/gpu": 0}  # not covered: never admitted


def test_borrowing_in_a_cohort_counts_up_to_its_limit_and_is_not_held_back_without_one() -> None:
    assert headroom(LQ, _cq(8, cohort="shared", borrowing=8), [GPU]) == {GPU: 16}
    assert headroom(LQ, _cq(8, cohort="shared"), [GPU]) == {}  # what the cohort lends is not the agent's to see


def test_unknown_without_the_local_queue_or_its_cluster_queue() -> None:
    assert headroom(None, _cq(8), [GPU]) is None
    assert headroom(LQ, None, [GPU]) is None


def _group(node: str, free: int, *, used: int = 0, sharing: Sharing = Sharing.NONE,
           resource: str = GPU) -> DeviceGroup:
    return DeviceGroup(node=node, vendor="nvidia", model="A100", resource=resource, selector=(), sharing=sharing,
                       devices=free + used, units=free + used, unit_milli=1000, used_units=used)


def test_the_freest_nodes_keep_their_devices_so_a_gang_kueue_admits_still_fits_whole() -> None:
    groups = [_group("n1", 4), _group("n2", 8), _group("n3", 8, used=0), _group("n4", 2, used=6)]
    held = within_quota(groups, {GPU: 10})
    assert [g.free_units for g in held] == [0, 8, 2, 0]  # n2 whole, 2 more from n3, the rest held
    [pool] = pools(held, {g.node for g in held})
    assert pool.free_accelerators == 10 and pool.gang_capacity(8) == 1  # 1 x 8 fits; 2 x 8 does not
    assert [g.free_units for g in within_quota(groups, {})] == [4, 8, 8, 2]  # nothing held back
    assert [g.free_units for g in within_quota(groups, {"amd.com/gpu": 0})] == [4, 8, 8, 2]  # another resource
    shared = [_group("n5", 4, sharing=Sharing.TIME_SLICING)]
    assert within_quota(shared, {GPU: 0}) == shared  # a fraction's quota is not a device's: left as it is


def test_the_devices_held_back_are_counted_so_the_report_can_name_the_quota() -> None:
    """member-b of the test bed: 24 free A100 behind a ClusterQueue of 8. The 16 held are said, not just dropped."""
    groups = [_group("n1", 8), _group("n2", 8), _group("n3", 8), _group("n4", 2, used=6)]
    held = within_quota(groups, {GPU: 8})
    assert [g.quota_held_units for g in held] == [0, 8, 8, 2]
    [pool] = pools(held, {g.node for g in held})
    assert (pool.free_accelerators, pool.quota_held_accelerators) == (8, 18)
    [pool] = pools(held, {"n1", "n2"})  # an unusable node offers nothing, so its devices are not "held" either
    assert (pool.free_accelerators, pool.quota_held_accelerators) == (8, 8)
    [pool] = pools(within_quota(groups, {}), {g.node for g in groups})
    assert pool.quota_held_accelerators == 0  # no quota known: nothing held


class _NoClusterQueues:
    """An API server whose RBAC (an agent chart before 0.3.0) lets the agent read no ClusterQueue."""

    server = "https://member"

    def list(self, res: Any, namespace: str | None = None, **_: Any) -> dict[str, Any]:
        raise ForbiddenError(403, 'clusterqueues.kueue.x-k8s.io is forbidden: User "system:serviceaccount:..." '
                                  "cannot list resource")


def test_without_rbac_for_cluster_queues_the_agent_says_so_and_holds_nothing_back(
        caplog: pytest.LogCaptureFixture) -> None:
    guard = GangGuard(_NoClusterQueues(), namespace="w", cluster="b", kueue_queue="lq")  # type: ignore[arg-type]
    assert guard.quota_informers  # Kueue mode reads the queues where it may
    assert not guard.quota_readable()
    assert "may not list clusterqueues" in caplog.text and "rbac-agent.yaml" in caplog.text
    assert guard.quota_left([GPU]) is None  # never started: the report counts nodes only
    assert not GangGuard(_NoClusterQueues(), namespace="w", cluster="a").quota_informers  # no Kueue, no queues


def _node(name: str, *, gpus: int = 8, cordoned: bool = False) -> dict[str, Any]:
    amounts = {"cpu": "64", "memory": "512Gi", "pods": "110", GPU: str(gpus)}
    return {"metadata": {"name": name, "labels": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}},
            "spec": {"unschedulable": True} if cordoned else {},
            "status": {"capacity": dict(amounts), "allocatable": dict(amounts),
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def _kueue_backend(nodes: list[dict[str, Any]], cluster_queue: dict[str, Any]) -> KubeBackend:
    """A Kueue-mode agent's backend that has seen these nodes, its LocalQueue and that ClusterQueue."""
    b = KubeBackend(object(), namespace="w", kueue_queue="lq")  # type: ignore[arg-type]
    for n in nodes:
        b.nodes._apply_event(ADDED, n)
    assert b.gang.local_queues is not None and b.gang.cluster_queues is not None
    b.gang.local_queues._apply_event(ADDED, LQ)
    b.gang.cluster_queues._apply_event(ADDED, cluster_queue)
    b.gang.cluster_queues._thread = threading.Thread(target=lambda: None)  # as if started (Informer.started)
    return b


def test_a_kueue_agents_report_says_how_many_free_accelerators_the_quota_holds_back() -> None:
    b = _kueue_backend([_node("n1"), _node("n2"), _node("n3")], _cq(8))
    [pool] = b.capacity().accelerator_pools
    assert (pool.free_accelerators, pool.quota_held_accelerators, pool.allocatable_accelerators) == (8, 16, 24)
    assert pool.gang_capacity(8) == 1  # the 2 x 8 gang of the test bed is not sent here
    [back] = capacity_from_pb(capacity_to_pb(b.capacity())).accelerator_pools
    assert back.quota_held_accelerators == 16  # on the wire as well



def test_a_cordoned_node_spends_none_of_the_quota() -> None:
    """Its devices offer nothing; had they taken the quota's 8, the report said 0 free where Kueue admits 8."""
    b = _kueue_backend([_node("a-cordoned", cordoned=True), _node("n1"), _node("n2")], _cq(8))
    [pool] = b.capacity().accelerator_pools
    assert (pool.free_accelerators, pool.quota_held_accelerators) == (8, 8)


H100_LABELS = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}


def _flavor(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"nodeLabels": labels} if labels else {}}


def _h100(name: str) -> dict[str, Any]:
    node = _node(name)
    node["metadata"]["labels"] = dict(H100_LABELS)
    return node


def test_only_nodes_a_flavor_of_the_queue_runs_on_are_free() -> None:
    """Seen on the test bed: a ClusterQueue whose one flavor `h100` has nodeLabels
    nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3. Kueue never admits a pod pinned to A100 nodes ("flavor h100
    doesn't match node affinity"), yet the agent reported the A100 free, and an A100 job waited there until the
    Kueue admission timeout."""
    cq = _cq(64)  # its one flavor is named a100 in the helper; what counts is its nodeLabels
    nodes = [_node("a100-0"), _h100("h100-0")]
    assert flavor_nodes(cq, {"a100": _flavor("a100", H100_LABELS)}, nodes, [GPU, "amd.com/gpu"]) == {GPU: {"h100-0"}}
    assert flavor_nodes(cq, {"a100": _flavor("a100")}, nodes, [GPU]) == {GPU: {"a100-0", "h100-0"}}  # no labels: all
    assert flavor_nodes(cq, {}, nodes, [GPU]) == {GPU: set()}  # a flavor that does not exist runs nowhere

    b = _kueue_backend(nodes, cq)
    assert b.gang.resource_flavors is not None
    b.gang.resource_flavors._apply_event(ADDED, _flavor("a100", H100_LABELS))
    b.gang.resource_flavors._thread = threading.Thread(target=lambda: None)  # as if started
    pools_by_model = {p.accelerator_model: p for p in b.capacity().accelerator_pools}
    a100, h100 = pools_by_model["NVIDIA-A100-SXM4-80GB"], pools_by_model["NVIDIA-H100-80GB-HBM3"]
    assert (a100.free_accelerators, a100.quota_held_accelerators) == (0, 8)  # no flavor of the queue runs there
    assert (h100.free_accelerators, h100.quota_held_accelerators) == (8, 0)


def test_without_rbac_for_resource_flavors_the_quota_still_counts_and_every_node_is_eligible(
        caplog: pytest.LogCaptureFixture) -> None:
    class _NoFlavors:
        server = "https://member"

        def list(self, res: Any, namespace: str | None = None, **_: Any) -> dict[str, Any]:
            if res.plural == "resourceflavors":
                raise ForbiddenError(403, "resourceflavors.kueue.x-k8s.io is forbidden")
            return {"items": []}

    guard = GangGuard(_NoFlavors(), namespace="w", cluster="b", kueue_queue="lq")  # type: ignore[arg-type]
    assert guard.quota_readable()
    assert "ResourceFlavors not read" in caplog.text and "rbac-agent.yaml" in caplog.text
    assert guard.resource_flavors is None and guard.resource_flavors not in guard.quota_informers
    assert guard.quota_nodes([GPU], [_node("n1")]) is None  # unknown: nothing held for it


def _two_flavor_cq(h100: int, a100: int, *, reserved_h100: int = 0) -> dict[str, Any]:
    return {"metadata": {"name": "cq"},
            "spec": {"resourceGroups": [{"coveredResources": [GPU], "flavors": [
                {"name": "h100", "resources": [{"name": GPU, "nominalQuota": h100}]},
                {"name": "a100", "resources": [{"name": GPU, "nominalQuota": a100}]}]}]},
            "status": {"flavorsReservation": [{"name": "h100", "resources": [{"name": GPU,
                                                                                "total": str(reserved_h100)}]}]}}


def test_each_flavors_quota_is_spent_on_its_own_nodes_not_summed() -> None:
    """A queue of 8 H100s (flavor h100) and 8 A100s (flavor a100) admits a 1 x 8 H100 job, not a 2 x 8 one.
    Summed over the flavors, the report showed 16 H100s free and a 2 x 8 H100 gang waited on Kueue for ever."""
    nodes = [_h100("h100-0"), _h100("h100-1"), _node("a100-0"), _node("a100-1")]
    a100_labels = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    b = _kueue_backend(nodes, _two_flavor_cq(8, 8))
    assert b.gang.resource_flavors is not None
    b.gang.resource_flavors._apply_event(ADDED, _flavor("h100", H100_LABELS))
    b.gang.resource_flavors._apply_event(ADDED, _flavor("a100", a100_labels))
    b.gang.resource_flavors._thread = threading.Thread(target=lambda: None)  # as if started
    by_model = {p.accelerator_model: p for p in b.capacity().accelerator_pools}
    h100, a100 = by_model["NVIDIA-H100-80GB-HBM3"], by_model["NVIDIA-A100-SXM4-80GB"]
    assert (h100.free_accelerators, h100.quota_held_accelerators) == (8, 8)
    assert (a100.free_accelerators, a100.quota_held_accelerators) == (8, 8)
    assert h100.gang_capacity(8) == 1

    b.gang.cluster_queues._apply_event(ADDED, _two_flavor_cq(8, 8, reserved_h100=4))  # type: ignore[union-attr]
    by_model = {p.accelerator_model: p for p in b.capacity().accelerator_pools}
    assert by_model["NVIDIA-H100-80GB-HBM3"].free_accelerators == 4  # what h100 has left, whatever a100 has
    assert by_model["NVIDIA-A100-SXM4-80GB"].free_accelerators == 8


def test_a_node_every_flavor_runs_on_spends_them_in_the_queues_order() -> None:
    nodes = [_node("n1"), _node("n2"), _node("n3")]
    rooms = flavor_quota(LQ, _two_flavor_cq(4, 8), {"h100": _flavor("h100"), "a100": _flavor("a100")}, nodes, [GPU])
    assert rooms is not None and [(r.flavor, r.left, len(r.nodes)) for r in rooms[GPU]] == [("h100", 4, 3),
                                                                                            ("a100", 8, 3)]
    groups = [_group(n, 8) for n in ("n1", "n2", "n3")]
    kept = within_quota(groups, headroom(LQ, _two_flavor_cq(4, 8), [GPU]) or {}, by_flavor=rooms)
    assert sorted(g.free_units for g in kept) == [0, 4, 8]  # 12 of the queue's two flavors, no more


def _l40s(name: str) -> dict[str, Any]:
    node = _node(name)
    node["metadata"]["labels"] = {"nvidia.com/gpu.product": "NVIDIA-L40S"}
    return node


def test_a_flavor_that_runs_on_two_models_gives_each_pool_the_whole_quota_left() -> None:
    """F4, member-b of the test bed: one flavor without nodeLabels, 8 GPUs of quota, nothing in use, A100 and
    L40S nodes. The quota was spent once over both pools, the freest node first: 8 A100s free, the L40S pool all
    held, and a 2 x 4 L40S gang Kueue admitted at once on the member waited for ever. A gang runs on one pool, so
    each pool may have all of it; a gang over the quota still does not fit on either."""
    b = _kueue_backend([_node("a100-0", gpus=16), _l40s("l40s-0"), _l40s("l40s-1")], _cq(8))
    assert b.gang.resource_flavors is not None
    b.gang.resource_flavors._apply_event(ADDED, _flavor("a100"))  # the helper's one flavor: no nodeLabels
    b.gang.resource_flavors._thread = threading.Thread(target=lambda: None)  # as if started
    by_model = {p.accelerator_model: p for p in b.capacity().accelerator_pools}
    a100, l40s = by_model["NVIDIA-A100-SXM4-80GB"], by_model["NVIDIA-L40S"]
    assert (a100.free_accelerators, a100.quota_held_accelerators) == (8, 8)
    assert (l40s.free_accelerators, l40s.quota_held_accelerators) == (8, 8)
    assert l40s.gang_capacity(4) == 2  # the 2 x 4 L40S gang is sent here
    assert l40s.gang_capacity(8) == 1 and a100.gang_capacity(16) == 0  # what Kueue would not admit is not sent

    b.gang.cluster_queues._apply_event(ADDED, _cq(8, reserved="4"))  # type: ignore[union-attr]
    by_model = {p.accelerator_model: p for p in b.capacity().accelerator_pools}
    assert by_model["NVIDIA-L40S"].free_accelerators == 4 and by_model["NVIDIA-A100-SXM4-80GB"].free_accelerators == 4


def test_a_pool_says_its_largest_nodes_devices_usable_or_not_whatever_is_free() -> None:
    """What one replica could ever get on one node (AcceleratorPool.largest_node_accelerators, the fleet check's):
    the devices installed on the largest node, summed over its groups, busy or not, and counting a node that is
    not usable now (it may come back)."""
    groups = [_group("n1", 4), _group("n2", 2, used=6), _group("n3", 8, used=8), _group("n3", 0, used=4)]
    [pool] = pools(groups, {"n1", "n2"})  # n3, the largest (16 + 4 in two groups), is NotReady now
    assert pool.largest_node_accelerators == 20 and pool.total_accelerators == 32
    [pool] = pools(groups[:2], {"n1", "n2"})
    assert pool.largest_node_accelerators == 8  # n2's, all but 2 busy
