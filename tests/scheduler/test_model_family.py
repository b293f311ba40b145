"""A user's family name selects the catalog models of that family: "Ascend910B" places on a pool of
Ascend910B3 (the agent reports the chip's catalog name and its family), quotas on the family count
usage of its models, and token matching stays as strict as before ("A10" is not "A100")."""

from __future__ import annotations

from dataclasses import replace

import pytest

from federator.model import AcceleratorAlternative, AcceleratorPool, JobId, JobSpec, Resources
from federator.model.accelerator import accepts_model
from federator.scheduler import Scheduler, SchedulerConfig, Snapshot
from federator.scheduler.config import QueueConfig, Quota
from federator.scheduler.framework import Allocation

from builders import cluster, job, pool, request

B3 = "Ascend910B3"


def _ascend(model: str = B3, family: str = "Ascend910B", free: int = 16) -> AcceleratorPool:
    return replace(pool(model, nodes=2, free=free, gpus_per_node=16), vendor="huawei", family=family,
                   memory_mib=65536, resource_name="huawei.com/Ascend910")


@pytest.mark.parametrize(("asked", "model", "family", "selects"), [
    ("Ascend910B", B3, "Ascend910B", True),   # the family a user writes
    ("Ascend910B3", B3, "Ascend910B", True),  # the exact SKU
    ("Ascend910B4", B3, "Ascend910B", False),  # a sibling SKU is not this one
    ("Ascend910B", B3, "", False),  # no family reported: token matching alone, as before
    ("Ascend910", B3, "Ascend910B", False),  # a family is a name, not a prefix
    ("H100", "NVIDIA-H100-80GB-HBM3", "", True),
    ("A10", "NVIDIA-A100-SXM4-80GB", "", False),
    ("A10", "NVIDIA-A100-SXM4-80GB", "A100", False),
])
def test_a_name_selects_a_pool_by_its_model_or_its_family(asked: str, model: str, family: str,
                                                          selects: bool) -> None:
    assert accepts_model(asked, model, family) is selects


def _huawei(name: str, replicas: int) -> JobSpec:
    """`huawei.com/Ascend910: 16` + acceleratorModels [Ascend910B], as the job file parser makes it (a one-count job of
    nvidia.com/gpu would stay on NVIDIA pools)."""
    return replace(job(name, replicas=replicas), accelerators=(AcceleratorAlternative(16000, "Ascend910B", "huawei"),))


def test_a_job_asking_for_the_family_lands_on_a_pool_of_one_of_its_skus() -> None:
    hw = cluster("hw", "west", _ascend())
    spec = _huawei("llm", 2)
    (decision,) = Scheduler().schedule(Snapshot.of([hw]), [request(spec)]).decisions
    (a,) = decision.assignments
    assert (a.cluster, a.accelerator_model) == ("hw", B3)


def test_without_the_family_on_the_pool_the_family_name_does_not_select_it() -> None:
    hw = cluster("hw", "west", _ascend(family=""))
    spec = _huawei("llm", 1)
    result = Scheduler().schedule(Snapshot.of([hw]), [request(spec)])
    assert not result.decisions and "llm" in result.pending


def test_a_quota_on_the_family_counts_what_the_queue_holds_of_its_skus() -> None:
    hw = cluster("hw", "west", _ascend(free=16))
    config = SchedulerConfig(queues={"default": QueueConfig(quota=Quota(accelerator_milli={"Ascend910B": 16000}))})
    held = Allocation(JobId("running"), "default", 0, False, "hw", B3, 1, Resources(1000, 2**30, 16000))
    spec = job("more", replicas=1, gpus=16, models=("Ascend910B",))
    result = Scheduler(config).schedule(Snapshot.of([hw]), [request(spec)], running=[held])
    assert not result.decisions
    assert "quota of queue default on Ascend910B: 16 accelerators, too few" in result.pending[JobId("more")].message
