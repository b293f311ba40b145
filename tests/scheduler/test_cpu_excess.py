"""CpuExcess: a fraction asking many cores goes to the pool with more cores a free GPU; a light one does not care."""

from __future__ import annotations

import pytest
from scenarios import A100, cycle, placed, spec

from federator.model import AcceleratorPool, JobKind
from federator.model.pool_room import whole_bucket
from federator.scheduler import SchedulerConfig
from federator.scheduler.cpu_excess import cores_per_free_device, cpu_excess
from federator.scheduler.plugins import DEFAULT_SCORE_WEIGHTS

from builders import cluster

WITHOUT = SchedulerConfig(score_weights={**DEFAULT_SCORE_WEIGHTS, "CpuExcess": 0})


def four_gpu_hosts(cores: int) -> AcceleratorPool:
    """Two fresh hosts of 4 GPUs with `cores` cores each (an L40S host of the synthetic fleet has 64)."""
    return AcceleratorPool(A100, (0, 0, 0, 0, 2), 8, 8, host_room=((0, 0),) * 4 + ((cores * 1000, 2**40),))


def fleet() -> list:  # type: ignore[type-arg]
    """`a-few` has 16 cores a GPU, `b-many` 32; `a-few` is the one a tie goes to (it sorts first)."""
    return [cluster("a-few", "r", four_gpu_hosts(64)), cluster("b-many", "r", four_gpu_hosts(128))]


def test_a_cpu_heavy_fraction_takes_the_pool_with_more_cores_a_gpu() -> None:
    """A 100m fraction asking 16 cores takes a whole GPU's share of an `a-few` host's CPU, and would strand
    the devices beside it; on `b-many` it takes half a share. Without the term the two pools score alike."""
    heavy = spec("heavy", gpus=0.1, cpu=16, kind=JobKind.INFERENCE)
    assert placed(cycle(fleet(), [heavy], config=WITHOUT)) == {"heavy": {"a-few": 1}}
    assert placed(cycle(fleet(), [heavy])) == {"heavy": {"b-many": 1}}


@pytest.mark.parametrize("config", [None, WITHOUT], ids=["default", "without"])
def test_a_light_fraction_does_not_care(config: SchedulerConfig | None) -> None:
    """One core is under a 100m fraction's share of either host's CPU: no excess anywhere, the tie as before."""
    light = spec("light", gpus=0.1, cpu=1, kind=JobKind.INFERENCE)
    assert placed(cycle(fleet(), [light], config=config)) == {"light": {"a-few": 1}}


def test_the_excess_is_the_cpu_share_beyond_the_gpu_share() -> None:
    few = four_gpu_hosts(64)
    assert cores_per_free_device(few) == 16_000
    assert cpu_excess(few, 16_000, 100) == pytest.approx(0.9)
    assert cpu_excess(four_gpu_hosts(128), 16_000, 100) == pytest.approx(0.4)
    assert cpu_excess(few, 1_000, 100) == 0.0  # under the GPU share
    assert cpu_excess(few, 64_000, 100) == pytest.approx(0.9)  # capped at one device's share
    assert cpu_excess(few, 16_000, 1000) == 0.0  # a whole device is not a fraction
    classed = AcceleratorPool(A100, (0, 1, 0, 0, 1), 5, 5,
                              room_classes=((whole_bucket(1), 30_000, 2**40, 1), (whole_bucket(4), 64_000, 2**40, 1)))
    assert cores_per_free_device(classed) == 30_000  # the room classes, not the host room, when reported
    assert cpu_excess(AcceleratorPool(A100, (1,), 1, 1), 16_000, 100) == 0.0  # no room said: nothing to read
