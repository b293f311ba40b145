"""Alternatives across vendors: the first that fits anywhere wins, per-model quotas hold, and the
placement records which alternative (with its count) it took."""

from __future__ import annotations

from dataclasses import replace

from federator.model import AcceleratorAlternative
from federator.scheduler import Scheduler, SchedulerConfig, Snapshot
from federator.scheduler.config import QueueConfig, Quota

from builders import cluster, job, pool, request

H100 = "NVIDIA-H100-80GB-HBM3"
ASCEND = "Ascend910B"
CANN = '{"spec": {"containers": [{"image": "cann:8"}]}}'


def _ascend(**kw: int) -> object:
    return replace(pool(ASCEND, gpus_per_node=16, **kw), vendor="huawei", memory_mib=65536,
                   resource_name="huawei.com/Ascend910")


def _job(name: str = "llm", replicas: int = 2):  # type: ignore[no-untyped-def]
    spec = job(name, replicas=replicas, cpu=1)
    return replace(spec, accelerators=(AcceleratorAlternative(8000, "H100"),
                                       AcceleratorAlternative(16000, ASCEND, "huawei", 0, CANN)))


def _place(clusters: list, *specs, config: SchedulerConfig | None = None):  # type: ignore[no-untyped-def]
    return Scheduler(config).schedule(Snapshot.of(clusters), [request(s, at=i) for i, s in enumerate(specs)])


def test_the_first_alternative_wins_when_it_fits() -> None:
    nv = cluster("nv", "east", pool(H100, nodes=2, free=8))
    hw = cluster("hw", "west", _ascend(nodes=2, free=16))
    (decision,) = _place([nv, hw], _job()).decisions
    (a,) = decision.assignments
    assert (a.cluster, a.accelerator_model, a.accelerator_milli, a.alternative) == ("nv", H100, 8000, 0)
    assert (a.accelerator_vendor, a.accelerator_resource) == ("nvidia", "")


def test_a_job_moves_to_its_ascend_alternative_when_the_nvidia_member_is_full() -> None:
    nv = cluster("nv", "east", pool(H100, nodes=2, free=0))
    hw = cluster("hw", "west", _ascend(nodes=2, free=16))
    result = _place([nv, hw], _job())
    (decision,) = result.decisions
    (a,) = decision.assignments
    assert (a.cluster, a.accelerator_model, a.accelerator_vendor) == ("hw", ASCEND, "huawei")
    assert (a.accelerator_milli, a.alternative, a.accelerator_resource) == (16000, 1, "huawei.com/Ascend910")
    after = next(c for c in result.snapshot.clusters if c.name == "hw").capacity.pool(ASCEND)
    assert after is not None and after.free_accelerators == 0  # 2 x 16 devices taken, not 2 x 8


def test_no_alternative_fits_says_why_for_each() -> None:
    nv = cluster("nv", "east", pool(H100, nodes=1, free=0))
    result = _place([nv], _job())
    reason = result.pending[_job().name]  # type: ignore[index]
    assert "alternative 1 (8 x H100)" in reason.message and "alternative 2 (16 x huawei Ascend910B)" in reason.message


def test_a_vendor_or_capability_alternative_takes_only_matching_pools() -> None:
    nv = cluster("nv", "east", replace(pool(H100, nodes=1, free=8), memory_mib=81559))
    hw = cluster("hw", "west", _ascend(nodes=1, free=16))
    spec = replace(job("big-mem", cpu=1), accelerators=(AcceleratorAlternative(8000, vendor="huawei"),))
    (decision,) = _place([nv, hw], spec).decisions
    assert decision.assignments[0].cluster == "hw"
    spec = replace(job("needs-80g", cpu=1), accelerators=(AcceleratorAlternative(8000, min_memory_mib=80000),))
    (decision,) = _place([nv, hw], spec).decisions
    assert decision.assignments[0].cluster == "nv"


def test_quota_per_model_sends_the_job_to_its_other_alternative() -> None:
    nv = cluster("nv", "east", pool(H100, nodes=4, free=8))
    hw = cluster("hw", "west", _ascend(nodes=2, free=16))
    config = SchedulerConfig(queues={"default": QueueConfig(quota=Quota(accelerator_milli={"H100": 8000}))})
    (decision,) = _place([nv, hw], _job(replicas=2), config=config).decisions  # 16 H100 > quota of 8
    assert decision.assignments[0].accelerator_model == ASCEND


def test_a_one_count_job_stays_on_its_resources_vendor_even_when_only_an_ascend_pool_has_room() -> None:
    """`nvidia.com/gpu: 8` names NVIDIA's device plugin: a free Ascend pool is not an answer."""
    nv = cluster("nv", "east", pool(H100, nodes=1, free=0))
    hw = cluster("hw", "west", _ascend(nodes=2, free=16))
    legacy = job("legacy", gpus=8)
    result = _place([nv, hw], legacy)
    assert not result.decisions
    reason = result.pending[legacy.name]  # type: ignore[index]
    assert reason.code == "InsufficientAccelerators"  # nv is full; hw is not nvidia
    assert "hw has no nvidia accelerator nodes, only devices of huawei" in reason.message
    nv_free = cluster("nv", "east", pool(H100, nodes=1, free=8))
    (decision,) = _place([nv_free, hw], legacy).decisions
    assert decision.assignments[0].cluster == "nv"


def test_a_one_count_job_naming_models_is_restricted_too_and_the_reason_says_how_to_use_other_vendors() -> None:
    hw = cluster("hw", "west", _ascend(nodes=2, free=16))
    amd = cluster("amd", "west", replace(pool("MI300X", nodes=2, free=8), vendor="amd", resource_name="amd.com/gpu"))
    result = _place([hw, amd], job("legacy", gpus=8), job("pinned", gpus=8, models=("H100", "MI300X")))
    assert not result.decisions
    for name in ("legacy", "pinned"):
        reason = result.pending[name]  # type: ignore[index]
        assert reason.code == "AcceleratorUnavailable", reason
        assert "the one-count form asks for nvidia devices" in reason.message
        assert "spec.accelerators" in reason.message
    assert "has no nvidia H100|MI300X nodes, only devices of amd" in result.pending["pinned"].message  # type: ignore[index]


def test_the_restriction_follows_the_configured_vendor_and_can_be_lifted() -> None:
    hw = cluster("hw", "west", _ascend(nodes=2, free=16))
    (decision,) = _place([hw], job("legacy", gpus=8), config=SchedulerConfig(legacy_vendor="")).decisions
    assert decision.assignments[0].cluster == "hw"  # "" = any vendor (the behaviour before vendors)
    assert not _place([hw], job("legacy", gpus=8)).decisions


def test_a_vendor_and_memory_ask_too_big_for_the_vendors_devices_says_so_not_that_the_vendor_is_missing() -> None:
    """Outside QA, V8: on a member with AMD and Huawei devices, 8 x amd >= 300000 MiB was told the member had no
    amd accelerator nodes, only devices of huawei; it has eight MI300X, each too small for the ask."""
    mi300 = replace(pool("AMD-Instinct-MI300X", nodes=1, free=8), vendor="amd", memory_mib=196608,
                    resource_name="amd.com/gpu")
    mixed = cluster("kb", "west", mi300, _ascend(nodes=1, free=16))
    big = replace(job("amd300", cpu=1), accelerators=(AcceleratorAlternative(8000, "", "amd", 300000),))
    reason = _place([mixed], big).pending["amd300"]  # type: ignore[index]
    assert reason.code == "AcceleratorUnavailable", reason
    assert "kb has no amd accelerator nodes with at least 300000Mi per device (its amd devices have 192Gi)" \
        in reason.message, reason.message
    assert "only devices of" not in reason.message
    fits = replace(job("amd64", cpu=1), accelerators=(AcceleratorAlternative(8000, "", "amd", 65536),))
    assert _place([mixed], fits).decisions
    nvidia = replace(job("nv300", cpu=1), accelerators=(AcceleratorAlternative(8000, "", "nvidia", 300000),))
    assert "kb has no nvidia accelerator nodes, only devices of amd, huawei" in \
        _place([mixed], nvidia).pending["nv300"].message  # type: ignore[index]


def test_a_memory_ask_on_devices_of_unknown_memory_says_so_in_either_form_and_leads_a_fleets_reason() -> None:
    """Outside QA re-test, vendors2 R6: a third-party member's `A100` and `DCU` pools have unknown memory. The model
    form was told the A100s were too small (they may be 80 GB), and in a fleet of NVIDIA and AMD members the Hygon
    ask's reason named three of those ("has no hygon ..., only devices of nvidia") and cut the one Hygon member."""
    dcu = replace(pool("DCU", nodes=1, free=8), vendor="hygon", resource_name="hygon.com/dcu")
    a100 = replace(pool("A100", nodes=1, free=8), vendor="nvidia")
    member = cluster("zz-dcu", "west", dcu, a100)
    by_model = replace(job("a100mem", cpu=1), accelerators=(AcceleratorAlternative(4000, "A100", "", 40000),))
    reason = _place([member], by_model).pending["a100mem"]  # type: ignore[index]
    assert "zz-dcu has no A100 nodes with at least 40000Mi per device (its A100 devices have unknown memory)" \
        in reason.message, reason.message
    h100 = replace(pool(H100, nodes=1, free=8), memory_mib=81559)
    others = [cluster(f"c-{i}", "east", h100) for i in range(4)]
    by_vendor = replace(job("dcu64", cpu=1), accelerators=(AcceleratorAlternative(8000, "", "hygon", 65536),))
    reason = _place([*others, member], by_vendor).pending["dcu64"]  # type: ignore[index]
    assert reason.message.startswith(
        "0/5 clusters fit: zz-dcu has no hygon accelerator nodes with at least 64Gi per device (its hygon devices "
        "have unknown memory); c-0 has no hygon accelerator nodes, only devices of nvidia"), reason.message
